/* spec_kafka.c — loads a source's `kafka:` into spec_kafka_t (spec.h);
 * what `weir run` does with it is in src/serve/kafka_source.h. Part of the
 * spec loader (spec_int.h).
 *
 *   sources:
 *     transactions:
 *       ...
 *       kafka:
 *         brokers: "10.0.0.1:9092,10.0.0.2:9092"  # bootstrap servers (required)
 *         topic: payments          # default: the source's name
 *         group: fraud-weir        # consumer group; default weir.PIPELINE.SOURCE
 *         config:                  # librdkafka consumer properties, as given
 *           security.protocol: ssl
 *           session.timeout.ms: 10000
 *
 * The brokers are checked here for their form only (HOST:PORT, a port from
 * 1 to 65535): whether Kafka answers is a matter of the moment, and
 * `weir run` serves HTTP without it. config's properties are librdkafka's
 * to check (weir run refuses to start on one it refuses, naming it), except
 * those weir's guarantees rest on (WEIR_OWNS) and secrets: a spec is kept
 * in DATA/specs.d and in every checkpoint, so a password or a private key
 * does not belong in it (librdkafka reads key and certificate files:
 * ssl.key.location). */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "spec/spec_int.h"

/* Kafka's own rule for topic names: 1 to 249 of [A-Za-z0-9._-]. */
static int topic_ok(const char *v, size_t len)
{
    if (len == 0 || len > SPEC_KAFKA_TOPIC_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
              (v[i] >= '0' && v[i] <= '9') || v[i] == '.' || v[i] == '_' || v[i] == '-'))
            return 0;
    return 1;
}

/* Printable ASCII without spaces: a group id goes into logs and metrics. */
static int group_ok(const char *v, size_t len)
{
    if (len == 0 || len > SPEC_KAFKA_GROUP_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if (v[i] <= ' ' || v[i] > '~') return 0;
    return 1;
}

/* What weir sets itself, for its guarantees (serve/kafka_source.h), or
 * has a key of its own for. */
static const char *const WEIR_OWNS[] = {
    "bootstrap.servers", "metadata.broker.list", "group.id", "enable.auto.commit",
    "enable.auto.offset.store", "group.instance.id",
    /* latest would skip messages where the position is out of range (retention) */
    "auto.offset.reset",
    /* the cooperative protocol takes incremental assignments, which weir does not make */
    "partition.assignment.strategy",
    /* read_committed (librdkafka's default): read_uncommitted would log messages of
     * transactions aborted later, and past the end a partition has for read_committed */
    "isolation.level", NULL};

/* librdkafka's secrets: passwords, secrets, keys given inline. */
static int secret(const char *k)
{
    return strstr(k, "password") || strstr(k, "secret") || strcmp(k, "ssl.key.pem") == 0 ||
           strcmp(k, "ssl_key") == 0 || strcmp(k, "sasl.oauthbearer.config") == 0;
}

static int load_config(loader_t *L, const ynode_t *cfg, spec_kafka_t *k, const char *where)
{
    char what[160];
    snprintf(what, sizeof what, "%s config", where);
    if (ld_want_map(L, cfg, what)) return L->rc;
    k->config = weir_calloc(cfg->n * 2 + 1, sizeof *k->config);
    for (uint32_t i = 0; i < cfg->n; i++) {
        const ynode_t *key = ynode_key(cfg, i), *val = ynode_val(cfg, i);
        snprintf(what, sizeof what, "%s config '%.*s'", where, Q(key));
        if (ld_want_scalar(L, val, what)) return L->rc;
        if (key->len == 0 || memchr(key->value, '\0', key->len) ||
            memchr(val->value, '\0', val->len))
            return ld_fail(L, key, "%s config: an empty property name, or a NUL byte", where);
        for (const char *const *o = WEIR_OWNS; *o; o++)
            if (strcmp(key->value, *o) == 0)
                return ld_fail(L, key,
                               "%s config: '%s' is weir's to set (brokers and group have keys of "
                               "their own; the commits and the group membership are what make "
                               "messages enter the log exactly once)",
                               where, *o);
        if (secret(key->value))
            return ld_fail(L, key,
                           "%s config: '%.*s' is a secret, and a spec is stored in DATA/specs.d "
                           "and in every checkpoint: not supported yet (file-based TLS, "
                           "ssl.key.location, is)",
                           where, Q(key));
        k->config[2 * i] = weir_strndup(key->value, key->len);
        k->config[2 * i + 1] = weir_strndup(val->value, val->len);
        k->nconfig++;
    }
    return 0;
}

int ld_load_kafka(loader_t *L, const ynode_t *source, spec_source_t *src)
{
    static const char *const keys[] = {"brokers", "topic", "group", "config", NULL};
    const ynode_t *m = ynode_get(source, "kafka");
    if (!m) return 0;
    char where[96];
    snprintf(where, sizeof where, "source '%s' kafka", src->name);
    if (ld_want_map(L, m, where) ||
        ld_check_keys(L, m, keys, where, "brokers, topic, group or config"))
        return L->rc;
    const ynode_t *brokers = ynode_get(m, "brokers"), *topic = ynode_get(m, "topic"),
                  *group = ynode_get(m, "group");
    if (!brokers)
        return ld_fail(L, m, "%s is missing required key 'brokers' (HOST:PORT[,HOST:PORT...])",
                       where);
    if (ld_want_scalar(L, brokers, "kafka brokers")) return L->rc;
    /* each of the comma-separated list */
    for (const char *b = brokers->value, *end = b + brokers->len; b <= end;) {
        const char *comma = memchr(b, ',', (size_t)(end - b));
        size_t len = (size_t)((comma ? comma : end) - b);
        if (len == 0 || b[0] == '/' || !ld_address_ok(b, len))
            return ld_fail(L, brokers,
                           "%s brokers '%.*s' is not a list of HOST:PORT (a port from 1 to "
                           "65535), separated by commas",
                           where, Q(brokers));
        b += len + 1;
    }
    if (topic) {
        if (ld_want_scalar(L, topic, "kafka topic")) return L->rc;
        if (!topic_ok(topic->value, topic->len))
            return ld_fail(L, topic,
                           "%s topic '%.*s' is not a Kafka topic name (1 to %d of letters, "
                           "digits, '.', '_' and '-')",
                           where, Q(topic), SPEC_KAFKA_TOPIC_MAX);
        src->kafka.topic = weir_strndup(topic->value, topic->len);
    } else {
        if (!topic_ok(src->name, strlen(src->name)))
            return ld_fail(L, m, "%s needs a topic: the source's name is not a Kafka topic name",
                           where);
        src->kafka.topic = weir_strdup(src->name);
    }
    if (group) {
        if (ld_want_scalar(L, group, "kafka group")) return L->rc;
        if (!group_ok(group->value, group->len))
            return ld_fail(L, group,
                           "%s group '%.*s' is empty, longer than %d bytes, or holds a space or "
                           "a byte outside printable ASCII",
                           where, Q(group), SPEC_KAFKA_GROUP_MAX);
        src->kafka.group = weir_strndup(group->value, group->len);
    } else {
        /* weir.PIPELINE.SOURCE: two pipelines reading one topic each read
         * all of it, rather than splitting its partitions as one group */
        size_t n = strlen(L->spec->pipeline) + strlen(src->name) + 7;
        src->kafka.group = weir_malloc(n);
        snprintf(src->kafka.group, n, "weir.%s.%s", L->spec->pipeline, src->name);
    }
    const ynode_t *cfg = ynode_get(m, "config");
    if (cfg && load_config(L, cfg, &src->kafka, where)) return L->rc;
    src->kafka.brokers = weir_strndup(brokers->value, brokers->len);
    src->kafka.pos = (spec_pos_t){m->line, m->col};
    return 0;
}
