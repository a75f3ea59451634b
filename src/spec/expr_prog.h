/* expr_prog.h — PRIVATE to src/spec: the compiled form of an expression,
 * shared by the compiler (expr.c) and the evaluator (expr_eval.c). Engine code
 * uses expr.h only.
 *
 * A program is a flat array of 8-byte instructions for a stack machine. Every
 * instruction is specialized by the compiler for its operand types (int
 * arithmetic, float arithmetic, string comparison, ...), so the evaluator only
 * checks operands for null and never for type. An instruction's `type` is the
 * tag of the value it pushes (it lets one int opcode serve int, time and
 * duration). The stack depth is computed at compile time and bounded by
 * EXPR_STACK_MAX, so the evaluator's stack is a local array. */
#ifndef WEIR_SPEC_EXPR_PROG_H
#define WEIR_SPEC_EXPR_PROG_H

#include <stdint.h>

#include "spec/expr.h"

#define EXPR_STACK_MAX 64

typedef enum expr_opcode {
    I_CONST,    /* push consts[arg] */
    I_FIELD,    /* push env->fields[arg] */
    I_FEATURE,  /* push env->features[arg] */
    I_AGG,      /* push env->aggs[arg] */
    I_EXTRA,    /* push env->extras[arg] */
    I_TO_FLOAT, /* the value `arg` below the top: int/time/duration → float */
    I_NEG_I,
    I_NEG_F,
    I_ADD_I, /* int64 ops: overflow or a zero divisor give null; result tag = type */
    I_SUB_I,
    I_MUL_I,
    I_DIV_I,
    I_MOD_I,
    I_ADD_F, /* double ops: a non-finite result gives null */
    I_SUB_F,
    I_MUL_F,
    I_DIV_F,
    I_MOD_F,
    I_CMP_I, /* aux = expr_op_t (OP_EQ..OP_GE); null → false */
    I_CMP_F,
    I_CMP_S,
    I_CMP_B,
    I_NOT, /* three-valued */
    I_AND,
    I_OR,
    I_JMP,           /* pc = arg */
    I_JFALSE_KEEP,   /* top is false (not null): pc = arg, keep it */
    I_JTRUE_KEEP,    /* top is true: pc = arg, keep it */
    I_JNOTTRUE_POP,  /* pop; if it was not true (false or null): pc = arg */
    I_JNOTNULL_KEEP, /* top is not null: pc = arg, keep it */
    I_POP,
    I_IN_I, /* arg = number of items above x; aux = negated; pops arg + 1, pushes bool */
    I_IN_F,
    I_IN_S,
    I_IN_B,
    I_IS_NULL,
    I_ABS_I,
    I_ABS_F,
    I_LOG,
    I_EXP,
    I_SQRT,
    I_ROUND,   /* float → int */
    I_ROUND_N, /* float, int digits → float */
    I_MIN_I,   /* arg = number of operands */
    I_MAX_I,
    I_MIN_F,
    I_MAX_F,
    I_MIN_S,
    I_MAX_S,
    I_LOWER,
    I_LEN,
    I_SECONDS,
    I_HOUR,
    I_DOW,
    I_HAVERSINE,
    I_COUNT_ /* number of opcodes */
} expr_opcode_t;

typedef struct expr_ins {
    uint8_t op;   /* expr_opcode_t */
    uint8_t type; /* expr_type_t of the pushed value */
    uint8_t aux;
    uint8_t pad;
    uint32_t arg;
} expr_ins_t;

struct expr {
    expr_ins_t *code;
    uint32_t ncode;
    expr_value_t *consts; /* string constants point into pool */
    uint32_t nconsts;
    char *pool;
    char *text;
    uint32_t max_stack;
    uint32_t lower_calls;
    expr_type_t type;
};

/* The mnemonic of an opcode ("add_i"), for disassembly. */
const char *expr_opcode_name(expr_opcode_t op);

#endif
