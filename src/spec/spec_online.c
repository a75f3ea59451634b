/* spec_online.c — loads a spec's `online_store:` into spec_online_store_t
 * (spec.h); what `weir run` does with it is in src/serve/online_store.h.
 * Part of the spec loader (spec_int.h).
 *
 *   online_store:
 *     redis: HOST:PORT          # or /path/to/redis.sock (required)
 *     prefix: "fraud:cards:"    # of every Redis key; default "PIPELINE:SOURCE:"
 *     ttl: 7d                   # Redis expiry of a written key; default the
 *                               # key's state TTL; 0s: never
 *     password_env: REDIS_PASSWORD  # AUTH with the password in this variable
 *     username: weir            # AUTH's user (Redis 6 ACLs); needs password_env
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

int ld_address_ok(const char *v, size_t len)
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

/* An environment variable's name: [A-Za-z_][A-Za-z0-9_]*. */
static int env_name_ok(const char *v, size_t len)
{
    if (len == 0 || (v[0] >= '0' && v[0] <= '9')) return 0;
    for (size_t i = 0; i < len; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
              (v[i] >= '0' && v[i] <= '9') || v[i] == '_'))
            return 0;
    return 1;
}

int ld_load_online_store(loader_t *L, const ynode_t *root)
{
    static const char *const keys[] = {"redis", "prefix", "ttl", "password_env", "username", NULL};
    spec_online_store_t *o = &L->spec->online;
    o->ttl_ms = SPEC_ONLINE_TTL_STATE;
    const ynode_t *m = ynode_get(root, "online_store");
    if (!m) return 0;
    if (ld_want_map(L, m, "online_store") ||
        ld_check_keys(L, m, keys, "online_store", "redis, prefix, ttl, password_env or username"))
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
    if (!ld_address_ok(redis->value, redis->len))
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
    const ynode_t *pw = ynode_get(m, "password_env"), *user = ynode_get(m, "username");
    if (pw) {
        if (ld_want_scalar(L, pw, "online_store password_env")) return L->rc;
        if (!env_name_ok(pw->value, pw->len))
            return ld_fail(L, pw,
                           "online_store password_env '%.*s' is not an environment variable's "
                           "name (letters, digits and '_', not starting with a digit): it names "
                           "the variable that holds the password, not the password",
                           Q(pw));
        o->password_env = weir_strndup(pw->value, pw->len);
    }
    if (user) {
        if (ld_want_scalar(L, user, "online_store username")) return L->rc;
        if (!pw)
            return ld_fail(L, user, "online_store username needs password_env (AUTH takes both)");
        if (user->len == 0 || memchr(user->value, ' ', user->len))
            return ld_fail(L, user, "online_store username '%.*s' is empty or holds a space",
                           Q(user));
        o->username = weir_strndup(user->value, user->len);
    }
    o->redis = weir_strndup(redis->value, redis->len);
    return 0;
}
