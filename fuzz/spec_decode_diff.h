/* spec_decode_diff.h — the differential check of the direct event decoder
 * (spec_decode_text) against the tree path it shortcuts (cJSON, then
 * spec_decode_event — what src/serve/api.c does with an event's text),
 * shared by fuzz/spec_decode_fuzz.c and tests/unit/spec_decode_text_test.c.
 *
 * The contract checked: whenever spec_decode_text decodes a text, the tree
 * path decodes the same text too, to the same values — same types, the
 * same bytes for strings, the same bits for floats. (When it answers
 * SPEC_DECODE_SLOW the tree path is what runs, so there is nothing to
 * compare.) A violation prints the text and aborts. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/decode.h"
#include "spec/spec.h"

/* A schema with every field type, a string key and an epoch-ms time, and a
 * second time field that events give as RFC 3339. */
static spec_t *decode_diff_spec(void)
{
    static const char text[] =
        "pipeline: p\n"
        "sources:\n"
        "  tx:\n"
        "    key: card_id\n"
        "    time: ts\n"
        "    fields: {card_id: string, n: int, amount: float, ok: bool, ts: time, at: time,\n"
        "             name: string}\n";
    spec_t *s = NULL;
    char err[256];
    if (spec_load_string(text, sizeof text - 1, "diff.yaml", &s, err, sizeof err)) {
        fprintf(stderr, "decode_diff_spec: %s\n", err);
        abort();
    }
    return s;
}

/* The tree path, as the server takes it — with the edge's refusal of a
 * declared field named twice, so the direct decoder is also checked never
 * to accept what the edge refuses (replay skips that check, so what the
 * edge takes, replay takes too): 0 if the text decoded (*doc then holds
 * the strings the values point into; the caller deletes it). */
static int decode_tree(const spec_source_t *src, const char *text, size_t len, expr_value_t *fields,
                       cJSON **doc)
{
    const char *end = NULL;
    char err[512];
    *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*doc || end != text + len || !cJSON_IsObject(*doc)) return -1;
    return spec_decode_event_edge(src, *doc, fields, err, sizeof err) ? -1 : 0;
}

static int decode_same_value(const expr_value_t *a, const expr_value_t *b)
{
    if (a->type != b->type) return 0;
    switch (a->type) {
    case EXPR_NULL:
        return 1;
    case EXPR_BOOL:
        return a->as.b == b->as.b;
    case EXPR_FLOAT:
        return memcmp(&a->as.f, &b->as.f, sizeof a->as.f) == 0;
    case EXPR_STRING:
        return a->as.s.len == b->as.s.len && !memcmp(a->as.s.ptr, b->as.s.ptr, a->as.s.len);
    default:
        return a->as.i == b->as.i;
    }
}

/* 1 if spec_decode_text decoded text (and agreed with the tree path), 0 if
 * it left it to the tree path; aborts on a disagreement. */
static int decode_diff(const spec_source_t *src, const char *text, size_t len)
{
    expr_value_t direct[16], tree[16];
    if (src->nfields > 16) abort();
    if (spec_decode_text(src, text, len, direct) != 0) return 0;
    cJSON *doc = NULL;
    int ok = decode_tree(src, text, len, tree, &doc) == 0;
    for (uint32_t k = 0; ok && k < src->nfields; k++)
        ok = decode_same_value(&direct[k], &tree[k]);
    cJSON_Delete(doc);
    if (!ok) {
        fprintf(stderr, "spec_decode_text decoded what the tree path decodes otherwise: %.*s\n",
                (int)len, text);
        abort();
    }
    return 1;
}
