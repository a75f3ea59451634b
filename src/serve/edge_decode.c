/* edge_decode.c — an event's text decoded as weir's edge decodes it
 * (edge_decode.h). */
#include "serve/edge_decode.h"

#include <stdio.h>

#include "base/clock.h"
#include "serve/metrics.h"
#include "spec/decode.h"

/* One event's text → decoded fields (slices into *doc, which the caller
 * frees): edge_decode's decoding, before the edge's own refusals. */
static int decode_text(const spec_source_t *src, weir_slice_t text, const cJSON *parsed,
                       cJSON **doc, expr_value_t *fields, char *why, size_t whylen)
{
    const cJSON *obj = parsed;
    long bad = spec_text_utf8_bad(text.ptr, text.len);
    if (bad >= 0) {
        snprintf(why, whylen, "not UTF-8 at byte %ld (JSON text is UTF-8)", bad);
        return METRICS_REJ_MALFORMED_JSON;
    }
    /* The direct decoder takes what it can prove it decodes exactly as the
     * tree below does (decode.h); everything else, errors included, is
     * decided and worded by cJSON and spec_decode_event. */
    if (!obj && spec_decode_text(src, text.ptr, text.len, fields) == 0) return -1;
    if (!obj) {
        const char *end = NULL;
        *doc = cJSON_ParseWithLengthOpts(text.ptr, text.len, &end, 0);
        if (!*doc) {
            const char *at = cJSON_GetErrorPtr();
            size_t pos =
                at && at >= text.ptr && at <= text.ptr + text.len ? (size_t)(at - text.ptr) : 0;
            if (spec_text_too_deep(text.ptr, text.len))
                snprintf(why, whylen, "arrays or objects nested deeper than %d levels",
                         SPEC_MAX_NESTING);
            else
                snprintf(why, whylen, "malformed JSON near byte %zu", pos);
            return METRICS_REJ_MALFORMED_JSON;
        }
        if (end != text.ptr + text.len) {
            snprintf(why, whylen, "malformed JSON: unexpected text after the value at byte %zu",
                     (size_t)(end - text.ptr));
            return METRICS_REJ_MALFORMED_JSON;
        }
        obj = *doc;
    }
    long nul = spec_text_nul(text.ptr, text.len);
    if (nul >= 0) {
        snprintf(why, whylen,
                 "a string holds \\u0000 (NUL) or a raw control byte at byte %ld, which weir's "
                 "strings do not take",
                 nul);
        return METRICS_REJ_INVALID_EVENT;
    }
    if (!cJSON_IsObject(obj)) {
        snprintf(why, whylen, "an event must be a JSON object");
        return METRICS_REJ_NOT_OBJECT;
    }
    /* Only here, at the edge, is a repeated field refused (decode.h); the
     * direct decoder above declines such events, so they all come here. */
    if (spec_decode_event_edge(src, obj, fields, why, whylen) != 0)
        return METRICS_REJ_INVALID_EVENT;
    return -1;
}

int edge_decode(const spec_source_t *src, weir_slice_t text, const cJSON *parsed, cJSON **doc,
                expr_value_t *fields, char *why, size_t whylen)
{
    int rc = decode_text(src, text, parsed, doc, fields, why, whylen);
    if (rc == -1 && spec_edge_refuses(src, fields, weir_wall_ms(), why, whylen))
        rc = METRICS_REJ_INVALID_EVENT;
    return rc;
}
