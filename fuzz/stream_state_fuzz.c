/* stream_state_fuzz.c — fuzz target for every decoder of src/stream state
 * (checkpoints are read back from disk: untrusted bytes). The first byte
 * picks the decoder, the rest is its input:
 *   0..2  win_decode for an exact window of every kind, a bucketed window of
 *         every kind, an id window
 *   3     keymap_decode with values made of two windows (as the engine will)
 *   4     qsketch_decode   5  hll_decode   6  mset_decode
 * A successful decode is exercised (queries, adds, expiry, re-encode) so a
 * state that passes the checks but breaks an invariant is caught too. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "stream/codec.h"
#include "stream/hll.h"
#include "stream/keymap.h"
#include "stream/mset.h"
#include "stream/qsketch.h"
#include "stream/win.h"

#define ID_KINDS                                                                         \
    (AGG_BIT(AGG_COUNT) | AGG_BIT(AGG_DISTINCT) | AGG_BIT(AGG_APPROX_DISTINCT) |         \
     AGG_BIT(AGG_FIRST) | AGG_BIT(AGG_LAST))

static win_conf_t confs[3];
static int ready;

static void setup(void)
{
    if (ready) return;
    win_conf_init(&confs[0], 60000, 0, AGG_ALL_KINDS, 0, 0, NULL, 0);
    win_conf_init(&confs[1], 60000, 5000, AGG_ALL_KINDS, 0, 0, NULL, 0);
    win_conf_init(&confs[2], 60000, 5000, ID_KINDS, 1, 0, NULL, 0);
    ready = 1;
}

static void exercise(win_t *w)
{
    win_ask_t asks[AGG_NKINDS];
    agg_result_t out[AGG_NKINDS];
    size_t n = 0;
    for (int k = 0; k < AGG_NKINDS; k++)
        if (w->conf->kinds & AGG_BIT(k)) asks[n++] = (win_ask_t){(agg_kind_t)k, 0.5};
    int64_t t = w->end == WIN_NONE ? 0 : w->end;
    win_query(w, t, asks, n, out);
    win_query(w, t - 1000, asks, n, out);
    win_add(w, t, w->conf->ids ? win_id(7) : win_num(1.5));
    win_add(w, t - 100, w->conf->ids ? win_id(8) : win_num(-2));
    win_query(w, t - 50, asks, n, out);
    win_expire(w, t - 10);
    win_query(w, t + 70000, asks, n, out);
    weir_buf_t b = WEIR_BUF_INIT;
    win_encode(w, &b);
    buf_free(&b);
}

typedef struct two {
    win_t w[2];
} two_t;

static void two_free(void *v, void *arg)
{
    (void)arg;
    two_t *t = v;
    for (int i = 0; i < 2; i++)
        if (t->w[i].conf) win_free(&t->w[i]);
}

static int two_dec(void *v, const unsigned char *p, size_t len, size_t *used, void *arg)
{
    (void)arg;
    two_t *t = v;
    size_t off = 0;
    for (int i = 0; i < 2; i++) {
        size_t u = 0;
        if (win_decode(&t->w[i], &confs[i], p + off, len - off, &u, NULL, 0) != 0) {
            if (i == 0) win_init(&t->w[1], &confs[1]);
            return -1;
        }
        off += u;
    }
    *used = off;
    return 0;
}

static void two_enc(const void *v, weir_buf_t *b, void *arg)
{
    (void)arg;
    const two_t *t = v;
    win_encode(&t->w[0], b);
    win_encode(&t->w[1], b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1) return 0;
    unsigned which = data[0] % 7;
    const unsigned char *p = data + 1;
    size_t n = size - 1;
    codec_rd_t r = {p, p + n, 0};
    switch (which) {
    case 0:
    case 1:
    case 2: {
        win_t w;
        size_t used;
        if (win_decode(&w, &confs[which], p, n, &used, NULL, 0) == 0) exercise(&w);
        win_free(&w);
        break;
    }
    case 3: {
        keymap_t km;
        size_t used;
        if (keymap_decode(&km, sizeof(two_t), p, n, &used, two_dec, two_free, NULL, NULL, 0) ==
            0) {
            keymap_iter_t it = KEYMAP_ITER_INIT;
            void *v;
            while ((v = keymap_next(&km, &it))) {
                two_t *t = v;
                exercise(&t->w[0]);
                exercise(&t->w[1]);
            }
            weir_buf_t b = WEIR_BUF_INIT;
            keymap_encode(&km, &b, two_enc, NULL);
            buf_free(&b);
            keymap_free(&km, two_free, NULL);
        }
        break;
    }
    case 4: {
        qsketch_t s;
        if (qsketch_decode(&s, &r) == 0) {
            double out;
            qsketch_quantile(&s, 0.5, &out);
            qsketch_add(&s, 3);
            qsketch_remove(&s, 3);
            qsketch_free(&s);
        }
        break;
    }
    case 5: {
        hll_t h;
        if (hll_decode(&h, &r) == 0) {
            (void)hll_estimate(&h);
            hll_free(&h);
        }
        break;
    }
    case 6: {
        mset_t s;
        if (mset_decode(&s, &r, 1u << 20) == 0) {
            mset_add(&s, 1);
            mset_remove(&s, 1);
            mset_free(&s);
        }
        break;
    }
    }
    return 0;
}
