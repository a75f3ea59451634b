/* labels.h — labels for training data, joined to backfill's rows
 * (`weir backfill --labels FILE`, DESIGN.md's CLI).
 *
 * Labels usually arrive apart from the events, and later: a chargeback
 * names a card and a transaction's time days after it was scored. FILE is
 * CSV with a header naming the source's key field, its time field (epoch
 * ms or RFC 3339) and any number of label columns, in any order. A row
 * gets the label columns of the line whose key and time equal its event's
 * (the key as the log keys it: a string's bytes, an int's digits); a row
 * without one gets empty cells. A (key, time) given twice is an error
 * naming both lines, and so is a line that is not CSV or lacks a cell.
 * Cells are kept as text: backfill writes them as they are (CSV) or as a
 * JSON number when one, else a string (NDJSON). */
#ifndef WEIR_DECIDE_LABELS_H
#define WEIR_DECIDE_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "spec/spec.h"

typedef struct labels labels_t;

/* Reads FILE (at most 1 GiB) for source src. 0, or an error naming the
 * file, line and column. */
int labels_load(const char *path, const spec_source_t *src, labels_t **out, char *err,
                size_t errlen);
/* Parses text[len], named `name` in messages (labels_load's parser; the
 * fuzz target's entry). */
int labels_parse(const char *text, size_t len, const char *name, const spec_source_t *src,
                 labels_t **out, char *err, size_t errlen);
void labels_free(labels_t *l);

/* The label columns: their number and names, in the file's order. */
uint32_t labels_ncols(const labels_t *l);
const char *labels_col_name(const labels_t *l, uint32_t i);

/* The label cells of (key, time), labels_ncols of them, or NULL if there
 * is no such line; the line counts as used. */
const char *const *labels_find(labels_t *l, weir_slice_t key, int64_t time);

/* Lines of a time in [from, to) that no call of labels_find asked for
 * (labels of no event; those outside the range could match no row). */
uint64_t labels_unused(const labels_t *l, int64_t from, int64_t to);

#endif
