/* engine_int.h — the engine's internal types, shared by engine.c (the
 * per-event path) and engine_state.c (checkpoint encoding). Nothing outside
 * src/stream includes this: the rest of weir sees engine.h only. */
#ifndef WEIR_STREAM_ENGINE_INT_H
#define WEIR_STREAM_ENGINE_INT_H

#include <cjson/cJSON.h>

#include "stream/dedup.h"
#include "stream/engine.h"
#include "stream/keymap.h"
#include "stream/onclose.h"
#include "stream/pattern.h"
#include "stream/win.h"

#define NO_GROUP UINT32_MAX

typedef struct group {
    win_conf_t conf;
    const expr_t *arg; /* NULL: count() */
    win_ask_t *asks;
    uint32_t *slots;     /* aggregate slot of each ask */
    expr_type_t *types;  /* the slot's type, for converting results */
    uint32_t nasks;
} group_t;

/* The previous event's value of a last(x) slot, owned by the key. A string
 * of up to PREV_INLINE bytes (a country, a currency) lives in `as`; a longer
 * one in str (cap bytes, kept for reuse). */
#define PREV_INLINE 8
typedef struct prev {
    uint8_t type; /* expr_type_t; EXPR_NULL also before the first event */
    uint32_t len, cap;
    union {
        bool b;
        int64_t i;
        double f;
        char s[PREV_INLINE];
    } as;
    char *str;
} prev_t;

struct engine {
    const spec_t *spec;
    const spec_source_t *src;
    group_t *groups;
    uint32_t ngroups;
    uint32_t *slot_group; /* per aggregate slot: its group, or NO_GROUP for PREV */
    uint32_t *prev_slots; /* aggregate slot of each prev */
    uint32_t nprev;
    uint32_t *match_slots; /* aggregate slots of matches(P) over D */
    uint32_t nmatch;
    size_t *off_area; /* per group: where its window's area is in the key's value */
    size_t off_prev, off_oc, off_inited, vsize;
    size_t off_pat; /* the key's pattern_key_t * (spec->npatterns > 0) */
    size_t off_dedup; /* the key's dedup_t * (dedup > 0) */
    int64_t dedup;    /* the source's dedup, ms; 0: no id */
    int64_t ttl;
};

struct engine_part {
    const engine_t *e;
    uint32_t part;
    engine_sink_t sink;
    keymap_t km;
    oc_timers_t *timers;
    /* per on-close aggregate: the partition's max time (events, ticks) when it began
     * (PARTIAL WINDOWS, engine.c), INT64_MIN: none missed */
    int64_t *agg_since;
    int64_t max_time, wm;
    uint64_t seq;
    uint64_t features_from; /* engine_part_features_from */
    expr_value_t *fields;   /* record path: decoded event */
    expr_value_t *aggvals;  /* per aggregate slot */
    expr_value_t *features; /* per feature */
    expr_value_t *selvals;  /* on-close select values */
    agg_result_t *results;  /* per ask of the largest group */
    win_val_t *in;          /* per group: this event's input to its window */
    uint8_t *has_in;        /* per group: 0 if the input is null (not added) */
    weir_buf_t scratch;     /* lower() results */
    weir_buf_t prevcopy;    /* this event's copies of last(x) strings */
    cJSON *doc;             /* record path: the event being processed */
    pattern_part_t *pat;    /* held events and deadlines of patterns; NULL without patterns */
    int defer_closes;       /* engine_part_defer_closes */
    weir_buf_t rscratch;    /* key_retire's closes: the event's scratch is in use then */
    weir_buf_t closekeys[2]; /* the keys of the two batches of closes in flight (engine_part_close_due) */
    uint8_t *pflags;        /* this event's pattern.NAME flags */
    char keytmp[32];
    engine_stats_t st;
};

/* ---- a key's value (see engine.c THE PLAN) ---- */

static inline win_t *key_wins(void *v)
{
    return v;
}
static inline prev_t *key_prevs(const engine_t *e, void *v)
{
    return (prev_t *)((char *)v + e->off_prev);
}
static inline oc_key_t **key_oc(const engine_t *e, void *v)
{
    return (oc_key_t **)((char *)v + e->off_oc);
}
static inline pattern_key_t **key_pat(const engine_t *e, void *v)
{
    return (pattern_key_t **)((char *)v + e->off_pat);
}
static inline dedup_t **key_dedup(const engine_t *e, void *v)
{
    return (dedup_t **)((char *)v + e->off_dedup);
}

static inline uint8_t *key_inited(const engine_t *e, void *v)
{
    return (uint8_t *)v + e->off_inited;
}

/* Makes a zeroed key value live: empty windows, null last(x) values, no
 * on-close or pattern state (engine.c; engine_migrate.c fills new keys). */
void engine_key_init(const engine_t *e, void *v);
/* keymap_free_cb (arg: the engine_part_t): frees what a live key value
 * holds, leaves it zeroed-equivalent (not inited) and counts it evicted. */
void engine_key_release(void *v, void *arg);

#endif
