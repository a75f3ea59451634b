/* spec_load_test.c — spec loading: the fraud example loads and runs end to
 * end (decode → aggregates → features in order → decisions), every broken
 * spec under tests/unit/specs/broken/ fails with exactly the message in its
 * .expected file, and the loader's smaller rules hold. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/error.h"
#include "spec/decode.h"
#include "spec/spec.h"

static const char *source_dir(void)
{
    const char *d = getenv("WEIR_SOURCE_DIR");
    return d ? d : ".";
}

static spec_t *load_ok(const char *text)
{
    spec_t *s = NULL;
    char err[512];
    int rc = spec_load_string(text, strlen(text), "dir/test.yaml", &s, err, sizeof err);
    if (rc) fail_msg("spec did not load: %s", err);
    return s;
}

static void load_fails(const char *text, const char *want)
{
    spec_t *s = NULL;
    char err[512] = "";
    int rc = spec_load_string(text, strlen(text), "t.yaml", &s, err, sizeof err);
    if (rc == 0) {
        spec_free(s);
        fail_msg("spec loaded, want error '%s'", want);
    }
    assert_null(s);
    if (strcmp(err, want) != 0) fail_msg("got  '%s'\nwant '%s'", err, want);
}

/* ---- the fraud example ---- */

static void test_fraud_example_loads(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/fraud/fraud.yaml", source_dir());
    spec_t *s = NULL;
    char err[512];
    int rc = spec_load(path, &s, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_string_equal(s->pipeline, "fraud");
    assert_int_equal(s->partitions, 8);
    assert_int_equal(s->nsources, 1);
    const spec_source_t *src = spec_source(s, "transactions");
    assert_non_null(src);
    assert_int_equal(src->nfields, 5);
    assert_string_equal(src->fields[src->key_slot].name, "card_id");
    assert_string_equal(src->fields[src->time_slot].name, "ts");
    assert_int_equal(src->fields[src->time_slot].type, EXPR_TIME);
    assert_true(src->lateness_ms == 30000);
    assert_int_equal(spec_field(src, "amount")->type, EXPR_FLOAT);
    assert_int_equal(spec_field(src, "amount")->slot, 1);

    assert_int_equal(s->nfeatures, 8);
    static const char *const names[] = {"txn_count_1h",  "amount_sum_24h", "amount_avg_7d",
                                        "merchants_24h", "amount_ratio",   "new_country",
                                        "secs_since",    "small_txns_1h"};
    static const expr_type_t types[] = {EXPR_INT,   EXPR_FLOAT, EXPR_FLOAT, EXPR_INT,
                                        EXPR_FLOAT, EXPR_BOOL,  EXPR_FLOAT, EXPR_INT};
    for (int i = 0; i < 8; i++) {
        assert_string_equal(s->features[i].name, names[i]);
        assert_int_equal(s->features[i].type, types[i]);
    }
    /* amount_ratio reads amount_avg_7d: it must come later in the order. */
    int at_avg = -1, at_ratio = -1;
    for (uint32_t k = 0; k < s->nfeatures; k++) {
        if (s->feature_order[k] == 2) at_avg = (int)k;
        if (s->feature_order[k] == 4) at_ratio = (int)k;
    }
    assert_true(at_avg >= 0 && at_ratio > at_avg);

    /* Aggregate slots: 5 windows and 2 previous-event values. */
    assert_int_equal(s->aggs.n, 7);
    assert_int_equal(s->aggs.v[2].kind, EXPR_AGG_AVG);
    assert_true(s->aggs.v[2].window_ms == 7 * 86400000LL && s->aggs.v[2].every_ms == 3600000);
    assert_int_equal(s->aggs.v[4].kind, EXPR_AGG_PREV);
    assert_string_equal(s->aggs.v[4].text, "last(country)");
    assert_true(s->max_window_ms == 7 * 86400000LL);

    assert_true(s->has_model);
    assert_string_equal(s->model.path, "fraud.model.json");
    const char *res = s->model.resolved;
    assert_true(strlen(res) > strlen("/fraud.model.json"));
    assert_string_equal(res + strlen(res) - strlen("examples/fraud/fraud.model.json"),
                        "examples/fraud/fraud.model.json");
    assert_int_equal(s->model.ninputs, 8);
    assert_int_equal(s->model.inputs[0].kind, SPEC_INPUT_FIELD);
    assert_int_equal(s->model.inputs[1].kind, SPEC_INPUT_FEATURE);
    assert_int_equal(s->model.inputs[5].type, EXPR_BOOL);

    assert_int_equal(s->ndecisions, 3);
    assert_string_equal(s->decisions[0].then, "block");
    assert_string_equal(s->decisions[0].reason, "high fraud risk");
    assert_null(s->decisions[2].when);
    assert_string_equal(s->decisions[2].then, "allow");

    assert_int_equal(s->naggregates, 1);
    assert_string_equal(s->aggregates[0].name, "hourly_spend");
    assert_int_equal(s->aggregates[0].window, SPEC_WINDOW_TUMBLING);
    assert_true(s->aggregates[0].size_ms == 3600000);
    assert_int_equal(s->aggregates[0].nselect, 2);
    assert_int_equal(s->aggregates[0].aggs.n, 2);
    assert_int_equal(s->aggregates[0].select[0].type, EXPR_FLOAT);
    assert_int_equal(s->aggregates[0].select[1].type, EXPR_INT);
    spec_free(s);
}

/* Runs one event through the fraud spec the way the engine will, with the
 * aggregate slots filled by hand, and checks every feature and the decision. */
static void test_fraud_example_evaluates(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/fraud/fraud.yaml", source_dir());
    spec_t *s = NULL;
    char err[512];
    assert_int_equal(spec_load(path, &s, err, sizeof err), 0);
    const spec_source_t *src = &s->sources[0];

    /* 1. decode */
    cJSON *ev = cJSON_Parse("{\"card_id\": \"c1\", \"amount\": 6000, \"merchant\": \"m9\", "
                            "\"country\": \"FR\", \"ts\": \"2024-05-01T12:00:30Z\", "
                            "\"label\": 1}");
    assert_non_null(ev);
    expr_value_t fields[5];
    assert_int_equal(spec_decode_event(src, ev, fields, err, sizeof err), 0);
    assert_true(fields[1].type == EXPR_FLOAT && fields[1].as.f == 6000.0);

    /* 2. aggregates: what the window state would hold after this event */
    expr_value_t aggs[7];
    assert_int_equal(s->aggs.n, 7);
    expr_env_t env = {.fields = fields};
    for (uint32_t i = 0; i < s->aggs.n; i++) {
        const expr_agg_t *a = &s->aggs.v[i];
        if (a->arg) {
            expr_value_t arg;
            assert_int_equal(expr_eval(a->arg, &env, &arg), 0);
            assert_int_equal(arg.type, a->arg_type);
        }
    }
    aggs[0] = expr_int(3);                           /* count() over 1h */
    aggs[1] = expr_float(6500.0);                    /* sum(amount) over 1d */
    aggs[2] = expr_float(99.0);                      /* avg(amount) over 7d every 1h */
    aggs[3] = expr_int(2);                           /* distinct(merchant) over 1d */
    aggs[4] = expr_string("DE", 2);                  /* last(country) */
    aggs[5] = expr_time(fields[4].as.i - 90 * 1000); /* last(ts) */
    aggs[6] = expr_int(0);                           /* sum(if(amount < 2, 1, 0)) over 1h */

    /* 3. features in order */
    expr_value_t feats[8];
    assert_int_equal(s->nfeatures, 8);
    memset(feats, 0xAB, sizeof feats); /* poison: an out-of-order read would show */
    env.features = feats;
    env.aggs = aggs;
    for (uint32_t k = 0; k < s->nfeatures; k++) {
        uint32_t i = s->feature_order[k];
        assert_int_equal(expr_eval(s->features[i].expr, &env, &feats[i]), 0);
    }
    assert_true(feats[0].type == EXPR_INT && feats[0].as.i == 3);
    assert_float_equal(feats[1].as.f, 6500.0, 0);
    assert_float_equal(feats[4].as.f, 60.0, 1e-12); /* 6000 / (99 + 1) */
    assert_true(feats[5].type == EXPR_BOOL && feats[5].as.b);
    assert_float_equal(feats[6].as.f, 90.0, 0);

    /* 5. decisions: score 0.3 → not block, not score ≥ 0.5, but amount >
     * 5000 and new_country → review */
    expr_value_t extras[1] = {expr_float(0.3)};
    env.extras = extras;
    const char *decided = NULL;
    for (uint32_t r = 0; r < s->ndecisions && !decided; r++) {
        bool yes = true;
        if (s->decisions[r].when)
            assert_int_equal(expr_eval_bool(s->decisions[r].when, &env, &yes), 0);
        if (yes) decided = s->decisions[r].then;
    }
    assert_string_equal(decided, "review");

    /* The first event of a card: no previous event, so last() is null:
     * new_country is false (a comparison with null) and secs_since null. */
    aggs[4] = expr_null();
    aggs[5] = expr_null();
    for (uint32_t k = 0; k < s->nfeatures; k++) {
        uint32_t i = s->feature_order[k];
        assert_int_equal(expr_eval(s->features[i].expr, &env, &feats[i]), 0);
    }
    assert_true(feats[5].type == EXPR_BOOL && !feats[5].as.b);
    assert_int_equal(feats[6].type, EXPR_NULL);
    cJSON_Delete(ev);
    spec_free(s);
}

/* ---- broken specs ---- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_broken_specs(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/unit/specs/broken", source_dir());
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s (set WEIR_SOURCE_DIR)", dir);
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    int failures = 0;
    for (int i = 0; i < n; i++) {
        char path[8192], expected_path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(expected_path, sizeof expected_path, "%s/%.*s.expected", dir,
                 (int)(strlen(names[i]) - 5), names[i]);
        char *expected = read_file(expected_path);
        if (!expected) fail_msg("%s has no .expected file", names[i]);
        char want[16384 + 8];
        snprintf(want, sizeof want, "%s:%s", path, expected);
        spec_t *s = NULL;
        char err[2048] = "";
        int rc = spec_load(path, &s, err, sizeof err);
        if (rc == 0) {
            print_error("%s: loaded, want '%s'\n", names[i], expected);
            spec_free(s);
            failures++;
        } else if (strcmp(err, want) != 0) {
            print_error("%s:\n  got  '%s'\n  want '%s'\n", names[i], err, want);
            failures++;
        }
        free(expected);
        free(names[i]);
    }
    assert_true(n >= 30);
    assert_int_equal(failures, 0);
}

/* ---- smaller rules ---- */

#define HEAD                                                                                       \
    "pipeline: p\n"                                                                                \
    "sources:\n"                                                                                   \
    "  tx:\n"                                                                                      \
    "    key: k\n"                                                                                 \
    "    time: ts\n"                                                                               \
    "    fields: {k: string, x: int, ts: time}\n"

static void test_minimal_spec(void **state)
{
    (void)state;
    spec_t *s = load_ok("pipeline: p\nsources:\n  tx:\n    key: k\n    time: ts\n"
                        "    fields:\n      k: int\n      ts: time\n");
    assert_int_equal(s->partitions, 1);
    assert_true(s->sources[0].lateness_ms == 0);
    assert_int_equal(s->nfeatures, 0);
    assert_false(s->has_model);
    assert_int_equal(s->ndecisions, 0);
    spec_free(s);
}

static void test_online_store(void **state)
{
    (void)state;
    spec_t *s = load_ok(HEAD);
    assert_null(s->online.redis); /* none unless asked */
    spec_free(s);
    s = load_ok(HEAD "online_store:\n  redis: localhost:6379\n");
    assert_string_equal(s->online.redis, "localhost:6379");
    assert_string_equal(s->online.prefix, "p:tx:"); /* PIPELINE:SOURCE: */
    assert_true(s->online.ttl_ms == SPEC_ONLINE_TTL_STATE);
    spec_free(s);
    s = load_ok(HEAD "online_store: {redis: /run/redis.sock, prefix: 'f:', ttl: 0s}\n");
    assert_string_equal(s->online.redis, "/run/redis.sock");
    assert_string_equal(s->online.prefix, "f:");
    assert_true(s->online.ttl_ms == 0);
    spec_free(s);
    s = load_ok(HEAD "online_store: {redis: '[::1]:6379', ttl: 2h}\n");
    assert_true(s->online.ttl_ms == 7200000);
    spec_free(s);
    load_fails(HEAD "online_store: {prefix: x}\n",
               "t.yaml:7:15: online_store is missing required key 'redis' (HOST:PORT, or a unix "
               "socket's absolute path)");
    load_fails(HEAD "online_store: {redis: localhost}\n",
               "t.yaml:7:23: online_store redis 'localhost' is not HOST:PORT (a port from 1 to "
               "65535) nor a unix socket's absolute path");
    load_fails(HEAD "online_store: {redis: 'h:65536'}\n",
               "t.yaml:7:23: online_store redis 'h:65536' is not HOST:PORT (a port from 1 to "
               "65535) nor a unix socket's absolute path");
    load_fails(HEAD "online_store: {redis: 'h:1', tll: 1h}\n",
               "t.yaml:7:30: unknown key 'tll' in online_store; did you mean 'ttl'?");
    load_fails(HEAD "online_store: {redis: 'h:1', ttl: soon}\n",
               "t.yaml:7:35: bad duration 'soon' for online_store ttl: expected an integer "
               "followed by ms, s, m, h or d (500ms, 30s, 10m, 1h, 7d)");
    load_fails(HEAD "online_store: redis\n",
               "t.yaml:7:15: online_store must be a mapping (name: value lines), not a text");
    s = load_ok(HEAD "online_store: {redis: 'h:1', password_env: REDIS_PW, username: weir}\n");
    assert_string_equal(s->online.password_env, "REDIS_PW");
    assert_string_equal(s->online.username, "weir");
    spec_free(s);
    load_fails(HEAD "online_store: {redis: 'h:1', password_env: 's3cret!'}\n",
               "t.yaml:7:44: online_store password_env 's3cret!' is not an environment "
               "variable's name (letters, digits and '_', not starting with a digit): it names "
               "the variable that holds the password, not the password");
    load_fails(HEAD "online_store: {redis: 'h:1', username: weir}\n",
               "t.yaml:7:40: online_store username needs password_env (AUTH takes both)");
}

static void test_kafka(void **state)
{
    (void)state;
    spec_t *s = load_ok(HEAD);
    assert_null(s->sources[0].kafka.brokers); /* none unless asked */
    spec_free(s);
    s = load_ok(HEAD "    kafka: {brokers: 'k1:9092,k2:9093'}\n");
    const spec_kafka_t *k = &s->sources[0].kafka;
    assert_string_equal(k->brokers, "k1:9092,k2:9093");
    assert_string_equal(k->topic, "tx");        /* the source's name */
    assert_string_equal(k->group, "weir.p.tx"); /* weir.PIPELINE.SOURCE */
    assert_int_equal(k->nconfig, 0);
    spec_free(s);
    s = load_ok(HEAD
                "    kafka:\n      brokers: k:1\n      topic: pay.ments-2\n      group: fraud\n"
                "      config: {security.protocol: ssl, session.timeout.ms: 10000}\n");
    k = &s->sources[0].kafka;
    assert_string_equal(k->topic, "pay.ments-2");
    assert_string_equal(k->group, "fraud");
    assert_int_equal(k->nconfig, 2);
    assert_string_equal(k->config[0], "security.protocol");
    assert_string_equal(k->config[1], "ssl");
    assert_string_equal(k->config[2], "session.timeout.ms");
    assert_string_equal(k->config[3], "10000");
    assert_null(k->config[4]);
    spec_free(s);
    load_fails(HEAD "    kafka: {topic: t}\n", "t.yaml:7:12: source 'tx' kafka is missing required "
                                               "key 'brokers' (HOST:PORT[,HOST:PORT...])");
    load_fails(HEAD "    kafka: {brokers: 'k:1,'}\n",
               "t.yaml:7:22: source 'tx' kafka brokers 'k:1,' is not a list of HOST:PORT (a port "
               "from 1 to 65535), separated by commas");
    load_fails(HEAD "    kafka: {brokers: 'k:99999'}\n",
               "t.yaml:7:22: source 'tx' kafka brokers 'k:99999' is not a list of HOST:PORT (a "
               "port from 1 to 65535), separated by commas");
    load_fails(HEAD "    kafka: {brokers: 'k:1', topic: 'a b'}\n",
               "t.yaml:7:36: source 'tx' kafka topic 'a b' is not a Kafka topic name (1 to 249 of "
               "letters, digits, '.', '_' and '-')");
    load_fails(HEAD "    kafka: {brokers: 'k:1', group: ''}\n",
               "t.yaml:7:36: source 'tx' kafka group '' is empty, longer than 255 bytes, or holds "
               "a space or a byte outside printable ASCII");
    load_fails(HEAD "    kafka: {brokers: 'k:1', grup: g}\n",
               "t.yaml:7:29: unknown key 'grup' in source 'tx' kafka; did you mean 'group'?");
    load_fails(HEAD "    kafka: {brokers: 'k:1', config: {group.id: x}}\n",
               "t.yaml:7:38: source 'tx' kafka config: 'group.id' is weir's to set (brokers and "
               "group have keys of their own; the commits and the group membership are what make "
               "messages enter the log exactly once)");
    load_fails(HEAD "    kafka: {brokers: 'k:1', config: {ssl.key.password: x}}\n",
               "t.yaml:7:38: source 'tx' kafka config: 'ssl.key.password' is a secret, and a spec "
               "is stored in DATA/specs.d and in every checkpoint: not supported yet (file-based "
               "TLS, ssl.key.location, is)");
    load_fails(HEAD "    kafka: {brokers: 'k:1', config: {x: [1]}}\n",
               "t.yaml:7:41: source 'tx' kafka config 'x' must be a text, not a list");
    load_fails(HEAD "    kafka: {brokers: 'k:1', config: {partition.assignment.strategy: x}}\n",
               "t.yaml:7:38: source 'tx' kafka config: 'partition.assignment.strategy' is weir's "
               "to set (brokers and group have keys of their own; the commits and the group "
               "membership are what make messages enter the log exactly once)");
    load_fails(
        HEAD "    kafka: {brokers: 'k:1', config: [a]}\n",
        "t.yaml:7:37: source 'tx' kafka config must be a mapping (name: value lines), not a list");
}

static void test_decisions_sink(void **state)
{
    (void)state;
    spec_t *s = load_ok(HEAD);
    assert_null(s->decisions_kafka.brokers); /* none unless asked */
    spec_free(s);
    s = load_ok(HEAD "sinks:\n  decisions:\n    kafka: {brokers: 'k:1'}\n");
    assert_string_equal(s->decisions_kafka.brokers, "k:1");
    assert_string_equal(s->decisions_kafka.topic, "p.decisions");      /* PIPELINE.decisions */
    assert_string_equal(s->decisions_kafka.group, "weir.p.decisions"); /* the transactional id */
    spec_free(s);
    s = load_ok(HEAD "sinks:\n  decisions:\n    kafka: {brokers: 'k:1', topic: out, config: "
                     "{compression.type: lz4}}\n");
    assert_string_equal(s->decisions_kafka.topic, "out");
    assert_int_equal(s->decisions_kafka.nconfig, 1);
    spec_free(s);
    load_fails(HEAD "sinks:\n  decisions:\n    kafka: {topic: t}\n",
               "t.yaml:9:12: sinks decisions kafka is missing required key 'brokers' "
               "(HOST:PORT[,HOST:PORT...])");
    load_fails(HEAD "sinks:\n  late: {}\n",
               "t.yaml:8:3: unknown key 'late' in sinks; expected decisions");
    load_fails(HEAD "sinks:\n  decisions:\n    redis: {}\n",
               "t.yaml:9:5: unknown key 'redis' in sinks decisions; expected kafka");
    load_fails(HEAD "sinks:\n  decisions:\n    kafka: {brokers: 'k:1', config: {acks: '1'}}\n",
               "t.yaml:9:38: sinks decisions kafka config: 'acks' is weir's to set (brokers have "
               "a key of their own; the transactions and the idempotent producer's order are what "
               "put each decision in the topic once)");
    load_fails(HEAD
               "sinks:\n  decisions:\n    kafka: {brokers: 'k:1', config: {sasl.password: x}}\n",
               "t.yaml:9:38: sinks decisions kafka config: 'sasl.password' is a secret, and a spec "
               "is stored in DATA/specs.d and in every checkpoint: not supported yet (file-based "
               "TLS, ssl.key.location, is)");
}

static void test_feature_order_is_topological(void **state)
{
    (void)state;
    spec_t *s = load_ok(HEAD "features:\n"
                             "  d: c + b\n"
                             "  c: b * 2\n"
                             "  b: a + 1\n"
                             "  a: x\n"
                             "  e: 1\n");
    /* declared d c b a e → evaluated a b c d e */
    static const char *const want[] = {"a", "b", "c", "d", "e"};
    for (int k = 0; k < 5; k++)
        assert_string_equal(s->features[s->feature_order[k]].name, want[k]);
    assert_int_equal(s->features[0].type, EXPR_INT);
    spec_free(s);
}

static void test_model_path_resolution(void **state)
{
    (void)state;
    spec_t *s = load_ok(HEAD "model:\n  path: models/m.json\n  inputs: [x]\n");
    assert_string_equal(s->model.resolved, "dir/models/m.json");
    spec_free(s);
    s = load_ok(HEAD "model:\n  path: /abs/m.json\n  inputs: [x]\n");
    assert_string_equal(s->model.resolved, "/abs/m.json");
    spec_free(s);
}

static void test_decisions_and_score(void **state)
{
    (void)state;
    spec_t *s = load_ok(HEAD "model:\n  path: m.json\n  inputs: [x]\n"
                             "decisions:\n"
                             "  - when: score > 0.5 and lower(k) == \"vip\"\n"
                             "    then: review\n"
                             "  - when: x > 3\n"
                             "    then: block\n");
    assert_int_equal(s->ndecisions, 2);
    assert_non_null(s->decisions[1].when);
    assert_null(s->decisions[0].reason);
    assert_int_equal(s->lower_calls, 1);
    spec_free(s);
    load_fails(HEAD "features:\n  score: x * 2\nmodel:\n  path: m.json\n  inputs: [x]\n",
               "t.yaml:8:3: the name 'score' is reserved for the model's score; rename this "
               "feature");
}

static void test_aggregates_on_close(void **state)
{
    (void)state;
    spec_t *s = load_ok(HEAD "aggregates:\n"
                             "  a:\n    window: hopping 1h every 15m\n"
                             "    select: {n: count(), avg: sum(x) / count(), top: max(x)}\n"
                             "  b:\n    window: session gap 30m\n"
                             "    select: {last_x: last(x), first_ts: first(ts)}\n");
    assert_int_equal(s->naggregates, 2);
    assert_int_equal(s->aggregates[0].window, SPEC_WINDOW_HOPPING);
    assert_true(s->aggregates[0].size_ms == 3600000 && s->aggregates[0].every_ms == 900000);
    assert_int_equal(s->aggregates[0].aggs.n, 3); /* count() shared */
    assert_int_equal(s->aggregates[0].select[1].type, EXPR_FLOAT);
    assert_int_equal(s->aggregates[1].window, SPEC_WINDOW_SESSION);
    assert_true(s->aggregates[1].gap_ms == 1800000);
    assert_int_equal(s->aggregates[1].aggs.v[0].kind, EXPR_AGG_LAST);
    assert_int_equal(s->aggregates[1].select[1].type, EXPR_TIME);
    spec_free(s);
}

static void test_error_positions_in_quoted_scalars(void **state)
{
    (void)state;
    /* the column points into the quoted text, past the quote */
    load_fails(HEAD "features:\n  f: \"x + xx\"\n",
               "t.yaml:8:11: unknown name 'xx'; did you mean 'x'?");
    load_fails(HEAD "features:\n  f: 'x +'\n", "t.yaml:8:10: expected a value, a name or '(' but "
                                               "found the end of the expression");
    /* escapes in double quotes and '' in single quotes are followed */
    load_fails(HEAD "features:\n  w: \"x\\t+ \\\"q\\\"\"\n",
               "t.yaml:8:10: type error: '+' cannot take int and string");
    load_fails(HEAD "features:\n  w: 'k == ''it''''s'''\n",
               "t.yaml:8:18: unexpected ''s'' after a complete expression");
    /* a plain scalar over several lines */
    load_fails(HEAD "features:\n  z: x +\n     (sum(x) over 1h *\n      bogus)\n",
               "t.yaml:10:7: unknown name 'bogus'");
    /* a flow mapping */
    load_fails(HEAD "aggregates:\n  a:\n    window: tumbling 1h\n    select: {n: count(), m: "
                    "sum(k)}\n",
               "t.yaml:10:33: type error: sum() needs a number, got string");
}

static void test_unreadable_file(void **state)
{
    (void)state;
    spec_t *s;
    char err[512];
    assert_int_equal(spec_load("/nonexistent/x.yaml", &s, err, sizeof err), WEIR_EIO);
    assert_non_null(strstr(err, "/nonexistent/x.yaml: cannot open"));
}

static void test_no_leak_on_any_error(void **state)
{
    (void)state;
    /* Every prefix of the fraud spec: loads or fails, never leaks. */
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/fraud/fraud.yaml", source_dir());
    char *text = read_file(path);
    assert_non_null(text);
    size_t before = weir_alloc_used();
    size_t len = strlen(text);
    for (size_t n = 0; n <= len; n += 7) {
        spec_t *s = NULL;
        char err[512];
        if (spec_load_string(text, n, "f.yaml", &s, err, sizeof err) == 0) spec_free(s);
    }
    assert_int_equal(weir_alloc_used(), before);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fraud_example_loads),
        cmocka_unit_test(test_fraud_example_evaluates),
        cmocka_unit_test(test_broken_specs),
        cmocka_unit_test(test_minimal_spec),
        cmocka_unit_test(test_online_store),
        cmocka_unit_test(test_kafka),
        cmocka_unit_test(test_decisions_sink),
        cmocka_unit_test(test_feature_order_is_topological),
        cmocka_unit_test(test_model_path_resolution),
        cmocka_unit_test(test_decisions_and_score),
        cmocka_unit_test(test_aggregates_on_close),
        cmocka_unit_test(test_error_positions_in_quoted_scalars),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_no_leak_on_any_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
