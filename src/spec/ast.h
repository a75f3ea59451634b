/* ast.h — lexer and parser of the expression language: text to syntax tree.
 *
 * This is the first stage of expression compilation (ast → expr.c checks types
 * and resolves names → a flat program that expr_eval.c runs). The grammar is
 * in ast.c's opening comment. Nodes carry the byte offset of their token in
 * the source text so that every later error can point at a line and column.
 *
 * A tree owns all its nodes and literal bytes (one arena); node names are
 * slices into the source text, which the caller keeps alive as long as the
 * tree. */
#ifndef WEIR_SPEC_AST_H
#define WEIR_SPEC_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Limits that keep the parser's recursion and the evaluator's stack bounded
 * whatever the input (the fuzzers rely on them). */
#define EXPR_MAX_TEXT   65536 /* bytes of one expression */
#define EXPR_MAX_DEPTH  64    /* nesting of parentheses, calls and unary operators */
#define EXPR_MAX_ARGS   64    /* arguments of one call, elements of one `in` list */
#define EXPR_MAX_HEIGHT 512   /* height of the tree (long operator chains), bounds recursion */

typedef enum expr_ast_kind {
    AST_INT,
    AST_FLOAT,
    AST_STRING,
    AST_BOOL,
    AST_NULL,
    AST_DURATION,
    AST_NAME,   /* field, feature or extra name */
    AST_UNARY,  /* op OP_NEG or OP_NOT; args[0] */
    AST_BINARY, /* op; args[0], args[1] */
    AST_CALL,   /* name(args...) [over D [every H]] */
    AST_IN,     /* args[0] in [args[1..]]; negated for `not in` */
} expr_ast_kind_t;

typedef enum expr_op {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_AND,
    OP_OR,
    OP_NEG,
    OP_NOT,
} expr_op_t;

typedef struct expr_ast {
    uint8_t kind;    /* expr_ast_kind_t */
    uint16_t height; /* 1 for a leaf */
    uint8_t op;      /* expr_op_t, for AST_UNARY and AST_BINARY */
    bool negated;    /* AST_IN: `not in` */
    bool has_over;
    uint32_t pos;       /* byte offset of the node's token (the operator for operators) */
    uint32_t over_pos;  /* byte offset of the duration after `over` */
    uint32_t every_pos; /* byte offset of the duration after `every` (0 if none) */
    uint32_t nargs;
    struct expr_ast **args;
    weir_slice_t name; /* AST_NAME, AST_CALL: the identifier; AST_STRING: unescaped bytes */
    int64_t i;         /* AST_INT, AST_DURATION (ms) */
    double f;          /* AST_FLOAT */
    bool b;            /* AST_BOOL */
    int64_t over_ms;   /* `over D` */
    int64_t every_ms;  /* `every H`, 0 if absent */
} expr_ast_t;

typedef struct expr_ast_tree expr_ast_tree_t;

/* Parses text[0..len) into a tree. On success returns 0 and sets *out (free
 * with expr_ast_free). On failure returns WEIR_EPARSE, sets *err_pos to the
 * byte offset of the problem and writes a sentence without position to err. */
int expr_ast_parse(const char *text, size_t len, expr_ast_tree_t **out, uint32_t *err_pos,
                   char *err, size_t errlen);

const expr_ast_t *expr_ast_root(const expr_ast_tree_t *t);

void expr_ast_free(expr_ast_tree_t *t);

/* Appends the canonical text of a node: fully parenthesized, literals
 * normalized (strings as JSON, durations in their largest exact unit). Two
 * nodes with the same canonical text compute the same thing; the compiler
 * uses it to share one aggregate slot between identical aggregate calls. */
void expr_ast_print(weir_buf_t *b, const expr_ast_t *n);

/* The spelling of an operator ("+", "==", "and", ...). */
const char *expr_op_name(expr_op_t op);

/* True if [s, s+len) is a keyword of the language (and, or, not, in, over,
 * every, true, false, null), which cannot be a field or feature name. */
bool expr_is_keyword(const char *s, size_t len);

/* True if [s, s+len) is an identifier: [A-Za-z_][A-Za-z0-9_]* and not a
 * keyword. */
bool expr_is_identifier(const char *s, size_t len);

#endif
