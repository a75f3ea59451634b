/* spec_online.c — loads a spec's `online_store:` into spec_online_store_t
 * (spec.h); what `weir run` does with it is in src/serve/online_store.h.
 * Part of the spec loader (spec_int.h).
 *
 *   online_store:
 *     redis: HOST:PORT          # or /path/to/redis.sock (required)
 *     prefix: "fraud:cards:"    # of every Redis key; default "PIPELINE:SOURCE:"
 *     ttl: 7d                   # Redis expiry of a written key; default the
 *                               # key's state TTL; 0s: never
 *
 * The address is checked here for its form only (a port from 1 to 65535, a
 * socket path that is absolute): whether Redis answers is a matter of the
 * moment, and `weir run` serves without it (online_store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "spec/spec_int.h"

/* "HOST:PORT" with a port from 1 to 65535, or an absolute path. */
static int address_ok(const char *v, size_t len)
{
    if (len > 0 && v[0] == '/') return len < 108; /* sun_path */
    const char *colon = memrchr(v, ':', len);
    if (!colon || colon == v) return 0;
    size_t plen = (size_t)(v + len - colon - 1);
    if (plen == 0 || plen > 5) return 0;
    long port = 0;
    for (const char *c = colon + 1; c < v + len; c++) {
        if (*c < '0' || *c > '9') return 0;
        port = port * 10 + (*c - '0');
    }
    for (const char *c = v; c < colon; c++)
        if (*c == ' ' || *c == '/') return 0;
    return port >= 1 && port <= 65535;
}

int ld_load_online_store(loader_t *L, const ynode_t *root)
{
    static const char *const keys[] = {"redis", "prefix", "ttl", NULL};
    spec_online_store_t *o = &L->spec->online;
    o->ttl_ms = SPEC_ONLINE_TTL_STATE;
    const ynode_t *m = ynode_get(root, "online_store");
    if (!m) return 0;
    if (ld_want_map(L, m, "online_store") ||
        ld_check_keys(L, m, keys, "online_store", "redis, prefix or ttl"))
        return L->rc;
    for (uint32_t i = 0; i < root->n; i++)
        if (ynode_val(root, i) == m) {
            const ynode_t *k = ynode_key(root, i);
            o->pos = (spec_pos_t){k->line, k->col};
        }
    const ynode_t *redis = ynode_get(m, "redis"), *prefix = ynode_get(m, "prefix"),
                  *ttl = ynode_get(m, "ttl");
    if (!redis)
        return ld_fail(L, m,
                       "online_store is missing required key 'redis' (HOST:PORT, or a unix "
                       "socket's absolute path)");
    if (ld_want_scalar(L, redis, "online_store redis")) return L->rc;
    if (!address_ok(redis->value, redis->len))
        return ld_fail(L, redis,
                       "online_store redis '%.*s' is not HOST:PORT (a port from 1 to 65535) nor "
                       "a unix socket's absolute path",
                       Q(redis));
    if (prefix) {
        if (ld_want_scalar(L, prefix, "online_store prefix")) return L->rc;
        if (prefix->len > SPEC_ONLINE_PREFIX_MAX)
            return ld_fail(L, prefix, "online_store prefix is longer than %d bytes",
                           SPEC_ONLINE_PREFIX_MAX);
        o->prefix = weir_strndup(prefix->value, prefix->len);
    } else {
        /* PIPELINE:SOURCE: (a pipeline name holds no ':'), so that two
         * pipelines sharing a Redis do not write each other's keys */
        const spec_source_t *src = ld_main_source(L);
        size_t n = strlen(L->spec->pipeline) + strlen(src->name) + 3;
        o->prefix = weir_malloc(n);
        snprintf(o->prefix, n, "%s:%s:", L->spec->pipeline, src->name);
    }
    if (ttl && ld_parse_duration_node(L, ttl, "online_store ttl", 1, &o->ttl_ms)) return L->rc;
    o->redis = weir_strndup(redis->value, redis->len);
    return 0;
}
