/* api.c — the router and handlers of the HTTP API (see api.h).
 *
 * An event's logged value is its JSON text exactly as the client sent it,
 * trimmed (as `weir ingest` logs an NDJSON line): for an array, the bytes
 * of the element. Replay parses that text again with the same decoder, so
 * what the server computed and what backfill recomputes are the same
 * function of the same bytes. */
#include "serve/api.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/numfmt.h"
#include "decide/outputs.h"
#include "serve/edge_decode.h"
#include "spec/decode.h"

void api_init(api_t *a, runtime_t *rt, size_t max_batch)
{
    a->rt = rt;
    a->max_batch = max_batch;
}

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

int api_route(const char *path)
{
    if (has_prefix(path, "/v1/score/")) return METRICS_ROUTE_SCORE;
    if (has_prefix(path, "/v1/events/")) return METRICS_ROUTE_EVENTS;
    if (has_prefix(path, "/v1/features/")) return METRICS_ROUTE_FEATURES;
    if (!strcmp(path, "/v1/admin/reload")) return METRICS_ROUTE_RELOAD;
    if (!strcmp(path, "/v1/admin/checkpoint")) return METRICS_ROUTE_CHECKPOINT;
    if (!strcmp(path, "/metrics")) return METRICS_ROUTE_METRICS;
    if (!strcmp(path, "/healthz") || !strcmp(path, "/readyz")) return METRICS_ROUTE_HEALTH;
    if (!strcmp(path, "/")) return METRICS_ROUTE_DASHBOARD;
    return METRICS_ROUTE_OTHER;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static weir_slice_t trim(const char *s, size_t n)
{
    while (n && is_ws(*s))
        s++, n--;
    while (n && is_ws(s[n - 1]))
        n--;
    return (weir_slice_t){s, n};
}

/* End of the JSON value starting at s[i] (the text is known to be valid
 * JSON): strings with their escapes, containers by depth. */
static size_t skip_value(const char *s, size_t n, size_t i)
{
    int depth = 0;
    do {
        char c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
            i++;
        } else if (c == '{' || c == '[') {
            depth++, i++;
        } else if (c == '}' || c == ']') {
            depth--, i++;
        } else if (depth == 0) {
            while (i < n && !is_ws(s[i]) && s[i] != ',' && s[i] != ']' && s[i] != '}')
                i++;
        } else {
            i++;
        }
    } while (depth > 0 && i < n);
    return i;
}

/* The source named by the path's next segment, or NULL (404 filled). */
static const spec_source_t *source_of(api_t *a, const char *name, size_t len, http_resp_t *resp)
{
    const spec_source_t *src = runtime_source(a->rt);
    if (len == strlen(src->name) && !memcmp(name, src->name, len)) return src;
    http_error(resp, 404, "unknown_source",
               "no source '%.*s' in this pipeline (its source is '%s')",
               (int)(len > 200 ? 200 : len), name, src->name);
    return NULL;
}

static int check_ready(api_t *a, http_resp_t *resp)
{
    if (runtime_ready(a->rt)) return 1;
    http_error(resp, 503, "not_ready", "the log is being replayed; retry shortly");
    resp->retry_after = 1;
    return 0;
}

static int want_post(const http_req_t *req, http_resp_t *resp)
{
    if (req->method == HTTP_POST) return 1;
    http_error(resp, 405, "method_not_allowed", "%s is not allowed here; use POST",
               req->method_name);
    resp->allow = "POST";
    return 0;
}

static int want_get(const http_req_t *req, http_resp_t *resp)
{
    if (req->method == HTTP_GET || req->method == HTTP_HEAD) return 1;
    http_error(resp, 405, "method_not_allowed", "%s is not allowed here; use GET",
               req->method_name);
    resp->allow = "GET, HEAD";
    return 0;
}

/* A client refused for memory (runtime.h, MEMORY BUDGET) is told to wait:
 * keys expire over minutes or hours, not milliseconds, and a 503 without
 * Retry-After is retried at once by most clients. */
#define MEMORY_FULL_RETRY_S 10

/* ---- POST /v1/score/{source} ---- */

typedef struct score_ctx {
    api_t *a;
    const http_req_t *req;
    http_resp_t *resp;
    int contribs;
    int failed;
} score_ctx_t;

static void score_done(void *ctx, const runtime_outcome_t *o)
{
    score_ctx_t *sc = ctx;
    const spec_t *s = runtime_spec(sc->a->rt);
    weir_buf_t *b = &sc->resp->body;
    if (o->refused) {
        sc->failed = 1;
        http_error(sc->resp, 503, "memory_full", "%s", o->why);
        sc->resp->retry_after = MEMORY_FULL_RETRY_S;
        return;
    }
    if (!o->res) {
        sc->failed = 1;
        http_error(sc->resp, 500, "processing_failed",
                   "the event was logged at offset %" PRIu64 " but not applied: %s", o->offset,
                   o->why);
        return;
    }
    const decision_t *d = o->decision;
    buf_append_str(b, "{\"decision\":");
    if (d->decision)
        buf_append_json_string(b, d->decision, strlen(d->decision));
    else
        buf_append_str(b, "null");
    buf_append_str(b, ",\"score\":");
    numfmt_append_json(b, d->score);
    buf_append_str(b, ",\"reason\":");
    if (d->reason)
        buf_append_json_string(b, d->reason, strlen(d->reason));
    else
        buf_append_str(b, "null");
    buf_append_str(b, ",\"rule\":");
    numfmt_append_i64(b, d->rule);
    buf_append_str(b, ",\"features\":");
    buf_append(b, o->features_json.ptr, o->features_json.len);
    buf_append_str(b, ",\"contributions\":[");
    for (uint32_t i = 0; i < d->ncontribs; i++) {
        const char *name = s->model.inputs[d->contribs[i].input].name;
        buf_append_str(b, i ? ",{\"input\":" : "{\"input\":");
        buf_append_json_string(b, name, strlen(name));
        buf_append_str(b, ",\"value\":");
        numfmt_append_json(b, d->contribs[i].value);
        buf_append(b, "}", 1);
    }
    buf_append_str(b, "],\"key\":");
    /* an int key as a JSON int, as backfill rows and the outputs write it */
    outputs_json_key(b, &s->sources[0], o->ev->key);
    buf_append_str(b, ",\"offset\":");
    numfmt_append_u64(b, o->offset);
    buf_append_str(b, ",\"partition\":");
    numfmt_append_u64(b, o->ev->part);
    buf_append_str(b, ",\"model\":");
    numfmt_append_u64(b, d->model_version);
    buf_append_str(b, ",\"spec\":");
    numfmt_append_u64(b, d->spec_version);
    buf_append_str(b, o->res->late ? ",\"late\":true" : ",\"late\":false");
    if (s->sources[0].has_id) {
        buf_append_str(b, o->res->duplicate ? ",\"duplicate\":true" : ",\"duplicate\":false");
        if (o->res->duplicate) {
            buf_append_str(b, ",\"duplicate_of\":");
            numfmt_append_u64(b, o->res->duplicate_of);
        }
    }
    buf_append_str(b, ",\"latency_us\":");
    numfmt_append_u64(b, (weir_mono_ns() - sc->req->start_ns) / 1000);
    buf_append_str(b, "}\n");
}

static void handle_score(api_t *a, const http_req_t *req, http_resp_t *resp, const char *name)
{
    if (!want_post(req, resp)) return;
    const spec_source_t *src = source_of(a, name, strlen(name), resp);
    if (!src || !check_ready(a, resp)) return;
    metrics_t *m = runtime_metrics(a->rt);
    uint64_t t0 = weir_mono_ns();
    weir_slice_t text = trim(req->body.ptr, req->body.len);
    expr_value_t fields[src->nfields + 1];
    cJSON *doc = NULL;
    char why[512];
    if (text.len == 0) {
        http_error(resp, 400, "empty_body", "the body must be one JSON event");
        return;
    }
    int rej = edge_decode(src, text, NULL, &doc, fields, why, sizeof why);
    if (rej >= 0) {
        metrics_add(&metrics_shard(m)->rejected[rej], 1);
        http_error(resp, 400,
                   rej == METRICS_REJ_MALFORMED_JSON ? "malformed_json"
                   : rej == METRICS_REJ_NOT_OBJECT   ? "not_an_object"
                                                     : "invalid_event",
                   "%s", why);
        cJSON_Delete(doc);
        return;
    }
    char keytmp[32];
    runtime_event_t ev = {.raw = text, .fields = fields};
    ev.key = engine_event_key(src, fields, keytmp);
    ev.part = runtime_partition_of(a->rt, ev.key);
    metrics_observe(m, METRICS_STAGE_DECODE, weir_mono_ns() - t0);
    const char *c = http_query(req, "contributions");
    score_ctx_t sc = {a, req, resp, !(c && (!strcmp(c, "false") || !strcmp(c, "0"))), 0};
    /* A scored event's answer is some 600 bytes: one allocation instead of
     * growing from 256 twice (the buffer goes to libmicrohttpd as it is). */
    buf_reserve(&resp->body, 1024);
    char err[512];
    if (runtime_process(a->rt, &ev, 1, sc.contribs, score_done, &sc, err, sizeof err) != 0)
        http_error(resp, 500, "log_failed", "%s", err);
    cJSON_Delete(doc);
    metrics_observe(m, METRICS_STAGE_TOTAL, weir_mono_ns() - req->start_ns);
}

/* ---- POST /v1/events/{source} ---- */

typedef struct batch {
    weir_slice_t *texts;  /* each event's text */
    const cJSON **parsed; /* already parsed (array elements), else NULL */
    uint32_t *numbers;    /* line number (NDJSON) or index (array) */
    size_t n, cap;
} batch_t;

static void batch_add(batch_t *b, weir_slice_t text, const cJSON *parsed, uint32_t number)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->texts = weir_realloc(b->texts, b->cap * sizeof *b->texts);
        b->parsed = weir_realloc(b->parsed, b->cap * sizeof *b->parsed);
        b->numbers = weir_realloc(b->numbers, b->cap * sizeof *b->numbers);
    }
    b->texts[b->n] = text;
    b->parsed[b->n] = parsed;
    b->numbers[b->n] = number;
    b->n++;
}

typedef struct events_ctx {
    uint64_t late, duplicates, failed;
    uint64_t refused; /* over the memory budget, not logged */
    uint64_t logged; /* events logged (and processed) so far, whatever their outcome */
    uint8_t *state;  /* per event of the request: EV_* */
    weir_buf_t *rejects;
    size_t nrejects;
    const char *numbering;
    const uint32_t *numbers;
} events_ctx_t;

/* Every rejected event is listed (at most --max-batch of them): the first
 * 100 were, and a client could not tell which of the others to fix and
 * send again without sending the accepted ones twice. The first
 * DETAILED_REJECTS carry their error; the others their number alone, so
 * that an answer stays near its request's size (a reason is up to half a
 * kilobyte: 10,000 one-byte lines answered half a megabyte). */
#define DETAILED_REJECTS 100

static void add_reject(events_ctx_t *ec, uint32_t number, const char *why)
{
    if (ec->rejects->len) buf_append(ec->rejects, ",", 1);
    buf_appendf(ec->rejects, "{\"%s\":%u", ec->numbering, number);
    if (ec->nrejects++ < DETAILED_REJECTS) {
        buf_append_str(ec->rejects, ",\"error\":");
        buf_append_json_string(ec->rejects, why, strlen(why));
    }
    buf_append(ec->rejects, "}", 1);
}

enum { EV_REJECTED, EV_DECODED, EV_LOGGED };

static void event_done(void *ctx, const runtime_outcome_t *o)
{
    events_ctx_t *ec = ctx;
    if (o->refused) { /* not logged: a retry may be taken once memory is freed */
        ec->refused++;
        ec->state[o->ev->index] = EV_REJECTED;
        add_reject(ec, ec->numbers[o->ev->index], o->why);
        return;
    }
    ec->logged++;
    ec->state[o->ev->index] = EV_LOGGED;
    if (!o->res) {
        ec->failed++;
        char why[600];
        snprintf(why, sizeof why, "logged at offset %" PRIu64 " but not applied: %s", o->offset,
                 o->why);
        add_reject(ec, ec->numbers[o->ev->index], why);
    } else if (o->res->late) {
        ec->late++;
    } else if (o->res->duplicate) {
        ec->duplicates++;
    }
}

/* Whether a Content-Type's media type (before any ";" parameter) is one of
 * NDJSON's names: a parameter such as "; note=ndjson" turned a JSON body
 * into lines when the whole header was searched. */
static int media_type_names_lines(const char *ct)
{
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    static const char *const names[] = {"application/x-ndjson",  "application/ndjson",
                                        "application/jsonlines", "application/x-jsonlines",
                                        "application/json-seq",  "text/x-ndjson"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && !strncasecmp(ct, names[i], n)) return 1;
    return 0;
}

static void handle_events(api_t *a, const http_req_t *req, http_resp_t *resp, const char *name)
{
    if (!want_post(req, resp)) return;
    const spec_source_t *src = source_of(a, name, strlen(name), resp);
    if (!src || !check_ready(a, resp)) return;
    metrics_t *m = runtime_metrics(a->rt);
    uint64_t t0 = weir_mono_ns();
    weir_slice_t body = trim(req->body.ptr, req->body.len);
    if (body.len == 0) {
        http_error(resp, 400, "empty_body",
                   "the body must be a JSON event, a JSON array of events or NDJSON");
        return;
    }
    /* Which of the three forms: a Content-Type naming NDJSON decides;
     * otherwise one JSON value is an object or an array, and text of
     * several lines that is not one JSON value is NDJSON. */
    const char *ct = req->content_type;
    int ndjson = ct && media_type_names_lines(ct);
    cJSON *whole = NULL;
    batch_t b = {0};
    const char *numbering = "index";
    if (!ndjson) {
        const char *end = NULL;
        whole = cJSON_ParseWithLengthOpts(body.ptr, body.len, &end, 0);
        if (whole && end != body.ptr + body.len) {
            cJSON_Delete(whole);
            whole = NULL;
        }
        /* A body opening an array is one JSON value or nothing: read line
         * by line, a pretty-printed array with one comma missing had the
         * elements alone on their lines logged, with a 200 (NDJSON lines
         * are objects, never an array's bracket). */
        int array = body.ptr[0] == '[';
        if (!whole && (array || !memchr(body.ptr, '\n', body.len))) {
            metrics_add(&metrics_shard(m)->rejected[METRICS_REJ_MALFORMED_JSON], 1);
            const char *at = cJSON_GetErrorPtr();
            size_t pos =
                at && at >= body.ptr && at <= body.ptr + body.len ? (size_t)(at - body.ptr) : 0;
            http_error(resp, 400, "malformed_json",
                       array ? "the body is a JSON array that does not parse (near byte %zu); "
                               "nothing was logged"
                             : "the body is not JSON (near byte %zu) and not NDJSON",
                       pos);
            return;
        }
        ndjson = whole == NULL;
    }
    if (ndjson) {
        numbering = "line";
        const char *s = req->body.ptr, *e = req->body.ptr + req->body.len;
        uint32_t line = 0;
        while (s < e) {
            const char *nl = memchr(s, '\n', (size_t)(e - s));
            const char *le = nl ? nl : e;
            line++;
            weir_slice_t t = trim(s, (size_t)(le - s));
            if (t.len) batch_add(&b, t, NULL, line);
            s = nl ? nl + 1 : e;
        }
    } else if (cJSON_IsArray(whole)) {
        /* Element texts from the body, parsed elements from the tree. */
        size_t i = 1, idx = 0;
        const cJSON *el = whole->child;
        while (el) {
            while (i < body.len && (is_ws(body.ptr[i]) || body.ptr[i] == ','))
                i++;
            size_t j = skip_value(body.ptr, body.len, i);
            batch_add(&b, (weir_slice_t){body.ptr + i, j - i}, el, (uint32_t)idx++);
            el = el->next;
            i = j;
        }
    } else {
        batch_add(&b, body, whole, 0);
    }
    if (b.n > a->max_batch) {
        http_error(resp, 413, "too_many_events", "%zu events in one request; the limit is %zu", b.n,
                   a->max_batch);
        goto done;
    }
    weir_buf_t rejects = WEIR_BUF_INIT;
    events_ctx_t ec = {.rejects = &rejects, .numbering = numbering, .numbers = b.numbers};
    ec.state = weir_calloc(b.n ? b.n : 1, 1); /* EV_REJECTED until decoded */
    size_t nf = src->nfields + 1;
    expr_value_t *fields = weir_malloc((b.n ? b.n : 1) * nf * sizeof *fields);
    cJSON **docs = weir_calloc(b.n ? b.n : 1, sizeof *docs);
    runtime_event_t *evs = weir_malloc((b.n ? b.n : 1) * sizeof *evs);
    char(*keytmp)[32] = weir_malloc((b.n ? b.n : 1) * sizeof *keytmp);
    size_t ngood = 0;
    for (size_t i = 0; i < b.n; i++) {
        char why[512];
        expr_value_t *f = fields + i * nf;
        int rej = edge_decode(src, b.texts[i], b.parsed[i], &docs[i], f, why, sizeof why);
        if (rej >= 0) {
            metrics_add(&metrics_shard(m)->rejected[rej], 1);
            add_reject(&ec, b.numbers[i], why);
            continue;
        }
        ec.state[i] = EV_DECODED;
        runtime_event_t *ev = &evs[ngood++];
        *ev = (runtime_event_t){.raw = b.texts[i], .fields = f, .index = (uint32_t)i};
        ev->key = engine_event_key(src, f, keytmp[i]);
        ev->part = runtime_partition_of(a->rt, ev->key);
    }
    metrics_observe(m, METRICS_STAGE_DECODE, weir_mono_ns() - t0);
    char err[512];
    int rc = ngood ? runtime_process(a->rt, evs, ngood, 0, event_done, &ec, err, sizeof err) : 0;
    size_t accepted = ngood - ec.failed - ec.refused;
    if (rc) {
        /* Partitions are logged one after another: those before the one
         * whose append failed are in the log and applied — a retry of the
         * whole request would count them twice. The answer lists the
         * events that were not logged, for a client to retry those only. */
        resp->status = 500;
        resp->content_type = "application/json";
        weir_buf_t *o = &resp->body;
        buf_reset(o);
        buf_append_str(o, "{\"error\":{\"code\":\"log_failed\",\"message\":");
        char msg[1024];
        snprintf(msg, sizeof msg,
                 "%s; %" PRIu64 " of the %zu events were logged and processed before the "
                 "failure (the partitions before it); the %" PRIu64
                 " in \"not_logged\" were not: retry those",
                 err, ec.logged, ngood, (uint64_t)ngood - ec.logged - ec.refused);
        buf_append_json_string(o, msg, strlen(msg));
        buf_appendf(o, "},\"logged\":%" PRIu64 ",\"not_logged\":[", ec.logged);
        int first = 1;
        for (size_t i = 0; i < b.n; i++) {
            if (ec.state[i] != EV_DECODED) continue;
            buf_appendf(o, "%s%u", first ? "" : ",", b.numbers[i]);
            first = 0;
        }
        buf_appendf(o, "],\"numbering\":\"%s\",\"rejected\":[", numbering);
        if (rejects.len) buf_append(o, rejects.data, rejects.len);
        buf_append_str(o, "]}\n");
    } else {
        weir_buf_t *o = &resp->body;
        buf_reset(o);
        if (accepted == 0 && ec.nrejects > 0) {
            /* memory_full is 503, as a client retries it (later); only when
             * memory refused them all: a retry does not mend invalid ones */
            int full = ec.refused == ec.nrejects;
            resp->status = full ? 503 : 400;
            if (full) resp->retry_after = MEMORY_FULL_RETRY_S;
            buf_append_str(o, full ? "{\"error\":{\"code\":\"memory_full\",\"message\":"
                                   : "{\"error\":{\"code\":\"invalid_events\",\"message\":");
            char msg[160];
            snprintf(msg, sizeof msg, "none of the %zu events was accepted; see \"rejected\"", b.n);
            buf_append_json_string(o, msg, strlen(msg));
            buf_append_str(o, "},");
        } else {
            buf_append_str(o, "{");
        }
        buf_appendf(o, "\"accepted\":%zu,\"rejected_count\":%zu,\"late\":%" PRIu64, accepted,
                    ec.nrejects, ec.late);
        /* accepted counts them (logged: the client need not send them again) */
        if (src->has_id) buf_appendf(o, ",\"duplicates\":%" PRIu64, ec.duplicates);
        buf_append_str(o, ",\"rejected\":[");
        if (rejects.len) buf_append(o, rejects.data, rejects.len);
        buf_append_str(o, "]}\n");
    }
    buf_free(&rejects);
    weir_free(ec.state);
    for (size_t i = 0; i < b.n; i++)
        cJSON_Delete(docs[i]);
    weir_free(docs);
    weir_free(fields);
    weir_free(evs);
    weir_free(keytmp);
    metrics_observe(m, METRICS_STAGE_TOTAL, weir_mono_ns() - req->start_ns);
done:
    weir_free(b.texts);
    weir_free(b.parsed);
    weir_free(b.numbers);
    cJSON_Delete(whole);
}

/* ---- the rest ---- */

/* Whether s is an int as "%" PRId64 writes one within SPEC_MAX_INT (the
 * ints an event's int field can hold). */
static int int_key_text(const char *s)
{
    const char *d = s + (*s == '-');
    size_t n = strlen(d);
    if (n == 0 || n > 16 || (d[0] == '0' && (n > 1 || d != s))) return 0; /* (no "-0") */
    for (size_t i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9') return 0;
    return strtoll(d, NULL, 10) <= SPEC_MAX_INT;
}

static void handle_features(api_t *a, const http_req_t *req, http_resp_t *resp, const char *rest)
{
    if (!want_get(req, resp)) return;
    const char *slash = strchr(rest, '/');
    if (!slash || !slash[1]) {
        if (source_of(a, rest, slash ? (size_t)(slash - rest) : strlen(rest), resp))
            http_error(resp, 404, "not_found", "use /v1/features/{source}/{key}");
        return;
    }
    const spec_source_t *src = source_of(a, rest, (size_t)(slash - rest), resp);
    if (!src || !check_ready(a, resp)) return;
    const char *key = slash + 1;
    const spec_field_t *kf = &src->fields[src->key_slot];
    if (kf->type == EXPR_INT && !int_key_text(key)) {
        /* A key state is found by its text as an event's key writes it: an
         * int as its decimal digits. Anything else would answer "not
         * found" for a key that cannot exist, which reads as "no events". */
        http_error(resp, 400, "bad_key",
                   "the key field '%s' is an int: '%.100s' is not one as weir writes it (decimal "
                   "digits, no leading zero or '+')",
                   kf->name, key);
        return;
    }
    runtime_features(a->rt, (weir_slice_t){key, strlen(key)}, &resp->body);
}

static void run_reload(api_t *a, http_resp_t *resp)
{
    char err[1024];
    uint64_t v, sv;
    int changed;
    int rc = runtime_reload(a->rt, "POST /v1/admin/reload", &v, &sv, &changed, err, sizeof err);
    if (rc != 0) {
        /* A new spec that does not load or cannot replace the running one
         * live (422); a model file that does not load or fit (missing,
         * broken, other inputs: the user's to fix, 422 as a bad spec is);
         * our failure (out of memory: 500). The running spec and model stay
         * in every case. (The same spec without a model is no failure:
         * nothing to reload, 200.) */
        int ours = rc == WEIR_ENOMEM;
        http_error(resp,
                   changed ? 422
                   : ours  ? 500
                           : 422,
                   changed ? "bad_spec"
                   : ours  ? "reload_failed"
                           : "bad_model",
                   "%s (the running spec and model %" PRIu64 " stay live)", err, v);
        return;
    }
    /* (reloaded false: the same spec, with no model to read again — its
     * version 0, as runtime_reload read it under its lock; the spec read
     * here could be a concurrent reload's) */
    int nothing = !changed && v == 0;
    buf_appendf(&resp->body,
                "{\"reloaded\":%s,\"model\":%" PRIu64 ",\"spec\":%s,\"spec_version\":%" PRIu64
                "}\n",
                nothing ? "false" : "true", v, changed ? "\"replaced\"" : "\"unchanged\"", sv);
}

/* A checkpoint takes seconds at a million keys, and so does a reload that
 * changes the plan (it takes one): they are answered from a thread of
 * their own, the connection suspended meanwhile (http_defer), so the
 * worker's other connections are not held up. */
typedef void (*slow_fn)(api_t *a, http_resp_t *resp);
typedef struct slow_job {
    api_t *a;
    http_deferred_t *d;
    slow_fn fn;
} slow_job_t;

static void *slow_main(void *arg)
{
    slow_job_t *j = arg;
    http_resp_t resp = {.status = 200, .content_type = "application/json"};
    j->fn(j->a, &resp);
    http_finish(j->d, &resp);
    weir_free(j);
    return NULL;
}

static void run_slow(api_t *a, const http_req_t *req, http_resp_t *resp, slow_fn fn)
{
    if (!want_post(req, resp)) return;
    /* Not while recovery restores and replays: it writes every partition's
     * state without their locks (a spec swapped in meanwhile would free
     * what it was writing into). */
    if (!runtime_ready(a->rt)) {
        http_error(resp, 503, "not_ready", "the log is being replayed; retry once /readyz is 200");
        resp->retry_after = 1; /* (as every other 503) */
        return;
    }
    http_deferred_t *d = http_defer(req);
    if (!d) {
        http_error(resp, 503, "shutting_down", "the server is shutting down");
        return;
    }
    slow_job_t *j = weir_malloc(sizeof *j);
    *j = (slow_job_t){a, d, fn};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (pthread_create(&t, &attr, slow_main, j) != 0) slow_main(j); /* no thread: here */
    pthread_attr_destroy(&attr);
}

static void run_checkpoint(api_t *a, http_resp_t *resp)
{
    char err[1024];
    if (runtime_checkpoint(a->rt, &resp->body, err, sizeof err) != 0)
        http_error(resp, 500, "checkpoint_failed", "%s", err);
}

void api_handle(void *ctx, const http_req_t *req, http_resp_t *resp)
{
    api_t *a = ctx;
    const char *p = req->path;
    resp->status = 200;
    resp->content_type = "application/json";
    if (has_prefix(p, "/v1/score/")) return handle_score(a, req, resp, p + strlen("/v1/score/"));
    if (has_prefix(p, "/v1/events/")) return handle_events(a, req, resp, p + strlen("/v1/events/"));
    if (has_prefix(p, "/v1/features/"))
        return handle_features(a, req, resp, p + strlen("/v1/features/"));
    if (!strcmp(p, "/v1/admin/reload")) return run_slow(a, req, resp, run_reload);
    if (!strcmp(p, "/v1/admin/checkpoint")) return run_slow(a, req, resp, run_checkpoint);
    if (!strcmp(p, "/metrics")) {
        if (!want_get(req, resp)) return;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        runtime_render_metrics(a->rt, &resp->body);
        return;
    }
    if (!strcmp(p, "/healthz")) {
        if (want_get(req, resp)) buf_append_str(&resp->body, "{\"status\":\"ok\"}\n");
        return;
    }
    if (!strcmp(p, "/readyz")) {
        char why[256];
        if (!want_get(req, resp) || !check_ready(a, resp)) return;
        /* A partition whose log failed refuses its events until a restart:
         * not ready, so that a load balancer sends the traffic elsewhere. */
        if (runtime_failed(a->rt, why, sizeof why))
            http_error(resp, 503, "log_failed", "%s", why);
        else
            buf_append_str(&resp->body, "{\"ready\":true}\n");
        return;
    }
    if (!strcmp(p, "/")) {
        if (!want_get(req, resp)) return;
        resp->content_type = "text/html; charset=utf-8";
        buf_append_str(&resp->body, api_dashboard_html);
        return;
    }
    http_error(resp, 404, "not_found", "no route %s %s", req->method_name, p);
}
