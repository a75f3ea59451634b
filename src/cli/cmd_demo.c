/* cmd_demo.c — `weir demo`: the fraud example end to end, the way a user
 * would run it. Generates transactions (`weir gen fraud`, a seed the model
 * never saw), starts `weir run` on the fraud spec with its trained model,
 * sends every transaction to POST /v1/score over keep-alive connections as
 * fast as the machine allows (a card's transactions always on the same
 * connection, so in order) while a progress line shows events/s, latency
 * and decisions, then prints the summary: throughput, latency percentiles,
 * decisions by outcome, fraud caught (precision and recall of block+review
 * against the labels) and the streaming-versus-batch comparison — the
 * fraudulent spend that decisions in the stream stopped, against a nightly
 * batch job that flags the same cards only once the day has closed. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/fileio.h"
#include "cli/cli.h"
#include "spec/spec.h"

static const char demo_usage[] =
    "usage: weir demo [--events N] [--connections C] [--port P] [--spec SPEC] [--keep]\n"
    "\n"
    "The fraud example end to end: generates N transactions (default 500000), serves\n"
    "examples/fraud/fraud.yaml with `weir run`, scores every transaction over HTTP\n"
    "with C keep-alive connections (default 8) and prints throughput, latency,\n"
    "decisions, precision/recall against the fraud labels, and what streaming\n"
    "decisions stopped compared with a nightly batch job. --keep leaves the data\n"
    "folder in place.\n";

enum { D_ALLOW, D_REVIEW, D_BLOCK, D_OTHER, D_ERROR, D_N };
static const char *const outcome_names[D_N] = {"allow", "review", "block", "other", "error"};

typedef struct event {
    const char *body;
    uint32_t len;
    uint32_t card; /* card number, from its id */
    double amount;
    int64_t ts;
    uint8_t fraud;
    uint8_t outcome;
} event_t;

typedef struct conn_job {
    int id;
    uint16_t port;
    event_t *evs;
    uint32_t *mine; /* indexes of this connection's events, in order */
    size_t n;
    double *lat_us;           /* per request, in order */
    _Atomic size_t done;      /* requests answered (lat_us[0..done) are set) */
    atomic_uint_fast64_t outcomes[D_N];
    char err[256];
} conn_job_t;

static int connect_local(uint16_t port)
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

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one HTTP response; returns the status and points *body at it
 * (inside buf, NUL-terminated), or -1. */
static int read_response(int fd, char *buf, size_t cap, char **body)
{
    size_t have = 0;
    char *hdr_end = NULL;
    while (!hdr_end) {
        if (have + 1 >= cap) return -1;
        ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        have += (size_t)r;
        buf[have] = '\0';
        hdr_end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    size_t clen = 0;
    for (char *h = strstr(buf, "\r\n"); h && h < hdr_end; h = strstr(h + 2, "\r\n")) {
        if (!strncasecmp(h + 2, "content-length:", 15)) clen = strtoul(h + 17, NULL, 10);
    }
    size_t head = (size_t)(hdr_end + 4 - buf);
    if (head + clen + 1 > cap) return -1;
    while (have < head + clen) {
        ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    buf[head + clen] = '\0';
    *body = buf + head;
    return status;
}

static uint8_t outcome_of(int status, const char *body)
{
    if (status != 200) return D_ERROR;
    const char *d = strstr(body, "\"decision\":\"");
    if (!d) return D_ERROR;
    d += 12;
    if (!strncmp(d, "allow\"", 6)) return D_ALLOW;
    if (!strncmp(d, "review\"", 7)) return D_REVIEW;
    if (!strncmp(d, "block\"", 6)) return D_BLOCK;
    return D_OTHER;
}

static void *conn_main(void *arg)
{
    conn_job_t *j = arg;
    int fd = connect_local(j->port);
    size_t cap = 1 << 16;
    char *req = weir_malloc(cap), *resp = weir_malloc(cap);
    for (size_t k = 0; k < j->n; k++) {
        event_t *e = &j->evs[j->mine[k]];
        int n = snprintf(req, cap,
                         "POST /v1/score/transactions HTTP/1.1\r\nHost: localhost\r\n"
                         "Content-Type: application/json\r\nContent-Length: %u\r\n\r\n%.*s",
                         e->len, (int)e->len, e->body);
        uint64_t t0 = weir_mono_ns();
        char *body = NULL;
        int status = -1;
        for (int attempt = 0; attempt < 2 && status < 0; attempt++) {
            if (fd < 0) fd = connect_local(j->port);
            if (fd >= 0 && send_all(fd, req, (size_t)n) == 0) status = read_response(fd, resp, cap, &body);
            if (status < 0 && fd >= 0) {
                close(fd);
                fd = -1;
            }
        }
        e->outcome = status < 0 ? D_ERROR : outcome_of(status, body);
        if (e->outcome == D_ERROR && !j->err[0])
            snprintf(j->err, sizeof j->err, "status %d: %.200s", status, body ? body : "no response");
        j->lat_us[k] = (double)(weir_mono_ns() - t0) / 1e3;
        atomic_fetch_add(&j->outcomes[e->outcome], 1);
        atomic_store_explicit(&j->done, k + 1, memory_order_release);
    }
    if (fd >= 0) close(fd);
    weir_free(req);
    weir_free(resp);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double q)
{
    if (!n) return 0;
    size_t i = (size_t)(q * (double)n);
    return v[i < n ? i : n - 1];
}

/* Runs `self args...` with stdout to out_path (NULL: inherit) and stderr to
 * err_path; returns the pid. */
static pid_t spawn(const char *self, char *const args[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (out_path) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) _exit(127);
        dup2(fd, 1);
        close(fd);
    }
    if (err_path) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 2), close(fd);
    }
    execv(self, args);
    _exit(127);
}

static int http_get_status(uint16_t port, const char *path)
{
    int fd = connect_local(port);
    if (fd < 0) return -1;
    char req[256], resp[8192], *body;
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
    int status = send_all(fd, req, (size_t)n) == 0 ? read_response(fd, resp, sizeof resp, &body) : -1;
    close(fd);
    return status;
}

/* Loads the generated events: body bytes and what the summary needs. */
static event_t *load_events(const char *path, size_t *count, char **blob)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    *blob = weir_malloc((size_t)size + 1);
    size_t got = fread(*blob, 1, (size_t)size, f);
    fclose(f);
    (*blob)[got] = '\0';
    size_t cap = 1024, n = 0;
    event_t *evs = weir_malloc(cap * sizeof *evs);
    for (char *p = *blob; *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) {
            if (n == cap) evs = weir_realloc(evs, (cap *= 2) * sizeof *evs);
            event_t *e = &evs[n++];
            memset(e, 0, sizeof *e);
            e->body = p;
            e->len = (uint32_t)len;
            cJSON *j = cJSON_ParseWithLength(p, len);
            const cJSON *c = cJSON_GetObjectItem(j, "card_id"), *a = cJSON_GetObjectItem(j, "amount"),
                        *t = cJSON_GetObjectItem(j, "ts"), *fr = cJSON_GetObjectItem(j, "is_fraud");
            if (cJSON_IsString(c)) e->card = (uint32_t)strtoul(c->valuestring + 1, NULL, 10);
            if (cJSON_IsNumber(a)) e->amount = a->valuedouble;
            if (cJSON_IsNumber(t)) e->ts = (int64_t)t->valuedouble;
            e->fraud = cJSON_IsNumber(fr) && fr->valuedouble != 0;
            cJSON_Delete(j);
        }
        p += len + (nl != NULL);
    }
    *count = n;
    return evs;
}

static int find_spec(const char *self, char *out, size_t cap)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", self);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    /* The binary lives in build/ of a checkout, or next to examples/. */
    if (snprintf(out, cap, "%s/../examples/fraud/fraud.yaml", dir) < (int)cap && access(out, R_OK) == 0)
        return 0;
    if (snprintf(out, cap, "%s/examples/fraud/fraud.yaml", dir) < (int)cap && access(out, R_OK) == 0)
        return 0;
    return -1;
}

static void summary(event_t *evs, size_t n, double secs, conn_job_t *jobs, int nconn)
{
    size_t total = 0;
    for (int i = 0; i < nconn; i++) total += jobs[i].n;
    double *all = weir_malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    uint64_t out[D_N] = {0};
    for (int i = 0; i < nconn; i++) {
        memcpy(all + k, jobs[i].lat_us, jobs[i].n * sizeof *all);
        k += jobs[i].n;
        for (int d = 0; d < D_N; d++) out[d] += atomic_load(&jobs[i].outcomes[d]);
    }
    qsort(all, k, sizeof *all, cmp_d);
    printf("\n== summary\n");
    printf("throughput      %.0f events/s (%zu events in %.1f s, %d connections)\n", (double)n / secs, n, secs, nconn);
    printf("latency (client, round trip over loopback)  p50 %.0f us  p90 %.0f us  p99 %.0f us  p99.9 %.0f us\n",
           pct(all, k, 0.5), pct(all, k, 0.9), pct(all, k, 0.99), pct(all, k, 0.999));
    printf("decisions       ");
    for (int d = 0; d < D_N; d++)
        if (out[d]) printf("%s %" PRIu64 "   ", outcome_names[d], out[d]);
    printf("\n");

    /* Fraud caught: block or review against the labels, per transaction. */
    uint64_t tp = 0, fp = 0, fn = 0;
    double fraud_amount = 0, stream_stopped = 0, batch_stopped = 0;
    /* Per card: when the stream first blocked it, and the batch job's flag
     * time — the first midnight (UTC) after the stream first flagged it. */
    uint32_t maxcard = 0;
    for (size_t i = 0; i < n; i++)
        if (evs[i].card > maxcard) maxcard = evs[i].card;
    int64_t *blocked_at = weir_malloc(((size_t)maxcard + 1) * sizeof *blocked_at);
    int64_t *batch_at = weir_malloc(((size_t)maxcard + 1) * sizeof *batch_at);
    for (uint32_t c = 0; c <= maxcard; c++) blocked_at[c] = batch_at[c] = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        const event_t *e = &evs[i];
        int flagged = e->outcome == D_REVIEW || e->outcome == D_BLOCK;
        tp += flagged && e->fraud;
        fp += flagged && !e->fraud;
        fn += !flagged && e->fraud;
        if (flagged && batch_at[e->card] == INT64_MAX)
            batch_at[e->card] = (e->ts / 86400000 + 1) * 86400000;
    }
    /* In arrival order: a blocked card declines everything after. */
    for (size_t i = 0; i < n; i++) {
        const event_t *e = &evs[i];
        if (e->outcome == D_BLOCK && blocked_at[e->card] == INT64_MAX) blocked_at[e->card] = e->ts;
        if (!e->fraud) continue;
        fraud_amount += e->amount;
        if (e->ts >= blocked_at[e->card]) stream_stopped += e->amount;
        if (e->ts >= batch_at[e->card]) batch_stopped += e->amount;
    }
    double prec = tp + fp ? (double)tp / (double)(tp + fp) : 0, rec = tp + fn ? (double)tp / (double)(tp + fn) : 0;
    printf("fraud caught    precision %.3f  recall %.3f  (block+review vs labels: %" PRIu64 " true, %" PRIu64
           " false alarms, %" PRIu64 " missed)\n",
           prec, rec, tp, fp, fn);
    printf("stream vs batch fraudulent spend %.2f: blocking in the stream stopped %.2f (%.0f%%);\n"
           "                a nightly batch job flagging the same cards at day close would have stopped %.2f (%.0f%%)\n",
           fraud_amount, stream_stopped, fraud_amount > 0 ? 100 * stream_stopped / fraud_amount : 0, batch_stopped,
           fraud_amount > 0 ? 100 * batch_stopped / fraud_amount : 0);
    weir_free(blocked_at);
    weir_free(batch_at);
    weir_free(all);
}

int cmd_demo(int argc, char **argv)
{
    const char *prefix = "weir demo";
    if (cli_wants_help(argc, argv)) return fputs(demo_usage, stdout), 0;
    static const struct option opts[] = {
        {"events", required_argument, 0, 'n'}, {"connections", required_argument, 0, 'c'},
        {"port", required_argument, 0, 'p'},   {"spec", required_argument, 0, 's'},
        {"keep", no_argument, 0, 'k'},         {0, 0, 0, 0},
    };
    uint64_t nevents = 500000, nconn = 8, port = 18080;
    const char *spec_arg = NULL;
    int keep = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        uint64_t v = 0;
        if (c == 'k') {
            keep = 1;
            continue;
        }
        if (c == 's') {
            spec_arg = optarg;
            continue;
        }
        if (c == '?' || cli_parse_u64(optarg, &v) != 0 || v == 0)
            return cli_fail(prefix, "bad or unknown option '%s' (see --help)", argv[optind - 1]);
        if (c == 'n') nevents = v;
        if (c == 'c') nconn = v > 64 ? 64 : v;
        if (c == 'p') port = v;
    }
    char self[PATH_MAX], spec[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) return cli_fail(prefix, "cannot find own executable");
    self[sl] = '\0';
    if (spec_arg) snprintf(spec, sizeof spec, "%s", spec_arg);
    else if (find_spec(self, spec, sizeof spec) != 0)
        return cli_fail(prefix, "cannot find examples/fraud/fraud.yaml next to %s (give --spec)", self);

    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/weir-demo-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return cli_fail(prefix, "cannot create a folder in %s: %s", dir, strerror(errno));
    char evpath[PATH_MAX + 32], data[PATH_MAX + 32], logpath[PATH_MAX + 32], listen[64], nstr[32], seed[] = "42";
    snprintf(evpath, sizeof evpath, "%s/events.ndjson", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(logpath, sizeof logpath, "%s/run.log", dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)port);
    snprintf(nstr, sizeof nstr, "%" PRIu64, nevents);

    printf("== weir gen fraud --events %s --seed 42   (card transactions; the model was trained on seed 7)\n", nstr);
    fflush(stdout);
    char *gen_args[] = {self, "gen", "fraud", "--events", nstr, "--seed", seed, NULL};
    int st;
    pid_t g = spawn(self, gen_args, evpath, NULL);
    if (g < 0 || waitpid(g, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return cli_fail(prefix, "weir gen failed");
    char *blob;
    size_t n;
    event_t *evs = load_events(evpath, &n, &blob);
    if (!evs) return cli_fail(prefix, "cannot read %s", evpath);
    size_t nfraud = 0;
    for (size_t i = 0; i < n; i++) nfraud += evs[i].fraud;
    printf("   %zu events, %zu labelled fraud\n", n, nfraud);

    printf("== weir run %s --data %s --listen %s\n", spec, data, listen);
    fflush(stdout);
    char *run_args[] = {self, "run", spec, "--data", data, "--listen", listen, NULL};
    pid_t server = spawn(self, run_args, logpath, logpath);
    int ready = 0;
    for (int i = 0; i < 300 && !ready; i++) {
        if (waitpid(server, &st, WNOHANG) == server) break;
        ready = http_get_status((uint16_t)port, "/readyz") == 200;
        if (!ready) usleep(100000);
    }
    if (!ready) {
        kill(server, SIGKILL);
        waitpid(server, &st, 0);
        /* Its last words say why (a port in use, most often). */
        weir_buf_t log = WEIR_BUF_INIT;
        char rerr[256];
        const char *last = "";
        int last_len = 0;
        if (weir_read_file(logpath, 1 << 20, &log, rerr, sizeof rerr) == 0) {
            size_t end = log.len;
            while (end > 0 && log.data[end - 1] == '\n') end--;
            size_t start = end;
            while (start > 0 && log.data[start - 1] != '\n') start--;
            last = log.data + start;
            last_len = (int)(end - start);
        }
        int rc = cli_fail(prefix, "the server did not become ready: %.*s (all of it in %s; --port P "
                                  "picks another port)",
                          last_len, last, logpath);
        buf_free(&log);
        return rc;
    }

    /* Each connection carries whole partitions (weir's own partitioning:
     * XXH64 of the card id mod the spec's partitions), so a partition's
     * events arrive in the order they were generated: connections that run
     * at different speeds would otherwise push a shared partition's
     * watermark past a slower connection's events and make them late. */
    spec_t *sp;
    char serr[512];
    if (spec_load(spec, &sp, serr, sizeof serr) != 0) return cli_fail(prefix, "%s", serr);
    uint32_t nparts = sp->partitions;
    spec_free(sp);
    conn_job_t *jobs = weir_calloc(nconn, sizeof *jobs);
    for (uint64_t i = 0; i < nconn; i++) {
        jobs[i].id = (int)i;
        jobs[i].port = (uint16_t)port;
        jobs[i].evs = evs;
        jobs[i].mine = weir_malloc((n ? n : 1) * sizeof(uint32_t));
        jobs[i].lat_us = weir_malloc((n ? n : 1) * sizeof(double));
    }
    for (size_t i = 0; i < n; i++) {
        char id[16];
        int len = snprintf(id, sizeof id, "c%07u", evs[i].card);
        uint64_t h = weir_hash64(id, (size_t)len) % nparts % nconn;
        jobs[h].mine[jobs[h].n++] = (uint32_t)i;
    }
    printf("== scoring every transaction: POST /v1/score/transactions over %" PRIu64 " connections\n", nconn);
    pthread_t *th = weir_malloc(nconn * sizeof *th);
    uint64_t t0 = weir_mono_ns();
    for (uint64_t i = 0; i < nconn; i++) pthread_create(&th[i], NULL, conn_main, &jobs[i]);
    size_t *seen = weir_calloc(nconn, sizeof *seen);
    double *win = weir_malloc((n ? n : 1) * sizeof *win);
    uint64_t last = t0;
    for (;;) {
        usleep(500000);
        size_t done = 0, k = 0;
        uint64_t dec[D_N] = {0};
        for (uint64_t i = 0; i < nconn; i++) {
            size_t d = atomic_load_explicit(&jobs[i].done, memory_order_acquire);
            memcpy(win + k, jobs[i].lat_us + seen[i], (d - seen[i]) * sizeof *win);
            k += d - seen[i];
            seen[i] = d;
            done += d;
            for (int o = 0; o < D_N; o++) dec[o] += atomic_load(&jobs[i].outcomes[o]);
        }
        uint64_t now = weir_mono_ns();
        qsort(win, k, sizeof *win, cmp_d);
        printf("\r   %7zu/%zu  %7.0f events/s  p50 %5.0f us  p99 %6.0f us  allow %" PRIu64 "  review %" PRIu64
               "  block %" PRIu64 "  errors %" PRIu64 "   ",
               done, n, (double)k / ((double)(now - last) / 1e9), pct(win, k, 0.5), pct(win, k, 0.99), dec[D_ALLOW],
               dec[D_REVIEW], dec[D_BLOCK], dec[D_ERROR]);
        fflush(stdout);
        last = now;
        if (done == n) break;
    }
    for (uint64_t i = 0; i < nconn; i++) pthread_join(th[i], NULL);
    double secs = (double)(weir_mono_ns() - t0) / 1e9;
    printf("\n");
    for (uint64_t i = 0; i < nconn; i++)
        if (jobs[i].err[0]) fprintf(stderr, "%s: connection %" PRIu64 ": first error: %s\n", prefix, i, jobs[i].err);

    summary(evs, n, secs, jobs, (int)nconn);
    printf("\nwhile it ran: metrics at http://%s/metrics, dashboard at http://%s/\n", listen, listen);
    printf("by hand:\n  %s gen fraud --events 100000 > events.ndjson\n  %s run %s --data DATA "
           "--listen %s\n"
           "  curl -s -X POST http://%s/v1/score/transactions -d \"$(head -1 events.ndjson)\"\n"
           "  curl -s http://%s/v1/features/transactions/c0000042\n"
           "  %s verify %s --data DATA   # once it is stopped: every decision recomputed\n",
           self, self, spec, listen, listen, listen, self, spec);

    kill(server, SIGTERM);
    waitpid(server, &st, 0);
    if (!keep) {
        char cmd[PATH_MAX + 32];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "%s: could not remove %s\n", prefix, dir);
    } else {
        printf("data kept in %s\n", dir);
    }
    for (uint64_t i = 0; i < nconn; i++) {
        weir_free(jobs[i].mine);
        weir_free(jobs[i].lat_us);
    }
    weir_free(jobs);
    weir_free(th);
    weir_free(seen);
    weir_free(win);
    weir_free(evs);
    weir_free(blob);
    return 0;
}
