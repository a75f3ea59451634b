/* decide_ledger_test.c — DATA/models (model_ledger.c): versions by digest,
 * the next number for a new one, nothing added by a reader, one line per
 * model whatever its path holds, and a damaged ledger refused as it is;
 * DATA/specs (spec_ledger.c): versions by text, each text kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "decide/model_ledger.h"
#include "decide/spec_ledger.h"

#define DA "xxh128:00000000000000000000000000000001"
#define DB "xxh128:0000000000000000000000000000000b"
#define DC "xxh128:0000000000000000000000000000000c"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/weir-ledger-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static uint64_t version(const char *digest, const char *path, int add)
{
    uint64_t v = 99;
    char err[512];
    int rc = model_ledger_version(dir, digest, path, add, 0, &v, err, sizeof err);
    if (rc) fail_msg("%s", err);
    return v;
}

static void ledger_text(weir_buf_t *b)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/" MODEL_LEDGER_FILE, dir);
    assert_int_equal(weir_read_file(path, 1 << 20, b, err, sizeof err), 0);
}

static void versions_by_digest(void **state)
{
    (void)state;
    assert_int_equal(version(DA, "/m/a", 0), 0); /* no ledger: unknown, and none made */
    assert_int_equal(version(DA, "/m/a", 1), 1);
    assert_int_equal(version(DB, "/m/b\nx", 1), 2);
    assert_int_equal(version(DA, "/m/elsewhere", 1), 1); /* by content, not by path */
    assert_int_equal(version(DC, "/m/c", 0), 0);         /* a reader adds nothing */
    assert_int_equal(version(DC, "/m/c", 1), 3);
    weir_buf_t b = WEIR_BUF_INIT;
    ledger_text(&b);
    /* a comment line, then one line per model; the newline in b's path is
     * not a line of its own */
    int lines = 0;
    for (size_t i = 0; i < b.len; i++)
        lines += b.data[i] == '\n';
    assert_int_equal(lines, 4);
    assert_non_null(strstr(b.data, "2 " DB " "));
    assert_non_null(strstr(b.data, " /m/b?x\n"));
    buf_free(&b);
}

static void damaged_ledger_refused_as_it_is(void **state)
{
    (void)state;
    static const char *bad[] = {
        "1 " DA " 2026-01-01T00:00:00Z /a\n1 " DB " 2026-01-01T00:00:00Z /b\n", /* no growth */
        "1 " DA " 2026-01-01T00:00:00Z\n",                                      /* no path */
        "1 xxh128:00 2026-01-01T00:00:00Z /a\n",                                /* short digest */
        "x " DA " 2026-01-01T00:00:00Z /a\n",
        "1 " DA " yesterday /a\n",
    };
    char path[128];
    snprintf(path, sizeof path, "%s/" MODEL_LEDGER_FILE, dir);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        uint64_t v;
        char err[512];
        assert_int_not_equal(model_ledger_version(dir, DC, "/c", 1, 0, &v, err, sizeof err), 0);
        assert_non_null(strstr(err, "line "));
        weir_buf_t b = WEIR_BUF_INIT;
        ledger_text(&b);
        assert_string_equal(b.data, bad[i]); /* not rewritten */
        buf_free(&b);
    }
}

/* THE FIRST LEDGER beside decisions numbered without one: above their
 * largest version, said in a comment; a link to nothing is refused. */
static void first_ledger_numbers_above_the_floor(void **state)
{
    (void)state;
    uint64_t v;
    char err[512], path[128];
    assert_int_equal(model_ledger_version(dir, DA, "/a", 1, 7, &v, err, sizeof err), 0);
    assert_int_equal(v, 8);
    assert_int_equal(model_ledger_version(dir, DB, "/b", 1, 7, &v, err, sizeof err), 0);
    assert_int_equal(v, 9); /* (the floor matters for the first line only) */
    weir_buf_t b = WEIR_BUF_INIT;
    ledger_text(&b);
    assert_non_null(strstr(b.data, "# versions up to 7 are in decisions made before this ledger"));
    buf_free(&b);
    snprintf(path, sizeof path, "%s/" MODEL_LEDGER_FILE, dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("/nonexistent/models", path), 0);
    assert_true(model_ledger_exists(dir));
    assert_int_not_equal(model_ledger_version(dir, DA, "/a", 1, 0, &v, err, sizeof err), 0);
    assert_non_null(strstr(err, "cannot open"));
    char target[64];
    assert_true(readlink(path, target, sizeof target) > 0); /* still the link */
}

static uint64_t spec_version(const char *text, int add)
{
    uint64_t v = 99;
    char err[512];
    if (spec_ledger_version(dir, text, strlen(text), "/s/fraud.yaml", add, &v, err, sizeof err))
        fail_msg("%s", err);
    return v;
}

static void spec_versions_by_text_with_their_copies(void **state)
{
    (void)state;
    const char *a = "pipeline: a\n", *b = "pipeline: a\n# edited\n";
    char path[256], err[256];
    assert_int_equal(spec_version(a, 0), 0); /* a reader adds nothing */
    assert_false(spec_ledger_copy(dir, 1, path, sizeof path));
    assert_int_equal(spec_version(a, 1), 1);
    assert_int_equal(spec_version(b, 1), 2);
    assert_int_equal(spec_version(a, 1), 1); /* the same text, the same version */
    assert_int_equal(spec_version(b, 0), 2);
    for (uint64_t v = 1; v <= 2; v++) {
        weir_buf_t t = WEIR_BUF_INIT;
        assert_true(spec_ledger_copy(dir, v, path, sizeof path));
        assert_int_equal(weir_read_file(path, 1 << 20, &t, err, sizeof err), 0);
        const char *want = v == 1 ? a : b;
        assert_int_equal(t.len, strlen(want));
        assert_memory_equal(t.data, want, t.len);
        buf_free(&t);
    }
    assert_false(spec_ledger_copy(dir, 3, path, sizeof path));
    /* one ledger per kind: the models' knows none of it */
    assert_int_equal(version(DA, "/m/a", 0), 0);
    /* A ledger deleted by hand: the kept copies still hold versions 1 and
     * 2, so a new text is 3, and the first text's copy stays as it was. */
    snprintf(path, sizeof path, "%s/" SPEC_LEDGER_FILE, dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(spec_version("pipeline: c\n", 1), 3);
    weir_buf_t t = WEIR_BUF_INIT;
    assert_true(spec_ledger_copy(dir, 3, path, sizeof path));
    snprintf(path, sizeof path, "%s/" SPEC_COPIES_DIR "/1.yaml", dir);
    assert_int_equal(weir_read_file(path, 1 << 20, &t, err, sizeof err), 0);
    assert_int_equal(t.len, strlen(a));
    assert_memory_equal(t.data, a, t.len);
    buf_free(&t);
    snprintf(path, sizeof path, "%s/" SPEC_LEDGER_FILE, dir);
    assert_int_equal(weir_read_file(path, 1 << 20, &t, err, sizeof err), 0);
    assert_non_null(strstr(t.data, "# versions up to 2 were given before this ledger"));
    buf_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(versions_by_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(first_ledger_numbers_above_the_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(damaged_ledger_refused_as_it_is, setup, teardown),
        cmocka_unit_test_setup_teardown(spec_versions_by_text_with_their_copies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
