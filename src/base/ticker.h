/* ticker.h — a background thread that calls fn every interval_ms, or at
 * once when woken, until stopped: the shape of weir's periodic work (the
 * decision flusher, the state gauges, periodic checkpoints), written once.
 * fn runs without the ticker's lock held, so it may take any lock. */
#ifndef WEIR_BASE_TICKER_H
#define WEIR_BASE_TICKER_H

#include <pthread.h>
#include <stdint.h>

typedef struct weir_ticker {
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop and woken */
    pthread_cond_t cv;
    int started, stop, woken;
    int64_t interval_ms;
    void (*fn)(void *arg);
    void *arg;
} weir_ticker_t;

/* Starts the thread (interval_ms > 0). A zeroed ticker that was never
 * started may be stopped. */
void weir_ticker_start(weir_ticker_t *t, int64_t interval_ms, void (*fn)(void *arg), void *arg);
/* The next call of fn comes now rather than at the end of the interval. */
void weir_ticker_wake(weir_ticker_t *t);
/* Stops the thread and waits for it (after a call of fn in progress). */
void weir_ticker_stop(weir_ticker_t *t);

#endif
