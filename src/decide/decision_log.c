/* decision_log.c — reading the decision log (see decision_log.h). */
#include "decide/decision_log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>

#include "base/error.h"

int decision_log_last_input(log_part_t *dlog, uint32_t part, int64_t *out, char *err,
                            size_t errlen)
{
    log_part_stat_t st;
    log_part_stat(dlog, &st);
    *out = -1;
    if (st.next_offset == 0 || st.next_offset <= st.start_offset) return 0;
    log_reader_t *r;
    int rc = log_reader_open(dlog, st.next_offset - 1, &r, err, errlen);
    if (rc) return rc;
    log_rec_t rec;
    rc = log_reader_next(r, &rec, err, errlen);
    if (rc == 1) {
        cJSON *doc = cJSON_ParseWithLength(rec.value.ptr, rec.value.len);
        const cJSON *off = doc ? cJSON_GetObjectItemCaseSensitive(doc, "offset") : NULL;
        if (cJSON_IsNumber(off) && off->valuedouble >= 0) {
            *out = (int64_t)off->valuedouble;
            rc = 0;
        } else {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                           "decision log partition %u: the record at offset %" PRIu64
                           " has no input offset",
                           part, st.next_offset - 1);
        }
        cJSON_Delete(doc);
    } else if (rc == 0) {
        rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                       "decision log partition %u: offset %" PRIu64 " is unreadable", part,
                       st.next_offset - 1);
    }
    log_reader_close(r);
    return rc;
}
