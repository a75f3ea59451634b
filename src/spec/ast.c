/* ast.c — lexer and recursive-descent parser of the expression language.
 *
 * Grammar (lowest precedence first; all binary operators left-associative
 * except comparisons, which do not chain):
 *
 *   expr     := or
 *   or       := and ('or' and)*
 *   and      := not ('and' not)*
 *   not      := 'not' not | cmp
 *   cmp      := add [ ('==' | '!=' | '<' | '<=' | '>' | '>=') add
 *                   | ['not'] 'in' '[' expr (',' expr)* ']' ]
 *   add      := mul (('+' | '-') mul)*
 *   mul      := unary (('*' | '/' | '%') unary)*
 *   unary    := '-' unary | primary
 *   primary  := INT | FLOAT | DURATION | STRING | 'true' | 'false' | 'null'
 *             | NAME
 *             | NAME '(' [expr (',' expr)*] ')' ['over' DURATION ['every' DURATION]]
 *             | '(' expr ')'
 *
 * Tokens: INT is decimal digits; FLOAT has a '.' and/or an exponent
 * (`1.5`, `2e-3`, `.5`); DURATION is digits directly followed by ms, s, m, h
 * or d (`500ms`, `7d`); STRING is "..." or '...' with the escapes \\ \" \'
 * \n \t \r \0; NAME is [A-Za-z_][A-Za-z0-9_]*, optionally qualified once as
 * `a.b` (a pattern step's field, `pattern.x`). Keywords are lower case.
 * `over` binds to the call just before it, so `count() over 1h + 1` is
 * `(count() over 1h) + 1`.
 *
 * Recursion depth, call arity and text size are bounded (ast.h) so that any
 * input is parsed in bounded stack and time. */
#include "spec/ast.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "spec/value.h"

/* ---- arena: nodes and unescaped strings of one tree, freed together ---- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk_t;

struct expr_ast_tree {
    chunk_t *chunks;
    expr_ast_t *root;
};

static void *arena_alloc(expr_ast_tree_t *t, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    chunk_t *c = t->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        c = weir_malloc(sizeof *c + cap);
        c->next = t->chunks;
        c->used = 0;
        c->cap = cap;
        t->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void expr_ast_free(expr_ast_tree_t *t)
{
    if (!t) return;
    chunk_t *c = t->chunks;
    while (c) {
        chunk_t *n = c->next;
        weir_free(c);
        c = n;
    }
    weir_free(t);
}

const expr_ast_t *expr_ast_root(const expr_ast_tree_t *t)
{
    return t->root;
}

/* ---- lexer ---- */

typedef enum tok_kind {
    T_EOF,
    T_INT,
    T_FLOAT,
    T_DURATION,
    T_STRING,
    T_NAME,
    T_AND,
    T_OR,
    T_NOT,
    T_IN,
    T_OVER,
    T_EVERY,
    T_TRUE,
    T_FALSE,
    T_NULL,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_COMMA,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PERCENT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
} tok_kind_t;

typedef struct tok {
    tok_kind_t kind;
    uint32_t pos, len;
    int64_t i;
    double f;
    weir_slice_t s; /* T_STRING: unescaped (arena); T_NAME: into the text */
} tok_t;

typedef struct parser {
    const char *text;
    size_t len, at;
    tok_t tok; /* current token */
    expr_ast_tree_t *tree;
    int depth;
    uint32_t err_pos;
    char *err;
    size_t errlen;
    int failed;
} parser_t;

static const struct {
    const char *word;
    tok_kind_t kind;
} keywords[] = {
    {"and", T_AND},     {"or", T_OR},     {"not", T_NOT},     {"in", T_IN},     {"over", T_OVER},
    {"every", T_EVERY}, {"true", T_TRUE}, {"false", T_FALSE}, {"null", T_NULL},
};

static tok_kind_t keyword_kind(const char *s, size_t len)
{
    for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++)
        if (strlen(keywords[k].word) == len && memcmp(keywords[k].word, s, len) == 0)
            return keywords[k].kind;
    return T_NAME;
}

bool expr_is_keyword(const char *s, size_t len)
{
    return keyword_kind(s, len) != T_NAME;
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

bool expr_is_identifier(const char *s, size_t len)
{
    if (len == 0 || !is_alpha((unsigned char)s[0])) return false;
    for (size_t i = 1; i < len; i++)
        if (!is_alpha((unsigned char)s[i]) && !is_digit((unsigned char)s[i])) return false;
    return !expr_is_keyword(s, len);
}

static int fail(parser_t *p, uint32_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(parser_t *p, uint32_t pos, const char *fmt, ...)
{
    if (p->failed) return WEIR_EPARSE;
    p->failed = 1;
    p->err_pos = pos;
    if (p->err && p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
    }
    return WEIR_EPARSE;
}

static int lex_number(parser_t *p, tok_t *t)
{
    const char *s = p->text;
    size_t i = p->at, start = p->at;
    int is_float = 0;
    while (i < p->len && is_digit((unsigned char)s[i]))
        i++;
    if (i < p->len && s[i] == '.') {
        is_float = 1;
        i++;
        while (i < p->len && is_digit((unsigned char)s[i]))
            i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (s[j] == '+' || s[j] == '-')) j++;
        if (j < p->len && is_digit((unsigned char)s[j])) {
            is_float = 1;
            i = j;
            while (i < p->len && is_digit((unsigned char)s[i]))
                i++;
        }
    }
    /* A unit suffix makes a duration: the letters run to the end of the word. */
    size_t u = i;
    while (u < p->len && (is_alpha((unsigned char)s[u]) || is_digit((unsigned char)s[u])))
        u++;
    t->pos = (uint32_t)start;
    t->len = (uint32_t)(u - start);
    p->at = u;
    if (u > i) {
        int64_t ms;
        int rc = is_float ? WEIR_EINVAL : expr_parse_duration(s + start, u - start, &ms);
        if (rc == WEIR_ERANGE)
            return fail(p, t->pos, "duration '%.*s' is too large", (int)(u - start), s + start);
        if (rc != 0)
            return fail(p, t->pos,
                        "bad duration '%.*s': expected an integer followed by ms, s, m, h or d",
                        (int)(u - start), s + start);
        t->kind = T_DURATION;
        t->i = ms;
        return 0;
    }
    char tmp[64];
    if (i - start >= sizeof tmp) return fail(p, t->pos, "number is too long");
    memcpy(tmp, s + start, i - start);
    tmp[i - start] = '\0';
    if (is_float) {
        errno = 0;
        double f = strtod(tmp, NULL);
        if (errno == ERANGE && isinf(f)) return fail(p, t->pos, "number %s is too large", tmp);
        t->kind = T_FLOAT;
        t->f = f;
    } else {
        errno = 0;
        unsigned long long v = strtoull(tmp, NULL, 10);
        if (errno == ERANGE || v > (unsigned long long)INT64_MAX)
            return fail(p, t->pos, "integer %s is too large (the largest is %" PRId64 ")", tmp,
                        INT64_MAX);
        t->kind = T_INT;
        t->i = (int64_t)v;
    }
    return 0;
}

static int lex_string(parser_t *p, tok_t *t)
{
    const char *s = p->text;
    char q = s[p->at];
    size_t i = p->at + 1;
    t->pos = (uint32_t)p->at;
    /* The unescaped form is never longer than the quoted one. */
    size_t n = 0;
    size_t end = i;
    while (end < p->len && s[end] != q) {
        if (s[end] == '\\') end++;
        end++;
    }
    if (end >= p->len) return fail(p, t->pos, "string is not closed: missing %c", q);
    char *out = arena_alloc(p->tree, end - i + 1);
    while (i < end) {
        char c = s[i++];
        if (c == '\\') {
            char e = s[i++];
            switch (e) {
            case '\\':
                c = '\\';
                break;
            case '"':
                c = '"';
                break;
            case '\'':
                c = '\'';
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case '0':
                c = '\0';
                break;
            default:
                return fail(p, (uint32_t)(i - 2), "unknown escape '\\%c' in string", e);
            }
        }
        out[n++] = c;
    }
    t->kind = T_STRING;
    t->s.ptr = out;
    t->s.len = n;
    t->len = (uint32_t)(end + 1 - p->at);
    p->at = end + 1;
    return 0;
}

/* Reads the next token into p->tok. */
static int next(parser_t *p)
{
    const char *s = p->text;
    while (p->at < p->len &&
           (s[p->at] == ' ' || s[p->at] == '\t' || s[p->at] == '\n' || s[p->at] == '\r'))
        p->at++;
    tok_t *t = &p->tok;
    memset(t, 0, sizeof *t);
    t->pos = (uint32_t)p->at;
    if (p->at >= p->len) {
        t->kind = T_EOF;
        return 0;
    }
    unsigned char c = (unsigned char)s[p->at];
    if (is_digit(c) || (c == '.' && p->at + 1 < p->len && is_digit((unsigned char)s[p->at + 1])))
        return lex_number(p, t);
    if (is_alpha(c)) {
        size_t i = p->at;
        while (i < p->len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i])))
            i++;
        /* `step.field`, `pattern.name`: a qualified name is one NAME token
         * ("small.amount") for the scope to resolve; a keyword cannot be
         * qualified. */
        if (i + 1 < p->len && s[i] == '.' && is_alpha((unsigned char)s[i + 1]) &&
            keyword_kind(s + p->at, i - p->at) == T_NAME) {
            i++;
            while (i < p->len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i])))
                i++;
        }
        t->kind = keyword_kind(s + p->at, i - p->at);
        t->s.ptr = s + p->at;
        t->s.len = i - p->at;
        t->len = (uint32_t)(i - p->at);
        p->at = i;
        return 0;
    }
    if (c == '"' || c == '\'') return lex_string(p, t);
    char c2 = p->at + 1 < p->len ? s[p->at + 1] : '\0';
    t->len = 1;
    switch (c) {
    case '(':
        t->kind = T_LPAREN;
        break;
    case ')':
        t->kind = T_RPAREN;
        break;
    case '[':
        t->kind = T_LBRACKET;
        break;
    case ']':
        t->kind = T_RBRACKET;
        break;
    case ',':
        t->kind = T_COMMA;
        break;
    case '+':
        t->kind = T_PLUS;
        break;
    case '-':
        t->kind = T_MINUS;
        break;
    case '*':
        t->kind = T_STAR;
        break;
    case '/':
        t->kind = T_SLASH;
        break;
    case '%':
        t->kind = T_PERCENT;
        break;
    case '<':
        t->kind = c2 == '=' ? T_LE : T_LT;
        t->len = c2 == '=' ? 2 : 1;
        break;
    case '>':
        t->kind = c2 == '=' ? T_GE : T_GT;
        t->len = c2 == '=' ? 2 : 1;
        break;
    case '=':
        if (c2 != '=') return fail(p, t->pos, "unexpected '=': use '==' to compare");
        t->kind = T_EQ;
        t->len = 2;
        break;
    case '!':
        if (c2 != '=') return fail(p, t->pos, "unexpected '!': use 'not' for negation");
        t->kind = T_NE;
        t->len = 2;
        break;
    case '&':
        return fail(p, t->pos, "unexpected '&': use 'and'");
    case '|':
        return fail(p, t->pos, "unexpected '|': use 'or'");
    default:
        if (c >= 0x21 && c < 0x7f) return fail(p, t->pos, "unexpected character '%c'", c);
        return fail(p, t->pos, "unexpected byte 0x%02x", c);
    }
    p->at += t->len;
    return 0;
}

static const char *tok_desc(const tok_t *t, char *buf, size_t n, const char *text)
{
    if (t->kind == T_EOF) return "the end of the expression";
    snprintf(buf, n, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), text + t->pos);
    return buf;
}

static int unexpected(parser_t *p, const char *wanted)
{
    char b[64];
    return fail(p, p->tok.pos, "expected %s but found %s", wanted,
                tok_desc(&p->tok, b, sizeof b, p->text));
}

/* ---- parser ---- */

static expr_ast_t *node(parser_t *p, expr_ast_kind_t kind, uint32_t pos)
{
    expr_ast_t *n = arena_alloc(p->tree, sizeof *n);
    n->kind = (uint8_t)kind;
    n->pos = pos;
    n->height = 1;
    return n;
}

/* Sets n's height from its arguments; fails past EXPR_MAX_HEIGHT, which long
 * operator chains (`a + a + ... + a`) reach without nesting. */
static expr_ast_t *set_height(parser_t *p, expr_ast_t *n)
{
    uint32_t h = 0;
    for (uint32_t i = 0; i < n->nargs; i++)
        if (n->args[i]->height > h) h = n->args[i]->height;
    if (h + 1 > EXPR_MAX_HEIGHT) {
        fail(p, n->pos, "expression is too long a chain of operators (tree height over %d)",
             EXPR_MAX_HEIGHT);
        return NULL;
    }
    n->height = (uint16_t)(h + 1);
    return n;
}

static expr_ast_t *node2(parser_t *p, expr_ast_kind_t kind, expr_op_t op, uint32_t pos,
                         expr_ast_t *a, expr_ast_t *b)
{
    expr_ast_t *n = node(p, kind, pos);
    n->op = (uint8_t)op;
    n->nargs = b ? 2 : 1;
    n->args = arena_alloc(p->tree, sizeof(expr_ast_t *) * n->nargs);
    n->args[0] = a;
    if (b) n->args[1] = b;
    return set_height(p, n);
}

static expr_ast_t *parse_expr(parser_t *p);

static int enter(parser_t *p)
{
    if (++p->depth > EXPR_MAX_DEPTH) {
        fail(p, p->tok.pos, "expression is nested too deeply (more than %d levels)",
             EXPR_MAX_DEPTH);
        return -1;
    }
    return 0;
}

/* Parses `(` args `)` or `[` items `]` after the opening token was consumed. */
static int parse_list(parser_t *p, tok_kind_t close, expr_ast_t ***out, uint32_t *nout)
{
    expr_ast_t *items[EXPR_MAX_ARGS];
    uint32_t n = 0;
    if (p->tok.kind != close) {
        for (;;) {
            if (n == EXPR_MAX_ARGS) {
                fail(p, p->tok.pos, "more than %d items in one list or call", EXPR_MAX_ARGS);
                return -1;
            }
            expr_ast_t *a = parse_expr(p);
            if (!a) return -1;
            items[n++] = a;
            if (p->tok.kind == T_COMMA) {
                if (next(p)) return -1;
                continue;
            }
            break;
        }
    }
    if (p->tok.kind != close) {
        unexpected(p, close == T_RPAREN ? "',' or ')'" : "',' or ']'");
        return -1;
    }
    if (next(p)) return -1;
    *out = arena_alloc(p->tree, sizeof(expr_ast_t *) * (n ? n : 1));
    memcpy(*out, items, sizeof(expr_ast_t *) * n);
    *nout = n;
    return 0;
}

static expr_ast_t *parse_primary(parser_t *p)
{
    tok_t t = p->tok;
    expr_ast_t *n;
    switch (t.kind) {
    case T_INT:
    case T_FLOAT:
    case T_DURATION:
    case T_STRING:
    case T_TRUE:
    case T_FALSE:
    case T_NULL:
        n = node(p,
                 t.kind == T_INT        ? AST_INT
                 : t.kind == T_FLOAT    ? AST_FLOAT
                 : t.kind == T_DURATION ? AST_DURATION
                 : t.kind == T_STRING   ? AST_STRING
                 : t.kind == T_NULL     ? AST_NULL
                                        : AST_BOOL,
                 t.pos);
        n->i = t.i;
        n->f = t.f;
        n->b = t.kind == T_TRUE;
        n->name = t.s;
        if (next(p)) return NULL;
        return n;
    case T_NAME:
        if (next(p)) return NULL;
        if (p->tok.kind == T_LBRACKET) {
            /* `scores[2]`: an indexed name, kept as one name ("scores[2]")
             * for the scope to resolve; only literal indexes exist. */
            if (next(p)) return NULL;
            if (p->tok.kind != T_INT || p->tok.i < 0 || p->tok.i > 9999) {
                unexpected(p, "an index from 0 to 9999 after '['");
                return NULL;
            }
            int64_t idx = p->tok.i;
            if (next(p)) return NULL;
            if (p->tok.kind != T_RBRACKET) {
                unexpected(p, "']' after the index");
                return NULL;
            }
            if (next(p)) return NULL;
            char *nm = arena_alloc(p->tree, t.s.len + 8);
            int len = snprintf(nm, t.s.len + 8, "%.*s[%d]", (int)t.s.len, t.s.ptr, (int)idx);
            n = node(p, AST_NAME, t.pos);
            n->name = (weir_slice_t){nm, (size_t)len};
            return n;
        }
        if (p->tok.kind != T_LPAREN) {
            n = node(p, AST_NAME, t.pos);
            n->name = t.s;
            return n;
        }
        n = node(p, AST_CALL, t.pos);
        n->name = t.s;
        if (next(p) || enter(p)) return NULL;
        if (parse_list(p, T_RPAREN, &n->args, &n->nargs)) return NULL;
        p->depth--;
        if (p->tok.kind == T_OVER) {
            if (next(p)) return NULL;
            if (p->tok.kind != T_DURATION) {
                unexpected(p, "a duration after 'over', like 1h");
                return NULL;
            }
            n->has_over = true;
            n->over_ms = p->tok.i;
            n->over_pos = p->tok.pos;
            if (next(p)) return NULL;
            if (p->tok.kind == T_EVERY) {
                if (next(p)) return NULL;
                if (p->tok.kind != T_DURATION) {
                    unexpected(p, "a duration after 'every', like 1h");
                    return NULL;
                }
                n->every_ms = p->tok.i;
                n->every_pos = p->tok.pos;
                if (next(p)) return NULL;
            }
        } else if (p->tok.kind == T_EVERY) {
            fail(p, p->tok.pos, "'every' needs a window first: write 'over D every H'");
            return NULL;
        }
        return set_height(p, n);
    case T_LPAREN:
        if (next(p) || enter(p)) return NULL;
        n = parse_expr(p);
        if (!n) return NULL;
        p->depth--;
        if (p->tok.kind != T_RPAREN) {
            unexpected(p, "')'");
            return NULL;
        }
        if (next(p)) return NULL;
        return n;
    case T_OVER:
        fail(p, t.pos, "'over' must follow an aggregate call, like sum(x) over 1h");
        return NULL;
    default:
        unexpected(p, "a value, a name or '('");
        return NULL;
    }
}

static expr_ast_t *parse_unary(parser_t *p)
{
    if (p->tok.kind != T_MINUS) return parse_primary(p);
    uint32_t pos = p->tok.pos;
    if (next(p) || enter(p)) return NULL;
    expr_ast_t *a = parse_unary(p);
    if (!a) return NULL;
    p->depth--;
    return node2(p, AST_UNARY, OP_NEG, pos, a, NULL);
}

static expr_ast_t *parse_mul(parser_t *p)
{
    expr_ast_t *a = parse_unary(p);
    while (a) {
        expr_op_t op;
        if (p->tok.kind == T_STAR)
            op = OP_MUL;
        else if (p->tok.kind == T_SLASH)
            op = OP_DIV;
        else if (p->tok.kind == T_PERCENT)
            op = OP_MOD;
        else
            break;
        uint32_t pos = p->tok.pos;
        if (next(p)) return NULL;
        expr_ast_t *b = parse_unary(p);
        if (!b) return NULL;
        a = node2(p, AST_BINARY, op, pos, a, b);
    }
    return a;
}

static expr_ast_t *parse_add(parser_t *p)
{
    expr_ast_t *a = parse_mul(p);
    while (a) {
        expr_op_t op;
        if (p->tok.kind == T_PLUS)
            op = OP_ADD;
        else if (p->tok.kind == T_MINUS)
            op = OP_SUB;
        else
            break;
        uint32_t pos = p->tok.pos;
        if (next(p)) return NULL;
        expr_ast_t *b = parse_mul(p);
        if (!b) return NULL;
        a = node2(p, AST_BINARY, op, pos, a, b);
    }
    return a;
}

static int cmp_op(tok_kind_t k, expr_op_t *op)
{
    switch (k) {
    case T_EQ:
        *op = OP_EQ;
        return 1;
    case T_NE:
        *op = OP_NE;
        return 1;
    case T_LT:
        *op = OP_LT;
        return 1;
    case T_LE:
        *op = OP_LE;
        return 1;
    case T_GT:
        *op = OP_GT;
        return 1;
    case T_GE:
        *op = OP_GE;
        return 1;
    default:
        return 0;
    }
}

static expr_ast_t *parse_cmp(parser_t *p)
{
    expr_ast_t *a = parse_add(p);
    if (!a) return NULL;
    expr_op_t op;
    expr_ast_t *n;
    uint32_t pos = p->tok.pos;
    if (cmp_op(p->tok.kind, &op)) {
        if (next(p)) return NULL;
        expr_ast_t *b = parse_add(p);
        if (!b) return NULL;
        n = node2(p, AST_BINARY, op, pos, a, b);
    } else if (p->tok.kind == T_IN || p->tok.kind == T_NOT) {
        bool negated = p->tok.kind == T_NOT;
        if (next(p)) return NULL;
        if (negated && p->tok.kind != T_IN) {
            unexpected(p, "'in' after 'not'");
            return NULL;
        }
        if (negated && next(p)) return NULL;
        if (p->tok.kind != T_LBRACKET) {
            unexpected(p, "'[' to start the list after 'in'");
            return NULL;
        }
        uint32_t lpos = p->tok.pos;
        if (next(p) || enter(p)) return NULL;
        expr_ast_t **items;
        uint32_t nitems;
        if (parse_list(p, T_RBRACKET, &items, &nitems)) return NULL;
        p->depth--;
        if (nitems == 0) {
            fail(p, lpos, "the list after 'in' is empty");
            return NULL;
        }
        if (nitems + 1 > EXPR_MAX_ARGS) {
            fail(p, lpos, "more than %d items in one list or call", EXPR_MAX_ARGS - 1);
            return NULL;
        }
        n = node(p, AST_IN, pos);
        n->negated = negated;
        n->nargs = nitems + 1;
        n->args = arena_alloc(p->tree, sizeof(expr_ast_t *) * n->nargs);
        n->args[0] = a;
        memcpy(n->args + 1, items, sizeof(expr_ast_t *) * nitems);
        if (!set_height(p, n)) return NULL;
    } else {
        return a;
    }
    if (cmp_op(p->tok.kind, &op) || p->tok.kind == T_IN) {
        fail(p, p->tok.pos, "comparisons do not chain: write 'a < b and b < c'");
        return NULL;
    }
    return n;
}

static expr_ast_t *parse_not(parser_t *p)
{
    if (p->tok.kind != T_NOT) return parse_cmp(p);
    uint32_t pos = p->tok.pos;
    if (next(p) || enter(p)) return NULL;
    expr_ast_t *a = parse_not(p);
    if (!a) return NULL;
    p->depth--;
    return node2(p, AST_UNARY, OP_NOT, pos, a, NULL);
}

static expr_ast_t *parse_and(parser_t *p)
{
    expr_ast_t *a = parse_not(p);
    while (a && p->tok.kind == T_AND) {
        uint32_t pos = p->tok.pos;
        if (next(p)) return NULL;
        expr_ast_t *b = parse_not(p);
        if (!b) return NULL;
        a = node2(p, AST_BINARY, OP_AND, pos, a, b);
    }
    return a;
}

static expr_ast_t *parse_expr(parser_t *p)
{
    expr_ast_t *a = parse_and(p);
    while (a && p->tok.kind == T_OR) {
        uint32_t pos = p->tok.pos;
        if (next(p)) return NULL;
        expr_ast_t *b = parse_and(p);
        if (!b) return NULL;
        a = node2(p, AST_BINARY, OP_OR, pos, a, b);
    }
    return a;
}

int expr_ast_parse(const char *text, size_t len, expr_ast_tree_t **out, uint32_t *err_pos,
                   char *err, size_t errlen)
{
    parser_t p = {.text = text, .len = len, .err = err, .errlen = errlen};
    *out = NULL;
    *err_pos = 0;
    if (len > EXPR_MAX_TEXT) {
        return weir_errf(err, errlen, WEIR_EPARSE, "expression is longer than %d bytes",
                         EXPR_MAX_TEXT);
    }
    p.tree = weir_calloc(1, sizeof *p.tree);
    expr_ast_t *root = NULL;
    if (next(&p) == 0) {
        if (p.tok.kind == T_EOF) {
            fail(&p, 0, "expression is empty");
        } else {
            root = parse_expr(&p);
            if (root && p.tok.kind != T_EOF) {
                char b[64];
                const char *d = tok_desc(&p.tok, b, sizeof b, text);
                if (p.tok.kind == T_RPAREN)
                    fail(&p, p.tok.pos, "unbalanced ')'");
                else
                    fail(&p, p.tok.pos, "unexpected %s after a complete expression", d);
            }
        }
    }
    if (p.failed) {
        *err_pos = p.err_pos;
        expr_ast_free(p.tree);
        return WEIR_EPARSE;
    }
    p.tree->root = root;
    *out = p.tree;
    return 0;
}

const char *expr_op_name(expr_op_t op)
{
    static const char *const names[] = {
        [OP_ADD] = "+", [OP_SUB] = "-",   [OP_MUL] = "*", [OP_DIV] = "/", [OP_MOD] = "%",
        [OP_EQ] = "==", [OP_NE] = "!=",   [OP_LT] = "<",  [OP_LE] = "<=", [OP_GT] = ">",
        [OP_GE] = ">=", [OP_AND] = "and", [OP_OR] = "or", [OP_NEG] = "-", [OP_NOT] = "not",
    };
    return op <= OP_NOT ? names[op] : "?";
}

void expr_ast_print(weir_buf_t *b, const expr_ast_t *n)
{
    char tmp[64];
    switch ((expr_ast_kind_t)n->kind) {
    case AST_INT:
        buf_appendf(b, "%" PRId64, n->i);
        return;
    case AST_FLOAT:
        expr_append_double(b, n->f);
        return;
    case AST_STRING:
        buf_append_json_string(b, n->name.ptr, n->name.len);
        return;
    case AST_BOOL:
        buf_append_str(b, n->b ? "true" : "false");
        return;
    case AST_NULL:
        buf_append_str(b, "null");
        return;
    case AST_DURATION:
        expr_format_duration(n->i, tmp, sizeof tmp);
        buf_append_str(b, tmp);
        return;
    case AST_NAME:
        buf_append(b, n->name.ptr, n->name.len);
        return;
    case AST_UNARY:
        buf_appendf(b, "(%s%s", expr_op_name((expr_op_t)n->op), n->op == OP_NOT ? " " : "");
        expr_ast_print(b, n->args[0]);
        buf_append_str(b, ")");
        return;
    case AST_BINARY:
        buf_append_str(b, "(");
        expr_ast_print(b, n->args[0]);
        buf_appendf(b, " %s ", expr_op_name((expr_op_t)n->op));
        expr_ast_print(b, n->args[1]);
        buf_append_str(b, ")");
        return;
    case AST_CALL:
        buf_append(b, n->name.ptr, n->name.len);
        buf_append_str(b, "(");
        for (uint32_t i = 0; i < n->nargs; i++) {
            if (i) buf_append_str(b, ", ");
            expr_ast_print(b, n->args[i]);
        }
        buf_append_str(b, ")");
        if (n->has_over) {
            expr_format_duration(n->over_ms, tmp, sizeof tmp);
            buf_appendf(b, " over %s", tmp);
            if (n->every_ms) {
                expr_format_duration(n->every_ms, tmp, sizeof tmp);
                buf_appendf(b, " every %s", tmp);
            }
        }
        return;
    case AST_IN:
        buf_append_str(b, "(");
        expr_ast_print(b, n->args[0]);
        buf_append_str(b, n->negated ? " not in [" : " in [");
        for (uint32_t i = 1; i < n->nargs; i++) {
            if (i > 1) buf_append_str(b, ", ");
            expr_ast_print(b, n->args[i]);
        }
        buf_append_str(b, "])");
        return;
    }
}
