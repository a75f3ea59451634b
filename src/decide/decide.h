/* decide.h — the decision layer: the spec's model scores an event's model
 * inputs (fields and features, by name), then the decision rules — first
 * match wins — turn the score into a decision with a reason. A decide_t is
 * immutable after decide_new and may be used by many threads at once (the
 * live model sits in a model_slot_t, which swaps atomically). */
#ifndef WEIR_DECIDE_DECIDE_H
#define WEIR_DECIDE_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "spec/spec.h"

#define DECIDE_TOP_CONTRIBS 3

typedef struct decide decide_t;

/* Where a decide_t's model versions come from: the data directory's model
 * ledger (model_ledger.h), which gives a model file the same version at
 * every start; add: a model new to it gets the next version (the process
 * that logs decisions), else version 0 (a reader: weir verify). Without a
 * ledger (NULL), versions count from 1 in the process (backfill, tests). */
typedef struct decide_ledger {
    const char *datadir;
    int add;
    uint64_t floor; /* model_ledger_version's (THE FIRST LEDGER) */
    /* The text the spec was loaded from, and its file, for its version in
     * the spec ledger (spec_ledger.h; added as the model is, with add);
     * no text: the decisions name spec version 0 */
    const char *spec_text;
    size_t spec_len;
    const char *spec_path;
} decide_ledger_t;

/* Loads the spec's model (if it has one) and maps its inputs to the model's
 * features by name (by position when the model file carries no names). A
 * mismatch, a missing file or a non-numeric input is an error naming it. */
int decide_new(const spec_t *spec, const decide_ledger_t *ledger, decide_t **out, char *err,
               size_t errlen);
void decide_free(decide_t *d);

/* Replaces the model by the file at path (same input mapping rules); the
 * old model is freed once in-flight decisions are done. */
int decide_reload(decide_t *d, const char *path, char *err, size_t errlen);
/* The live model's version (0 without a model), and its digest ("" without). */
uint64_t decide_model_version(const decide_t *d);
/* The spec's version in the spec ledger: 0 without a ledger or a text, or,
 * for a reader, when the ledger does not hold the text. */
uint64_t decide_spec_version(const decide_t *d);
const char *decide_model_digest(const decide_t *d);

typedef struct decide_contrib {
    uint32_t input; /* index in spec->model.inputs */
    double value;   /* contribution to the margin */
} decide_contrib_t;

typedef struct decision {
    const char *decision; /* the rule's `then` (owned by the spec) */
    const char *reason;   /* NULL if the rule has none */
    int rule;             /* index in spec->decisions, -1 if no rule matched */
    double score;         /* see spec.h (SPEC_EXTRA_SCORE); NaN without a model */
    int64_t klass;        /* predicted class (SPEC_EXTRA_CLASS) */
    uint32_t nscores;     /* model outputs in scores[] (0 without a model) */
    double scores[SPEC_MAX_SCORES];
    const char *emit;     /* the matched rule's `emit` output, or NULL */
    uint64_t model_version;
    uint64_t spec_version; /* decide_spec_version: the rules that decided */
    uint32_t ncontribs;
    decide_contrib_t contribs[DECIDE_TOP_CONTRIBS]; /* largest |value| first */
} decision_t;

/* Scores and decides one event. want_contribs: also compute the top
 * contributions (path attribution, a few predictions' cost). scratch backs
 * lower() in rule conditions; WEIR_ETOOBIG when a rule's lower() needs more
 * of it (out is then incomplete: call again with more; decide_event_in
 * does), so that a decision never depends on the scratch's size. */
int decide_event(decide_t *d, const expr_value_t *fields, const expr_value_t *features,
                 int want_contribs, decision_t *out, char *scratch, size_t scratch_cap);

/* The lower() scratch of decide_event, one per thread that decides: it
 * must hold every string the rules can see (this event's and earlier
 * ones', in the state), so it grows to the spec's lower_calls times (the
 * longest raw event seen + 64). Zero-initialise; free with
 * decide_scratch_free. */
typedef struct decide_scratch {
    char *p;
    size_t cap, max_raw;
} decide_scratch_t;

/* decide_event for an event whose raw text is raw_len bytes, in s (grown
 * first when needed). */
int decide_event_in(decide_t *d, decide_scratch_t *s, size_t raw_len, const expr_value_t *fields,
                    const expr_value_t *features, int want_contribs, decision_t *out);
void decide_scratch_free(decide_scratch_t *s);

#endif
