/* decide_outputs_test.c — the lines of DATA/outputs/<aggregate>.ndjson as
 * outputs_window_line writes them, in particular with the span text it
 * keeps between lines (outputs_span_t): each line carries its own window's
 * start and end, whichever window came before it. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "decide/outputs.h"
#include "spec/spec.h"

static const char SPEC[] = "pipeline: t\n"
                           "sources:\n"
                           "  s:\n"
                           "    key: k\n"
                           "    time: ts\n"
                           "    lateness: 1s\n"
                           "    fields: {k: string, amount: float, ts: time}\n"
                           "aggregates:\n"
                           "  hourly:\n"
                           "    window: tumbling 1h\n"
                           "    select: { total: sum(amount), n: count() }\n";

static void window_lines_carry_their_own_span(void **state)
{
    (void)state;
    char err[512], dir[] = "/tmp/weir-outputs-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    spec_t *s = NULL;
    if (spec_load_string(SPEC, strlen(SPEC), "t.yaml", &s, err, sizeof err) != 0) fail_msg("%s", err);
    outputs_t *o = NULL;
    if (outputs_open(dir, s, &o, err, sizeof err) != 0) fail_msg("%s", err);

    /* Same span twice, then spans that share only their start, only their
     * end, neither, and back: every line must name its own. */
    static const int64_t spans[][2] = {
        {3600000, 7200000},         {3600000, 7200000}, {3600000, 10800000},
        {0, 10800000},              {-3600000, 0},      {INT64_MIN, INT64_MAX},
        {3600000, 7200000},         {1767222000000, 1767225600000},
    };
    outputs_span_t span = {0};
    weir_buf_t b = WEIR_BUF_INIT;
    expr_value_t vals[2] = {expr_float(82.64), expr_int(1)};
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
        buf_reset(&b);
        int partial = i == 4; /* one marked (a reload's): the only difference */
        outputs_window_line(o, &b, &span, 0, &s->aggregates[0], (weir_slice_t){"c1", 2},
                            spans[i][0], spans[i][1], partial, vals);
        char want[256];
        snprintf(want, sizeof want,
                 "{\"aggregate\":\"hourly\",\"key\":\"c1\",\"start\":%" PRId64 ",\"end\":%" PRId64
                 "%s,\"total\":82.64,\"n\":1}\n",
                 spans[i][0], spans[i][1], partial ? ",\"partial\":true" : "");
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
    }
    buf_free(&b);
    assert_int_equal(outputs_close(o, err, sizeof err), 0);
    spec_free(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(window_lines_carry_their_own_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
