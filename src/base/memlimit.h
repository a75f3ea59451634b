/* memlimit.h — how much memory this process may have: the machine's RAM,
 * or less if its cgroup (a container, a systemd unit) says so. weir sizes
 * its default memory budget from it (serve/runtime.h, MEMORY BUDGET): the
 * kernel's OOM killer does not ask, and a process killed for memory
 * replays the same log into the same memory at restart, and is killed
 * again. */
#ifndef WEIR_BASE_MEMLIMIT_H
#define WEIR_BASE_MEMLIMIT_H

#include <stdint.h>

/* The smaller of physical memory and the cgroup's limit (cgroup v2
 * memory.max, v1 memory.limit_in_bytes; "max" or v1's near-2^63 is no
 * limit), in bytes; *which names it ("the machine's RAM", "the cgroup's
 * memory.max"). 0 if neither can be read. */
uint64_t weir_memory_limit(const char **which);
/* The cgroup limit alone, from a /proc/PID/cgroup file and a cgroup tree
 * mounted at sysfs (normally "/proc/self/cgroup" and "/sys/fs/cgroup"; a
 * test's own files otherwise): 0 if none. */
uint64_t weir_cgroup_memory_limit(const char *proc_cgroup, const char *sysfs, const char **which);

/* The process's resident memory in bytes (0 if /proc/self/statm cannot be
 * read), and in *anon the part that is not file-backed (resident minus
 * shared: the heap, stacks, huge pages collapsed; what the OOM killer
 * weighs), which may be NULL. */
uint64_t weir_memory_resident(uint64_t *anon);

#endif
