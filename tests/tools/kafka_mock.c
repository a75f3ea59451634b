/* kafka_mock.c — weir-kafka-mock: a Kafka cluster for the system tests,
 * librdkafka's mock cluster in a process of its own (so that weir can be
 * killed and restarted against the same cluster, topics and committed
 * offsets).
 *
 *   weir-kafka-mock [--brokers N] TOPIC:PARTITIONS...
 *
 * Prints "bootstrap HOST:PORT[,...]" on stdout once the topics exist, then
 * takes commands on stdin, one a line, answering "ok" or "error: why":
 *   down ID / up ID     a broker (1..N) stops / starts answering
 * It exits at the end of stdin, or on SIGTERM. Test tooling, not weir. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int brokers = 1, i = 1;
    if (argc > 2 && strcmp(argv[1], "--brokers") == 0) {
        brokers = atoi(argv[2]);
        i = 3;
    }
    if (i >= argc || brokers < 1) {
        fprintf(stderr, "usage: weir-kafka-mock [--brokers N] TOPIC:PARTITIONS...\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    /* the cluster lives in a client instance's threads */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "weir-kafka-mock: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "weir-kafka-mock: cannot create the mock cluster\n");
        return 1;
    }
    for (; i < argc; i++) {
        char *colon = strrchr(argv[i], ':');
        if (!colon) {
            fprintf(stderr, "weir-kafka-mock: '%s' is not TOPIC:PARTITIONS\n", argv[i]);
            return 2;
        }
        *colon = '\0';
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, argv[i], atoi(colon + 1), brokers);
        if (e) {
            fprintf(stderr, "weir-kafka-mock: topic %s: %s\n", argv[i], rd_kafka_err2str(e));
            return 1;
        }
    }
    printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        int id;
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (sscanf(line, "down %d", &id) == 1)
            e = rd_kafka_mock_broker_set_down(mc, id);
        else if (sscanf(line, "up %d", &id) == 1)
            e = rd_kafka_mock_broker_set_up(mc, id);
        else {
            printf("error: unknown command\n");
            fflush(stdout);
            continue;
        }
        printf(e ? "error: %s\n" : "ok\n", rd_kafka_err2str(e));
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
