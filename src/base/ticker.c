/* ticker.c — periodic background threads (see ticker.h). */
#include "base/ticker.h"

#include <errno.h>
#include <time.h>

#include "base/clock.h"

static void *ticker_main(void *arg)
{
    weir_ticker_t *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts;
        weir_deadline_in_ms(&ts, t->interval_ms);
        int w = 0;
        while (!t->stop && !t->woken && w != ETIMEDOUT) w = pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        if (t->stop) break;
        t->woken = 0;
        pthread_mutex_unlock(&t->mu);
        t->fn(t->arg);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

void weir_ticker_start(weir_ticker_t *t, int64_t interval_ms, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->stop = t->woken = 0;
    t->interval_ms = interval_ms;
    t->fn = fn;
    t->arg = arg;
    pthread_create(&t->thread, NULL, ticker_main, t);
    t->started = 1;
}

void weir_ticker_wake(weir_ticker_t *t)
{
    if (!t->started) return;
    pthread_mutex_lock(&t->mu);
    t->woken = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void weir_ticker_stop(weir_ticker_t *t)
{
    if (!t->started) return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    t->started = 0;
}
