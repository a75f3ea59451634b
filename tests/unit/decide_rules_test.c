/* decide_rules_test.c — decision rules over the model's outputs: score,
 * class and scores[i] in `when`, first match wins, `emit`, and the load-time
 * errors (a rule reading an output the model does not have, a bad emit
 * name). Uses a weir-linear model written to a temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "decide/decide.h"
#include "spec/spec.h"

static char model_path[64];

static int write_model(void **state)
{
    (void)state;
    snprintf(model_path, sizeof model_path, "/tmp/weir-decide-test-%d.json", (int)getpid());
    FILE *f = fopen(model_path, "w");
    assert_non_null(f);
    /* score = sigmoid(amount - 100): 0.5 at 100, ~1 at 110, ~0 at 90 */
    fputs("{\"format\":\"weir-linear\",\"link\":\"logistic\",\"intercept\":-100,"
          "\"weights\":{\"amount\":1}}",
          f);
    fclose(f);
    return 0;
}

static int remove_model(void **state)
{
    (void)state;
    unlink(model_path);
    return 0;
}

static spec_t *load(const char *rules, char *err, size_t errlen)
{
    char text[2048];
    snprintf(text, sizeof text,
             "pipeline: t\n"
             "sources:\n"
             "  s:\n"
             "    key: k\n"
             "    time: ts\n"
             "    lateness: 1s\n"
             "    fields: {k: string, amount: float, ts: time}\n"
             "features:\n"
             "  n: count() over 1h\n"
             "model:\n"
             "  path: %s\n"
             "  inputs: [amount]\n"
             "decisions:\n%s",
             model_path, rules);
    spec_t *s = NULL;
    if (spec_load_string(text, strlen(text), "t.yaml", &s, err, errlen) != 0) return NULL;
    return s;
}

static decision_t decide_amount(decide_t *d, double amount)
{
    expr_value_t fields[3] = {expr_string("a", 1), expr_float(amount), expr_time(0)};
    expr_value_t features[1] = {expr_int(1)};
    decision_t out;
    char scratch[64];
    assert_int_equal(decide_event(d, fields, features, 1, &out, scratch, sizeof scratch), 0);
    return out;
}

static void rules_read_score_class_and_scores(void **state)
{
    (void)state;
    char err[512];
    spec_t *s = load("  - when: scores[0] >= 0.99\n"
                     "    then: block\n"
                     "    emit: blocked\n"
                     "  - when: class == 1\n"
                     "    then: review\n"
                     "    reason: above even odds\n"
                     "  - then: allow\n",
                     err, sizeof err);
    if (!s) fail_msg("%s", err);
    decide_t *d;
    if (decide_new(s, NULL, &d, err, sizeof err) != 0) fail_msg("%s", err);

    decision_t out = decide_amount(d, 110);
    assert_string_equal(out.decision, "block");
    assert_string_equal(out.emit, "blocked");
    assert_int_equal(out.rule, 0);
    assert_true(out.score > 0.99 && out.klass == 1 && out.nscores == 1 && out.scores[0] == out.score);
    assert_int_equal(out.ncontribs, 1);
    assert_int_equal(out.contribs[0].input, 0);

    out = decide_amount(d, 101);
    assert_string_equal(out.decision, "review");
    assert_string_equal(out.reason, "above even odds");
    assert_null(out.emit);

    out = decide_amount(d, 90);
    assert_string_equal(out.decision, "allow");
    assert_int_equal(out.klass, 0);
    assert_int_equal(out.rule, 2);
    decide_free(d);
    spec_free(s);
}

static void rules_reading_missing_outputs_are_refused(void **state)
{
    (void)state;
    char err[512];
    spec_t *s = load("  - when: scores[1] > 0.5\n    then: block\n  - then: allow\n", err, sizeof err);
    if (!s) fail_msg("%s", err);
    decide_t *d;
    assert_int_not_equal(decide_new(s, NULL, &d, err, sizeof err), 0);
    assert_non_null(strstr(err, "scores[1]"));
    spec_free(s);

    assert_null(load("  - when: scores[64] > 0.5\n    then: block\n", err, sizeof err));
    assert_non_null(strstr(err, "at most 64"));
    assert_null(load("  - when: score > 0.5\n    then: block\n    emit: ../x\n", err, sizeof err));
    assert_non_null(strstr(err, "t.yaml:16:11: emit needs an output name"));
    assert_null(load("  - when: scores[x] > 0.5\n    then: block\n", err, sizeof err));
    assert_non_null(strstr(err, "an index from 0 to 9999"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rules_read_score_class_and_scores),
        cmocka_unit_test(rules_reading_missing_outputs_are_refused),
    };
    return cmocka_run_group_tests(tests, write_model, remove_model);
}
