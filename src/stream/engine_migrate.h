/* engine_migrate.h — a live spec reload, stream half: one partition's state
 * moved from the plan (engine_t) of the running spec to the plan of the
 * reloaded one, keeping what did not change. src/serve loads the new spec,
 * calls engine_migrate_check once, then engine_part_migrate per partition
 * under the partition's lock, and swaps the rest (decisions, outputs).
 *
 * WHAT MOVES. A piece of state moves when its definition is the same in
 * both plans, wherever it sits in the new key layout:
 *   - a window group (engine.c THE PLAN): same argument text, range, every,
 *     kinds and id-ness — each key's window, bit for bit;
 *   - a last(x) slot: same canonical text ("last(amount)");
 *   - an on-close aggregate: same name, window kind and sizes, and the
 *     same select slot texts — each key's events and open windows, and
 *     the partition's pending timers (renumbered);
 *   - a pattern: same name and pattern_def_text (steps, conditions,
 *     quantifiers, contiguity, gaps, binds, within, order) — each key's
 *     runs and match times, the partition's deadlines and the events held
 *     for time order (pattern.h, "RELOAD");
 *   - the partition's max time, watermark, log-order counter and
 *     statistics (events, late, ticks, windows emitted, evicted, matches).
 * So after the reload every feature, aggregate output and pattern match
 * that the old spec had unchanged is bit-identical to what the new spec
 * would have computed had it run from the start — with the exceptions
 * below.
 *
 * WHAT STARTS EMPTY: everything the new spec adds or changes. Its state
 * begins at the reload: a new window covers the events after it (for a
 * while a count over 1d counts less than a day), a new last(x) is null
 * until the key's next event, a new pattern sees only events that arrive
 * after it. Flink does the same when a job graph changes: operators whose
 * uid is new start with empty state. Removed state is freed. A new or
 * changed on-close aggregate's windows that may lack the events before the
 * reload are marked partial in its output (engine.c PARTIAL WINDOWS).
 *
 * A GROUP WHOSE AGGREGATES CHANGED. The plan puts every aggregate over the
 * same (argument, range, every) in one group, so adding max(x) over 1h
 * beside sum(x) over 1h changes the group sum(x) over 1h is in. An exact
 * window (no `every`) stores its values, so such a group is rebuilt from
 * them (win_rebuild): sum(x) over 1h goes on (recomputed: equal up to the
 * last bits), and max(x) over 1h answers from the values already there, not
 * empty. (It used to start the whole group empty: a model input read 0 for
 * a day after an unrelated feature was added.)
 *
 * CAVEATS (documented, not silent):
 *   - A bucketed window (`every`) keeps per-bucket partials of its own
 *     kinds only: a group of one whose aggregates change starts empty, the
 *     ones it had included; so does a count-only exact window that gains a
 *     value aggregate (it keeps times alone).
 *   - A key idle for longer than the OLD plan's TTL (or the new one's) is
 *     not moved: under the old spec its state was already gone, and with a
 *     longer new TTL it would have lived on — only last(x) can tell.
 *   - A matches(P) over D window longer than any over P in the old spec
 *     counts the match times the old state kept (those within its longest
 *     matches() window) plus the new ones.
 *   - Matches of two patterns at the same trailing-not deadline keep the
 *     old spec's relative order if the new spec lists those patterns in
 *     another order (each pattern's own output order is unaffected).
 *
 * WHAT CANNOT CHANGE in a live reload: the source — its name, its fields'
 * names, types and order, the key field, the time field, the lateness —
 * and the partition count. They define what the log's records mean and
 * how keys are partitioned; changing them needs a restart (and a replay of
 * the log), which engine_migrate_check says. */
#ifndef WEIR_STREAM_ENGINE_MIGRATE_H
#define WEIR_STREAM_ENGINE_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "stream/engine.h"

/* 0 if a partition of `from` can move to `to`; otherwise WEIR_EINVAL and a
 * sentence in why naming what changed and that it needs a restart. */
int engine_migrate_check(const engine_t *from, const engine_t *to, char *why, size_t whylen);

typedef struct engine_migrate_stats {
    uint64_t keys_moved; /* live keys, now in the new plan's layout */
    int in_place; /* 1: the key layout did not change, so the key blocks stayed where they were */
    uint64_t keys_dropped; /* stale keys (see CAVEATS): not moved */
    /* Per kind of state: kept = moved, new = starts empty, dropped = the
     * old spec's, freed. */
    uint32_t groups_kept, groups_new, groups_dropped;
    uint32_t groups_rebuilt; /* of the kept: their aggregates changed, rebuilt from their values */
    uint32_t lasts_kept, lasts_new, lasts_dropped;
    uint32_t aggregates_kept, aggregates_new, aggregates_dropped;
    uint32_t patterns_kept, patterns_new, patterns_dropped;
    uint64_t timers_kept;             /* on-close timers */
    uint64_t held_kept, held_dropped; /* events held for time order */
    uint64_t deadlines_kept, deadlines_dropped;
} engine_migrate_stats_t;

/* Names what of `to` starts empty at a move from `from` (its definition
 * is new or changed), as "pattern 'p', aggregate 'a'" appended to b: for
 * the reload's message, which counted them only (a pattern whose emit
 * reads another step field is a changed pattern, and users did not see
 * why its partial matches went). */
void engine_migrate_describe_new(const spec_t *from, const spec_t *to, weir_buf_t *b);

/* A partition of `to` holding p's state wherever the plans agree (see
 * above); its sink is `sink` (copied, may be NULL). CONSUMES p: p is freed
 * here, whatever moved out of it and whatever did not — results p handed
 * out before are invalid. p's engine and spec must stay alive until this
 * returns; `to` must outlive the new partition. engine_migrate_check(p's
 * engine, to) must have returned 0 (asserted). st (may be NULL) gets the
 * counts. Cannot fail. */
engine_part_t *engine_part_migrate(engine_part_t *p, const engine_t *to, const engine_sink_t *sink,
                                   engine_migrate_stats_t *st);

#endif
