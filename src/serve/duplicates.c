/* duplicates.c — a duplicate's decision (runtime_int.h, runtime_as_first).
 *
 * DUPLICATES ANSWERED AS THEIR FIRST. A duplicate (stream/engine.h step 4:
 * an event whose id its key applied within `dedup` — a client's retry) is
 * answered with the decision of the event that brought the id, as a second
 * request with an idempotency key gets the first one's response: its
 * decision, rule, score, model and spec versions and features, read from
 * that event's decision record, in the partition's pending batch or in the
 * decision log (decision_find). Deciding it again would not give
 * the first's answer: its features are read after the first was applied
 * (last(country) is the first's own country, so new_country is false where
 * the first's was true, and a rule on it lets the retry through), and a
 * reload may have changed the rules or the model since. The duplicate's own
 * record repeats the first's, naming it ("duplicate_of"), so a replay that
 * decides it (after a crash) writes the same, and `weir verify` checks the
 * first's. A first whose record is gone (retention deleted that part of the
 * decision log) leaves the duplicate decided as any event, read-only. */
#include "serve/runtime_int.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "decide/decision_log.h"

/* The decision record of input offset `input` into out: the pending batch
 * first (newest last), then the log. 1 found, 0 not. */
static int first_record(rt_part_t *p, uint64_t input, weir_buf_t *out)
{
    for (size_t i = p->ndpend; i-- > 0;) {
        const rt_pending_t *e = &p->dpend[i];
        const char *v = p->dbuf.data + e->at;
        int64_t off = decision_record_input(v, e->vlen);
        if (off >= 0 && (uint64_t)off < input) break; /* older ones are older still */
        if (off >= 0 && (uint64_t)off == input) {
            buf_reset(out);
            buf_append(out, v, e->vlen);
            return 1;
        }
    }
    char why[512];
    int rc = decision_find(&p->dfind, input, out, why, sizeof why);
    if (rc < 0)
        fprintf(stderr,
                "weir run: partition %u: the decision of offset %" PRIu64 " (a duplicate's first) "
                "cannot be read: %s; the duplicate is decided again\n",
                p->id, input, why);
    return rc == 1;
}

int runtime_as_first(runtime_t *rt, rt_part_t *p, uint64_t first, decision_t *d)
{
    weir_buf_t *rec = &p->duprec;
    if (!first_record(p, first, rec)) return 0;
    /* {"offset":..,"decision":..,"rule":..,"emit":..,"score":..,"model":..,"spec":..,
     *  "late":..,["duplicate_of":..,]"features":{...}} (runtime_decision_record):
     * the features are the last member, taken as they are written. */
    static const char tag[] = ",\"features\":";
    const char *f = memmem(rec->data, rec->len, tag, sizeof tag - 1);
    if (!f || rec->len < 2 || rec->data[rec->len - 1] != '}') return 0;
    size_t head = (size_t)(f - rec->data);
    const char *fv = f + sizeof tag - 1;
    size_t flen = (size_t)(rec->data + rec->len - 1 - fv);
    rec->data[head] = '}'; /* the head alone, as an object (rec is ours; fv is after it) */
    cJSON *doc = cJSON_ParseWithLength(rec->data, head + 1);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(doc, "decision");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(doc, "rule");
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(doc, "score");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");
    int ok = (cJSON_IsString(dec) || cJSON_IsNull(dec)) && cJSON_IsNumber(rule) &&
             (cJSON_IsNumber(score) || cJSON_IsNull(score));
    if (ok) {
        buf_reset(&p->feat);
        buf_append(&p->feat, fv, flen);
        memset(d, 0, sizeof *d);
        d->rule = (int)rule->valuedouble;
        d->score = cJSON_IsNumber(score) ? score->valuedouble : NAN;
        d->model_version = cJSON_IsNumber(model) ? (uint64_t)model->valuedouble : 0;
        d->spec_version = cJSON_IsNumber(spec) ? (uint64_t)spec->valuedouble : 0;
        /* The strings outlive doc in p->dupdec, until the next duplicate:
         * the record and the answer are written before that. */
        buf_reset(&p->dupdec);
        if (cJSON_IsString(dec))
            buf_append(&p->dupdec, dec->valuestring, strlen(dec->valuestring) + 1);
        d->decision = cJSON_IsString(dec) ? p->dupdec.data : NULL;
        /* Records hold no reason: the rule's, when the spec that decided is
         * the running one (after a reload the same number is another rule). */
        const spec_t *s = rt->pl.spec;
        if (d->decision && d->spec_version == decide_spec_version(rt->decide) && d->rule >= 0 &&
            (uint32_t)d->rule < s->ndecisions && !strcmp(s->decisions[d->rule].then, d->decision))
            d->reason = s->decisions[d->rule].reason;
        /* no emit: the action was taken for the first */
    }
    cJSON_Delete(doc);
    return ok;
}
