/* decode.h — typed event values from JSON, by a source's schema: the edge
 * where events enter (STYLE.md: check input at the edges).
 *
 * The engine parses NDJSON with cJSON and calls spec_decode_event to fill the
 * field slots an expression environment reads (expr_env_t.fields). String
 * values are slices of the cJSON tree's strings: keep the tree (or copy the
 * bytes) while the values are in use. Nothing is allocated here.
 *
 * Conversions (JSON → field type); anything else is an error naming the field:
 *   string  JSON string
 *   int     JSON number with an integral value, |v| ≤ 2^53 (cJSON holds
 *           numbers as doubles, so larger ints would already be rounded);
 *           the edge takes |v| ≤ 2^53 − 1 only (spec_edge_refuses): 2^53 + 1
 *           reads as 2^53, so 2^53 could be either and two int keys would
 *           share state (JavaScript's Number.MAX_SAFE_INTEGER, for the same
 *           reason)
 *   float   JSON number
 *   bool    true / false
 *   time    JSON number (epoch milliseconds, integral, |v| ≤ 2^53, at the
 *           edge 2^53 − 1) or an
 *           RFC 3339 string (`2024-05-01T12:00:00Z`, offsets allowed)
 *   any     JSON null or an absent member → null */
#ifndef WEIR_SPEC_DECODE_H
#define WEIR_SPEC_DECODE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "spec/spec.h"

#define SPEC_MAX_INT 9007199254740991LL /* 2^53 - 1: the largest int field value */
#define SPEC_MAX_KEY 65536 /* bytes of an entity key (the log's record key limit) */

/* THE EDGE'S CLOCK CHECK. A partition's watermark is its newest event time
 * less the lateness, and idle partitions are ticked to the newest time of
 * all: one event dated 2100 (a clock or a unit mistake: microseconds for
 * milliseconds) would make every later event of every partition late, for
 * good, since the log replays it. So the edge refuses an event whose time
 * is more than the source's max_future past this machine's clock (now_ms),
 * as a Kafka broker refuses one past message.timestamp.after.max.ms. Only
 * the edge: replay never reads the clock. It refuses an empty key too (a
 * state GET /v1/features could never name), and an int or a time of 2^53
 * (decoding takes it, for the logs of an older weir; see int above). 1
 * with why = "field 'ts': ...", else 0. */
int spec_edge_refuses(const spec_source_t *src, const expr_value_t *fields, int64_t now_ms,
                      char *why, size_t whylen);

/* Converts one JSON value to field f's type into *out. Returns 0, or
 * WEIR_EINVAL with err = "field 'amount': expected a float, got a string". */
int spec_decode_value(const spec_field_t *f, const cJSON *j, expr_value_t *out, char *err,
                      size_t errlen);

/* Fills fields[0 .. src->nfields) from a JSON object: declared fields by
 * name (absent → null), unknown members ignored. The key and time fields
 * must be present and non-null. Returns 0, or WEIR_EINVAL with a sentence
 * naming the field ("missing key field 'card_id'", "field 'ts': ..."); on
 * error the contents of fields are unspecified. */
int spec_decode_event(const spec_source_t *src, const cJSON *obj, expr_value_t *fields, char *err,
                      size_t errlen);

/* spec_decode_event where events enter (HTTP, `weir ingest`): it also
 * refuses an event object that names a declared field twice, with err =
 * "field 'card_id' appears twice: ...". spec_decode_event takes the first
 * occurrence (as cJSON does) while most JSON parsers take the last, so a
 * job reading the raw log would key the event otherwise. Replay calls
 * spec_decode_event: events logged by older binaries were accepted with
 * the first occurrence, and replay rebuilds exactly that state. Members
 * that are not declared fields may repeat. */
int spec_decode_event_edge(const spec_source_t *src, const cJSON *obj, expr_value_t *fields,
                           char *err, size_t errlen);

/* The byte offset of the first NUL in a JSON text (a \u0000 escape in a
 * string, or a raw 0 byte) or raw control byte (below 0x20) in a string,
 * or -1. The edge refuses such an event: cJSON ends its strings at a NUL,
 * so "k\u0000A" would be read as "k", another key's state; and it takes
 * raw control bytes in a string, which JSON does not (RFC 8259), and which
 * echoed outputs would then hold. */
long spec_text_nul(const char *text, size_t len);

/* The byte offset of the first byte of text that is not well-formed UTF-8
 * (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF),
 * or -1. JSON is UTF-8 (RFC 8259): the edge refuses other bytes, which
 * would go into the log and, echoed, make the outputs unreadable to a
 * strict JSON reader. */
long spec_text_utf8_bad(const char *text, size_t len);

/* Whether a JSON text nests arrays and objects deeper than cJSON takes
 * (SPEC_MAX_NESTING): said so, instead of "malformed", when it fails. */
#define SPEC_MAX_NESTING 1000 /* cJSON's CJSON_NESTING_LIMIT */
int spec_text_too_deep(const char *text, size_t len);

#define SPEC_DECODE_SLOW 1 /* spec_decode_text: take the cJSON path */

/* Fills fields[0 .. src->nfields) straight from an event's JSON text
 * text[0 .. len), without a cJSON tree. Returns 0 when it decoded the
 * event: then fields hold exactly what cJSON_ParseWithLengthOpts of the
 * same text followed by spec_decode_event would give, string values as
 * slices of text (keep it while they are in use). Returns
 * SPEC_DECODE_SLOW for anything else — malformed JSON, text around the
 * object, a field that is missing or of the wrong type, a declared field
 * named twice, and some valid events (\u escapes, escapes in keys or
 * string values, deep nesting; decode.c lists them): the caller then takes
 * the cJSON path, which decides and words the outcome. Never an error of
 * its own. */
int spec_decode_text(const spec_source_t *src, const char *text, size_t len, expr_value_t *fields);

#endif
