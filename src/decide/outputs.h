/* outputs.h — the files a pipeline writes besides its log: aggregates on
 * window close (DATA/outputs/<aggregate>.ndjson), late events
 * (DATA/outputs/late.ndjson) and patterns' matches with emit:
 * (DATA/outputs/<pattern>.ndjson: {"pattern", "partition", "key", "start"
 * (first event's time), "time" (match time), "watermark" (when found),
 * "events" (their log offsets, in match order), then the emit fields}),
 * one JSON object per line. An outputs_t is an
 * engine_sink_t target: outputs_sink() gives the callbacks. Lines are
 * appended; outputs_flush() hands them to the OS. */
#ifndef WEIR_DECIDE_OUTPUTS_H
#define WEIR_DECIDE_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/numfmt.h"
#include "spec/value.h"
#include "stream/engine.h"

typedef struct outputs outputs_t;

/* Opens (creating) DATA/outputs/ for spec's aggregates and late events. */
int outputs_open(const char *datadir, const spec_t *spec, outputs_t **out, char *err, size_t errlen);
/* Flushes and closes; returns 0 or WEIR_EIO if a write failed. */
int outputs_close(outputs_t *o, char *err, size_t errlen);
int outputs_flush(outputs_t *o, char *err, size_t errlen);
/* A failed write is sticky (lines after it may be missing until a
 * recovery writes them again): the errno of the first, or 0. A reload's
 * new outputs take the old ones' (outputs_keep_failure), or its first
 * checkpoint would record file ends past the missing lines for good. */
int outputs_failure(const outputs_t *o);
void outputs_keep_failure(outputs_t *o, int e);
/* Flushes, then opens every file again by its name and closes the old
 * streams: for a caller that moved the files aside and put new ones in
 * their place. If a file cannot be opened, the old streams stay and the
 * error is returned. Not while lines are being written. */
int outputs_reopen(outputs_t *o, char *err, size_t errlen);
engine_sink_t outputs_sink(outputs_t *o);
/* Empties the files outputs_sink writes (window lines, pattern matches and
 * late events),
 * for a writer about to write them all again from the log: each is set
 * aside first (NAME.ndjson.cut, unless one is aside already), so that a
 * writer whose replay stops (an event the spec cannot read) leaves them as
 * they were: outputs_end_aside_sink_files puts them back (put_back) or,
 * once they are written again, deletes them. (weir run puts back what a
 * writer that crashed left aside.) */
int outputs_set_aside_sink_files(outputs_t *o, char *err, size_t errlen);
void outputs_end_aside_sink_files(outputs_t *o, int put_back);
/* Whether some file outputs_sink writes is set aside (NAME.ndjson.cut): a
 * writer stopped while it rebuilt the files, which are then not whole. */
int outputs_any_aside(const outputs_t *o);

/* The text of a window's span (`,"start":S,"end":E`), kept by the caller
 * of outputs_window_line between lines (zero it first; one per thread):
 * the windows that close together share their span — every key's hourly
 * window ends on the hour — so a replay formats two thirteen-digit numbers
 * per end instead of per line (a thirtieth of its instructions). */
typedef struct outputs_span {
    int64_t start, end;
    uint32_t len; /* 0: nothing kept */
    char text[2 * NUMFMT_MAX + 16];
} outputs_span_t;

/* The sink's two halves, for a caller that shares one outputs_t between
 * threads (runtime.c): the line (newline included) of a window closed, a
 * pattern's match (a pattern's aggregate) or a late event, appended to b
 * — this reads only the spec, so it runs outside the caller's lock — then
 * the write of one or more such lines (nlines, all for the same file: agg's,
 * or late.ndjson for agg NULL), under that lock. A replay writes a line per window closed: formatting them under
 * one lock kept two replay threads waiting on each other (an eighth of a
 * replay's CPU in futex calls), and so did taking it for every line. */
void outputs_window_line(const outputs_t *o, weir_buf_t *b, outputs_span_t *span, uint32_t part,
                         const spec_aggregate_t *agg, weir_slice_t key, int64_t start, int64_t end,
                         int partial, const expr_value_t *vals);
void outputs_late_line(const outputs_t *o, weir_buf_t *b, uint32_t part, uint64_t offset,
                       weir_slice_t key, int64_t time, int64_t watermark, weir_slice_t event);
void outputs_write_lines(outputs_t *o, const spec_aggregate_t *agg, const weir_buf_t *lines,
                         uint64_t nlines);
/* Appends OUTPUTS_ENDS_WHOLE, then "<name>.ndjson <bytes>\n" per output
 * file of the directory (call it after outputs_flush, with no writer
 * running): where each file ends, for a checkpoint (runtime.c, OUTPUTS
 * ACROSS CRASHES). */
#define OUTPUTS_ENDS_WHOLE "* every output file"
#define OUTPUTS_ENDS_GENERATION "* generation " /* then outputs_generation's */
void outputs_ends(outputs_t *o, weir_buf_t *b);
/* The files' generation (OUTPUTS GENERATION in outputs.c): "" for a
 * directory that never had one. */
const char *outputs_generation(const outputs_t *o);
/* Whether outputs_ends' text (a checkpoint's) names the generation of o's
 * files ("" on both sides for older ones). */
int outputs_same_generation(const outputs_t *o, const char *text, size_t len);
/* Names a new generation, durably, after a writer rebuilt the files whole:
 * the files are flushed and fdatasynced first. */
int outputs_new_generation(outputs_t *o, char *err, size_t errlen);
/* Where FILE (NAME.ndjson) ends in such a list (text, len): 1 and *end if
 * listed, 1 and 0 if the list is whole and does not name it (it was
 * created after), 0 if an older, partial list does not name it. */
int outputs_listed_end(const char *text, size_t len, const char *file, long long *end);

uint64_t outputs_windows(const outputs_t *o);
uint64_t outputs_late(const outputs_t *o);
uint64_t outputs_matches(const outputs_t *o);

/* Whether a spec with emits was ever opened on this data directory (this
 * one included; DATA/outputs/.emits): then its decision records may name
 * emits to write again. */
int outputs_emits_ever(const outputs_t *o);
/* A decision rule with `emit: NAME` matched: appends {"partition",
 * "offset", "key", "decision", "rule", "score", "event"} to
 * DATA/outputs/NAME.ndjson. Thread-safe (outputs of several partitions may
 * emit at once). NAME need not be an emit of the spec in force (a replayed
 * decision's, which a reload may have removed): its file is then opened by
 * name. -1 (nothing written) if it cannot be. */
int outputs_emit(outputs_t *o, const char *name, uint32_t part, uint64_t offset, weir_slice_t key,
                 const char *decision, int rule, double score, weir_slice_t event);

/* Appends the line (without newline) of a pattern's match, as written to
 * DATA/outputs/<pattern>.ndjson; vals as the engine sink gives them. */
void outputs_match_line(weir_buf_t *b, const spec_t *spec, uint32_t part, const spec_pattern_t *p,
                        weir_slice_t key, int64_t start, int64_t time, const expr_value_t *vals);

/* Appends v as a JSON value: null, true/false, integers, floats in their
 * shortest form that reads back exactly (numfmt_shortest: 389.23, not
 * 389.23000000000002), strings escaped; times and durations as integer
 * milliseconds. Shared by every NDJSON writer. */
void outputs_json_value(weir_buf_t *b, const expr_value_t *v);

/* Appends an entity key as JSON: the digits of an int key as a number,
 * any other key as a string. */
void outputs_json_key(weir_buf_t *b, const spec_source_t *src, weir_slice_t key);

#endif
