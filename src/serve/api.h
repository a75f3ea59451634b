/* api.h — weir's HTTP API (DESIGN.md "Interfaces"): the router and the
 * handlers that turn requests into runtime calls and results into JSON.
 *
 *   POST /v1/score/{source}            one event → decision, score, reason,
 *                                      features, contributions, offset, ...
 *   POST /v1/events/{source}           a JSON object, a JSON array or NDJSON
 *                                      → {"accepted": n, "rejected": [...]}
 *   GET  /v1/features/{source}/{key}   a key's features as of now
 *   POST /v1/admin/reload              reload the model from its file
 *   GET  /metrics, /healthz, /readyz, /   (/ is the live dashboard)
 *
 * Events are decoded completely at the edge (JSON, then the source's
 * schema) before anything is appended: a rejected event or request never
 * reaches the log or the state. Handlers run on the HTTP worker threads;
 * an api_t is read-only after api_init. */
#ifndef WEIR_SERVE_API_H
#define WEIR_SERVE_API_H

#include <stddef.h>

#include "serve/http.h"
#include "serve/runtime.h"

typedef struct api {
    runtime_t *rt;
    size_t max_batch; /* events per request (413 above) */
} api_t;

void api_init(api_t *a, runtime_t *rt, size_t max_batch);

/* http_handler_cb: ctx is the api_t. */
void api_handle(void *ctx, const http_req_t *req, http_resp_t *resp);
/* http_route_cb: the metrics route of a path. */
int api_route(const char *path);

/* The dashboard page (static HTML that polls /metrics). */
extern const char api_dashboard_html[];

#endif
