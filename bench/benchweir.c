/* benchweir.c — see benchweir.h. */
#include "benchweir.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"

int bench_quiet;

void bench_progress(const char *fmt, ...)
{
    if (bench_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double bench_secs_since(uint64_t t0)
{
    return (double)(weir_mono_ns() - t0) / 1e9;
}

void bench_sleep_s(double s)
{
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

char *bench_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    weir_buf_t b = WEIR_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    buf_append(&b, "", 1);
    return b.data;
}

void bench_reap(pid_t *pid, int sig)
{
    if (*pid <= 0) return;
    kill(*pid, sig);
    int st;
    waitpid(*pid, &st, 0);
    *pid = 0;
}

void bench_rm_dir(const char *dir, const char *prefix)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "%s: could not remove %s\n", prefix, dir);
}

int bench_weir_path(char *out, size_t n, const char *prefix)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "%s: cannot find own executable: %s\n", prefix, strerror(errno));
        return -1;
    }
    self[len] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(out, n, "%s/weir", self);
    return 0;
}

int bench_http_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int bench_http_roundtrip(int fd, const char *method, const char *path, const char *body,
                         size_t blen, weir_buf_t *resp)
{
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, blen);
    struct iovec_like {
        const char *p;
        size_t n;
    } parts[2] = {{head, (size_t)hl}, {body, blen}};
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < parts[i].n) {
            ssize_t w = send(fd, parts[i].p + off, parts[i].n - off, MSG_NOSIGNAL);
            if (w <= 0) return -1;
            off += (size_t)w;
        }
    }
    buf_reset(resp);
    size_t hdr_end = 0, want = 0;
    char chunk[16384];
    for (;;) {
        if (hdr_end && resp->len >= hdr_end + want) break;
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r <= 0) return -1;
        buf_append(resp, chunk, (size_t)r);
        if (!hdr_end) {
            buf_append(resp, "", 1);
            resp->len--;
            char *e = strstr(resp->data, "\r\n\r\n");
            if (e) {
                hdr_end = (size_t)(e - resp->data) + 4;
                const char *cl = strcasestr(resp->data, "\r\nContent-Length:");
                want = cl && cl < e ? strtoull(cl + 17, NULL, 10) : 0;
            }
        }
    }
    int status = resp->len > 12 ? atoi(resp->data + 9) : -1;
    memmove(resp->data, resp->data + hdr_end, want);
    resp->len = want;
    buf_append(resp, "", 1);
    resp->len--;
    return status;
}

int bench_http_once(uint16_t port, const char *method, const char *path, weir_buf_t *resp)
{
    int fd = bench_http_connect(port);
    if (fd < 0) return -1;
    int st = bench_http_roundtrip(fd, method, path, "", 0, resp);
    close(fd);
    return st;
}

double bench_metric(uint16_t port, const char *name)
{
    weir_buf_t resp = WEIR_BUF_INIT;
    double v = -1;
    if (bench_http_once(port, "GET", "/metrics", &resp) == 200) {
        size_t nl = strlen(name);
        for (const char *l = resp.data; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
            if (!strncmp(l, name, nl) && l[nl] == ' ') {
                v = strtod(l + nl + 1, NULL);
                break;
            }
    }
    buf_free(&resp);
    return v;
}

int bench_weir_start(const char *weir, const char *const *args, const char *out, const char *errf,
                     const char *prefix, pid_t *pid, uint16_t *port)
{
    *port = 0;
    unlink(out); /* a previous run's "listening on" line must not be read as this one's */
    *pid = fork();
    if (*pid < 0) return -1;
    if (*pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        const char *argv[32] = {weir};
        for (int i = 0; args[i] && i < 30; i++)
            argv[i + 1] = args[i];
        execv(weir, (char *const *)argv);
        _exit(127);
    }
    /* The port, from the "listening on" line. */
    while (!*port) {
        int status;
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            char *e = bench_read_file(errf);
            fprintf(stderr, "%s: weir run exited at start: %s\n", prefix, e ? e : "");
            weir_free(e);
            *pid = 0;
            return -1;
        }
        char *text = bench_read_file(out);
        const char *l = text ? strstr(text, "listening on http://127.0.0.1:") : NULL;
        if (l) *port = (uint16_t)atoi(l + strlen("listening on http://127.0.0.1:"));
        weir_free(text);
        if (!*port) bench_sleep_s(0.001);
    }
    weir_buf_t resp = WEIR_BUF_INIT;
    for (;;) {
        if (bench_http_once(*port, "GET", "/readyz", &resp) == 200) break;
        int status;
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            char *e = bench_read_file(errf);
            fprintf(stderr, "%s: weir run exited during recovery: %s\n", prefix, e ? e : "");
            weir_free(e);
            *pid = 0;
            buf_free(&resp);
            return -1;
        }
        bench_sleep_s(0.002);
    }
    buf_free(&resp);
    return 0;
}

_Thread_local uint64_t bench_rng_state = 0x2545f4914f6cdd1dull;
uint64_t bench_rnd(void)
{
    uint64_t z = (bench_rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *const countries[] = {"US", "GB", "DE", "FR", "ES", "IT", "NL", "SE"};

void bench_fraud_event(weir_buf_t *b, uint64_t card, int64_t ts)
{
    double u1 = ((double)(bench_rnd() >> 11) + 0.5) / 9007199254740992.0,
           u2 = (double)(bench_rnd() >> 11) / 9007199254740992.0;
    double amount = exp(3.0 + 1.2 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    if (amount > 20000) amount = 20000;
    const char *country = countries[(bench_rnd() % 20 ? card * 2654435761u >> 7 : bench_rnd()) % 8];
    buf_appendf(b,
                "{\"card_id\":\"c%07" PRIu64 "\",\"amount\":%.2f,\"merchant\":\"m%04" PRIu64
                "\",\"country\":\"%s\",\"ts\":%" PRId64 "}",
                card, amount, bench_rnd() % 5000, country, ts);
}

/* ---- building the data directory ---- */

int bench_fraud_spec(const char *dir, const char *name, const char *interval, char *spec_path,
                     size_t n, const char *tail, const char *prefix)
{
    const char *src = __FILE__, *slash = strrchr(src, '/');
    char ex[PATH_MAX];
    snprintf(ex, sizeof ex, "%.*s/../examples/fraud", slash ? (int)(slash - src) : 1,
             slash ? src : ".");
    char yaml[PATH_MAX + 16], model[PATH_MAX + 32];
    snprintf(yaml, sizeof yaml, "%s/fraud.yaml", ex);
    snprintf(model, sizeof model, "%s/fraud.model.json", ex);
    char *text = bench_read_file(yaml);
    if (!text || access(model, R_OK) != 0) {
        fprintf(stderr, "%s: cannot read %s and %s\n", prefix, yaml, model);
        weir_free(text);
        return -1;
    }
    snprintf(spec_path, n, "%s/%s", dir, name);
    FILE *f = fopen(spec_path, "w");
    if (!f) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prefix, spec_path, strerror(errno));
        weir_free(text);
        return -1;
    }
    /* The example, with the model's absolute path and the checkpoint
     * interval asked for; then the tail. */
    int partitions_seen = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (!strncmp(line, "  path: ", 8)) {
            fprintf(f, "  path: %s\n", model);
            continue;
        }
        fprintf(f, "%s\n", line);
        if (!partitions_seen && !strncmp(line, "partitions:", 11)) {
            fprintf(f, "checkpoint_interval: %s\n", interval);
            partitions_seen = 1;
        }
    }
    if (tail) fputs(tail, f);
    fclose(f);
    weir_free(text);
    return partitions_seen ? 0 : -1;
}
