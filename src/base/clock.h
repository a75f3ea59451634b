/* clock.h — wall and monotonic time. Engine code never reads the wall clock
 * on the event path (principle 2); these are for append timestamps, fsync
 * pacing, retention and benchmarks. */
#ifndef WEIR_BASE_CLOCK_H
#define WEIR_BASE_CLOCK_H

#include <stdint.h>

int64_t weir_wall_ms(void);  /* milliseconds since the Unix epoch */
uint64_t weir_mono_ns(void); /* CLOCK_MONOTONIC in nanoseconds */

#endif
