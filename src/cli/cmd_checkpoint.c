/* cmd_checkpoint.c — `weir checkpoint DIR [--verify] [--json]`: lists the
 * checkpoints of a data directory with their offsets and sizes and says
 * whether each verifies (formats and rules in src/log/checkpoint.h). It is
 * read-only, takes no lock and so may run beside `weir run`. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/fileio.h"
#include "cli/cli.h"
#include "log/checkpoint.h"

static const char usage[] =
    "usage: weir checkpoint DIR [--verify] [--json]\n"
    "\n"
    "Lists the checkpoints in DIR/checkpoints, newest first: id, time written (UTC),\n"
    "pipeline, partitions, bytes and whether each is valid; under each, every\n"
    "partition's log offset (replay starts there), decision-log offset and file size.\n"
    "Without --verify, the manifest's CRC, each file's size, block table, trailer\n"
    "and header are checked; --verify also reads every byte and checks the CRC32C\n"
    "of every 64 KiB block. Read-only: safe beside a running `weir run`.\n"
    "DIR is a data directory (the --data of weir run), not DIR/checkpoints itself.\n"
    "Exits 0 when every checkpoint listed is valid, or there are none yet (a data\n"
    "directory with a log or an empty one), 1 otherwise: one line on stderr per\n"
    "invalid checkpoint naming the file and byte offset, or why DIR is no data\n"
    "directory (a file, a checkpoints directory, a folder without checkpoints/).\n"
    "An unfinished checkpoint (<id>.tmp, left by a crash) or one being pruned\n"
    "(<id>.del) is noted; weir removes them when it next opens the store.\n"
    "  --verify   read and check every byte\n"
    "  --json     one JSON object instead of the table\n";

static const char *prefix = "weir checkpoint";

/* "2024-05-01T12:00:00.123Z" */
static void format_time(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, n, "%" PRId64 " ms", ms);
        return;
    }
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03dZ", (int)(((ms % 1000) + 1000) % 1000));
}

/* Bytes as printable text: non-printables as \xNN, except that a value of
 * several lines (the outputs' ends) goes on, a line each, after indent. */
static void print_bytes(weir_slice_t s, const char *indent)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= ' ' && c < 127 && c != '\\')
            putchar(c);
        else if (c == '\n' && indent && i + 1 < s.len)
            printf("\n%s", indent);
        else if (c != '\n' || !indent)
            printf("\\x%02x", c);
    }
}

/* What a name in DATA/checkpoints is: 1 a checkpoint (<id>), 2 unfinished
 * work (<id>.tmp, <id>.del), 0 neither. */
static int ckpt_name_kind(const char *name)
{
    size_t l = strlen(name);
    if (strspn(name, "0123456789") != CKPT_ID_DIGITS) return 0;
    if (l == CKPT_ID_DIGITS) return 1;
    if (l != CKPT_ID_DIGITS + 4) return 0;
    return !strcmp(name + CKPT_ID_DIGITS, ".tmp") || !strcmp(name + CKPT_ID_DIGITS, ".del") ? 2 : 0;
}

/* Names of <id>.tmp / <id>.del directories in dir (unfinished work). */
static size_t list_unfinished(const char *dir, char names[][32], size_t max)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (ckpt_name_kind(e->d_name) != 2) continue;
        if (n < max) memcpy(names[n], e->d_name, CKPT_ID_DIGITS + 5); /* with its NUL */
        n++;
    }
    if (d) closedir(d);
    return n < max ? n : max;
}

/* WHICH DIRECTORIES ARE LISTED. DIR is a data directory (the --data of weir
 * run) and the checkpoints are in DIR/checkpoints. A data directory with no
 * checkpoints yet (weir ingest writes none; a new one is empty) is no
 * mistake: an empty list, exit 0. A path that is no data directory is one,
 * and names what it is instead: a file; the checkpoints directory itself
 * (the likeliest slip: "no checkpoints in X/checkpoints/checkpoints" with
 * exit 0 hid it); another folder. Returns 0 to list, or the exit status
 * after the reason is printed. */
static int check_datadir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno == ENOENT ? cli_fail(prefix, "%s: no such directory", dir)
                               : cli_fail(prefix, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cli_fail(prefix, "%s: not a directory (%s)", dir, weir_file_kind(st.st_mode));
    char path[4200];
    snprintf(path, sizeof path, "%s/" CKPT_DIR_NAME, dir);
    if (stat(path, &st) == 0)
        return S_ISDIR(st.st_mode)
                   ? 0
                   : cli_fail(prefix, "%s: not a directory (%s)", path, weir_file_kind(st.st_mode));
    snprintf(path, sizeof path, "%s/log", dir);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0; /* a log, no checkpoints yet */
    /* A store holds checkpoint ids; its name says so too when it holds none
     * yet (only its LOCK, a name DATA/log has as well). */
    char copy[4200];
    snprintf(copy, sizeof copy, "%s", dir);
    int store = !strcmp(basename(copy), CKPT_DIR_NAME), entries = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        entries++;
        if (ckpt_name_kind(e->d_name)) store = 1;
    }
    if (d) closedir(d);
    if (store) {
        snprintf(copy, sizeof copy, "%s", dir);
        return cli_fail(prefix,
                        "%s looks like a checkpoints directory itself; did you mean its parent, "
                        "%s?",
                        dir, dirname(copy));
    }
    if (entries == 0) return 0; /* a new data directory: nothing written yet */
    return cli_fail(prefix, "%s has no " CKPT_DIR_NAME "/ directory: is it a data directory?", dir);
}

static void print_json(const char *dir, int level, const ckpt_info_t *list, size_t n,
                       char unfinished[][32], size_t nun)
{
    weir_buf_t b = WEIR_BUF_INIT;
    buf_append_str(&b, "{\"dir\":");
    buf_append_json_string(&b, dir, strlen(dir));
    buf_appendf(&b, ",\"check\":\"%s\",\"checkpoints\":[",
                level == CKPT_CHECK_FULL ? "full" : "quick");
    for (size_t i = 0; i < n; i++) {
        const ckpt_info_t *c = &list[i];
        buf_appendf(&b, "%s{\"id\":%" PRIu64 ",\"valid\":%s,\"problem\":", i ? "," : "", c->id,
                    c->status ? "false" : "true");
        if (c->status)
            buf_append_json_string(&b, c->problem, strlen(c->problem));
        else
            buf_append_str(&b, "null");
        buf_appendf(&b, ",\"bytes\":%" PRIu64, c->bytes);
        if (c->parts) {
            buf_appendf(&b, ",\"created_ms\":%" PRId64 ",\"pipeline\":", c->created_ms);
            buf_append_json_string(&b, c->pipeline, strlen(c->pipeline));
            buf_appendf(&b, ",\"partitions\":%u,\"meta\":{", c->partitions);
            for (size_t m = 0; m < c->nmeta; m++) {
                if (m) buf_append_str(&b, ",");
                buf_append_json_string(&b, c->meta[m].key.ptr, c->meta[m].key.len);
                buf_append_str(&b, ":");
                buf_append_json_string(&b, c->meta[m].value.ptr, c->meta[m].value.len);
            }
            buf_append_str(&b, "},\"parts\":[");
            for (uint32_t p = 0; p < c->partitions; p++) {
                const ckpt_part_info_t *pi = &c->parts[p];
                buf_appendf(
                    &b,
                    "%s{\"partition\":%u,\"log_offset\":%" PRIu64 ",\"decision_offset\":%" PRIu64
                    ",\"bytes\":%" PRIu64 ",\"crc\":\"%08x\"}",
                    p ? "," : "", p, pi->log_offset, pi->decision_offset, pi->bytes, pi->crc);
            }
            buf_append_str(&b, "]");
        }
        buf_append_str(&b, "}");
    }
    buf_append_str(&b, "],\"unfinished\":[");
    for (size_t i = 0; i < nun; i++) {
        if (i) buf_append_str(&b, ",");
        buf_append_json_string(&b, unfinished[i], strlen(unfinished[i]));
    }
    buf_append_str(&b, "]}\n");
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
}

static void print_table(const char *dir, int level, const ckpt_info_t *list, size_t n,
                        char unfinished[][32], size_t nun)
{
    if (n == 0) printf("no checkpoints in %s\n", dir);
    for (size_t i = 0; i < n; i++) {
        const ckpt_info_t *c = &list[i];
        if (i) putchar('\n');
        printf("checkpoint %" PRIu64, c->id);
        if (c->parts) {
            char when[64];
            format_time(c->created_ms, when, sizeof when);
            printf("  written %s  pipeline ", when);
            print_bytes((weir_slice_t){c->pipeline, strlen(c->pipeline)}, NULL);
            printf("  %u partition%s", c->partitions, c->partitions == 1 ? "" : "s");
        }
        printf("  %" PRIu64 " bytes  ", c->bytes);
        if (c->status)
            printf("INVALID: %s\n", c->problem);
        else
            printf("%s\n", level == CKPT_CHECK_FULL ? "verified" : "valid (quick check)");
        if (!c->parts) continue;
        for (size_t m = 0; m < c->nmeta; m++) {
            /* A long value (the spec a checkpoint carries: 50 lines each)
             * is summed up; --json has it whole. */
            weir_slice_t v = c->meta[m].value;
            const char *nl = v.len ? memchr(v.ptr, '\n', v.len) : NULL;
            int longv = v.len > 400;
            printf("  meta ");
            print_bytes(c->meta[m].key, NULL);
            putchar('=');
            if (longv) {
                size_t first = nl && nl - v.ptr < 80 ? (size_t)(nl - v.ptr) : 80;
                print_bytes((weir_slice_t){v.ptr, first}, NULL);
                printf(" ... (%zu bytes; --json has them)", v.len);
            } else {
                print_bytes(v, "    ");
            }
            putchar('\n');
        }
        printf("  %-9s  %20s  %20s  %14s  %s\n", "partition", "log offset", "decision offset",
               "bytes", "crc");
        for (uint32_t p = 0; p < c->partitions; p++) {
            const ckpt_part_info_t *pi = &c->parts[p];
            printf("  %-9u  %20" PRIu64 "  %20" PRIu64 "  %14" PRIu64 "  %08x\n", p, pi->log_offset,
                   pi->decision_offset, pi->bytes, pi->crc);
        }
    }
    for (size_t i = 0; i < nun; i++)
        printf("note: %s/%s is %s; weir removes it when it next opens the store\n", dir,
               unfinished[i],
               strstr(unfinished[i], ".tmp") ? "an unfinished checkpoint (a crash while writing)"
                                             : "a checkpoint being pruned");
}

int cmd_checkpoint(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    static const struct option opts[] = {
        {"verify", no_argument, 0, 'v'},
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0},
    };
    int level = CKPT_CHECK_QUICK, json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'v')
            level = CKPT_CHECK_FULL;
        else if (c == 'j')
            json = 1;
        else
            return cli_fail(prefix, "unknown option '%s' (see --help)", argv[optind - 1]);
    }
    if (optind != argc - 1)
        return cli_fail(prefix, optind >= argc
                                    ? "missing DIR (see --help)"
                                    : "expected one DIR, got extra arguments (see --help)");
    const char *datadir = argv[optind];
    int bad_dir = check_datadir(datadir);
    if (bad_dir) return bad_dir;

    char err[512];
    ckpt_store_t *s;
    if (ckpt_store_open(datadir, CKPT_READ_ONLY, &s, err, sizeof err))
        return cli_fail(prefix, "%s", err);
    ckpt_info_t *list;
    size_t n;
    int rc = ckpt_list(s, level, &list, &n, err, sizeof err);
    if (rc) {
        ckpt_store_close(s);
        return cli_fail(prefix, "%s", err);
    }
    char unfinished[64][32];
    size_t nun = list_unfinished(ckpt_store_dir(s), unfinished, 64);
    if (json)
        print_json(ckpt_store_dir(s), level, list, n, unfinished, nun);
    else
        print_table(ckpt_store_dir(s), level, list, n, unfinished, nun);
    fflush(stdout);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (list[i].status) {
            fprintf(stderr, "%s: checkpoint %" PRIu64 " is invalid: %s\n", prefix, list[i].id,
                    list[i].problem);
            bad = 1;
        }
    ckpt_list_free(list, n);
    ckpt_store_close(s);
    return bad;
}
