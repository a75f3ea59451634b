/* decision_log.c — reading the decision log (see decision_log.h). */
#include "decide/decision_log.h"

#include <inttypes.h>
#include <string.h>

#include "base/error.h"

int64_t decision_record_input(const char *p, size_t n)
{
    static const char lead[] = "{\"offset\":";
    size_t i = sizeof lead - 1;
    if (n <= i || memcmp(p, lead, i) != 0 || p[i] < '0' || p[i] > '9') return -1;
    int64_t v = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (p[i] - '0');
    }
    return i < n && p[i] == ',' ? v : -1;
}

/* The input offset of the record at `at` (its value kept in rec), -1 if it
 * names none; 0 past the end; or an error. */
static int input_at(log_part_t *dlog, uint64_t at, weir_buf_t *rec, int64_t *input, char *err,
                    size_t errlen)
{
    log_reader_t *r;
    int rc = log_reader_open(dlog, at, &r, err, errlen);
    if (rc) return rc;
    log_rec_t x;
    rc = log_reader_next(r, &x, err, errlen);
    if (rc == 1) {
        *input = decision_record_input(x.value.ptr, x.value.len);
        buf_reset(rec);
        buf_append(rec, x.value.ptr, x.value.len);
    }
    log_reader_close(r);
    return rc;
}

int decision_log_last_input(log_part_t *dlog, uint32_t part, int64_t *out, char *err, size_t errlen)
{
    log_part_stat_t st;
    log_part_stat(dlog, &st);
    *out = -1;
    if (st.next_offset == 0 || st.next_offset <= st.start_offset) return 0;
    weir_buf_t rec = WEIR_BUF_INIT;
    int rc = input_at(dlog, st.next_offset - 1, &rec, out, err, errlen);
    buf_free(&rec);
    if (rc == 1)
        return *out >= 0 ? 0
                         : weir_errf(err, errlen, WEIR_ECORRUPT,
                                     "decision log partition %u: the record at offset %" PRIu64
                                     " has no input offset",
                                     part, st.next_offset - 1);
    if (rc == 0)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "decision log partition %u: offset %" PRIu64 " is unreadable", part,
                         st.next_offset - 1);
    return rc;
}

/* decision_find's fallback: a binary search by the records' input
 * offsets, which rise through an exactly_once log (some twenty reads of a
 * record). 1 found, 0 not there, or an error. */
static int find_by_halves(log_part_t *dlog, uint64_t input, weir_buf_t *rec, char *err,
                          size_t errlen)
{
    log_part_stat_t st;
    log_part_stat(dlog, &st);
    uint64_t lo = st.start_offset, hi = st.next_offset; /* the record is in [lo, hi) if anywhere */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t at = -1;
        int rc = input_at(dlog, mid, rec, &at, err, errlen);
        if (rc < 0) return rc;
        if (rc == 0 || at < 0) return 0; /* cut meanwhile, or a record without its offset */
        if ((uint64_t)at == input) return 1;
        if ((uint64_t)at < input)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Records a find may read forward before it searches otherwise. */
#define FIND_SCAN 4096

/* Reads f->r forward, up to FIND_SCAN records, to the record of `input`: 1
 * found (in rec; f->r stays open after it); 0 passed it, at the end, out of
 * budget or unreadable (f->r closed); < 0 an error. */
static int scan_forward(decision_finder_t *f, uint64_t input, weir_buf_t *rec, char *err,
                        size_t errlen)
{
    log_rec_t x;
    int rc = 0;
    for (int n = 0; n < FIND_SCAN && (rc = log_reader_next(f->r, &x, err, errlen)) == 1; n++) {
        int64_t at = decision_record_input(x.value.ptr, x.value.len);
        if (at < 0 || (uint64_t)at > input) break;
        f->last = at;
        if ((uint64_t)at == input) {
            buf_reset(rec);
            buf_append(rec, x.value.ptr, x.value.len);
            return 1;
        }
    }
    decision_finder_close(f);
    return rc < 0 ? rc : 0;
}

int decision_find(decision_finder_t *f, uint64_t input, weir_buf_t *rec, char *err, size_t errlen)
{
    int rc;
    if (f->r && f->last >= 0 && (uint64_t)f->last < input &&
        (rc = scan_forward(f, input, rec, err, errlen)) != 0)
        return rc;
    decision_finder_close(f);
    log_part_stat_t st;
    log_part_stat(f->dlog, &st);
    if (st.next_offset <= st.start_offset) return 0;
    int64_t last = -1;
    if ((rc = input_at(f->dlog, st.next_offset - 1, rec, &last, err, errlen)) < 0) return rc;
    if (rc == 0 || last < 0) return 0;
    if ((uint64_t)last == input) return 1;
    if ((uint64_t)last < input) return 0; /* not decided (yet) */
    /* one record per event from here to the last, but for ticks: here or later */
    uint64_t behind = (uint64_t)last - input, d = st.next_offset - 1;
    uint64_t guess = d - st.start_offset > behind ? d - behind : st.start_offset;
    if ((rc = log_reader_open(f->dlog, guess, &f->r, err, errlen)) < 0) return rc;
    if ((rc = scan_forward(f, input, rec, err, errlen)) != 0) return rc;
    return find_by_halves(f->dlog, input, rec, err, errlen);
}

void decision_finder_close(decision_finder_t *f)
{
    if (f->r) log_reader_close(f->r);
    f->r = NULL;
    f->last = -1;
}

int decision_log_max_model(log_part_t *dlog, uint64_t *max, char *err, size_t errlen)
{
    log_part_stat_t st;
    log_part_stat(dlog, &st);
    if (st.next_offset <= st.start_offset) return 0;
    log_reader_t *r;
    int rc = log_reader_open(dlog, st.start_offset, &r, err, errlen);
    if (rc) return rc;
    static const char tag[] = ",\"model\":";
    log_rec_t rec;
    while ((rc = log_reader_next(r, &rec, err, errlen)) == 1) {
        const char *p = memmem(rec.value.ptr, rec.value.len, tag, sizeof tag - 1);
        if (!p) continue;
        const char *end = rec.value.ptr + rec.value.len;
        uint64_t v = 0;
        for (p += sizeof tag - 1; p < end && *p >= '0' && *p <= '9' && v < UINT64_MAX / 10; p++)
            v = v * 10 + (uint64_t)(*p - '0');
        if (v > *max) *max = v;
    }
    log_reader_close(r);
    return rc < 0 ? rc : 0;
}
