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
 * ssl.key.location).
 *
 * It also loads the spec's `sinks:` (serve/kafka_sink.h):
 *
 *   sinks:
 *     decisions:                   # every record of the decision log
 *       kafka:
 *         brokers: "10.0.0.1:9092"
 *         topic: fraud-decisions   # default: PIPELINE.decisions
 *         config: {compression.type: lz4}   # librdkafka producer properties
 *
 * with the same checks, and the producer's own properties weir's
 * guarantee rests on (SINK_OWNS) refused. */
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
static const char *const SOURCE_OWNS[] = {
    "bootstrap.servers", "metadata.broker.list", "group.id", "enable.auto.commit",
    "enable.auto.offset.store", "group.instance.id",
    /* latest would skip messages where the position is out of range (retention) */
    "auto.offset.reset",
    /* the cooperative protocol takes incremental assignments, which weir does not make */
    "partition.assignment.strategy",
    /* read_committed (librdkafka's default): read_uncommitted would log messages of
     * transactions aborted later, and past the end a partition has for read_committed */
    "isolation.level", NULL};
static const char *const SOURCE_WHY =
    "brokers and group have keys of their own; the commits and the group membership are what "
    "make messages enter the log exactly once";

/* The producer's (serve/kafka_sink.h): transactions and the idempotent
 * producer's order are what put each decision in the topic once. */
/* (the last five: the topic's tail is read back by a consumer of weir's
 * settings) */
static const char *const SINK_OWNS[] = {"bootstrap.servers",
                                        "metadata.broker.list",
                                        "transactional.id",
                                        "enable.idempotence",
                                        "acks",
                                        "request.required.acks",
                                        "max.in.flight.requests.per.connection",
                                        "max.in.flight",
                                        "enable.gapless.guarantee",
                                        "group.id",
                                        "isolation.level",
                                        "enable.partition.eof",
                                        "auto.offset.reset",
                                        "enable.auto.commit",
                                        NULL};
static const char *const SINK_WHY =
    "brokers have a key of their own; the transactions and the idempotent producer's order are "
    "what put each decision in the topic once";

/* librdkafka's secrets: passwords, secrets, keys given inline. */
static int secret(const char *k)
{
    return strstr(k, "password") || strstr(k, "secret") || strcmp(k, "ssl.key.pem") == 0 ||
           strcmp(k, "ssl_key") == 0 || strcmp(k, "sasl.oauthbearer.config") == 0;
}

static int load_config(loader_t *L, const ynode_t *cfg, spec_kafka_t *k, const char *where,
                       const char *const *owns, const char *why)
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
        for (const char *const *o = owns; *o; o++)
            if (strcmp(key->value, *o) == 0)
                return ld_fail(L, key, "%s config: '%s' is weir's to set (%s)", where, *o, why);
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

/* What a source's kafka: and the decisions sink's share, from the map m:
 * brokers (required), topic (default_topic when not given; NULL: the
 * name `what` stands for is not a topic name), config. */
static int load_common(loader_t *L, const ynode_t *m, spec_kafka_t *k, const char *where,
                       const char *default_topic, const char *const *owns, const char *why)
{
    const ynode_t *brokers = ynode_get(m, "brokers"), *topic = ynode_get(m, "topic");
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
        k->topic = weir_strndup(topic->value, topic->len);
    } else {
        if (!topic_ok(default_topic, strlen(default_topic)))
            return ld_fail(L, m, "%s needs a topic: '%s' is not a Kafka topic name", where,
                           default_topic);
        k->topic = weir_strdup(default_topic);
    }
    const ynode_t *cfg = ynode_get(m, "config");
    if (cfg && load_config(L, cfg, k, where, owns, why)) return L->rc;
    k->brokers = weir_strndup(brokers->value, brokers->len);
    k->pos = (spec_pos_t){m->line, m->col};
    return 0;
}

/* "weir.PIPELINE.WHAT": the pipeline's default consumer group of a source
 * and transactional id of the decisions sink. Two pipelines each have
 * their own. */
static char *pipeline_name(const loader_t *L, const char *what)
{
    size_t n = strlen(L->spec->pipeline) + strlen(what) + 7;
    char *s = weir_malloc(n);
    snprintf(s, n, "weir.%s.%s", L->spec->pipeline, what);
    return s;
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
    if (load_common(L, m, &src->kafka, where, src->name, SOURCE_OWNS, SOURCE_WHY)) return L->rc;
    const ynode_t *group = ynode_get(m, "group");
    if (group) {
        if (ld_want_scalar(L, group, "kafka group")) return L->rc;
        if (!group_ok(group->value, group->len))
            return ld_fail(L, group,
                           "%s group '%.*s' is empty, longer than %d bytes, or holds a space or "
                           "a byte outside printable ASCII",
                           where, Q(group), SPEC_KAFKA_GROUP_MAX);
        src->kafka.group = weir_strndup(group->value, group->len);
    } else {
        /* two pipelines reading one topic each read all of it, rather than
         * splitting its partitions as one group */
        src->kafka.group = pipeline_name(L, src->name);
    }
    return 0;
}

int ld_load_sinks(loader_t *L, const ynode_t *root)
{
    static const char *const sinks[] = {"decisions", NULL}, *const dkeys[] = {"kafka", NULL},
                             *const keys[] = {"brokers", "topic", "config", NULL};
    const ynode_t *s = ynode_get(root, "sinks");
    if (!s) return 0;
    if (ld_want_map(L, s, "sinks") || ld_check_keys(L, s, sinks, "sinks", "decisions"))
        return L->rc;
    const ynode_t *d = ynode_get(s, "decisions");
    if (!d) return 0;
    if (ld_want_map(L, d, "sinks decisions") ||
        ld_check_keys(L, d, dkeys, "sinks decisions", "kafka"))
        return L->rc;
    const ynode_t *m = ynode_get(d, "kafka");
    if (!m) return 0;
    const char *where = "sinks decisions kafka";
    if (ld_want_map(L, m, where) || ld_check_keys(L, m, keys, where, "brokers, topic or config"))
        return L->rc;
    spec_kafka_t *k = &L->spec->decisions_kafka;
    /* the transactional id's stem (serve/kafka_sink.c adds the data
     * directory's id) */
    k->group = pipeline_name(L, "decisions");
    char topic[SPEC_KAFKA_TOPIC_MAX + 16];
    snprintf(topic, sizeof topic, "%s.decisions", L->spec->pipeline);
    return load_common(L, m, k, where, topic, SINK_OWNS, SINK_WHY);
}

void spec_kafka_free(spec_kafka_t *k)
{
    weir_free(k->brokers);
    weir_free(k->topic);
    weir_free(k->group);
    for (uint32_t j = 0; k->config && k->config[j]; j++)
        weir_free(k->config[j]);
    weir_free(k->config);
    memset(k, 0, sizeof *k);
}
