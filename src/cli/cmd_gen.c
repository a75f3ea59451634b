/* cmd_gen.c — `weir gen fraud|clicks`: realistic synthetic events as NDJSON,
 * with labels, deterministic for a seed. They feed the demo, the benchmarks
 * and the tests, so every property a test relies on is stated here.
 *
 * SPAN. Arrivals start at 2026-01-01T00:00:00Z. --days D (default 7) does
 *   not set the span: it sets the mean gap between new arrivals (a fraud
 *   transaction, a clicks session) to D days / N, and the span follows
 *   from what each arrival brings — about 0.63–0.66 D for fraud (the daily
 *   rhythm, see daily_rhythm) and 0.19 D for clicks (~5.3 events a
 *   session). The span written goes to stderr. Left so on purpose: the
 *   committed model (examples/fraud, trained on seed 7), the demo's figures
 *   and the README's clicks figures are this output for the default
 *   arguments, and a span true to D would change every one of them.
 * fraud: card transactions {card_id, amount, merchant, country, ts,
 *   is_fraud}. Cards have a home country, a typical amount (log-normal) and
 *   a few favourite merchants. Transactions follow a daily rhythm (busy
 *   afternoons, quiet nights). About 1 card in 100 is compromised once, at
 *   a moment drawn from 5% to 95% of D days (so only those that fall inside
 *   the span, about two in three, happen), in one of two ways: card
 *   testing — 2–3 transactions under 2.00 at one merchant, then 1–4 large
 *   ones (500–3000) at new merchants in a foreign country within ~30
 *   minutes; or account takeover — 2–4 large purchases abroad within the
 *   hour, without a test. Those carry is_fraud = 1, everything else 0.
 * clicks: shop events {user_id, item_id, action, price, in_stock, ts,
 *   will_purchase}: sessions of 1–6 item views, a search before about a
 *   third of them, 5–65 s apart; 3 sessions in 10 add the last item to the
 *   cart (10–130 s later); 6 carts in 10 go on to view_checkout; half of
 *   those purchase 30 s – 5.5 min after the checkout, and one abandoner in
 *   five comes back to buy 12–40 minutes later (past a 10-minute
 *   cart-abandonment window). will_purchase = 1 on the events of a session
 *   that ends in a purchase of that item (the comeback included).
 * Order: events come out in arrival order. Event time is the arrival time
 * minus a delay: up to --jitter ms (default 20000, within a 30 s lateness),
 * and for --late-permille events (default 2) 60–300 s, later than such a
 * lateness. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cli/cli.h"
#include "spec/value.h"

#define GEN_EPOCH_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

static const char gen_usage[] =
    "usage: weir gen fraud|clicks --events N [--seed S] [--keys K] [--days D]\n"
    "                [--jitter MS] [--late-permille P]\n"
    "\n"
    "Writes N synthetic events as NDJSON to stdout, in arrival order, with labels\n"
    "(fraud: is_fraud; clicks: will_purchase). The same seed gives the same bytes.\n"
    "  --keys K           cards or users (default N/20, at least 10)\n"
    "  --days D           mean gap between new transactions (fraud) or sessions\n"
    "                     (clicks) of D days / N (default 7); the events span about\n"
    "                     0.65 D (fraud, a daily rhythm) or 0.19 D (clicks, ~5 events\n"
    "                     a session); the span written is printed on stderr\n"
    "  --jitter MS        event time lags arrival by up to MS (default 20000)\n"
    "  --late-permille P  events per mille lagging 60-300 s (default 2)\n";

/* xoshiro256** seeded by splitmix64: fast, and the same on every platform. */
typedef struct rng {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return res;
}

static double rng_unit(rng_t *r) /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static uint64_t rng_below(rng_t *r, uint64_t n)
{
    return n ? rng_next(r) % n : 0;
}

static double rng_normal(rng_t *r)
{
    double u = rng_unit(r), v = rng_unit(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2 * M_PI * v);
}

/* Pending future events (fraud bursts, session steps), a binary min-heap by
 * arrival time, so output stays in arrival order. */
typedef struct pend {
    int64_t at;
    uint32_t key;
    uint32_t kind; /* generator-specific step */
    uint32_t a, b; /* generator-specific data */
} pend_t;

typedef struct heap {
    pend_t *v;
    size_t n, cap;
} heap_t;

static void heap_push(heap_t *h, pend_t e)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = weir_realloc(h->v, h->cap * sizeof *h->v);
    }
    size_t i = h->n++;
    while (i && h->v[(i - 1) / 2].at > e.at) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = e;
}

static pend_t heap_pop(heap_t *h)
{
    pend_t top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1].at < h->v[c].at) c++;
        if (h->v[c].at >= last.at) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

typedef struct gen {
    rng_t rng;
    uint64_t events, keys;
    int64_t span_ms, jitter_ms;
    uint32_t late_permille;
    uint64_t emitted;
    int64_t first_ms, last_ms; /* the earliest and latest event time written */
    heap_t pending;
} gen_t;

/* Event time for an event arriving at `at`. */
static int64_t event_time(gen_t *g, int64_t at)
{
    int64_t t = rng_below(&g->rng, 1000) < g->late_permille
                    ? at - 60000 - (int64_t)rng_below(&g->rng, 240000)
                    : at - (int64_t)rng_below(&g->rng, (uint64_t)g->jitter_ms + 1);
    if (!g->emitted || t < g->first_ms) g->first_ms = t;
    if (!g->emitted || t > g->last_ms) g->last_ms = t;
    return t;
}

static const char *const countries[] = {"US", "GB", "DE", "FR", "ES", "IT", "NL", "SE",
                                        "PL", "BR", "MX", "CA", "JP", "IN", "NG", "RU"};
#define NCOUNTRIES (sizeof countries / sizeof *countries)
#define NMERCHANTS 5000

typedef struct card {
    uint8_t home;
    uint8_t compromised; /* 0 no, 1 yes (burst not yet started), 2 done */
    int64_t compromise_at; /* the burst starts at the card's first event after this */
    float mu;            /* log of the typical amount */
    uint16_t fav[4];
} card_t;

enum { FRAUD_TEST = 1, FRAUD_BIG = 2 };

/* Gap multiplier by hour of day (UTC): short gaps in the afternoon, long at
 * night. It averages 1.06 over the hours of a day, but an hour holds events
 * in inverse proportion to its gaps, so per event it averages 0.63: a day
 * holds 1.58 times the events D days / N would give, and the events span
 * about 0.63–0.66 D, not D (the file comment says why it stays so). */
static double daily_rhythm(int64_t t)
{
    static const double by_hour[24] = {3.0, 3.5, 4.0, 4.0, 3.5, 2.5, 1.5, 1.0, 0.8, 0.7, 0.6, 0.55,
                                       0.5, 0.5, 0.5, 0.55, 0.6, 0.6, 0.65, 0.7, 0.8, 1.0, 1.5, 2.2};
    return by_hour[((t / 3600000) % 24 + 24) % 24] / 1.4;
}

static void fraud_emit(gen_t *g, int64_t at, uint32_t k, double amount, uint32_t merchant,
                       uint32_t country, int fraud)
{
    printf("{\"card_id\":\"c%07u\",\"amount\":%.2f,\"merchant\":\"m%04u\",\"country\":\"%s\","
           "\"ts\":%" PRId64 ",\"is_fraud\":%d}\n",
           k, amount, merchant, countries[country], event_time(g, at), fraud);
    g->emitted++;
}

static void gen_fraud(gen_t *g)
{
    card_t *cards = weir_calloc(g->keys, sizeof *cards);
    for (uint64_t k = 0; k < g->keys; k++) {
        /* Most cards are domestic (US), the rest spread over the others. */
        cards[k].home = rng_below(&g->rng, 10) < 6 ? 0 : (uint8_t)rng_below(&g->rng, NCOUNTRIES);
        cards[k].mu = (float)(log(15.0) + 1.0 * rng_normal(&g->rng));
        for (int i = 0; i < 4; i++) cards[k].fav[i] = (uint16_t)rng_below(&g->rng, NMERCHANTS);
        cards[k].compromised = rng_below(&g->rng, 100) == 0;
        cards[k].compromise_at = GEN_EPOCH_MS + g->span_ms / 20 +
                                 (int64_t)(rng_unit(&g->rng) * (double)(g->span_ms * 9 / 10));
    }
    int64_t step = g->span_ms / (int64_t)(g->events ? g->events : 1);
    if (step < 1) step = 1;
    int64_t now = GEN_EPOCH_MS;
    while (g->emitted < g->events) {
        now += 1 + (int64_t)rng_below(&g->rng, (uint64_t)(2 * step * daily_rhythm(now)));
        while (g->pending.n && g->pending.v[0].at <= now && g->emitted < g->events) {
            pend_t p = heap_pop(&g->pending);
            card_t *c = &cards[p.key];
            if (p.kind == FRAUD_TEST)
                fraud_emit(g, p.at, p.key, 0.5 + 1.4 * rng_unit(&g->rng), p.a, c->home, 1);
            else
                fraud_emit(g, p.at, p.key, 500 + 2500 * rng_unit(&g->rng),
                           (uint32_t)rng_below(&g->rng, NMERCHANTS), p.b, 1);
        }
        if (g->emitted >= g->events) break;
        uint32_t k = (uint32_t)rng_below(&g->rng, g->keys);
        card_t *c = &cards[k];
        if (c->compromised == 1 && now > c->compromise_at) {
            /* Start a burst: card testing at one merchant then big spends
             * abroad, or (one in three) a takeover that skips the test. */
            c->compromised = 2;
            uint32_t tester = (uint32_t)rng_below(&g->rng, NMERCHANTS);
            uint32_t abroad = (uint32_t)((c->home + 1 + rng_below(&g->rng, NCOUNTRIES - 1)) % NCOUNTRIES);
            int64_t t = now;
            int takeover = rng_below(&g->rng, 3) == 0;
            int ntest = takeover ? 0 : 2 + (int)rng_below(&g->rng, 2);
            int nbig = takeover ? 2 + (int)rng_below(&g->rng, 3) : 1 + (int)rng_below(&g->rng, 4);
            for (int i = 0; i < ntest; i++) {
                t += 20000 + (int64_t)rng_below(&g->rng, 100000);
                heap_push(&g->pending, (pend_t){t, k, FRAUD_TEST, tester, 0});
            }
            for (int i = 0; i < nbig; i++) {
                t += 60000 + (int64_t)rng_below(&g->rng, 400000);
                heap_push(&g->pending, (pend_t){t, k, FRAUD_BIG, 0, abroad});
            }
            continue;
        }
        double amount = exp(c->mu + 0.6 * rng_normal(&g->rng));
        if (amount > 20000) amount = 20000;
        if (amount < 1) amount = 1 + rng_unit(&g->rng);
        uint32_t merchant = rng_below(&g->rng, 10) < 8 ? c->fav[rng_below(&g->rng, 4)]
                                                        : (uint32_t)rng_below(&g->rng, NMERCHANTS);
        uint32_t country = rng_below(&g->rng, 100) < 97 ? c->home : (uint32_t)rng_below(&g->rng, NCOUNTRIES);
        fraud_emit(g, now, k, amount, merchant, country, 0);
    }
    weir_free(cards);
}

enum { CLICK_VIEW = 1, CLICK_CART, CLICK_CHECKOUT, CLICK_PURCHASE, CLICK_SEARCH };
static const char *const actions[] = {"",         "view",  "add_to_cart", "view_checkout",
                                      "purchase", "search"};
#define NITEMS 20000

static void clicks_emit(gen_t *g, int64_t at, uint32_t user, uint32_t item, int action, int buy)
{
    /* Price and stock are functions of the item (stock flips by day), so
     * every event of an item agrees. */
    double price = 5.0 + (double)((item * 2654435761u) % 30000) / 100.0;
    int in_stock = ((item * 40503u) ^ (uint32_t)((at - GEN_EPOCH_MS) / 86400000)) % 10 != 0;
    printf("{\"user_id\":\"u%07u\",\"item_id\":\"i%05u\",\"action\":\"%s\",\"price\":%.2f,"
           "\"in_stock\":%s,\"ts\":%" PRId64 ",\"will_purchase\":%d}\n",
           user, item, actions[action], price, in_stock ? "true" : "false", event_time(g, at), buy);
    g->emitted++;
}

static void gen_clicks(gen_t *g)
{
    int64_t step = g->span_ms / (int64_t)(g->events ? g->events : 1);
    if (step < 1) step = 1;
    int64_t now = GEN_EPOCH_MS;
    while (g->emitted < g->events) {
        now += 1 + (int64_t)rng_below(&g->rng, (uint64_t)(2 * step));
        while (g->pending.n && g->pending.v[0].at <= now && g->emitted < g->events) {
            pend_t p = heap_pop(&g->pending);
            clicks_emit(g, p.at, p.key, p.a, (int)p.kind, (int)p.b);
        }
        if (g->emitted >= g->events) break;
        /* A new session: views of a few items, maybe a cart/checkout/purchase
         * of the last one, decided up front so the label is known. */
        uint32_t user = (uint32_t)rng_below(&g->rng, g->keys);
        int views = 1 + (int)rng_below(&g->rng, 6);
        uint32_t item = 0;
        int cart = rng_below(&g->rng, 10) < 3, checkout = cart && rng_below(&g->rng, 10) < 6,
            buy = checkout && rng_below(&g->rng, 10) < 5,
            comeback = checkout && !buy && rng_below(&g->rng, 5) == 0;
        int64_t t = now;
        for (int i = 0; i < views; i++) {
            item = (uint32_t)rng_below(&g->rng, NITEMS);
            int last = i == views - 1;
            if (rng_below(&g->rng, 3) == 0) {
                heap_push(&g->pending, (pend_t){t, user, CLICK_SEARCH, item,
                                                (uint32_t)(last && (buy || comeback))});
                t += 2000 + (int64_t)rng_below(&g->rng, 15000);
            }
            heap_push(&g->pending,
                      (pend_t){t, user, CLICK_VIEW, item, (uint32_t)(last && (buy || comeback))});
            t += 5000 + (int64_t)rng_below(&g->rng, 60000);
        }
        if (cart)
            heap_push(&g->pending,
                      (pend_t){t, user, CLICK_CART, item, (uint32_t)(buy || comeback)});
        t += 10000 + (int64_t)rng_below(&g->rng, 120000);
        if (checkout)
            heap_push(&g->pending,
                      (pend_t){t, user, CLICK_CHECKOUT, item, (uint32_t)(buy || comeback)});
        if (buy) {
            t += 30000 + (int64_t)rng_below(&g->rng, 300000);
            heap_push(&g->pending, (pend_t){t, user, CLICK_PURCHASE, item, 1});
        } else if (comeback) {
            t += 720000 + (int64_t)rng_below(&g->rng, 1680000);
            heap_push(&g->pending, (pend_t){t, user, CLICK_PURCHASE, item, 1});
        }
    }
}

int cmd_gen(int argc, char **argv)
{
    const char *prefix = "weir gen";
    if (cli_wants_help(argc, argv)) return fputs(gen_usage, stdout), 0;
    static const struct option opts[] = {
        {"events", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
        {"keys", required_argument, 0, 'k'},   {"days", required_argument, 0, 'd'},
        {"jitter", required_argument, 0, 'j'}, {"late-permille", required_argument, 0, 'l'},
        {0, 0, 0, 0},
    };
    uint64_t events = 0, seed = 1, keys = 0, days = 7, jitter = 20000, late = 2;
    int have_events = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        uint64_t v;
        if (c == '?' || cli_parse_u64(optarg, &v) != 0)
            return cli_fail(prefix, "bad or unknown option '%s' (see --help)", argv[optind - 1]);
        if (c == 'n') events = v, have_events = 1;
        if (c == 's') seed = v;
        if (c == 'k') keys = v;
        if (c == 'd') days = v;
        if (c == 'j') jitter = v;
        if (c == 'l') late = v;
    }
    if (optind != argc - 1) return cli_fail(prefix, "say what to generate: fraud or clicks (see --help)");
    const char *what = argv[optind];
    if (!have_events) return cli_fail(prefix, "--events is required");
    if (days == 0 || days > 3650 || late > 1000 || jitter > 86400000)
        return cli_fail(prefix, "--days must be 1..3650, --late-permille 0..1000, --jitter at most a day");
    gen_t g = {.events = events, .keys = keys ? keys : (events / 20 > 10 ? events / 20 : 10),
               .span_ms = (int64_t)days * 86400000, .jitter_ms = (int64_t)jitter,
               .late_permille = (uint32_t)late};
    if (g.keys > UINT32_MAX) return cli_fail(prefix, "--keys is at most %u", UINT32_MAX);
    rng_seed(&g.rng, seed);
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    if (!strcmp(what, "fraud")) gen_fraud(&g);
    else if (!strcmp(what, "clicks")) gen_clicks(&g);
    else return cli_fail(prefix, "unknown generator '%s': fraud or clicks", what);
    weir_free(g.pending.v);
    if (fflush(stdout) != 0) return 1;
    /* --days does not give the span (see the file comment), so say what it is. */
    if (g.emitted) {
        char first[40], last[40];
        expr_format_rfc3339(g.first_ms, first, sizeof first);
        expr_format_rfc3339(g.last_ms, last, sizeof last);
        fprintf(stderr, "weir gen: %" PRIu64 " events, event times %s to %s (%.2f days)\n",
                g.emitted, first, last, (double)(g.last_ms - g.first_ms) / 86400000.0);
    }
    return 0;
}
