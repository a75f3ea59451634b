/* model_slot_test.c — the live-model slot: scorers on several threads while
 * another thread keeps swapping models; every scoring sees a whole model
 * (its score is one of the installed versions), the old models are freed
 * (allocation count returns to where it started) and a swap waits for the
 * scorings in flight. Run under ASan a use after free would abort. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "model/model.h"

#define VERSIONS 200
#define READERS 3

/* A linear model whose score is exactly its version number. */
static weir_model_t *versioned(int v)
{
    char json[256];
    int n = snprintf(json, sizeof json,
                     "{\"format\": \"weir-linear\", \"intercept\": %d, \"weights\": {\"x\": 0}}", v);
    weir_model_t *m;
    char err[256];
    if (model_load_mem(json, (size_t)n, "versioned", &m, err, sizeof err)) fail_msg("%s", err);
    return m;
}

typedef struct shared {
    model_slot_t *slot;
    atomic_int stop;
    atomic_long scorings;
    atomic_int bad;
} shared_t;

static void *reader(void *arg)
{
    shared_t *s = arg;
    double x = 1.0, out, last = -1;
    while (!atomic_load(&s->stop)) {
        uint32_t ticket;
        const weir_model_t *m = model_slot_enter(s->slot, &ticket);
        model_predict_row(m, &x, &out, 0);
        /* The model stays whole while we hold it: score twice, same answer. */
        double again;
        model_predict_row(m, &x, &again, 0);
        model_slot_exit(s->slot, ticket);
        if (out != again || out < 0 || out > VERSIONS || out < last) atomic_store(&s->bad, 1);
        last = out; /* versions only go up */
        atomic_fetch_add(&s->scorings, 1);
    }
    return NULL;
}

static void swap_under_load(void **state)
{
    (void)state;
    size_t before = weir_alloc_used();
    shared_t s = {.slot = model_slot_new(versioned(0))};
    atomic_init(&s.stop, 0);
    atomic_init(&s.scorings, 0);
    atomic_init(&s.bad, 0);
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) pthread_create(&th[i], NULL, reader, &s);
    for (int v = 1; v <= VERSIONS; v++) {
        model_slot_swap(s.slot, versioned(v));
        if (v % 20 == 0) usleep(1000);
    }
    atomic_store(&s.stop, 1);
    for (int i = 0; i < READERS; i++) pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&s.bad), 0);
    assert_true(atomic_load(&s.scorings) > 0);
    assert_int_equal(model_slot_version(s.slot), VERSIONS);
    uint32_t t;
    double x = 1, out;
    model_predict_row(model_slot_enter(s.slot, &t), &x, &out, 0);
    model_slot_exit(s.slot, t);
    assert_true(out == VERSIONS);
    model_slot_free(s.slot);
    assert_int_equal(weir_alloc_used(), before); /* every old model was freed */
}

typedef struct swapper {
    model_slot_t *slot;
    atomic_int done;
} swapper_t;

static void *do_swap(void *arg)
{
    swapper_t *w = arg;
    model_slot_swap(w->slot, versioned(2));
    atomic_store(&w->done, 1);
    return NULL;
}

static void swap_waits_for_scoring_in_flight(void **state)
{
    (void)state;
    swapper_t w = {.slot = model_slot_new(versioned(1))};
    atomic_init(&w.done, 0);
    uint32_t ticket;
    const weir_model_t *held = model_slot_enter(w.slot, &ticket);
    pthread_t th;
    pthread_create(&th, NULL, do_swap, &w);
    usleep(50 * 1000);
    /* The swap has installed the new model but must not free the held one. */
    assert_int_equal(atomic_load(&w.done), 0);
    double x = 0, out;
    model_predict_row(held, &x, &out, 0);
    assert_true(out == 1);
    uint32_t t2;
    model_predict_row(model_slot_enter(w.slot, &t2), &x, &out, 0);
    model_slot_exit(w.slot, t2);
    assert_true(out == 2); /* new scorings already see the new model */
    model_slot_exit(w.slot, ticket);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&w.done), 1);
    model_slot_free(w.slot);
}

static void retain_outlives_slot(void **state)
{
    (void)state;
    weir_model_t *m = versioned(7);
    model_slot_t *s = model_slot_new(model_retain(m));
    assert_int_equal(model_version(m), 1);
    model_slot_swap(s, versioned(8));
    /* The version travels with the model: whoever scored with it knows it. */
    uint32_t ticket;
    const weir_model_t *now = model_slot_enter(s, &ticket);
    assert_int_equal(model_version(now), 2);
    model_slot_exit(s, ticket);
    double x = 0, out;
    model_predict_row(m, &x, &out, 0); /* our own reference keeps it alive */
    assert_true(out == 7);
    model_slot_free(s);
    model_release(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(swap_under_load),
        cmocka_unit_test(swap_waits_for_scoring_in_flight),
        cmocka_unit_test(retain_outlives_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
