/* base_memlimit_test.c — the cgroup memory limit read from a cgroup tree
 * built here: v2 and v1, a parent's limit binding its child, "max" and
 * v1's near-2^63 as no limit, a process path missing from the mounted tree
 * (a container without its own cgroup namespace), no file at all; and the
 * whole limit never above the machine's RAM. */
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

#include "base/memlimit.h"

static char root[256];

static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    /* make the parents */
    for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(path, 0755);
        *s = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static uint64_t limit(const char **which)
{
    char proc[300], sysfs[300];
    snprintf(proc, sizeof proc, "%s/proc-cgroup", root);
    snprintf(sysfs, sizeof sysfs, "%s/sys", root);
    *which = NULL;
    return weir_cgroup_memory_limit(proc, sysfs, which);
}

/* A fresh tree for each test. */
static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/weir-memlimit-%d-XXXXXX", (int)getpid());
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void v2_tightest_on_the_path_up(void **state)
{
    (void)state;
    const char *which;
    put("proc-cgroup", "0::/app/worker\n");
    put("sys/app/worker/memory.max", "max\n");
    put("sys/app/memory.max", "2147483648\n");
    put("sys/memory.max", "4294967296\n");
    assert_int_equal(limit(&which), 2147483648u);
    assert_string_equal(which, "the cgroup's memory.max");
    put("sys/app/worker/memory.max", "1073741824\n");
    assert_int_equal(limit(&which), 1073741824u);
}

static void v2_missing_path_falls_back_to_the_root(void **state)
{
    (void)state;
    const char *which;
    put("proc-cgroup", "0::/not/mounted/here\n");
    put("sys/memory.max", "536870912\n");
    assert_int_equal(limit(&which), 536870912u);
}

static void v1_memory_controller_and_unlimited(void **state)
{
    (void)state;
    const char *which;
    put("proc-cgroup", "9:name=systemd:/\n4:cpu,memory:/job\n0::/\n");
    put("sys/memory/job/memory.limit_in_bytes", "9223372036854771712\n");
    put("sys/memory/memory.limit_in_bytes", "9223372036854771712\n");
    assert_int_equal(limit(&which), 0);
    put("sys/memory/job/memory.limit_in_bytes", "805306368\n");
    assert_int_equal(limit(&which), 805306368u);
    assert_string_equal(which, "the cgroup's memory.limit_in_bytes");
}

static void no_cgroup_file_is_no_limit(void **state)
{
    (void)state;
    const char *which;
    char proc[300];
    snprintf(proc, sizeof proc, "%s/proc-cgroup", root);
    unlink(proc);
    assert_int_equal(limit(&which), 0);
}

static void never_above_the_machine(void **state)
{
    (void)state;
    const char *which = NULL;
    uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t v = weir_memory_limit(&which);
    assert_true(v > 0 && v <= ram);
    assert_non_null(which);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(v2_tightest_on_the_path_up, setup, teardown),
        cmocka_unit_test_setup_teardown(v2_missing_path_falls_back_to_the_root, setup, teardown),
        cmocka_unit_test_setup_teardown(v1_memory_controller_and_unlimited, setup, teardown),
        cmocka_unit_test_setup_teardown(no_cgroup_file_is_no_limit, setup, teardown),
        cmocka_unit_test(never_above_the_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
