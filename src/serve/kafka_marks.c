/* kafka_marks.c — the marks of a Kafka source (kafka_marks.h). */
#include "serve/kafka_marks.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

int64_t kafka_marks_get(const kafka_marks_t *m, int32_t k)
{
    return k >= 0 && (uint32_t)k < m->n ? m->off[k] : KAFKA_MARKS_NONE;
}

void kafka_marks_set(kafka_marks_t *m, int32_t k, int64_t o)
{
    if (k < 0 || k >= KAFKA_MARKS_MAX_PARTITIONS) return;
    if ((uint32_t)k >= m->n) {
        uint32_t n = (uint32_t)k + 1;
        m->off = weir_realloc(m->off, n * sizeof *m->off);
        for (uint32_t i = m->n; i < n; i++)
            m->off[i] = KAFKA_MARKS_NONE;
        m->n = n;
    }
    m->off[k] = o;
}

void kafka_marks_raise(kafka_marks_t *m, int32_t k, int64_t o)
{
    if (o > kafka_marks_get(m, k)) kafka_marks_set(m, k, o);
}

void kafka_marks_clear(kafka_marks_t *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        m->off[i] = KAFKA_MARKS_NONE;
    m->cluster[0] = '\0';
}

int kafka_marks_adopt(kafka_marks_t *m, const char *cluster)
{
    /* "" is a cluster whose id is not known (brokers that give none, or a
     * question that timed out): no proof of another cluster */
    if (!*cluster || strcmp(m->cluster, cluster) == 0) return 0;
    if (!*m->cluster) {
        snprintf(m->cluster, sizeof m->cluster, "%s", cluster);
        return 0;
    }
    int had = 0;
    for (uint32_t i = 0; i < m->n; i++)
        had |= m->off[i] != KAFKA_MARKS_NONE;
    kafka_marks_clear(m);
    snprintf(m->cluster, sizeof m->cluster, "%s", cluster);
    return had;
}

void kafka_marks_free(kafka_marks_t *m)
{
    weir_free(m->off);
    m->off = NULL;
    m->n = 0;
}

/* {"kafka":TOPIC,"cluster":CLUSTER, — both forms' start */
static void head(weir_buf_t *b, const char *topic, const char *cluster)
{
    buf_append_str(b, "{\"kafka\":");
    buf_append_json_string(b, topic, strlen(topic));
    buf_append_str(b, ",\"cluster\":");
    buf_append_json_string(b, cluster, strlen(cluster));
    buf_append_str(b, ",");
}

void kafka_marks_record(weir_buf_t *b, const char *topic, const char *cluster, int32_t k, int64_t o)
{
    head(b, topic, cluster);
    buf_appendf(b, "\"partition\":%" PRId32 ",\"offset\":%" PRId64 "}", k, o);
}

/* The cluster of a record or checkpoint form (a string under
 * KAFKA_CLUSTER_MAX bytes; absent: ""), or NULL if it is not one. */
static const char *cluster_of(const cJSON *doc)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "cluster");
    if (!c) return "";
    return cJSON_IsString(c) && strlen(c->valuestring) < KAFKA_CLUSTER_MAX ? c->valuestring : NULL;
}

/* A whole number in [lo, hi] (JSON numbers are doubles: offsets below 2^53). */
static int whole(const cJSON *n, double lo, double hi, int64_t *out)
{
    if (!cJSON_IsNumber(n)) return 0;
    double v = n->valuedouble;
    if (!(v >= lo && v <= hi) || v != floor(v)) return 0;
    *out = (int64_t)v;
    return 1;
}

#define OFFSET_MAX 9007199254740991.0 /* 2^53 - 1 */

int kafka_marks_apply(kafka_marks_t *m, const char *topic, weir_slice_t value, char *why,
                      size_t whylen)
{
    cJSON *doc = cJSON_ParseWithLength(value.ptr, value.len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "kafka");
    const char *cluster = cluster_of(doc);
    int64_t k, o;
    int ok = cJSON_IsString(t) && cluster &&
             whole(cJSON_GetObjectItemCaseSensitive(doc, "partition"), 0,
                   KAFKA_MARKS_MAX_PARTITIONS - 1, &k) &&
             whole(cJSON_GetObjectItemCaseSensitive(doc, "offset"), -1, OFFSET_MAX, &o);
    if (ok && strcmp(t->valuestring, topic) == 0) {
        kafka_marks_adopt(m, cluster); /* (the log is in order: the newest cluster wins) */
        if (o == KAFKA_MARKS_NONE)
            kafka_marks_set(m, (int32_t)k, o); /* a reset */
        else
            kafka_marks_raise(m, (int32_t)k, o);
    }
    cJSON_Delete(doc);
    if (!ok) snprintf(why, whylen, "not a Kafka source record");
    return ok ? 0 : -1;
}

void kafka_marks_encode(const kafka_marks_t *m, const char *topic, weir_buf_t *b)
{
    head(b, topic, m->cluster);
    buf_append_str(b, "\"offsets\":[");
    for (uint32_t i = 0; i < m->n; i++)
        buf_appendf(b, "%s%" PRId64, i ? "," : "", m->off[i]);
    buf_append_str(b, "]}");
}

int kafka_marks_decode(kafka_marks_t *m, const char *topic, weir_slice_t text, char *why,
                       size_t whylen)
{
    kafka_marks_clear(m);
    cJSON *doc = cJSON_ParseWithLength(text.ptr, text.len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "kafka");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(doc, "offsets");
    const char *cluster = cluster_of(doc);
    int ok = cJSON_IsString(t) && cluster && cJSON_IsArray(offs) &&
             cJSON_GetArraySize(offs) <= KAFKA_MARKS_MAX_PARTITIONS;
    if (ok) kafka_marks_adopt(m, cluster);
    int32_t k = 0;
    for (const cJSON *e = ok ? offs->child : NULL; e && ok; e = e->next, k++) {
        int64_t o;
        ok = whole(e, -1, OFFSET_MAX, &o);
        if (ok && o >= 0 && strcmp(t->valuestring, topic) == 0) kafka_marks_raise(m, k, o);
    }
    cJSON_Delete(doc);
    if (!ok) {
        kafka_marks_clear(m);
        snprintf(why, whylen, "the checkpoint's Kafka marks do not parse");
    }
    return ok ? 0 : -1;
}
