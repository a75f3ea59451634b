/* outputs.c — NDJSON outputs of a pipeline (see outputs.h). */
#include "decide/outputs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/fileio.h"
#include "base/numfmt.h"

struct outputs {
    const spec_t *spec;
    char *dir; /* DATA/outputs */
    /* Per aggregate, the constant parts of its window lines, written once
     * (WINDOW LINES): the head up to the key, then ,"name": per select. */
    weir_buf_t *agg_head;
    weir_buf_t **agg_names;
    FILE **agg; /* per aggregate */
    FILE *late;
    FILE **pat;  /* per pattern with emit: (NULL for the others) */
    FILE **emit; /* per decision rule with `emit` (NULL for the others) */
    /* Emit streams opened by name for a replayed decision whose emit no
     * rule of the spec has now (a reload removed it): xname[i], xemit[i]. */
    char **xname;
    FILE **xemit;
    uint32_t nx;
    /* outputs_ends' lines for the files no stream writes, scanned when the
     * directory's mtime was closed_mtime (zeroed: to be scanned again, as
     * when a stream opens on one of them). */
    weir_buf_t closed_ends;
    struct timespec closed_mtime;
    int emits_ever;               /* DATA/outputs/.emits: some spec here had emits */
    char gen[40];            /* DATA/outputs/.generation ("" without one): OUTPUTS GENERATION */
    pthread_mutex_t emit_mu; /* emits come from the request threads; guards the x arrays */
    weir_buf_t emit_line;
    weir_buf_t line;
    outputs_span_t span; /* on_window's */
    uint64_t windows, lates, matches;
    uint64_t unkicked; /* bytes write_line wrote since the last writeback kick */
    atomic_int failed; /* first failed write's errno, or 0 (writers under either lock) */
};

/* Remembers the first failure's errno: by the time it is reported (the next
 * flush) errno belongs to whatever ran since. */
static void out_failed(outputs_t *o)
{
    int e = errno ? errno : EIO, none = 0;
    atomic_compare_exchange_strong(&o->failed, &none, e);
}

static FILE *open_output(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.ndjson", dir, name) >= (int)sizeof path) {
        weir_errf(err, errlen, WEIR_EINVAL, "the path of output %s under %s is too long", name, dir);
        return NULL;
    }
    FILE *f = fopen(path, "a");
    if (!f) weir_errf(err, errlen, WEIR_EIO, "cannot open %s: %s", path, strerror(errno));
    return f;
}

/* Opens every stream of o (its arrays allocated and zeroed) in dir. */
static int open_streams(outputs_t *o, char *err, size_t errlen)
{
    const spec_t *spec = o->spec;
    for (uint32_t i = 0; i < spec->naggregates; i++)
        if (!(o->agg[i] = open_output(o->dir, spec->aggregates[i].name, err, errlen))) return WEIR_EIO;
    if (!(o->late = open_output(o->dir, "late", err, errlen))) return WEIR_EIO;
    for (uint32_t i = 0; i < spec->npatterns; i++)
        if (spec->patterns[i].has_emit &&
            !(o->pat[i] = open_output(o->dir, spec->patterns[i].name, err, errlen)))
            return WEIR_EIO;
    for (uint32_t i = 0; i < spec->ndecisions; i++) {
        const char *name = spec->decisions[i].emit;
        if (!name) continue;
        /* Rules emitting to the same output share one stream. */
        for (uint32_t j = 0; j < i && !o->emit[i]; j++)
            if (spec->decisions[j].emit && !strcmp(spec->decisions[j].emit, name)) o->emit[i] = o->emit[j];
        if (!o->emit[i] && !(o->emit[i] = open_output(o->dir, name, err, errlen))) return WEIR_EIO;
    }
    return 0;
}

/* Closes every open stream and zeroes the arrays. */
static void close_streams(outputs_t *o)
{
    for (uint32_t i = 0; i < o->spec->naggregates; i++)
        if (o->agg[i]) fclose(o->agg[i]);
    if (o->late) fclose(o->late);
    for (uint32_t i = 0; i < o->spec->npatterns; i++)
        if (o->pat[i]) fclose(o->pat[i]);
    for (uint32_t i = 0; i < o->spec->ndecisions; i++) {
        int shared = 0;
        for (uint32_t j = 0; j < i; j++) shared |= o->emit[j] == o->emit[i];
        if (o->emit[i] && !shared) fclose(o->emit[i]);
    }
    memset(o->agg, 0, (o->spec->naggregates + 1) * sizeof *o->agg);
    o->late = NULL;
    memset(o->pat, 0, (o->spec->npatterns + 1) * sizeof *o->pat);
    memset(o->emit, 0, (o->spec->ndecisions + 1) * sizeof *o->emit);
}

/* Whether emits were ever written in dir: its ".emits" mark, made (and
 * made durable) here when spec has any. A recovery rewrites the emits of
 * decided events from their decision records (EMITS FROM THE DECISION LOG
 * in src/serve/runtime.c) even under a spec that has none left, but reads
 * those records only where the mark says there may be emits to rewrite. */
static int mark_emits(const char *dir, const spec_t *spec)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.emits", dir);
    if (access(path, F_OK) == 0) return 1;
    int any = 0;
    for (uint32_t i = 0; i < spec->ndecisions; i++)
        any |= spec->decisions[i].emit != NULL;
    if (!any) return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
    weir_fsync_dir(dir);
    return 1;
}

/* OUTPUTS GENERATION. A checkpoint records where each output file ended
 * (outputs_ends), and recovery cuts the files back there: that is right
 * only for the files the checkpoint saw grow. A writer that rewrites them
 * whole (a replay of the whole log, an ingest that rebuilds them) writes
 * other files, in another order, so it names a new generation in
 * DATA/outputs/.generation once they are rebuilt, and a checkpoint records
 * the generation it saw: recovery cuts by a checkpoint of its generation
 * only (runtime.c). Older directories and checkpoints have none (""). */
#define GENERATION_FILE ".generation"

static void read_generation(outputs_t *o)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/" GENERATION_FILE, o->dir);
    o->gen[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(o->gen, sizeof o->gen, f)) o->gen[0] = '\0';
    o->gen[strcspn(o->gen, "\n")] = '\0';
    fclose(f);
}

const char *outputs_generation(const outputs_t *o)
{
    return o->gen;
}

/* fdatasync of an open stream (flushed); remembers a failure. */
static void sync_stream(outputs_t *o, FILE *f)
{
    if (f && fdatasync(fileno(f)) != 0) out_failed(o);
}

int outputs_new_generation(outputs_t *o, char *err, size_t errlen)
{
    /* The rebuilt files first: a generation must never name files that a
     * crash can still take (their old copies are deleted next). */
    int rc = outputs_flush(o, err, errlen);
    if (rc) return rc;
    for (uint32_t i = 0; i < o->spec->naggregates; i++)
        sync_stream(o, o->agg[i]);
    sync_stream(o, o->late);
    for (uint32_t i = 0; i < o->spec->npatterns; i++)
        sync_stream(o, o->pat[i]);
    pthread_mutex_lock(&o->emit_mu);
    for (uint32_t i = 0; i < o->spec->ndecisions; i++)
        sync_stream(o, o->emit[i]);
    for (uint32_t i = 0; i < o->nx; i++)
        sync_stream(o, o->xemit[i]);
    pthread_mutex_unlock(&o->emit_mu);
    int e = atomic_load(&o->failed);
    if (e) return weir_errf(err, errlen, WEIR_EIO, "syncing the outputs failed: %s", strerror(e));
    char path[4200], id[sizeof o->gen];
    snprintf(path, sizeof path, "%s/" GENERATION_FILE, o->dir);
    /* Unique enough: the wall clock's ms, a monotonic ns count and the pid. */
    snprintf(id, sizeof id, "%" PRIx64 "-%" PRIx64 "-%x", (uint64_t)weir_wall_ms(), weir_mono_ns(),
             (unsigned)getpid());
    weir_outfile_t f;
    if ((rc = weir_outfile_open(&f, path, err, errlen)) != 0) return rc;
    fprintf(f.f, "%s\n", id);
    if ((rc = weir_outfile_commit(&f, err, errlen)) != 0) return rc;
    memcpy(o->gen, id, sizeof id);
    return 0;
}

int outputs_open(const char *datadir, const spec_t *spec, outputs_t **out, char *err, size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/outputs", datadir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", dir, strerror(errno));
    outputs_t *o = weir_calloc(1, sizeof *o);
    o->spec = spec;
    o->dir = weir_strdup(dir);
    o->agg = weir_calloc(spec->naggregates + 1, sizeof *o->agg);
    o->pat = weir_calloc(spec->npatterns + 1, sizeof *o->pat);
    o->emit = weir_calloc(spec->ndecisions + 1, sizeof *o->emit);
    pthread_mutex_init(&o->emit_mu, NULL);
    o->agg_head = weir_calloc(spec->naggregates + 1, sizeof *o->agg_head);
    o->agg_names = weir_calloc(spec->naggregates + 1, sizeof *o->agg_names);
    for (uint32_t i = 0; i < spec->naggregates; i++) {
        const spec_aggregate_t *a = &spec->aggregates[i];
        buf_append_str(&o->agg_head[i], "{\"aggregate\":");
        buf_append_json_string(&o->agg_head[i], a->name, strlen(a->name));
        buf_append_str(&o->agg_head[i], ",\"key\":");
        o->agg_names[i] = weir_calloc(a->nselect + 1, sizeof **o->agg_names);
        for (uint32_t k = 0; k < a->nselect; k++) {
            buf_append_str(&o->agg_names[i][k], ",");
            buf_append_json_string(&o->agg_names[i][k], a->select[k].name, strlen(a->select[k].name));
            buf_append_str(&o->agg_names[i][k], ":");
        }
    }
    int rc = open_streams(o, err, errlen);
    if (rc) {
        outputs_close(o, NULL, 0);
        return rc;
    }
    o->emits_ever = mark_emits(o->dir, spec);
    read_generation(o);
    *out = o;
    return 0;
}

int outputs_emits_ever(const outputs_t *o)
{
    return o->emits_ever;
}

/* Closes the streams opened by name (emit_mu held, or no other user). */
static void close_extras(outputs_t *o)
{
    for (uint32_t i = 0; i < o->nx; i++) {
        if (fclose(o->xemit[i]) != 0) out_failed(o);
        weir_free(o->xname[i]);
    }
    weir_free(o->xname);
    weir_free(o->xemit);
    o->xname = NULL;
    o->xemit = NULL;
    o->nx = 0;
}

int outputs_reopen(outputs_t *o, char *err, size_t errlen)
{
    int rc = outputs_flush(o, err, errlen);
    if (rc) return rc;
    pthread_mutex_lock(&o->emit_mu);
    close_extras(o); /* opened again by name when needed */
    o->closed_mtime = (struct timespec){0, 0};
    pthread_mutex_unlock(&o->emit_mu);
    const spec_t *s = o->spec;
    /* The new streams are opened beside the old ones, which stay in use if
     * any new one cannot be opened (a writer never sees a closed stream). */
    outputs_t old = {.spec = s, .agg = o->agg, .late = o->late, .pat = o->pat, .emit = o->emit};
    outputs_t fresh = {.spec = s, .dir = o->dir};
    fresh.agg = weir_calloc(s->naggregates + 1, sizeof *fresh.agg);
    fresh.pat = weir_calloc(s->npatterns + 1, sizeof *fresh.pat);
    fresh.emit = weir_calloc(s->ndecisions + 1, sizeof *fresh.emit);
    rc = open_streams(&fresh, err, errlen);
    outputs_t *gone = rc ? &fresh : &old;
    if (rc == 0) {
        pthread_mutex_lock(&o->emit_mu);
        o->agg = fresh.agg, o->late = fresh.late, o->pat = fresh.pat, o->emit = fresh.emit;
        pthread_mutex_unlock(&o->emit_mu);
    }
    close_streams(gone);
    weir_free(gone->agg);
    weir_free(gone->pat);
    weir_free(gone->emit);
    return rc;
}

int outputs_failure(const outputs_t *o)
{
    return atomic_load(&o->failed);
}

void outputs_keep_failure(outputs_t *o, int e)
{
    int none = 0;
    if (e) atomic_compare_exchange_strong(&o->failed, &none, e);
}

int outputs_flush(outputs_t *o, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < o->spec->naggregates; i++)
        if (o->agg[i] && fflush(o->agg[i]) != 0) out_failed(o);
    if (o->late && fflush(o->late) != 0) out_failed(o);
    for (uint32_t i = 0; i < o->spec->npatterns; i++)
        if (o->pat[i] && fflush(o->pat[i]) != 0) out_failed(o);
    pthread_mutex_lock(&o->emit_mu);
    for (uint32_t i = 0; i < o->spec->ndecisions; i++)
        if (o->emit[i] && fflush(o->emit[i]) != 0) out_failed(o);
    for (uint32_t i = 0; i < o->nx; i++)
        if (fflush(o->xemit[i]) != 0) out_failed(o);
    pthread_mutex_unlock(&o->emit_mu);
    int e = atomic_load(&o->failed);
    return e ? weir_errf(err, errlen, WEIR_EIO, "writing outputs failed: %s", strerror(e)) : 0;
}

int outputs_close(outputs_t *o, char *err, size_t errlen)
{
    if (!o) return 0;
    int rc = outputs_flush(o, err, errlen);
    close_streams(o);
    close_extras(o);
    pthread_mutex_destroy(&o->emit_mu);
    weir_free(o->pat);
    weir_free(o->emit);
    weir_free(o->agg);
    for (uint32_t i = 0; i < o->spec->naggregates; i++) {
        buf_free(&o->agg_head[i]);
        for (uint32_t k = 0; k < o->spec->aggregates[i].nselect; k++) buf_free(&o->agg_names[i][k]);
        weir_free(o->agg_names[i]);
    }
    weir_free(o->agg_head);
    weir_free(o->agg_names);
    weir_free(o->dir);
    buf_free(&o->emit_line);
    buf_free(&o->closed_ends);
    buf_free(&o->line);
    weir_free(o);
    return rc;
}

void outputs_json_value(weir_buf_t *b, const expr_value_t *v)
{
    switch ((expr_type_t)v->type) {
    case EXPR_NULL: buf_append_str(b, "null"); break;
    case EXPR_BOOL: buf_append_str(b, v->as.b ? "true" : "false"); break;
    case EXPR_INT:
    case EXPR_TIME:
    case EXPR_DURATION: numfmt_append_i64(b, v->as.i); break;
    case EXPR_FLOAT:
        numfmt_append_json(b, v->as.f);
        break;
    case EXPR_STRING: buf_append_json_string(b, v->as.s.ptr, v->as.s.len); break;
    }
}

void outputs_json_key(weir_buf_t *b, const spec_source_t *src, weir_slice_t key)
{
    if (src->fields[src->key_slot].type == EXPR_INT) buf_append(b, key.ptr, key.len);
    else buf_append_json_string(b, key.ptr, key.len);
}

/* A pattern's match (pattern.h, pattern_io_t.match): one flat derived
 * event, weir's fields first, then the emit fields. */
void outputs_match_line(weir_buf_t *b, const spec_t *spec, uint32_t part, const spec_pattern_t *p,
                        weir_slice_t key, int64_t start, int64_t time, const expr_value_t *vals)
{
    buf_append_str(b, "{\"pattern\":");
    buf_append_json_string(b, p->name, strlen(p->name));
    buf_appendf(b, ",\"partition\":%u,\"key\":", part);
    outputs_json_key(b, &spec->sources[0], key);
    buf_appendf(b,
                ",\"start\":%" PRId64 ",\"time\":%" PRId64 ",\"watermark\":%" PRId64 ",\"events\":",
                start, time, vals[p->out.nselect + 1].as.i);
    buf_append(b, vals[p->out.nselect].as.s.ptr, vals[p->out.nselect].as.s.len);
    for (uint32_t i = 0; i < p->out.nselect; i++) {
        buf_append_str(b, ",");
        buf_append_json_string(b, p->out.select[i].name, strlen(p->out.select[i].name));
        buf_append_str(b, ":");
        outputs_json_value(b, &vals[i]);
    }
    buf_append_str(b, "}");
}

/* EARLY WRITEBACK. Output files are flushed, not fsynced, as lines go
 * (a checkpoint or a rebuilt generation syncs them), and the kernel starts
 * writing dirty pages back only past a share of memory: a replay of the
 * whole log rewrote 1 GB of window lines, every byte still dirty at its
 * end, and the fdatasync before ready waited 0.55 s for all of it (strace;
 * 6% of the replay). So every KICK_BYTES the streams write_line feeds are
 * flushed and their writeback started (sync_file_range WRITE: asynchronous,
 * it waits for nothing), as RocksDB's bytes_per_sync and PostgreSQL's
 * *_flush_after do; the final sync then finds little left. The range
 * sync is a hint (a sync that counts reports its own failure); a failed
 * flush is remembered like any failed write. */
#define KICK_BYTES (8u << 20)

static void kick_stream(outputs_t *o, FILE *f)
{
    if (!f) return;
    if (fflush(f) != 0) /* (a failed write is the flush's to report, as at outputs_flush) */
        out_failed(o);
    else
        sync_file_range(fileno(f), 0, 0, SYNC_FILE_RANGE_WRITE);
}

static void kick_writeback(outputs_t *o)
{
    for (uint32_t i = 0; i < o->spec->naggregates; i++)
        kick_stream(o, o->agg[i]);
    kick_stream(o, o->late);
    for (uint32_t i = 0; i < o->spec->npatterns; i++)
        kick_stream(o, o->pat[i]);
    o->unkicked = 0;
}

static void write_line(outputs_t *o, FILE *f, const weir_buf_t *line)
{
    if (fwrite(line->data, 1, line->len, f) != line->len) out_failed(o);
    if ((o->unkicked += line->len) >= KICK_BYTES) kick_writeback(o);
}

/* Fills span with the text of [start, end) unless it holds it already. */
static void span_text(outputs_span_t *span, int64_t start, int64_t end)
{
    if (span->len && span->start == start && span->end == end) return;
    char *t = span->text;
    memcpy(t, ",\"start\":", 9);
    size_t n = 9 + numfmt_i64(t + 9, start);
    memcpy(t + n, ",\"end\":", 7);
    n += 7;
    n += numfmt_i64(t + n, end);
    span->start = start, span->end = end, span->len = (uint32_t)n;
}

void outputs_window_line(const outputs_t *o, weir_buf_t *b, outputs_span_t *span, uint32_t part,
                         const spec_aggregate_t *agg, weir_slice_t key, int64_t start, int64_t end,
                         int partial, const expr_value_t *vals)
{
    const spec_pattern_t *pat = o->spec->npatterns ? spec_pattern_of(o->spec, agg) : NULL;
    if (pat) {
        outputs_match_line(b, o->spec, part, pat, key, start, end, vals);
        buf_append(b, "\n", 1);
        return;
    }
    /* WINDOW LINES: one per window closed, ten million in a full replay of
     * the bench's log; the names in them are escaped once, at open. */
    size_t ai = (size_t)(agg - o->spec->aggregates);
    buf_append(b, o->agg_head[ai].data, o->agg_head[ai].len);
    outputs_json_key(b, &o->spec->sources[0], key);
    span_text(span, start, end);
    buf_append(b, span->text, span->len);
    /* only then: every other line is as before (engine.c PARTIAL WINDOWS) */
    if (partial) buf_append_str(b, ",\"partial\":true");
    for (uint32_t i = 0; i < agg->nselect; i++) {
        buf_append(b, o->agg_names[ai][i].data, o->agg_names[ai][i].len);
        outputs_json_value(b, &vals[i]);
    }
    buf_append(b, "}\n", 2);
}

void outputs_write_lines(outputs_t *o, const spec_aggregate_t *agg, const weir_buf_t *lines,
                         uint64_t nlines)
{
    const spec_pattern_t *pat = agg && o->spec->npatterns ? spec_pattern_of(o->spec, agg) : NULL;
    if (!agg) {
        write_line(o, o->late, lines);
        o->lates += nlines;
    } else if (pat) {
        write_line(o, o->pat[pat - o->spec->patterns], lines);
        o->matches += nlines;
    } else {
        write_line(o, o->agg[agg - o->spec->aggregates], lines);
        o->windows += nlines;
    }
}

void outputs_late_line(const outputs_t *o, weir_buf_t *b, uint32_t part, uint64_t offset,
                       weir_slice_t key, int64_t time, int64_t watermark, weir_slice_t event)
{
    buf_append_str(b, "{\"partition\":");
    numfmt_append_u64(b, part);
    buf_append_str(b, ",\"offset\":");
    numfmt_append_u64(b, offset);
    buf_append_str(b, ",\"key\":");
    outputs_json_key(b, &o->spec->sources[0], key);
    buf_append_str(b, ",\"time\":");
    numfmt_append_i64(b, time);
    buf_append_str(b, ",\"watermark\":");
    numfmt_append_i64(b, watermark);
    buf_append_str(b, ",\"event\":");
    buf_append(b, event.ptr, event.len); /* a JSON object, as logged */
    buf_append_str(b, "}\n");
}

static void on_window(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                      int64_t start, int64_t end, int partial, const expr_value_t *vals)
{
    outputs_t *o = ctx;
    buf_reset(&o->line);
    outputs_window_line(o, &o->line, &o->span, part, agg, key, start, end, partial, vals);
    outputs_write_lines(o, agg, &o->line, 1);
}

static void on_late(void *ctx, uint32_t part, uint64_t offset, weir_slice_t key, int64_t time,
                    int64_t watermark, weir_slice_t event)
{
    outputs_t *o = ctx;
    buf_reset(&o->line);
    outputs_late_line(o, &o->line, part, offset, key, time, watermark, event);
    outputs_write_lines(o, NULL, &o->line, 1);
}

static int is_open_output(const outputs_t *o, const char *file);

/* The stream of an emit no rule has now, opened by name on first use
 * (emit_mu held). NULL if the name is not one a spec could give (it comes
 * from a decision record) or the file cannot be opened. */
static FILE *extra_emit(outputs_t *o, const char *name)
{
    for (uint32_t i = 0; i < o->nx; i++)
        if (!strcmp(o->xname[i], name)) return o->xemit[i];
    if (!spec_output_name_ok(name, strlen(name))) return NULL;
    char file[128];
    snprintf(file, sizeof file, "%s.ndjson", name);
    if (is_open_output(o, file)) return NULL; /* another output's file now: not two writers */
    char err[256];
    FILE *f = open_output(o->dir, name, err, sizeof err);
    if (!f) return NULL;
    o->xname = weir_realloc(o->xname, (o->nx + 1) * sizeof *o->xname);
    o->xemit = weir_realloc(o->xemit, (o->nx + 1) * sizeof *o->xemit);
    o->xname[o->nx] = weir_strdup(name);
    o->xemit[o->nx++] = f;
    o->closed_mtime = (struct timespec){0, 0};
    return f;
}

int outputs_emit(outputs_t *o, const char *name, uint32_t part, uint64_t offset, weir_slice_t key,
                 const char *decision, int rule, double score, weir_slice_t event)
{
    pthread_mutex_lock(&o->emit_mu);
    /* By name: a replayed decision's rule number may be another rule's in
     * the spec now in force (a reload changed the rules since). */
    FILE *f = NULL;
    for (uint32_t i = 0; i < o->spec->ndecisions && !f; i++)
        if (o->emit[i] && !strcmp(o->spec->decisions[i].emit, name)) f = o->emit[i];
    if (!f) f = extra_emit(o, name);
    if (!f) {
        pthread_mutex_unlock(&o->emit_mu);
        return -1;
    }
    weir_buf_t *b = &o->emit_line;
    buf_reset(b);
    buf_appendf(b, "{\"partition\":%u,\"offset\":%" PRIu64 ",\"key\":", part, offset);
    outputs_json_key(b, &o->spec->sources[0], key);
    buf_append_str(b, ",\"decision\":");
    buf_append_json_string(b, decision, strlen(decision));
    buf_appendf(b, ",\"rule\":%d,\"score\":", rule);
    expr_value_t sv = isfinite(score) ? expr_float(score) : expr_null(); /* JSON has no inf */
    outputs_json_value(b, &sv);
    buf_append_str(b, ",\"event\":");
    buf_append(b, event.ptr, event.len);
    buf_append_str(b, "}\n");
    if (fwrite(b->data, 1, b->len, f) != b->len) out_failed(o);
    pthread_mutex_unlock(&o->emit_mu);
    return 0;
}

engine_sink_t outputs_sink(outputs_t *o)
{
    return (engine_sink_t){on_window, on_late, o, NULL};
}

/* The streams append ("a"): once emptied they write from 0. */
/* The paths of output `name` and of its copy set aside (NAME.ndjson.cut). */
static void aside_paths(const outputs_t *o, const char *name, char *path, char *aside, size_t cap)
{
    snprintf(path, cap, "%s/%s.ndjson", o->dir, name);
    snprintf(aside, cap, "%s/%s.ndjson.cut", o->dir, name);
}

/* Sets output `name` aside and puts an empty file in its place; one set
 * aside already (by a writer that stopped before it rebuilt it) is the one
 * to keep: the file is only emptied. */
static int set_aside(outputs_t *o, const char *name, char *err, size_t errlen)
{
    char path[4096], aside[4200];
    aside_paths(o, name, path, aside, sizeof path);
    struct stat st;
    if (stat(aside, &st) != 0 && stat(path, &st) == 0 && st.st_size > 0) {
        if (rename(path, aside) != 0)
            return weir_errf(err, errlen, WEIR_EIO, "cannot move %s aside: %s", path,
                             strerror(errno));
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return weir_errf(err, errlen, WEIR_EIO, "cannot empty %s: %s", path, strerror(errno));
    close(fd);
    return 0;
}

/* The i-th file outputs_sink writes: aggregates, then pattern matches ("" for
 * a pattern without emit:, which has none), then late events; NULL past it. */
static const char *sink_file(const outputs_t *o, uint32_t i)
{
    const spec_t *s = o->spec;
    if (i < s->naggregates) return s->aggregates[i].name;
    i -= s->naggregates;
    if (i < s->npatterns) return o->pat[i] ? s->patterns[i].name : "";
    return i == s->npatterns ? "late" : NULL;
}

int outputs_set_aside_sink_files(outputs_t *o, char *err, size_t errlen)
{
    int rc = outputs_flush(o, err, errlen);
    const char *name;
    for (uint32_t i = 0; rc == 0 && (name = sink_file(o, i)); i++)
        if (*name) rc = set_aside(o, name, err, errlen);
    return rc ? rc : outputs_reopen(o, err, errlen);
}

/* Puts the set-aside copy of output `name` back (keep), or deletes it. */
static void end_aside(const outputs_t *o, const char *name, int keep)
{
    char path[4096], aside[4200];
    aside_paths(o, name, path, aside, sizeof path);
    if (keep ? rename(aside, path) != 0 : unlink(aside) != 0)
        if (errno != ENOENT)
            fprintf(stderr, "weir: cannot %s %s: %s\n", keep ? "put back" : "remove", aside,
                    strerror(errno));
}

/* Whether output name's copy is set aside. */
static int is_aside(const outputs_t *o, const char *name)
{
    char path[4096], aside[4200];
    struct stat st;
    aside_paths(o, name, path, aside, sizeof path);
    return stat(aside, &st) == 0;
}

int outputs_any_aside(const outputs_t *o)
{
    int any = 0;
    const char *name;
    for (uint32_t i = 0; !any && (name = sink_file(o, i)); i++)
        any = *name && is_aside(o, name);
    return any;
}

void outputs_end_aside_sink_files(outputs_t *o, int put_back)
{
    const char *name;
    for (uint32_t i = 0; (name = sink_file(o, i)); i++)
        if (*name) end_aside(o, name, put_back);
}

uint64_t outputs_windows(const outputs_t *o)
{
    return o->windows;
}

uint64_t outputs_late(const outputs_t *o)
{
    return o->lates;
}

uint64_t outputs_matches(const outputs_t *o)
{
    return o->matches;
}

/* "<name>.ndjson <bytes>" for one open output (after a flush: its size). */
static void output_end(weir_buf_t *b, const char *name, FILE *f)
{
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) return;
    buf_appendf(b, "%s.ndjson %lld\n", name, (long long)st.st_size);
}

/* Whether file (NAME.ndjson) is one of o's open streams. */
static int is_open_output(const outputs_t *o, const char *file)
{
    const spec_t *s = o->spec;
    size_t n = strlen(file) - 7;
#define SAME(name) (strlen(name) == n && memcmp(name, file, n) == 0)
    if (SAME("late")) return 1;
    for (uint32_t i = 0; i < s->naggregates; i++)
        if (SAME(s->aggregates[i].name)) return 1;
    for (uint32_t i = 0; o->pat && i < s->npatterns; i++)
        if (o->pat[i] && SAME(s->patterns[i].name)) return 1;
    for (uint32_t i = 0; i < s->ndecisions; i++)
        if (o->emit[i] && SAME(s->decisions[i].emit)) return 1;
    for (uint32_t i = 0; i < o->nx; i++)
        if (SAME(o->xname[i])) return 1;
#undef SAME
    return 0;
}

int outputs_listed_end(const char *text, size_t len, const char *file, long long *end)
{
    size_t n = strlen(file);
    for (size_t at = 0; at < len;) {
        const char *line = text + at;
        const char *nl = memchr(line, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - line) : len - at;
        at += ll + 1;
        if (ll > n + 1 && memcmp(line, file, n) == 0 && line[n] == ' ') {
            *end = strtoll(line + n + 1, NULL, 10);
            return 1;
        }
    }
    /* Not listed: created after the checkpoint, if the list is whole. */
    *end = 0;
    return len >= sizeof OUTPUTS_ENDS_WHOLE &&
           memcmp(text, OUTPUTS_ENDS_WHOLE "\n", sizeof OUTPUTS_ENDS_WHOLE) == 0;
}

int outputs_same_generation(const outputs_t *o, const char *text, size_t len)
{
    size_t glen = strlen(o->gen), k = strlen(OUTPUTS_ENDS_GENERATION);
    for (size_t at = 0; at < len;) {
        const char *line = text + at;
        const char *nl = memchr(line, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - line) : len - at;
        at += ll + 1;
        if (ll >= k && memcmp(line, OUTPUTS_ENDS_GENERATION, k) == 0)
            return ll - k == glen && memcmp(line + k, o->gen, glen) == 0;
    }
    return glen == 0;
}

void outputs_ends(outputs_t *o, weir_buf_t *b)
{
    const spec_t *s = o->spec;
    /* Every output file, not only the open streams: a file not listed is
     * then one created after the checkpoint (by a reload that added an
     * output), which recovery empties before the replay writes it again.
     * The first line says the list is whole. */
    buf_append_str(b, OUTPUTS_ENDS_WHOLE "\n");
    buf_appendf(b, OUTPUTS_ENDS_GENERATION "%s\n", o->gen);
    for (uint32_t i = 0; i < s->naggregates; i++) output_end(b, s->aggregates[i].name, o->agg[i]);
    output_end(b, "late", o->late);
    for (uint32_t i = 0; o->pat && i < s->npatterns; i++) output_end(b, s->patterns[i].name, o->pat[i]);
    pthread_mutex_lock(&o->emit_mu);
    for (uint32_t i = 0; o->emit && i < s->ndecisions; i++)
        if (o->emit[i]) output_end(b, s->decisions[i].emit, o->emit[i]);
    for (uint32_t i = 0; i < o->nx; i++)
        output_end(b, o->xname[i], o->xemit[i]);
    /* The files no stream writes do not change: they are listed from a
     * directory scan made again only when the directory changed (its
     * mtime), not at every checkpoint (a readdir and stats took 3-8 ms
     * while every partition waited). */
    struct stat dst;
    if (stat(o->dir, &dst) == 0 && (dst.st_mtim.tv_sec != o->closed_mtime.tv_sec ||
                                    dst.st_mtim.tv_nsec != o->closed_mtime.tv_nsec)) {
        o->closed_mtime = dst.st_mtim; /* a file was created or removed since */
        buf_reset(&o->closed_ends);
        DIR *d = opendir(o->dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t n = strlen(e->d_name);
            struct stat st;
            if (n <= 7 || strcmp(e->d_name + n - 7, ".ndjson") != 0 || is_open_output(o, e->d_name))
                continue;
            if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
                buf_appendf(&o->closed_ends, "%s %lld\n", e->d_name, (long long)st.st_size);
        }
        if (d) closedir(d);
    }
    buf_append(b, o->closed_ends.data, o->closed_ends.len);
    pthread_mutex_unlock(&o->emit_mu);
}
