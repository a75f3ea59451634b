/* kafka_conf.h — a librdkafka configuration from a spec's kafka: (spec.h),
 * shared by the source's consumer (kafka_source.h) and the decisions
 * sink's producer (kafka_sink.h). */
#ifndef WEIR_SERVE_KAFKA_CONF_H
#define WEIR_SERVE_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "spec/spec.h"

/* bootstrap.servers from k, then weir's own properties (name, value, ...,
 * NULL), then the spec's config: (which cannot name weir's: spec_kafka.c),
 * then WEIR_KAFKA_DEBUG's contexts if set (else librdkafka's own log is
 * off: what weir must say, its callers say once per outage, not at every
 * reconnect). NULL with err naming the property librdkafka refused. */
rd_kafka_conf_t *kafka_conf_new(const spec_kafka_t *k, const char *const *weir_props, char *err,
                                size_t errlen);

#endif
