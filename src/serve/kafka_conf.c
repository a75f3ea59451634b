/* kafka_conf.c — librdkafka configurations from a spec (kafka_conf.h). */
#include "serve/kafka_conf.h"

#include <stdio.h>
#include <stdlib.h>

static int set(rd_kafka_conf_t *c, const char *k, const char *v, char *err, size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(c, k, v, why, sizeof why) == RD_KAFKA_CONF_OK) return 0;
    snprintf(err, errlen, "kafka: %s=%s: %s", k, v, why);
    return -1;
}

rd_kafka_conf_t *kafka_conf_new(const spec_kafka_t *k, const char *const *weir_props, char *err,
                                size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int bad = set(c, "bootstrap.servers", k->brokers, err, errlen) ||
              set(c, "client.id", "weir", err, errlen);
    for (const char *const *p = weir_props; !bad && *p; p += 2)
        bad = set(c, p[0], p[1], err, errlen);
    for (uint32_t i = 0; !bad && i < k->nconfig; i++)
        bad = set(c, k->config[2 * i], k->config[2 * i + 1], err, errlen);
    /* librdkafka's own tracing, for an operator chasing a broker problem
     * (its contexts: "cgrp,fetch", "eos", "all", ...) */
    const char *debug = getenv("WEIR_KAFKA_DEBUG");
    if (!bad && debug && *debug) bad = set(c, "debug", debug, err, errlen);
    if (!(debug && *debug)) rd_kafka_conf_set_log_cb(c, NULL);
    if (bad) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}
