/* memlimit.c — the memory this process may have (see memlimit.h). */
#include "base/memlimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A cgroup limit file's value: bytes, or 0 for none ("max", a missing
 * file, or cgroup v1's "unlimited", a page-rounded 2^63 - 1). */
static uint64_t limit_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[64];
    uint64_t v = 0;
    if (fgets(line, sizeof line, f) && strncmp(line, "max", 3) != 0) {
        char *end;
        unsigned long long n = strtoull(line, &end, 10);
        if (end != line && n < (1ull << 62)) v = n;
    }
    fclose(f);
    return v;
}

/* The tightest limit named `file` on the way from the cgroup at `path`
 * (under sysfs/sub) up to the root: a parent's limit binds its children too,
 * and in a container without its own cgroup namespace the process's path
 * may not exist under the mounted tree at all. 0: none. */
static uint64_t tightest(const char *sysfs, const char *sub, char *path, const char *file)
{
    uint64_t best = 0;
    for (;;) {
        char full[8192];
        snprintf(full, sizeof full, "%s%s%s/%s", sysfs, sub, strcmp(path, "/") ? path : "", file);
        uint64_t v = limit_file(full);
        if (v && (!best || v < best)) best = v;
        char *slash = strrchr(path, '/');
        if (!slash || slash == path) {
            if (!strcmp(path, "/")) break;
            strcpy(path, "/");
            continue;
        }
        *slash = '\0';
    }
    return best;
}

/* The v2 line "0::PATH" or the v1 line whose controllers include "memory". */
uint64_t weir_cgroup_memory_limit(const char *proc_cgroup, const char *sysfs, const char **which)
{
    FILE *f = fopen(proc_cgroup, "r");
    if (!f) return 0;
    char line[4096];
    uint64_t best = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/') continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1;
        uint64_t v = 0;
        const char *name = NULL;
        if (!*ctrls && !strncmp(line, "0", 1)) {
            v = tightest(sysfs, "", c2 + 1, "memory.max");
            name = "the cgroup's memory.max";
        } else if (strstr(ctrls, "memory")) {
            v = tightest(sysfs, "/memory", c2 + 1, "memory.limit_in_bytes");
            name = "the cgroup's memory.limit_in_bytes";
        }
        if (v && (!best || v < best)) {
            best = v;
            *which = name;
        }
    }
    fclose(f);
    return best;
}

uint64_t weir_memory_limit(const char **which)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t ram = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    const char *cg_name = NULL;
    uint64_t cg = weir_cgroup_memory_limit("/proc/self/cgroup", "/sys/fs/cgroup", &cg_name);
    if (cg && (!ram || cg < ram)) {
        *which = cg_name;
        return cg;
    }
    *which = "the machine's RAM";
    return ram;
}

uint64_t weir_memory_resident(uint64_t *anon)
{
    if (anon) *anon = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size, resident, shared;
    int n = fscanf(f, "%llu %llu %llu", &size, &resident, &shared);
    fclose(f);
    if (n != 3) return 0;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (anon) *anon = (resident > shared ? resident - shared : 0) * page;
    return resident * page;
}
