/* http.c — the libmicrohttpd daemon and the request limits (see http.h).
 *
 * THREADS. libmicrohttpd runs `threads` workers, each with its own epoll set
 * and its own connections (MHD_USE_EPOLL_INTERNAL_THREAD + a thread pool):
 * a connection and its request context (req_t) belong to the worker that
 * accepted it, which runs the access handler, the application handler and
 * the completion callback. One extra thread, the watchdog, enforces the
 * request time limit; it shares with the workers only the list of requests
 * whose body is being received (`receiving`, under h->lock):
 *   - a worker links a request in when its headers arrive (if it may carry
 *     a body) and unlinks it when the body is complete or the request ends;
 *   - the watchdog, for a request past its deadline, writes a 408 response
 *     straight to the socket, shuts the socket down (the worker then sees
 *     the connection end and completes the request) and marks it TIMED_OUT.
 *     It does this holding h->lock, and the worker's completion callback
 *     unlinks under the same lock before libmicrohttpd closes the socket,
 *     so the watchdog never writes to a closed (or reused) descriptor.
 * Why a watchdog: libmicrohttpd closes a stalled connection silently when
 * its idle timeout passes, and a client deserves to learn it was too slow.
 *
 * HEADERS TOO (slowloris). The idle timeout restarts at every byte, so a
 * client that trickles a header byte every few seconds held a connection
 * (of --max-connections) for good; a few thousand such held them all. The
 * watchdog also watches every connection waiting for a request's headers
 * (`connecting`): from accept (on_connection) it has --request-timeout for
 * its first request's, as nginx's client_header_timeout gives; after each
 * request (on_completed), --idle-timeout plus --request-timeout for the
 * next one's (libmicrohttpd does not report a request's first byte, so an
 * idle keep-alive connection cannot be told from a trickling one until
 * then; libmicrohttpd closes a silent one at --idle-timeout first). Past
 * its deadline the connection is shut down without an answer (no request
 * was read to answer: a pooled client writing its request at that moment
 * would take an answer for its own; nginx too only logs its 408) and
 * counted as a 408. A request whose headers complete as the watchdog
 * closes its connection is not processed (headers_in): a client that saw
 * its connection closed must be free to retry it. The completion
 * callback's guarantee has a twin here: libmicrohttpd tells on_connection
 * that a connection closed before it closes the socket, and that unlinks
 * under h->lock.
 *
 * Early refusals (503, 431, 401, 413) are queued in the first access-
 * handler call, before libmicrohttpd reads the body; it then closes the
 * connection instead of reading the body as a next request. */
#include "serve/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"

enum { REQ_NEW, REQ_RECEIVING, REQ_DONE, REQ_TIMED_OUT };

typedef struct req {
    struct http *h;
    struct MHD_Connection *conn;
    uint64_t start_ns;
    weir_buf_t body;
    uint64_t discarded; /* body bytes dropped after passing max_body */
    uint64_t skipped;   /* body bytes of a GET or HEAD (not kept) */
    int skip_body;      /* a GET or HEAD: its body is counted, not kept */
    int too_big;        /* the body is read and dropped, then refused (413, or `later`) */
    const char *later;  /* the code of a refusal that waits for the body (415), or NULL */
    char later_msg[200];
    int state;      /* REQ_*; RECEIVING and TIMED_OUT change under h->lock */
    int registered; /* linked in h->receiving at some point (owner's flag) */
    int counted;    /* counted in m->inflight */
    int answered;   /* a response is queued */
    int route;
    int fd;
    int deferred;            /* http_defer took it: the connection is suspended */
    _Atomic int finished;    /* http_finish filled dresp */
    http_resp_t dresp;       /* the deferred answer */
    struct req *prev, *next; /* h->receiving, under h->lock */
} req_t;

/* A connection from accept to close (HEADERS TOO). Listed in h->connecting
 * (under h->lock) for its whole life, so that a request costs its worker
 * no lock: the state says whether it waits for a request's headers, and
 * the watchdog and the worker settle a timeout with one exchange. The
 * state word counts its waits (state | wait << 2), so that a watchdog that
 * read one wait's deadline cannot cut the next wait (a request answered in
 * between). */
enum { CONN_IN_REQUEST, CONN_WAITING, CONN_CUT };
#define CONN_STATE(s) ((int)((s)&3))

typedef struct conn_watch {
    struct conn_watch *prev, *next; /* h->connecting, under h->lock */
    int fd;
    _Atomic uint64_t state;       /* CONN_* | wait << 2: WAITING -> CUT by the watchdog only */
    _Atomic uint64_t deadline_ns; /* while WAITING: for the headers of the next request */
} conn_watch_t;

struct http {
    http_config_t cfg;
    char *token;
    size_t token_len;
    http_handler_cb cb;
    http_route_cb route;
    void *ctx;
    metrics_t *m;
    struct MHD_Daemon *d;
    atomic_int draining; /* http_quiesce: new requests are refused */
    uint16_t port;
    /* watchdog */
    pthread_t watchdog;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    req_t receiving;       /* list head (sentinel) */
    conn_watch_t connecting; /* list head (sentinel) */
    _Atomic int ndeferred; /* suspended connections waiting for http_finish */
    atomic_int no_defer;   /* http_stop has begun: http_defer refuses */
};

void http_config_defaults(http_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->port = 8080;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = n > 0 ? (unsigned)n : 1;
    cfg->max_body = 1u << 20;
    cfg->max_headers = 100;
    cfg->max_header_bytes = 16u << 10;
    cfg->conn_memory = 0; /* derived from max_header_bytes in http_start */
    cfg->request_timeout_ms = 10000;
    cfg->idle_timeout_s = 60;
    cfg->max_inflight = 1024;
    cfg->max_connections = 4096;
}

void http_error(http_resp_t *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp->status = status;
    resp->content_type = "application/json";
    buf_reset(&resp->body);
    buf_append_str(&resp->body, "{\"error\":{\"code\":");
    buf_append_json_string(&resp->body, code, strlen(code));
    buf_append_str(&resp->body, ",\"message\":");
    buf_append_json_string(&resp->body, msg, strlen(msg));
    buf_append_str(&resp->body, "}}\n");
}

const char *http_query(const http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void free_body(void *p)
{
    weir_free(p);
}

/* Queues resp on the connection; takes resp->body's bytes. */
static enum MHD_Result send_resp(req_t *r, http_resp_t *resp)
{
    struct MHD_Response *mr;
    if (resp->body.len) {
        mr = MHD_create_response_from_buffer_with_free_callback(resp->body.len, resp->body.data,
                                                                free_body);
    } else {
        buf_free(&resp->body);
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    resp->body = (weir_buf_t)WEIR_BUF_INIT;
    if (!mr) return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "application/json");
    if (resp->retry_after > 0) {
        char s[16];
        snprintf(s, sizeof s, "%d", resp->retry_after);
        MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, s);
    }
    if (resp->allow) MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, resp->allow);
    /* Draining (http_quiesce): no connection is kept for a next request. */
    if (atomic_load_explicit(&r->h->draining, memory_order_relaxed))
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
    if (resp->status == 401)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    metrics_request(r->h->m, (metrics_route_t)r->route, resp->status);
    return ret;
}

static enum MHD_Result refuse(req_t *r, int status, int retry_after, const char *code,
                              const char *msg)
{
    http_resp_t resp = {.route = r->route, .retry_after = retry_after};
    http_error(&resp, status, code, "%s", msg);
    r->answered = 1;
    return send_resp(r, &resp);
}

typedef struct header_tally {
    unsigned n;
    size_t bytes;
    unsigned lengths;   /* Content-Length fields */
    int lengths_differ; /* with different values */
    const char *length; /* the first one's value */
    unsigned codings;   /* Transfer-Encoding fields */
    int not_chunked;    /* one that is not exactly "chunked" */
    int spaced_name;    /* a field name holding white space ("Transfer-Encoding : chunked") */
    const char *encoding; /* a Content-Encoding other than identity */
    unsigned hosts;       /* Host fields */
} header_tally_t;

static enum MHD_Result tally_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    header_tally_t *t = cls;
    t->n++;
    t->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    if (strpbrk(key, " \t")) t->spaced_name = 1;
    if (!strcasecmp(key, MHD_HTTP_HEADER_HOST)) t->hosts++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_ENCODING) && value && *value &&
        strcasecmp(value, "identity"))
        t->encoding = value;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (t->lengths++ && strcmp(t->length, value ? value : "") != 0) t->lengths_differ = 1;
        if (!t->length) t->length = value ? value : "";
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        t->codings++;
        if (!value || strcasecmp(value, "chunked") != 0) t->not_chunked = 1;
    }
    return MHD_YES;
}

/* Bearer-token check in time that depends only on the expected token's
 * length, so a caller cannot find the token byte by byte. */
static int token_ok(const http_t *h, const char *auth)
{
    static const char prefix[] = "Bearer ";
    /* The scheme is case-insensitive (RFC 7235); the token is not. */
    if (!auth || strncasecmp(auth, prefix, sizeof prefix - 1) != 0) return 0;
    const char *got = auth + sizeof prefix - 1;
    while (*got == ' ')
        got++; /* one or more spaces (RFC 6750 2.1) */
    size_t glen = strlen(got);
    unsigned char diff = (unsigned char)(glen != h->token_len);
    for (size_t i = 0; i < h->token_len; i++)
        diff |= (unsigned char)(h->token[i] ^ (i < glen ? got[i] : 0));
    return diff == 0;
}

static http_method_t method_of(const char *m)
{
    if (!strcmp(m, "GET")) return HTTP_GET;
    if (!strcmp(m, "POST")) return HTTP_POST;
    if (!strcmp(m, "HEAD")) return HTTP_HEAD;
    return HTTP_OTHER;
}

/* REFUSED AFTER THE BODY. A refusal of a request that has a body (413 over
 * --max-body, 415 for a Content-Encoding) waits until the body is read and
 * dropped: refused at once, the socket closed while the client still
 * wrote, and its TCP reset wiped the answer (RFC 9112 9.6; Python's
 * http.client saw only a reset, and the README says a reset request may be
 * retried). Up to DISCARD_BODIES times --max-body is read so; past that, or
 * when the client waits for the answer before it sends (Expect:
 * 100-continue), the refusal goes at once. */
#define DISCARD_BODIES 8

static int refuse_at_once(const req_t *r, unsigned long long declared)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT) ||
           declared > DISCARD_BODIES * (unsigned long long)r->h->cfg.max_body;
}

/* GET /healthz, /readyz and /metrics: answered whatever the load, so that
 * a liveness probe does not restart a server that is only busy (or held by
 * slow clients), and the metrics are there when they are needed. They are
 * cheap: health and readiness read flags and the logs' state; the metrics
 * take each partition's lock for a moment (and wait for a reload's state
 * move, which holds requests too), and a scraper sends one at a time. */
static int is_probe(const char *url, const char *method)
{
    http_method_t m = method_of(method);
    return (m == HTTP_GET || m == HTTP_HEAD) &&
           (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") || !strcmp(url, "/metrics"));
}

static void watch(http_t *h, req_t *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    pthread_mutex_lock(&h->lock);
    r->state = REQ_RECEIVING;
    r->registered = 1;
    r->next = h->receiving.next;
    r->prev = &h->receiving;
    r->next->prev = r;
    h->receiving.next = r;
    pthread_mutex_unlock(&h->lock);
}

/* Unlinks r if still receiving; returns 0 if the watchdog timed it out. */
static int unwatch(http_t *h, req_t *r)
{
    if (!r->registered) return 1;
    pthread_mutex_lock(&h->lock);
    int ok = r->state != REQ_TIMED_OUT;
    if (r->state == REQ_RECEIVING) {
        r->prev->next = r->next;
        r->next->prev = r->prev;
        r->state = REQ_DONE;
    }
    pthread_mutex_unlock(&h->lock);
    return ok;
}

/* Whether the request declares a body (a length other than 0, or a coding). */
static int has_body(struct MHD_Connection *c)
{
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (cl && strcmp(cl, "0") != 0) ||
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static enum MHD_Result on_headers(http_t *h, req_t *r, const char *url, const char *method,
                                  const char *version)
{
    /* Counted, then the flag read (both sequentially consistent, as in
     * http_quiesce and http_drain): a request let in is one the drain waits
     * for; one refused is not counted, so that clients knocking during the
     * drain do not hold it open. */
    int64_t n = atomic_fetch_add(&h->m->inflight, 1) + 1;
    if (atomic_load(&h->draining)) {
        atomic_fetch_sub(&h->m->inflight, 1);
        return refuse(r, 503, 1, "shutting_down",
                      "the server is shutting down; retry elsewhere or shortly");
    }
    r->counted = 1;
    if (n > (int64_t)h->cfg.max_inflight && !is_probe(url, method))
        return refuse(r, 503, 1, "overloaded", "too many requests in flight; retry shortly");
    header_tally_t t = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, tally_header, &t);
    if (t.n > h->cfg.max_headers || t.bytes > h->cfg.max_header_bytes) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "%u header fields of %zu bytes; the limits are %u fields and %zu bytes", t.n,
                 t.bytes, h->cfg.max_headers, h->cfg.max_header_bytes);
        return refuse(r, 431, 0, "headers_too_large", msg);
    }
    /* White space between a field name and its colon is a MUST-400 (RFC
     * 9112 5.1): libmicrohttpd kept "Transfer-Encoding " as another name,
     * so "Transfer-Encoding : chunked" with a Content-Length passed the
     * check below, and a proxy that trims the name reads the body the
     * other way (the API user's find). */
    if (t.spaced_name)
        return refuse(r, 400, 0, "bad_header",
                      "a header field name holds white space (before its colon: RFC 9112 5.1)");
    /* An HTTP/1.1 request without a Host, or with two, is a MUST-400 (RFC
     * 9112 3.2): two Hosts are read two ways by the proxies in front, as
     * two lengths are (below). (HTTP/1.0 had no Host.) */
    if (t.hosts > 1 || (t.hosts == 0 && version && strcmp(version, MHD_HTTP_VERSION_1_0) != 0))
        return refuse(r, 400, 0, "bad_host",
                      t.hosts ? "a request with two Host fields (RFC 9112 3.2)"
                              : "an HTTP/1.1 request must have a Host field (RFC 9112 3.2)");
    /* AMBIGUOUS FRAMING. A proxy in front may read a body's length from the
     * header libmicrohttpd ignores (request smuggling: the rest of the body
     * becomes a request of the proxy's next client); RFC 9112 6.3 lets a
     * server refuse such messages, and weir does, closing the connection. */
    if ((t.lengths && t.codings) || t.lengths_differ || t.codings > 1)
        return refuse(r, 400, 0, "ambiguous_framing",
                      "a request with Transfer-Encoding and Content-Length, two Transfer-Encoding "
                      "fields, or Content-Length fields that differ, can be read two ways");
    /* Any coding but chunked: libmicrohttpd would wait for a body it cannot read */
    if (t.not_chunked)
        return refuse(r, 501, 0, "unsupported_transfer_encoding",
                      "only Transfer-Encoding: chunked is supported");
    /* The declared body length, if there is one that reads as a number (a
     * Content-Length that does not is libmicrohttpd's to refuse). */
    unsigned long long declared = 0;
    int has_length = 0;
    if (t.length) {
        char *end;
        errno = 0;
        declared = strtoull(t.length, &end, 10);
        has_length = errno == 0 && *end == '\0';
    }
    /* A compressed body was read as text ("not UTF-8 at byte 1" per line),
     * and a Content-Encoding on a plain one ignored (RFC 9110 15.5.16):
     * 415, after the body (REFUSED AFTER THE BODY). A request without a
     * body has nothing encoded. */
    if (t.encoding && (t.lengths || t.codings)) {
        snprintf(r->later_msg, sizeof r->later_msg,
                 "Content-Encoding %.60s is not read: send the body uncompressed (identity)",
                 t.encoding);
        if (refuse_at_once(r, has_length ? declared : 0))
            return refuse(r, 415, 0, "unsupported_content_encoding", r->later_msg);
        r->later = "unsupported_content_encoding";
        r->too_big = 1;
    }
    if (h->token && !strncmp(url, "/v1/", 4)) {
        const char *auth =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth)
            return refuse(r, 401, 0, "unauthorized",
                          "this route needs an Authorization: Bearer token");
        if (!token_ok(h, auth))
            return refuse(r, 401, 0, "unauthorized", "the bearer token is not valid");
    }
    /* Over the limit: 413, after the body when it can be (REFUSED AFTER
     * THE BODY: the upload below drops it). */
    if (has_length && declared > h->cfg.max_body && refuse_at_once(r, declared)) {
        char msg[160];
        snprintf(msg, sizeof msg, "the body is %llu bytes; the limit is %zu", declared,
                 h->cfg.max_body);
        return refuse(r, 413, 0, "body_too_large", msg);
    }
    /* A body is timed, whatever the method: a GET that declares one is read
     * too (libmicrohttpd reads what is declared), and untimed it held a
     * connection and an in-flight slot for as long as it trickled (an SRE
     * held every /v1/score off with ten). Its bytes are not kept. */
    int get = method_of(method) == HTTP_GET || method_of(method) == HTTP_HEAD;
    r->skip_body = get;
    if (!get || has_body(r->conn)) watch(h, r);
    return MHD_YES;
}

/* Watches w until the headers of its next request are in, for up to
 * `within` (the deadline first: the watchdog reads it once it sees WAITING). */
static void watch_headers(conn_watch_t *w, uint64_t within)
{
    atomic_store_explicit(&w->deadline_ns, weir_mono_ns() + within, memory_order_relaxed);
    uint64_t s = atomic_load(&w->state);
    /* (only from IN_REQUEST: a connection already cut stays cut) */
    while (CONN_STATE(s) == CONN_IN_REQUEST &&
           !atomic_compare_exchange_weak(&w->state, &s, ((s >> 2) + 1) << 2 | CONN_WAITING))
        ;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_t *h = cls;
    conn_watch_t *w = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        w = weir_calloc(1, sizeof *w);
        w->fd = ci ? ci->connect_fd : -1;
        watch_headers(w, (uint64_t)h->cfg.request_timeout_ms * 1000000ull);
        pthread_mutex_lock(&h->lock);
        w->next = h->connecting.next;
        w->prev = &h->connecting;
        w->next->prev = w;
        h->connecting.next = w;
        pthread_mutex_unlock(&h->lock);
        *socket_context = w;
    } else if (w) { /* closed: the socket is still open here */
        pthread_mutex_lock(&h->lock);
        w->prev->next = w->next;
        w->next->prev = w->prev;
        pthread_mutex_unlock(&h->lock);
        weir_free(w);
        *socket_context = NULL;
    }
}

static conn_watch_t *watch_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A request's headers are in: its connection is no longer watched. 0, or
 * -1 when the watchdog has shut the connection down (the request is then
 * not processed). */
static int headers_in(struct MHD_Connection *conn)
{
    conn_watch_t *w = watch_of(conn);
    if (!w) return 0;
    uint64_t s = atomic_load(&w->state);
    /* (IN_REQUEST: a request's later calls; CUT: stays) */
    while (CONN_STATE(s) == CONN_WAITING &&
           !atomic_compare_exchange_weak(&w->state, &s, (s & ~(uint64_t)3) | CONN_IN_REQUEST))
        ;
    return CONN_STATE(s) == CONN_CUT ? -1 : 0;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    http_t *h = cls;
    req_t *r = *con_cls;
    if (!r) {
        if (headers_in(conn) != 0) return MHD_NO; /* closed by the watchdog: not processed */
        r = weir_calloc(1, sizeof *r);
        *con_cls = r;
        r->h = h;
        r->conn = conn;
        r->start_ns = weir_mono_ns();
        r->route = h->route(url);
        r->fd = -1;
        /* Answered on a later call, once libmicrohttpd has the whole
         * request, even one without a body (GET, HEAD): an answer queued in
         * this first call is an early one, after which libmicrohttpd closes
         * the connection — every GET /v1/features paid a new TCP
         * connection. (Refusals here close it on purpose.) */
        return on_headers(h, r, url, method, version);
    } else if (r->deferred) {
        /* Resumed by http_finish: its answer goes out now. */
        if (!atomic_load(&r->finished)) return MHD_YES;
        r->deferred = 0;
        r->answered = 1;
        return send_resp(r, &r->dresp);
    } else if (r->answered) {
        *upload_data_size = 0; /* refused early: nothing more to do */
        return MHD_YES;
    } else if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!r->too_big && r->body.len + r->skipped + n > h->cfg.max_body) {
            r->too_big = 1;
            buf_free(&r->body);
        }
        if (!r->too_big) {
            if (!r->skip_body)
                buf_append(&r->body, upload_data, n);
            else
                r->skipped += n;
        } else if ((r->discarded += n) > DISCARD_BODIES * (uint64_t)h->cfg.max_body) {
            return MHD_NO; /* a client that keeps sending: drop it */
        }
        return MHD_YES;
    }
    if (!unwatch(h, r)) return MHD_NO; /* the watchdog answered 408 */
    if (r->too_big && r->later) return refuse(r, 415, 0, r->later, r->later_msg);
    if (r->too_big) {
        char msg[160];
        snprintf(msg, sizeof msg, "the body is over the limit of %zu bytes", h->cfg.max_body);
        return refuse(r, 413, 0, "body_too_large", msg);
    }
    http_req_t req = {
        .method = method_of(method),
        .method_name = method,
        .path = url,
        .body = {r->body.data ? r->body.data : "", r->body.len},
        .content_type =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .start_ns = weir_mono_ns(),
        .conn = conn,
        .priv = r,
    };
    http_resp_t resp = {.status = 200, .route = r->route};
    h->cb(h->ctx, &req, &resp);
    if (r->deferred) {
        buf_free(&resp.body); /* the answer comes from http_finish */
        return MHD_YES;
    }
    r->answered = 1;
    return send_resp(r, &resp);
}

http_deferred_t *http_defer(const http_req_t *req)
{
    req_t *r = req->priv;
    /* Counted, then the flag read (both sequentially consistent, as in
     * http_stop): either http_stop sees this one and waits for it, or this
     * sees http_stop and does not suspend a connection it would stop. */
    atomic_fetch_add(&r->h->ndeferred, 1);
    if (atomic_load(&r->h->no_defer)) {
        atomic_fetch_sub(&r->h->ndeferred, 1);
        return NULL;
    }
    r->deferred = 1;
    /* Suspended here, inside the handler, so that http_finish — from any
     * thread, at any time after this — always finds it suspended. */
    MHD_suspend_connection(r->conn);
    return (http_deferred_t *)r;
}

void http_finish(http_deferred_t *d, http_resp_t *resp)
{
    req_t *r = (req_t *)d;
    http_t *h = r->h;
    r->dresp = *resp;
    r->dresp.route = r->route;
    resp->body = (weir_buf_t)WEIR_BUF_INIT;
    atomic_store(&r->finished, 1);
    MHD_resume_connection(r->conn);
    atomic_fetch_sub(&h->ndeferred, 1);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_t *h = cls;
    req_t *r = *con_cls;
    /* The next request of a kept connection is watched from now. */
    conn_watch_t *w = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? watch_of(conn) : NULL;
    if (w && h->cfg.idle_timeout_s) /* (0: libmicrohttpd never closes an idle one either) */
        watch_headers(w, (uint64_t)h->cfg.idle_timeout_s * 1000000000ull +
                             (uint64_t)h->cfg.request_timeout_ms * 1000000ull);
    if (!r) return;
    unwatch(h, r);
    if (r->state == REQ_TIMED_OUT) metrics_request(h->m, (metrics_route_t)r->route, 408);
    if (r->counted) atomic_fetch_sub_explicit(&h->m->inflight, 1, memory_order_relaxed);
    buf_free(&r->body);
    weir_free(r);
    *con_cls = NULL;
}

static void *watchdog_main(void *arg)
{
    http_t *h = arg;
    static const char body[] = "{\"error\":{\"code\":\"request_timeout\",\"message\":\"the request "
                               "body did not arrive in time\"}}\n";
    char msg[512];
    int len = snprintf(
        msg, sizeof msg,
        "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
        "Content-Length: %zu\r\n\r\n%s",
        sizeof body - 1, body);
    uint64_t limit = (uint64_t)h->cfg.request_timeout_ms * 1000000ull;
    pthread_mutex_lock(&h->lock);
    while (!h->stopping) {
        uint64_t now = weir_mono_ns();
        for (conn_watch_t *w = h->connecting.next; w != &h->connecting; w = w->next) {
            /* closed without an answer (HEADERS TOO); the deadline read is
             * this wait's or a later one's (written before the wait began) */
            uint64_t s = atomic_load_explicit(&w->state, memory_order_acquire);
            if (CONN_STATE(s) == CONN_WAITING &&
                now > atomic_load_explicit(&w->deadline_ns, memory_order_relaxed) &&
                atomic_compare_exchange_strong(&w->state, &s, (s & ~(uint64_t)3) | CONN_CUT)) {
                if (w->fd >= 0) shutdown(w->fd, SHUT_RDWR);
                metrics_request(h->m, METRICS_ROUTE_OTHER, 408);
            }
        }
        for (req_t *r = h->receiving.next; r != &h->receiving;) {
            req_t *next = r->next;
            if (now - r->start_ns > limit) {
                r->prev->next = r->next;
                r->next->prev = r->prev;
                r->state = REQ_TIMED_OUT;
                if (r->fd >= 0) {
                    ssize_t w = send(r->fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
                    (void)w;
                    shutdown(r->fd, SHUT_RDWR);
                }
            }
            r = next;
        }
        struct timespec ts;
        weir_deadline_in_ms(&ts, 50);
        pthread_cond_timedwait(&h->wake, &h->lock, &ts);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static int hex_value(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* URLs are unescaped as libmicrohttpd does (%HH), except %00: decoded, it
 * ends the C string a handler gets, and /v1/features/SRC/a%00b answered for
 * key "a" (an SRE's find). Left as the three characters, it names no key:
 * a key holds no NUL (the edge refuses one in an event). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *r = s; *r;) {
        if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2]) &&
            !(r[1] == '0' && r[2] == '0')) {
            *w++ = (char)(hex_value(r[1]) << 4 | hex_value(r[2]));
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    /* libmicrohttpd's own messages (e.g. a client that sent garbage): kept
     * off stderr; the request counters say what happened. */
    (void)fmt;
    (void)ap;
}

int http_start(const http_config_t *cfg, http_handler_cb cb, http_route_cb route, void *ctx,
               metrics_t *m, http_t **out, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(cfg->port);
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1)
        return weir_errf(err, errlen, WEIR_EINVAL, "cannot listen on %s: not an IPv4 address",
                         cfg->host);
    http_t *h = weir_calloc(1, sizeof *h);
    h->cfg = *cfg;
    if (cfg->token) {
        h->token = weir_strdup(cfg->token);
        h->token_len = strlen(cfg->token);
        h->cfg.token = h->token;
    }
    h->cb = cb;
    h->route = route;
    h->ctx = ctx;
    h->m = m;
    h->receiving.next = h->receiving.prev = &h->receiving;
    h->connecting.next = h->connecting.prev = &h->connecting;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    /* The connection pool holds the header block, the body as it is read
     * and the response headers. Not larger than that: libmicrohttpd zeroes
     * the whole pool between the requests of a keep-alive connection, and
     * at 128 KiB that memset was ~4% of a score request's CPU (perf).
     * The header limit plus 8 KiB still holds a header block just past the
     * limit, so its sender gets weir's JSON 431. */
    size_t pool = cfg->conn_memory;
    if (pool == 0) {
        pool = cfg->max_header_bytes + (8u << 10);
        if (pool < (16u << 10)) pool = 16u << 10;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_TURBO |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME; /* http_defer */
    errno = 0;
    h->d = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_access, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(cfg->threads ? cfg->threads : 1),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)cfg->idle_timeout_s, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, h,
        MHD_OPTION_END);
    if (!h->d) {
        int e = errno;
        weir_errf(err, errlen, WEIR_EIO, "cannot listen on %s:%u: %s", cfg->host,
                  (unsigned)cfg->port, e ? strerror(e) : "libmicrohttpd refused to start");
        pthread_mutex_destroy(&h->lock);
        pthread_cond_destroy(&h->wake);
        weir_free(h->token);
        weir_free(h);
        return WEIR_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->port;
    pthread_create(&h->watchdog, NULL, watchdog_main, h);
    *out = h;
    return 0;
}

uint16_t http_port(const http_t *h)
{
    return h->port;
}

/* WHY NOT MHD_quiesce_daemon. It takes the listening socket out of each
 * pool worker's epoll set from this thread while the worker, seeing the
 * same unguarded flag, may take it out first; whichever comes second gets
 * ENOENT, and libmicrohttpd 0.9.75 answers that with MHD_PANIC: an abort
 * ("Failed to remove listen FD from epoll set") in about one shutdown in a
 * few hundred, when a connection ended just before the signal. So the
 * daemon keeps listening until http_stop, and what arrives meanwhile is
 * refused (on_headers) with the connection closed after the answer. */
void http_quiesce(http_t *h)
{
    atomic_store(&h->draining, 1);
}

int64_t http_drain(http_t *h, int timeout_ms)
{
    uint64_t until = weir_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    int64_t n;
    while ((n = atomic_load(&h->m->inflight)) > 0 && weir_mono_ns() < until)
        usleep(5000);
    return n;
}

void http_stop(http_t *h)
{
    if (!h) return;
    /* A suspended connection must be resumed before the daemon stops
     * (libmicrohttpd aborts otherwise): deferred answers (a checkpoint being
     * written, which ends in a commit or an error) are waited for, however
     * long; a disk that slow would hold the shutdown's own fsyncs too. */
    atomic_store(&h->no_defer, 1);
    for (unsigned i = 1; atomic_load(&h->ndeferred) > 0; i++) {
        usleep(10000);
        if (i % 1000 == 0)
            fprintf(stderr,
                    "weir run: stopping: waiting for %d deferred answers (a checkpoint being "
                    "written)\n",
                    atomic_load(&h->ndeferred));
    }
    MHD_stop_daemon(h->d);
    pthread_mutex_lock(&h->lock);
    h->stopping = 1;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->watchdog, NULL);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->wake);
    weir_free(h->token);
    weir_free(h);
}
