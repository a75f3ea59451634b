/* batch.c — encoding and validation of record batches (see batch.h, and the
 * format in log.h). Validation assumes nothing about the bytes: every length
 * and varint is bounds-checked, so a reader given garbage reports it instead
 * of reading past its buffer. */
#include "log/batch.h"

#include <string.h>

#include "base/crc32c.h"
#include "base/error.h"
#include "base/varint.h"

static inline void put_u16(unsigned char *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static inline void put_u32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static inline void put_u64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static inline uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t get_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

int batch_encode(weir_buf_t *out, const log_rec_t *recs, size_t n, char *err, size_t errlen)
{
    if (n == 0) return weir_errf(err, errlen, WEIR_EINVAL, "empty batch");
    /* First pass: check limits and size the batch, so the second pass can
     * write with a bare pointer (this is the append hot path). */
    uint64_t total = BATCH_HEADER_SIZE, least = BATCH_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        const log_rec_t *r = &recs[i];
        if (r->key.len > BATCH_MAX_KEY)
            return weir_errf(err, errlen, WEIR_ETOOBIG, "record %zu: key of %zu bytes exceeds %u",
                             i, r->key.len, BATCH_MAX_KEY);
        if (r->value.len > BATCH_MAX_VALUE)
            return weir_errf(err, errlen, WEIR_ETOOBIG,
                             "record %zu: value of %zu bytes exceeds %u", i, r->value.len,
                             BATCH_MAX_VALUE);
        if (r->type != LOG_REC_EVENT && r->type != LOG_REC_TICK && r->type != LOG_REC_SOURCE)
            return weir_errf(err, errlen, WEIR_EINVAL, "record %zu: unknown type %d", i,
                             (int)r->type);
        /* worst case: length varint, type, three varints, two lengths */
        total += 1 + 6 * VARINT_MAX + r->key.len + r->value.len;
        least += 6 + r->key.len + r->value.len;
    }
    if (least > BATCH_MAX_SIZE) /* early, before reserving n worst cases */
        return weir_errf(err, errlen, WEIR_ETOOBIG, "batch of %zu records is over %u bytes", n,
                         BATCH_MAX_SIZE);
    buf_reset(out);
    buf_reserve(out, (size_t)total);
    unsigned char *base = (unsigned char *)out->data, *q = base + BATCH_HEADER_SIZE;
    int64_t first_ts = recs[0].ts, max_ts = recs[0].ts;
    uint8_t attr = 0;
    for (size_t i = 0; i < n; i++) {
        const log_rec_t *r = &recs[i];
        if (r->type == LOG_REC_TICK) attr |= BATCH_ATTR_HAS_TICK;
        if (r->type == LOG_REC_SOURCE) attr |= BATCH_ATTR_HAS_SOURCE;
        if (r->ts > max_ts) max_ts = r->ts;
        /* body: type, offset delta, ts delta, key len, key, value len, value */
        unsigned char head[1 + 3 * VARINT_MAX], vlen[VARINT_MAX];
        size_t h = 0;
        head[h++] = (unsigned char)r->type;
        h += varint_put(head + h, i);
        /* ts - first_ts in unsigned arithmetic: no overflow UB on wild clocks */
        h += varint_put_signed(head + h, (int64_t)((uint64_t)r->ts - (uint64_t)first_ts));
        h += varint_put(head + h, r->key.len);
        size_t vl = varint_put(vlen, r->value.len);
        q += varint_put(q, h + r->key.len + vl + r->value.len);
        memcpy(q, head, h);
        q += h;
        if (r->key.len) memcpy(q, r->key.ptr, r->key.len); /* a tick has no key (NULL) */
        q += r->key.len;
        memcpy(q, vlen, vl);
        q += vl;
        if (r->value.len) memcpy(q, r->value.ptr, r->value.len);
        q += r->value.len;
    }
    out->len = (size_t)(q - base);
    if (out->len > BATCH_MAX_SIZE)
        return weir_errf(err, errlen, WEIR_ETOOBIG, "batch of %zu records is %zu bytes, over %u", n,
                         out->len, BATCH_MAX_SIZE);
    put_u64(base + BATCH_OFF_BASE, 0);
    put_u32(base + BATCH_OFF_LENGTH, (uint32_t)(out->len - 12));
    base[BATCH_OFF_MAGIC] = attr & BATCH_ATTR_HAS_SOURCE ? BATCH_MAGIC_SOURCE : BATCH_MAGIC;
    base[BATCH_OFF_ATTR] = attr;
    put_u16(base + BATCH_OFF_RESERVED, 0);
    put_u32(base + BATCH_OFF_COUNT, (uint32_t)n);
    put_u64(base + BATCH_OFF_FIRST_TS, (uint64_t)first_ts);
    put_u64(base + BATCH_OFF_MAX_TS, (uint64_t)max_ts);
    put_u32(base + BATCH_OFF_CRC, crc32c(0, base + 16, out->len - 16));
    return 0;
}

void batch_set_base(void *batch, uint64_t base)
{
    put_u64((unsigned char *)batch + BATCH_OFF_BASE, base);
}

batch_status_t batch_peek(const unsigned char *p, size_t avail, batch_info_t *info)
{
    if (avail < BATCH_HEADER_SIZE) return BATCH_SHORT;
    uint32_t length = get_u32(p + BATCH_OFF_LENGTH);
    info->base = get_u64(p + BATCH_OFF_BASE);
    info->count = get_u32(p + BATCH_OFF_COUNT);
    info->attr = p[BATCH_OFF_ATTR];
    info->first_ts = (int64_t)get_u64(p + BATCH_OFF_FIRST_TS);
    info->max_ts = (int64_t)get_u64(p + BATCH_OFF_MAX_TS);
    if (length < BATCH_MIN_LENGTH || length > BATCH_MAX_SIZE - 12) return BATCH_BAD_HEADER;
    info->size = length + 12;
    int magic = p[BATCH_OFF_MAGIC];
    uint8_t attrs = BATCH_ATTR_HAS_TICK | (magic == BATCH_MAGIC_SOURCE ? BATCH_ATTR_HAS_SOURCE : 0);
    if ((magic != BATCH_MAGIC && magic != BATCH_MAGIC_SOURCE) || (info->attr & ~attrs) ||
        (p[BATCH_OFF_RESERVED] | p[BATCH_OFF_RESERVED + 1]) != 0 || info->count == 0 ||
        info->count > length / 6 || info->max_ts < info->first_ts)
        return BATCH_BAD_HEADER;
    /* each record needs at least 6 bytes: length, type, 3 varints, value len */
    return BATCH_OK;
}

size_t batch_foreign_size(const unsigned char *p, size_t avail)
{
    if (avail < BATCH_HEADER_SIZE || p[BATCH_OFF_MAGIC] == BATCH_MAGIC ||
        p[BATCH_OFF_MAGIC] == BATCH_MAGIC_SOURCE)
        return 0;
    uint32_t length = get_u32(p + BATCH_OFF_LENGTH);
    if (length < BATCH_MIN_LENGTH || length > BATCH_MAX_SIZE - 12) return 0;
    return (size_t)length + 12;
}

batch_status_t batch_check(const unsigned char *p, size_t avail, batch_info_t *info)
{
    batch_status_t s = batch_peek(p, avail, info);
    size_t fsize = s == BATCH_BAD_HEADER ? batch_foreign_size(p, avail) : 0;
    if (fsize && fsize <= avail && crc32c(0, p + 16, fsize - 16) == get_u32(p + BATCH_OFF_CRC)) {
        info->size = fsize;
        return BATCH_FOREIGN;
    }
    if (s != BATCH_OK) return s;
    if (info->size > avail) return BATCH_SHORT;
    if (crc32c(0, p + 16, info->size - 16) != get_u32(p + BATCH_OFF_CRC)) return BATCH_BAD_CRC;

    const unsigned char *q = p + BATCH_HEADER_SIZE, *end = p + info->size;
    int64_t max_ts = INT64_MIN;
    int tick = 0, source = 0;
    for (uint32_t i = 0; i < info->count; i++) {
        uint64_t rlen, delta, klen, vlen;
        int64_t tsd;
        size_t n = varint_get(q, end, &rlen);
        if (!n || rlen > (uint64_t)(end - q - n)) return BATCH_BAD_RECORDS;
        q += n;
        const unsigned char *rend = q + rlen;
        if (q >= rend || *q > LOG_REC_SOURCE) return BATCH_BAD_RECORDS;
        tick |= *q == LOG_REC_TICK;
        source |= *q == LOG_REC_SOURCE;
        q++;
        if (!(n = varint_get(q, rend, &delta)) || delta != i) return BATCH_BAD_RECORDS;
        q += n;
        if (!(n = varint_get_signed(q, rend, &tsd))) return BATCH_BAD_RECORDS;
        q += n;
        int64_t ts = (int64_t)((uint64_t)info->first_ts + (uint64_t)tsd);
        if (i == 0 && tsd != 0) return BATCH_BAD_RECORDS;
        if (ts > max_ts) max_ts = ts;
        if (!(n = varint_get(q, rend, &klen)) || klen > BATCH_MAX_KEY ||
            klen > (uint64_t)(rend - q - n))
            return BATCH_BAD_RECORDS;
        q += n + klen;
        if (!(n = varint_get(q, rend, &vlen)) || vlen != (uint64_t)(rend - q - n))
            return BATCH_BAD_RECORDS;
        q = rend;
    }
    if (q != end || max_ts != info->max_ts || tick != !!(info->attr & BATCH_ATTR_HAS_TICK) ||
        source != !!(info->attr & BATCH_ATTR_HAS_SOURCE))
        return BATCH_BAD_RECORDS;
    return BATCH_OK;
}

const char *batch_status_str(batch_status_t s)
{
    switch (s) {
    case BATCH_OK: return "valid batch";
    case BATCH_SHORT: return "incomplete batch";
    case BATCH_BAD_HEADER: return "impossible batch header";
    case BATCH_BAD_CRC: return "CRC32C mismatch";
    case BATCH_BAD_RECORDS: return "records do not match their batch header";
    case BATCH_FOREIGN:
        return "a batch of another format (its magic is not this weir's, its CRC32C holds): "
               "written by another version of weir, which must read it";
    }
    return "?";
}

void batch_iter_init(batch_iter_t *it, const unsigned char *batch, const batch_info_t *info)
{
    it->p = batch + BATCH_HEADER_SIZE;
    it->end = batch + info->size;
    it->base = info->base;
    it->first_ts = info->first_ts;
    it->i = 0;
    it->count = info->count;
}

int batch_iter_next(batch_iter_t *it, log_rec_t *rec)
{
    if (it->i == it->count) return 0;
    /* The batch passed batch_check: the varints are well formed and in bounds. */
    uint64_t rlen = 0, delta = 0, klen = 0, vlen = 0;
    int64_t tsd = 0;
    const unsigned char *q = it->p;
    q += varint_get(q, it->end, &rlen);
    const unsigned char *rend = q + rlen;
    rec->type = (log_rec_type_t)*q++;
    q += varint_get(q, rend, &delta);
    q += varint_get_signed(q, rend, &tsd);
    q += varint_get(q, rend, &klen);
    rec->key.ptr = (const char *)q;
    rec->key.len = klen;
    q += klen;
    q += varint_get(q, rend, &vlen);
    rec->value.ptr = (const char *)q;
    rec->value.len = vlen;
    rec->offset = it->base + delta;
    rec->ts = (int64_t)((uint64_t)it->first_ts + (uint64_t)tsd);
    it->p = rend;
    it->i++;
    return 1;
}
