/* metrics.c — counters, histograms and their Prometheus text form (see
 * metrics.h). Names follow the Prometheus conventions: a weir_ prefix,
 * base units (seconds, bytes), _total on counters, histograms as
 * _bucket{le=...} (cumulative), _sum and _count. */
#include "serve/metrics.h"

#include <inttypes.h>
#include <sched.h> /* sched_getcpu (_GNU_SOURCE: CMakeLists.txt) */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

/* Upper bounds of the latency buckets, in nanoseconds: from 2.5 µs (a
 * decode or a feature update) to 10 s (a stalled request). */
static const uint64_t bucket_ns[METRICS_NBUCKETS] = {
    2500,      5000,      10000,     25000,      50000,      100000,         250000,
    500000,    1000000,   2500000,   5000000,    10000000,   25000000,       50000000,
    100000000, 250000000, 500000000, 1000000000, 2500000000, 10000000000ull,
};

static const char *const stage_names[METRICS_NSTAGES] = {
    "decode", "log_append", "features", "model", "decision_log", "total", "decision_flush",
};

static const char *const reason_names[METRICS_NREASONS] = {
    "malformed_json", "not_object", "invalid_event", "processing", "memory_full",
};

static const char *const route_names[METRICS_NROUTES] = {
    "score",   "events", "features",  "reload", "checkpoint",
    "metrics", "health", "dashboard", "other",
};

/* The status codes the server answers with; anything else counts as the last. */
static const int codes[METRICS_NCODES] = {200, 400, 401, 404, 405, 408, 413, 415, 422,
                                          431, 500, 503, 409, 406, 411, 501, 0};

/* Per-shard decision counters for nrules rules (+ "none"), a cache line
 * apart; returns the block that backs them. */
static void *alloc_decisions(metrics_t *m, uint32_t nrules)
{
    size_t stride = ((nrules + 1) * sizeof(uint64_t) + 127) / 64 * 64;
    void *mem = weir_calloc(METRICS_SHARDS * stride + 64, 1);
    char *base = (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    for (int i = 0; i < METRICS_SHARDS; i++)
        m->shard[i].decisions = (_Atomic uint64_t *)(void *)(base + (size_t)i * stride);
    return mem;
}

void metrics_init(metrics_t *m, const char *source, const char **outcomes, uint32_t nrules)
{
    memset(m, 0, sizeof *m);
    m->source = source;
    m->outcomes = outcomes;
    m->nrules = nrules;
    m->decisions_mem = alloc_decisions(m, nrules);
}

void metrics_free(metrics_t *m)
{
    weir_free(m->decisions_mem);
    m->decisions_mem = NULL;
    for (size_t i = 0; i < m->nretired; i++) weir_free(m->retired[i]);
    weir_free(m->retired);
    m->retired = NULL;
    m->nretired = 0;
}

void metrics_set_rules(metrics_t *m, const char **outcomes, uint32_t nrules)
{
    uint64_t *old = weir_calloc(m->nrules + 1, sizeof *old);
    for (uint32_t r = 0; r <= m->nrules; r++)
        for (int i = 0; i < METRICS_SHARDS; i++) old[r] += atomic_load(&m->shard[i].decisions[r]);
    const char **old_outcomes = m->outcomes;
    uint32_t old_n = m->nrules;
    m->retired = weir_realloc(m->retired, (m->nretired + 1) * sizeof *m->retired);
    m->retired[m->nretired++] = m->decisions_mem;
    m->decisions_mem = alloc_decisions(m, nrules);
    /* Each outcome's count carries over to the first new rule of that name,
     * so weir_decisions_total{decision} never goes backwards; "none" too. */
    for (uint32_t r = 0; r <= old_n; r++) {
        uint32_t to = nrules;
        if (r < old_n) {
            for (to = 0; to < nrules && strcmp(outcomes[to], old_outcomes[r]) != 0; to++) {
            }
            if (to == nrules) continue; /* the outcome is gone with its rules */
        }
        atomic_fetch_add(&m->shard[0].decisions[to], old[r]);
    }
    m->outcomes = outcomes;
    m->nrules = nrules;
    weir_free(old);
}

metrics_shard_t *metrics_shard(metrics_t *m)
{
    int cpu = sched_getcpu(); /* glibc reads it from rseq: no syscall */
    return &m->shard[cpu > 0 ? (unsigned)cpu % METRICS_SHARDS : 0];
}

void metrics_observe(metrics_t *m, metrics_stage_t stage, uint64_t ns)
{
    metrics_hist_t *h = &metrics_shard(m)->stage[stage];
    size_t i = 0;
    while (i < METRICS_NBUCKETS && ns > bucket_ns[i])
        i++;
    metrics_add(&h->bucket[i], 1); /* i = METRICS_NBUCKETS: above every bound */
    metrics_add(&h->sum_ns, ns);
}

void metrics_decision(metrics_t *m, int rule)
{
    uint32_t i = rule < 0 || (uint32_t)rule >= m->nrules ? m->nrules : (uint32_t)rule;
    metrics_add(&metrics_shard(m)->decisions[i], 1);
}

void metrics_request(metrics_t *m, metrics_route_t route, int status)
{
    int i = 0;
    while (i < METRICS_NCODES - 1 && codes[i] != status)
        i++;
    metrics_add(&metrics_shard(m)->requests[route][i], 1);
}

void metrics_header(weir_buf_t *b, const char *name, const char *type, const char *help)
{
    buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample_u64(weir_buf_t *b, const char *name, const char *labels, uint64_t v)
{
    if (labels)
        buf_appendf(b, "%s{%s} %" PRIu64 "\n", name, labels, v);
    else
        buf_appendf(b, "%s %" PRIu64 "\n", name, v);
}

void metrics_sample_f64(weir_buf_t *b, const char *name, const char *labels, double v)
{
    if (labels)
        buf_appendf(b, "%s{%s} %.17g\n", name, labels, v);
    else
        buf_appendf(b, "%s %.17g\n", name, v);
}

static uint64_t load(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* The sum over the shards of the counter at the same place as c in shard 0. */
static uint64_t sum(metrics_t *m, _Atomic uint64_t *c)
{
    size_t off = (size_t)((char *)c - (char *)&m->shard[0]);
    uint64_t n = 0;
    for (int i = 0; i < METRICS_SHARDS; i++)
        n += load((_Atomic uint64_t *)(void *)((char *)&m->shard[i] + off));
    return n;
}

static uint64_t sum_decisions(metrics_t *m, uint32_t rule)
{
    uint64_t n = 0;
    for (int i = 0; i < METRICS_SHARDS; i++)
        n += load(&m->shard[i].decisions[rule]);
    return n;
}

/* A label value: the names come from the spec (identifiers), but escape the
 * three characters the text format requires anyway. */
static void label_value(weir_buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            buf_appendf(b, "\\%c", *s);
        else if (*s == '\n')
            buf_append_str(b, "\\n");
        else
            buf_append(b, s, 1);
    }
}

void metrics_render(metrics_t *m, weir_buf_t *b)
{
    char lab[256];
    weir_buf_t src = WEIR_BUF_INIT;
    label_value(&src, m->source);
    buf_append(&src, "", 1);

    metrics_header(b, "weir_events_accepted_total", "counter",
                   "Events accepted: decoded, appended to the log and processed.");
    snprintf(lab, sizeof lab, "source=\"%s\"", src.data);
    metrics_sample_u64(b, "weir_events_accepted_total", lab, sum(m, &m->shard[0].accepted));

    metrics_header(b, "weir_events_rejected_total", "counter",
                   "Events rejected at the edge (never logged), by reason.");
    for (int r = 0; r < METRICS_NREASONS; r++) {
        snprintf(lab, sizeof lab, "source=\"%s\",reason=\"%s\"", src.data, reason_names[r]);
        metrics_sample_u64(b, "weir_events_rejected_total", lab, sum(m, &m->shard[0].rejected[r]));
    }

    metrics_header(b, "weir_events_late_total", "counter",
                   "Events behind the watermark: logged, scored as of the watermark, not applied.");
    snprintf(lab, sizeof lab, "source=\"%s\"", src.data);
    metrics_sample_u64(b, "weir_events_late_total", lab, sum(m, &m->shard[0].late));

    metrics_header(b, "weir_events_duplicate_total", "counter",
                   "Events whose id their key applied within dedup: logged, answered with their "
                   "first's decision, not applied.");
    metrics_sample_u64(b, "weir_events_duplicate_total", lab, sum(m, &m->shard[0].duplicates));

    /* Decisions by outcome: rules sharing a `then` add up. */
    metrics_header(b, "weir_decisions_total", "counter", "Decisions made, by outcome.");
    for (uint32_t i = 0; i <= m->nrules; i++) {
        const char *name = i < m->nrules ? m->outcomes[i] : "none";
        int seen = 0;
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = !strcmp(m->outcomes[j], name);
        if (seen) continue;
        uint64_t n = sum_decisions(m, i);
        for (uint32_t j = i + 1; j < m->nrules; j++)
            if (!strcmp(m->outcomes[j], name)) n += sum_decisions(m, j);
        /* A rule whose decision is called none shares the label of no
         * rule matching: both count there (the latter was dropped). */
        if (i < m->nrules && !strcmp(name, "none")) n += sum_decisions(m, m->nrules);
        weir_buf_t lv = WEIR_BUF_INIT;
        label_value(&lv, name);
        buf_append(&lv, "", 1);
        snprintf(lab, sizeof lab, "source=\"%s\",decision=\"%s\"", src.data, lv.data);
        buf_free(&lv);
        metrics_sample_u64(b, "weir_decisions_total", lab, n);
    }

    metrics_header(b, "weir_replayed_events_total", "counter",
                   "Events replayed from the log at start-up to rebuild state.");
    metrics_sample_u64(b, "weir_replayed_events_total", NULL, load(&m->replayed));
    metrics_header(
        b, "weir_redecided_events_total", "counter",
        "Logged events without a decision (a crash between the two appends) decided at start-up.");
    metrics_sample_u64(b, "weir_redecided_events_total", NULL, load(&m->redecided));
    metrics_header(b, "weir_model_reloads_total", "counter", "Model reloads, by result.");
    metrics_sample_u64(b, "weir_model_reloads_total", "result=\"ok\"", load(&m->reloads));
    metrics_sample_u64(b, "weir_model_reloads_total", "result=\"failed\"",
                       load(&m->reload_failures));

    metrics_header(b, "weir_http_requests_total", "counter",
                   "HTTP requests answered, by route and status code.");
    for (int r = 0; r < METRICS_NROUTES; r++)
        for (int c = 0; c < METRICS_NCODES; c++) {
            uint64_t n = sum(m, &m->shard[0].requests[r][c]);
            if (!n) continue;
            if (codes[c])
                snprintf(lab, sizeof lab, "route=\"%s\",code=\"%d\"", route_names[r], codes[c]);
            else
                snprintf(lab, sizeof lab, "route=\"%s\",code=\"other\"", route_names[r]);
            metrics_sample_u64(b, "weir_http_requests_total", lab, n);
        }
    metrics_header(b, "weir_http_inflight_requests", "gauge",
                   "HTTP requests being received or processed.");
    int64_t inflight = atomic_load_explicit(&m->inflight, memory_order_relaxed);
    metrics_sample_u64(b, "weir_http_inflight_requests", NULL,
                       inflight > 0 ? (uint64_t)inflight : 0);

    metrics_header(b, "weir_stage_latency_seconds", "histogram",
                   "Time spent per stage of an event's path (total: per request; "
                   "decision_flush: per batch of decisions written).");
    for (int s = 0; s < METRICS_NSTAGES; s++) {
        metrics_hist_t *h = &m->shard[0].stage[s];
        uint64_t cum = 0;
        for (int i = 0; i < METRICS_NBUCKETS; i++) {
            cum += sum(m, &h->bucket[i]);
            snprintf(lab, sizeof lab, "stage=\"%s\",le=\"%.9g\"", stage_names[s],
                     (double)bucket_ns[i] / 1e9);
            metrics_sample_u64(b, "weir_stage_latency_seconds_bucket", lab, cum);
        }
        uint64_t count = cum + sum(m, &h->bucket[METRICS_NBUCKETS]);
        snprintf(lab, sizeof lab, "stage=\"%s\",le=\"+Inf\"", stage_names[s]);
        metrics_sample_u64(b, "weir_stage_latency_seconds_bucket", lab, count);
        snprintf(lab, sizeof lab, "stage=\"%s\"", stage_names[s]);
        metrics_sample_f64(b, "weir_stage_latency_seconds_sum", lab,
                           (double)sum(m, &h->sum_ns) / 1e9);
        metrics_sample_u64(b, "weir_stage_latency_seconds_count", lab, count);
    }
    buf_free(&src);
}
