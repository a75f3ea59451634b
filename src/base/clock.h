/* clock.h — wall and monotonic time. Engine code never reads the wall clock
 * on the event path (principle 2); these are for append timestamps, fsync
 * pacing, retention, benchmarks, and the edge's check of an event's time
 * against the clock (max_future: before the event is logged, so replay
 * never depends on it). */
#ifndef WEIR_BASE_CLOCK_H
#define WEIR_BASE_CLOCK_H

#include <stdint.h>

struct timespec;

int64_t weir_wall_ms(void);  /* milliseconds since the Unix epoch */
uint64_t weir_mono_ns(void); /* CLOCK_MONOTONIC in nanoseconds */
/* The CLOCK_REALTIME instant ms milliseconds from now, the deadline
 * pthread_cond_timedwait takes (periodic threads: fsync, flush, checkpoint). */
void weir_deadline_in_ms(struct timespec *ts, int64_t ms);

#endif
