/* http.h — weir's HTTP front: a libmicrohttpd daemon (epoll, a pool of
 * worker threads, keep-alive) that enforces the limits of DESIGN.md before
 * a request reaches a handler, then runs the handler to completion on the
 * worker thread that received the request.
 *
 * LIMITS, in the order they are checked when a request's headers arrive
 * (the first access-handler call, before any byte of the body is read):
 *   in-flight requests > max_inflight        503 + Retry-After
 *   header fields > max_headers, or their
 *   bytes > max_header_bytes                 431 (JSON); a header block that does
 *                                            not even fit conn_memory gets
 *                                            libmicrohttpd's own 431 (HTML body)
 *   /v1/ route without the bearer token      401 + WWW-Authenticate
 *   Content-Length > max_body                413
 * and while the body arrives:
 *   body bytes > max_body (chunked)          413 once the upload ends
 *   body not complete request_timeout_ms
 *   after the headers (a stalled client)     408, connection closed
 * Idle keep-alive connections close after idle_timeout_s. Every error is
 * {"error": {"code": "...", "message": "..."}}. */
#ifndef WEIR_SERVE_HTTP_H
#define WEIR_SERVE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "serve/metrics.h"

typedef enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_OTHER,
} http_method_t;

struct MHD_Connection;

typedef struct http_req {
    http_method_t method;
    const char *method_name;
    const char *path;         /* URL path, percent-decoded; no query string */
    weir_slice_t body;        /* the whole body (empty for GET) */
    const char *content_type; /* NULL if absent */
    uint64_t start_ns;        /* weir_mono_ns() when the request was whole (its body
                                 read): latency_us and the "total" stage count from
                                 here, the server's time, not a slow client's upload */
    struct MHD_Connection *conn;
    void *priv; /* http.c's own state of the request */
} http_req_t;

/* A query-string argument of req, or NULL. */
const char *http_query(const http_req_t *req, const char *name);

typedef struct http_resp {
    int status;
    const char *content_type; /* a static string; default application/json */
    weir_buf_t body;          /* filled by the handler; http_* takes the bytes */
    int retry_after;          /* seconds; 0 = no Retry-After header */
    const char *allow;        /* Allow header (405), static; NULL = none */
    int route;                /* metrics_route_t, for the request counters */
} http_resp_t;

/* Fills resp with status and {"error":{"code":code,"message":...}}. */
void http_error(http_resp_t *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A handler that waits for something slow (a checkpoint being written)
 * calls http_defer and returns without filling resp: the connection is
 * suspended, so the worker thread goes on serving its other connections,
 * and any thread answers later with http_finish (which takes resp's body).
 * http_stop waits for deferred answers; once it has begun, http_defer
 * returns NULL and the handler answers in resp as usual. */
typedef struct http_deferred http_deferred_t;
http_deferred_t *http_defer(const http_req_t *req);
void http_finish(http_deferred_t *d, http_resp_t *resp);

/* Handles one complete request on a worker thread; must fill resp (or
 * defer it). */
typedef void (*http_handler_cb)(void *ctx, const http_req_t *req, http_resp_t *resp);
/* Names the route of a path (metrics_route_t), for requests refused early. */
typedef int (*http_route_cb)(const char *path);

typedef struct http_config {
    const char *host;         /* IPv4 address to listen on */
    uint16_t port;            /* 0: any free port (see http_port) */
    unsigned threads;         /* worker threads (default: online CPUs) */
    size_t max_body;          /* bytes (default 1 MiB) */
    unsigned max_headers;     /* header fields (default 100) */
    size_t max_header_bytes;  /* bytes of all header fields (default 16 KiB) */
    size_t conn_memory;       /* libmicrohttpd's per-connection pool; 0 (default):
                                 max_header_bytes + 8 KiB, at least 16 KiB */
    int request_timeout_ms;   /* headers → complete body (default 10 s) */
    unsigned idle_timeout_s;  /* idle keep-alive connection (default 60 s) */
    unsigned max_inflight;    /* requests being received or processed (default 1024) */
    unsigned max_connections; /* open connections (default 4096) */
    const char *token;        /* bearer token required on /v1/ routes; NULL = none (copied) */
} http_config_t;

void http_config_defaults(http_config_t *cfg);

typedef struct http http_t;

/* Starts listening and serving. cb and route run on worker threads; m
 * counts requests and in-flight requests. Fills err ("cannot listen on
 * HOST:PORT: ...") on failure. */
int http_start(const http_config_t *cfg, http_handler_cb cb, http_route_cb route, void *ctx,
               metrics_t *m, http_t **out, char *err, size_t errlen);
/* The port actually bound. */
uint16_t http_port(const http_t *h);
/* Stops taking requests: those in flight continue; each new one, on any
 * route, is answered 503 shutting_down (Retry-After: 1). Every answer from
 * now on closes its connection. The socket stays open until http_stop
 * (see http.c). */
void http_quiesce(http_t *h);
/* Waits until no request is in flight or timeout_ms passed; returns the
 * number still in flight. */
int64_t http_drain(http_t *h, int timeout_ms);
/* Closes every connection and frees h. */
void http_stop(http_t *h);

#endif
