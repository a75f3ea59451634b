/* edge_decode.h — one event's text decoded as it enters weir (POST
 * /v1/events and /v1/score, a Kafka source's messages): the same checks
 * and the same words for every way in. */
#ifndef WEIR_SERVE_EDGE_DECODE_H
#define WEIR_SERVE_EDGE_DECODE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "spec/spec.h"

/* One event's text → decoded fields, refused as the edge refuses (decode.h,
 * spec_edge_refuses: the clock, an empty key, 2^53) whichever way it was
 * decoded. parsed: its tree if the caller parsed it already, else NULL;
 * *doc: a tree parsed here, which the fields' strings point into (the
 * caller frees it). Returns the rejection reason (METRICS_REJ_*, with why
 * filled) or -1. */
int edge_decode(const spec_source_t *src, weir_slice_t text, const cJSON *parsed, cJSON **doc,
                expr_value_t *fields, char *why, size_t whylen);

#endif
