/* ckpt_manifest.c — the checkpoint MANIFEST's text format (checkpoint.h,
 * MANIFEST): ckpt_manifest_encode writes the one spelling of a manifest,
 * ckpt_manifest_parse reads untrusted bytes back, naming line and byte of
 * what is wrong. The store (checkpoint.c) only moves these bytes to and
 * from disk. */
#include "log/checkpoint.h"
#include "log/ckpt_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/crc32c.h"
#include "base/error.h"

#define MANIFEST_HEAD "weir-checkpoint 1\n"

static void append_escaped(weir_buf_t *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c > ' ' && c <= '~' && c != '%') {
            buf_append(b, &p[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 3);
        }
    }
}

void ckpt_manifest_encode(const ckpt_info_t *info, weir_buf_t *out)
{
    size_t start = out->len;
    buf_append_str(out, MANIFEST_HEAD);
    buf_appendf(out, "id %" PRIu64 "\ncreated_ms %" PRId64 "\npipeline ", info->id,
                info->created_ms);
    const char *pl = info->pipeline ? info->pipeline : "";
    append_escaped(out, pl, strlen(pl));
    buf_appendf(out, "\npartitions %u\n", info->partitions);
    for (size_t i = 0; i < info->nmeta; i++) {
        buf_append_str(out, "meta ");
        buf_append(out, info->meta[i].key.ptr, info->meta[i].key.len);
        buf_append_str(out, " ");
        append_escaped(out, info->meta[i].value.ptr, info->meta[i].value.len);
        buf_append_str(out, "\n");
    }
    for (uint32_t p = 0; p < info->partitions; p++) {
        const ckpt_part_info_t *pi = &info->parts[p];
        buf_appendf(out, "part %u part-%05u %" PRIu64 " %08x %" PRIu64 " %" PRIu64 "\n", p, p,
                    pi->bytes, pi->crc, pi->log_offset, pi->decision_offset);
    }
    buf_appendf(out, "end %08x\n", crc32c(0, out->data + start, out->len - start));
}

/* A cursor over the manifest's lines, for messages that name line and byte. */
typedef struct mcur {
    const char *buf, *name;
    size_t len, pos, line_start;
    int line;
    char *err;
    size_t errlen;
} mcur_t;

static int mfail(mcur_t *c, const char *what)
{
    return weir_errf(c->err, c->errlen, WEIR_ECORRUPT, "%s line %d (byte %zu): %s", c->name,
                     c->line, c->line_start, what);
}

/* Next line (without "\n") into *l; must start with word and a space. */
static int mline(mcur_t *c, const char *word, weir_slice_t *l)
{
    c->line++;
    c->line_start = c->pos;
    const char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
    if (!nl) return mfail(c, "no newline: the manifest is cut short");
    size_t n = (size_t)(nl - (c->buf + c->pos));
    size_t w = strlen(word);
    if (n <= w || memcmp(c->buf + c->pos, word, w) != 0 || c->buf[c->pos + w] != ' ') {
        char m[64];
        snprintf(m, sizeof m, "expected '%s ...'", word);
        return mfail(c, m);
    }
    l->ptr = c->buf + c->pos + w + 1;
    l->len = n - w - 1;
    c->pos += n + 1;
    return 0;
}

/* Splits the first space-separated field off *l. The space is consumed
 * only if a field follows it, so a trailing space is left over: rejected. */
static weir_slice_t mfield(weir_slice_t *l)
{
    weir_slice_t f = {l->ptr, 0};
    while (f.len < l->len && l->ptr[f.len] != ' ')
        f.len++;
    l->ptr += f.len;
    l->len -= f.len;
    if (l->len > 1) l->ptr++, l->len--;
    return f;
}

/* Numbers, CRCs and escapes have one spelling each (no leading zeros, no
 * "-0", lowercase hex, only the bytes that need it escaped), so a manifest
 * has one text: parse and encode are inverses. */
static int parse_u64(weir_slice_t f, uint64_t *v)
{
    if (f.len == 0 || f.len > 20 || (f.len > 1 && f.ptr[0] == '0')) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < f.len; i++) {
        if (f.ptr[i] < '0' || f.ptr[i] > '9') return -1;
        uint64_t d = (uint64_t)(f.ptr[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

static int parse_i64(weir_slice_t f, int64_t *v)
{
    int neg = f.len && f.ptr[0] == '-';
    weir_slice_t d = {f.ptr + neg, f.len - (size_t)neg};
    uint64_t u;
    if (parse_u64(d, &u) || u > (uint64_t)INT64_MAX || (neg && u == 0)) return -1;
    *v = neg ? -(int64_t)u : (int64_t)u;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int parse_crc(weir_slice_t f, uint32_t *v)
{
    if (f.len != 8) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 8; i++) {
        int h = hexval(f.ptr[i]);
        if (h < 0) return -1;
        x = x << 4 | (uint32_t)h;
    }
    *v = x;
    return 0;
}

/* Unescapes f into a NUL-terminated weir_malloc'd string; NULL if malformed. */
static char *unescape(weir_slice_t f, size_t *outlen)
{
    char *s = weir_malloc(f.len + 1);
    size_t n = 0;
    for (size_t i = 0; i < f.len; i++) {
        unsigned char c = (unsigned char)f.ptr[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= f.len) goto bad;
            if ((h = hexval(f.ptr[i + 1])) < 0 || (l = hexval(f.ptr[i + 2])) < 0) goto bad;
            c = (unsigned char)(h << 4 | l);
            if (c > ' ' && c <= '~' && c != '%') goto bad; /* needed no escape */
            s[n++] = (char)c;
            i += 2;
        } else if (c > ' ' && c <= '~') {
            s[n++] = (char)c;
        } else {
            goto bad;
        }
    }
    s[n] = 0;
    if (outlen) *outlen = n;
    return s;
bad:
    weir_free(s);
    return NULL;
}

int ckpt_manifest_parse(const char *buf, size_t len, const char *name, ckpt_info_t *info, char *err,
                        size_t errlen)
{
    /* The CRC first: a damaged manifest is reported as damage, not as
     * whichever grammar rule the damage happens to break. */
    if (len == 0) return weir_errf(err, errlen, WEIR_ECORRUPT, "%s is empty (0 bytes)", name);
    if (len > CKPT_MAX_MANIFEST)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: %zu bytes, over the limit of %u", name,
                         len, CKPT_MAX_MANIFEST);
    if (buf[len - 1] != '\n')
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: does not end in a newline at byte %zu: cut short", name, len);
    size_t last = len - 1;
    while (last > 0 && buf[last - 1] != '\n')
        last--;
    uint32_t want, got;
    weir_slice_t endf = {buf + last + 4, len - last - 5};
    if (len - last < 5 || memcmp(buf + last, "end ", 4) != 0 || parse_crc(endf, &want) != 0)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: no 'end <crc>' line at byte %zu: cut short or damaged", name, last);
    if ((got = crc32c(0, buf, last)) != want)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: bytes [0, %zu) fail the CRC32C on its end line at byte %zu "
                         "(computed %08x, stored %08x)",
                         name, last, last, got, want);

    mcur_t c = {buf, name, last, 0, 0, 1, err, errlen};
    weir_slice_t l, f;
    uint64_t u;
    int rc;
#define MFAIL(why)                                                                                 \
    do {                                                                                           \
        rc = mfail(&c, why);                                                                       \
        goto fail;                                                                                 \
    } while (0)
    if (last < sizeof MANIFEST_HEAD - 1 || memcmp(buf, MANIFEST_HEAD, sizeof MANIFEST_HEAD - 1))
        MFAIL("not a weir checkpoint manifest of version 1");
    c.pos = sizeof MANIFEST_HEAD - 1;
    if ((rc = mline(&c, "id", &l))) goto fail;
    if (parse_u64(l, &info->id)) MFAIL("bad id");
    if ((rc = mline(&c, "created_ms", &l))) goto fail;
    if (parse_i64(l, &info->created_ms)) MFAIL("bad created_ms");
    if ((rc = mline(&c, "pipeline", &l))) goto fail;
    size_t plen;
    if (!(info->pipeline = unescape(l, &plen))) MFAIL("bad escape in the pipeline name");
    /* A pipeline name is a C string (the spec's): a %00 would cut it short,
     * so "a%00b" would be taken for pipeline "a" and encode as "a". */
    if (strlen(info->pipeline) != plen) {
        weir_free(info->pipeline);
        info->pipeline = NULL;
        MFAIL("a NUL byte (%00) in the pipeline name");
    }
    if ((rc = mline(&c, "partitions", &l))) goto fail;
    if (parse_u64(l, &u) || u == 0 || u > CKPT_MAX_PARTITIONS) MFAIL("partitions must be 1..65536");
    info->partitions = (uint32_t)u;
    size_t capmeta = 0;
    while (c.pos + 5 <= c.len && !memcmp(buf + c.pos, "meta ", 5)) {
        if ((rc = mline(&c, "meta", &l))) goto fail;
        /* "meta <key> <value>": the space after the key is always there. */
        const char *sp = memchr(l.ptr, ' ', l.len);
        f = (weir_slice_t){l.ptr, sp ? (size_t)(sp - l.ptr) : l.len};
        if (!sp || !ckpt_key_ok(f, 1)) MFAIL("bad key, or no space after it");
        if (info->nmeta == capmeta) {
            capmeta = capmeta ? capmeta * 2 : 4;
            info->meta = weir_realloc(info->meta, capmeta * sizeof *info->meta);
        }
        ckpt_kv_t *kv = &info->meta[info->nmeta];
        size_t vlen;
        char *v = unescape((weir_slice_t){sp + 1, l.len - f.len - 1}, &vlen);
        if (!v) MFAIL("bad escape in a value");
        kv->key = (weir_slice_t){weir_strndup(f.ptr, f.len), f.len};
        kv->value = (weir_slice_t){v, vlen};
        info->nmeta++;
    }
    info->parts = weir_calloc(info->partitions, sizeof *info->parts);
    for (uint32_t p = 0; p < info->partitions; p++) {
        if ((rc = mline(&c, "part", &l))) goto fail;
        ckpt_part_info_t *pi = &info->parts[p];
        char want_name[32];
        ckpt_part_name(want_name, sizeof want_name, p);
        if (parse_u64(mfield(&l), &u) || u != p) MFAIL("parts must be listed in order from 0");
        pi->partition = p;
        f = mfield(&l);
        if (f.len != strlen(want_name) || memcmp(f.ptr, want_name, f.len))
            MFAIL("wrong part file name");
        if (parse_u64(mfield(&l), &pi->bytes) ||
            pi->bytes < CKPT_PART_HEADER_SIZE + CKPT_PART_TRAILER_SIZE + 4 ||
            parse_crc(mfield(&l), &pi->crc) || parse_u64(mfield(&l), &pi->log_offset) ||
            parse_u64(mfield(&l), &pi->decision_offset) || l.len)
            MFAIL("bad part line: want <p> part-<p> <size> <crc> <log offset> <decision offset>");
    }
    if (c.pos != c.len) {
        c.line++;
        c.line_start = c.pos;
        MFAIL("unexpected line before the end line");
    }
#undef MFAIL
    return 0;
fail:
    /* parts of a manifest that does not parse mean nothing */
    weir_free(info->parts);
    info->parts = NULL;
    info->partitions = 0;
    return rc;
}
