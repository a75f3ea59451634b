/* ledger.c — a data directory's version ledgers (see ledger.h). */
#include "decide/ledger.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fileio.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define LEDGER_MAX (16u << 20) /* a line per version ever decided with: far below this */

static int is_digest(const char *p, size_t n)
{
    if (n != LEDGER_DIGEST_LEN || memcmp(p, "xxh128:", 7) != 0) return 0;
    for (size_t i = 7; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
    return 1;
}

/* Reads the line [p, end) (no newline): its version and digest. 0, or -1
 * when it is not "VERSION DIGEST TIME PATH". */
static int parse_line(const char *p, const char *end, uint64_t *version, const char **digest)
{
    if (p == end || *p < '1' || *p > '9') return -1;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(*p++ - '0');
    }
    if (p == end || *p++ != ' ') return -1;
    const char *d = p;
    while (p < end && *p != ' ')
        p++;
    if (!is_digest(d, (size_t)(p - d)) || p == end) return -1;
    p++;
    const char *t = p; /* the time: its shape only, it is for people */
    while (p < end && *p != ' ')
        p++;
    if (p - t != 20 || t[19] != 'Z' || p == end || p + 1 == end) return -1;
    *version = v;
    *digest = d;
    return 0;
}

/* A line of the ledger: its version, and where its path runs (len bytes). */
typedef struct ledger_line {
    uint64_t version;
    const char *path;
    size_t len;
} ledger_line_t;

static void ledger_file(const ledger_kind_t *k, const char *datadir, char *file, size_t cap)
{
    snprintf(file, cap, "%s/%s", datadir, k->file);
}

void ledger_digest(const void *data, size_t len, char *out)
{
    XXH128_hash_t h = XXH3_128bits(data, len);
    snprintf(out, LEDGER_DIGEST_LEN + 1, "xxh128:%016" PRIx64 "%016" PRIx64, (uint64_t)h.high64,
             (uint64_t)h.low64);
}

/* Reads the ledger `file` (absent: empty) into text and checks every line;
 * *last: the newest version. *found: the first line of content `digest`,
 * or else of `version` (the one not asked for is NULL / 0); version 0 if
 * none. */
static int ledger_read(const ledger_kind_t *k, const char *file, weir_buf_t *text,
                       const char *digest, uint64_t version, uint64_t *last, ledger_line_t *found,
                       char *err, size_t errlen)
{
    char why[600];
    int rc = 0;
    *last = 0;
    memset(found, 0, sizeof *found);
    struct stat lst; /* (none yet: an empty ledger; a link to nothing is an error) */
    if (lstat(file, &lst) == 0 || errno != ENOENT)
        rc = weir_read_file(file, LEDGER_MAX, text, why, sizeof why);
    if (rc) return weir_errf(err, errlen, rc, "the %s ledger: %s", k->what, why);
    unsigned line = 0;
    for (size_t i = 0; i < text->len && rc == 0;) {
        const char *p = text->data + i, *nl = memchr(p, '\n', text->len - i);
        const char *end = nl ? nl : text->data + text->len;
        i = (size_t)(end - text->data) + 1;
        line++;
        if (p == end || *p == '#') continue;
        uint64_t v = 0;
        const char *d = NULL;
        if (parse_line(p, end, &v, &d) != 0)
            rc = weir_errf(err, errlen, WEIR_EINVAL,
                           "%s line %u: not 'VERSION DIGEST TIME PATH' (a %s ledger weir "
                           "did not write? restore it from a backup: the decision log's %s "
                           "versions are its numbers)",
                           file, line, k->what, k->what);
        else if (v <= *last)
            rc = weir_errf(err, errlen, WEIR_EINVAL,
                           "%s line %u: version %" PRIu64 " after version %" PRIu64
                           " (versions only grow)",
                           file, line, v, *last);
        else if (!found->version &&
                 (digest ? !memcmp(d, digest, LEDGER_DIGEST_LEN) : v == version)) {
            const char *path = d + LEDGER_DIGEST_LEN + 22; /* past " TIME " (checked) */
            *found = (ledger_line_t){v, path, (size_t)(end - path)};
        }
        *last = v;
    }
    return rc;
}

int ledger_exists(const ledger_kind_t *k, const char *datadir)
{
    char file[4096];
    struct stat lst;
    ledger_file(k, datadir, file, sizeof file);
    return lstat(file, &lst) == 0;
}

int ledger_last(const ledger_kind_t *k, const char *datadir, uint64_t *last, char *err,
                size_t errlen)
{
    char file[4096];
    ledger_file(k, datadir, file, sizeof file);
    weir_buf_t text = WEIR_BUF_INIT;
    ledger_line_t line;
    int rc = ledger_read(k, file, &text, NULL, 0, last, &line, err, errlen);
    buf_free(&text);
    return rc;
}

int ledger_version(const ledger_kind_t *k, const char *datadir, const char *digest,
                   const char *path, int add, uint64_t floor, uint64_t *version, char *err,
                   size_t errlen)
{
    char file[4096];
    ledger_file(k, datadir, file, sizeof file);
    weir_buf_t text = WEIR_BUF_INIT;
    char why[600];
    uint64_t last;
    ledger_line_t line;
    int rc = ledger_read(k, file, &text, digest, 0, &last, &line, err, errlen);
    *version = line.version;
    if (rc || *version || !add) {
        buf_free(&text);
        return rc;
    }
    /* A new version: the ledger rewritten whole with its line added. */
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    weir_outfile_t o;
    if (last < floor) last = floor; /* THE FIRST LEDGER */
    if ((rc = weir_outfile_open(&o, file, why, sizeof why)) == 0) {
        if (text.len == 0) fputs(k->header, o.f);
        if (text.len == 0 && floor) fprintf(o.f, k->floor_note, (unsigned long long)floor);
        if (text.len) fwrite(text.data, 1, text.len, o.f);
        if (text.len && text.data[text.len - 1] != '\n') fputc('\n', o.f);
        fprintf(o.f, "%" PRIu64 " %s %s ", last + 1, digest, when);
        char *abs = realpath(path, NULL); /* for people: where it was, from anywhere */
        for (const char *c = abs ? abs : path; *c; c++) /* one line, whatever the name holds */
            fputc((unsigned char)*c < 32 || *c == 127 ? '?' : *c, o.f);
        fputc('\n', o.f);
        free(abs);
        rc = weir_outfile_commit(&o, why, sizeof why);
    }
    buf_free(&text);
    if (rc) return weir_errf(err, errlen, rc, "the %s ledger: %s", k->what, why);
    *version = last + 1;
    return 0;
}

int ledger_path(const ledger_kind_t *k, const char *datadir, uint64_t version, char *path,
                size_t cap)
{
    char file[4096], err[256];
    ledger_file(k, datadir, file, sizeof file);
    weir_buf_t text = WEIR_BUF_INIT;
    uint64_t last;
    ledger_line_t line;
    int rc = ledger_read(k, file, &text, NULL, version, &last, &line, err, sizeof err);
    int ok = rc == 0 && line.version && line.len < cap;
    if (ok) {
        memcpy(path, line.path, line.len);
        path[line.len] = '\0';
    }
    buf_free(&text);
    return ok;
}
