/* decision_log.h — reading the decision log (DATA/decisions/<source>/<p>),
 * which the server writes (src/serve/runtime.c): one record per decided
 * event, {"offset": its input offset, ...}, appended in input-offset order
 * under the partition's lock, so the last record names the last decided
 * event. */
#ifndef WEIR_DECIDE_DECISION_LOG_H
#define WEIR_DECIDE_DECISION_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "log/log.h"

/* A decision record's input offset, read from its start, where the server
 * writes it ({"offset":N,...}), without parsing the rest; -1 if it is not
 * there. */
int64_t decision_record_input(const char *p, size_t n);

/* The input offset of the last decision of partition `part` (its log
 * partition dlog), or -1 if it has none. 0, or an error naming the record
 * (WEIR_ECORRUPT) or the read. */
int decision_log_last_input(log_part_t *dlog, uint32_t part, int64_t *out, char *err,
                            size_t errlen);

/* FINDING A DECISION BY ITS INPUT OFFSET, as a duplicate's answer does
 * (serve/duplicates.c) and `weir verify` for it. A finder keeps a reader
 * open after the record it found, so that the firsts of a resent batch,
 * which come in order, are read in one pass (a fresh search for each read
 * a whole decision batch some twenty times: 3-7 ms a duplicate at 67,000
 * records, 31 s for a resent batch of 10,000). Otherwise it guesses from
 * the last record: records after an event's are one per later decided
 * event (ticks have none), so its record is at or after last - (last
 * input - input), and a short forward scan from there finds it; failing
 * that (an at_least_once log, whose restarts append decisions again; long
 * idle spells of ticks) it searches by halves. */
typedef struct decision_finder {
    log_part_t *dlog;
    log_reader_t *r; /* open after a find, just past the record found; or NULL */
    int64_t last;    /* the input offset of that record */
} decision_finder_t;

#define DECISION_FINDER_INIT(dlog) ((decision_finder_t){(dlog), NULL, -1})

/* The decision record of input offset `input` into rec (its value), through
 * f: 1 found; 0 not there (not decided yet); or an error naming the read. */
int decision_find(decision_finder_t *f, uint64_t input, weir_buf_t *rec, char *err, size_t errlen);
void decision_finder_close(decision_finder_t *f);

/* The largest "model" version in partition dlog's records (0 if none):
 * read whole, a record at a time (the first `,"model":` of a record is its
 * own: what comes before it are numbers and names). For a start that
 * makes a model ledger beside decisions numbered without one
 * (model_ledger.h, THE FIRST LEDGER). */
int decision_log_max_model(log_part_t *dlog, uint64_t *max, char *err, size_t errlen);

#endif
