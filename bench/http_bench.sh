#!/usr/bin/env bash
# http_bench.sh — `weir bench http`: wrk against `weir run`'s POST
# /v1/score/transactions (the fraud pipeline: DESIGN.md's features, an
# XGBoost model of 100 trees of depth 6, the decision rules, both logs),
# beside nginx serving a fixed small JSON response — same machine, same
# run, same wrk threads, connections, duration and Lua script (realistic
# card transactions, a fresh one per request). Prints both throughputs,
# p50/p99 latency (wrk --latency), each server's own CPU time per request
# (from /proc: steadier than throughput on a shared machine) and the ratio
# weir/nginx per connection count; --json prints one JSON object instead
# of the table.
#
# Each connection count is measured --runs times (nginx, weir, weir without
# contributions, back to back each time); the table shows the medians, and
# the ratio is the median of the per-run ratios, each taken within one run
# (on a shared machine the two servers' absolute numbers drift together).
# Beside wrk's end-to-end p99, weir's own p99 (request received -> response
# ready, from its weir_stage_latency_seconds{stage="total"} histogram over
# the run) is shown as the histogram bucket that holds it.
#
# nginx's own p99 stands beside weir's: nginx answers a fixed string, so
# its p99 is what this machine allows any HTTP server under the same load
# generator (on a 2-core machine shared with wrk, milliseconds).
#
# --pin gives the load generator a core of its own: wrk runs on CPU 0 with
# one thread, and each server on the other CPUs with one worker per CPU
# (nginx worker_processes, weir run --threads) — both servers alike.
#
# Targets (issue 5): weir's throughput >= 50% of nginx's; weir's p99 <=
# 250 us at 8 connections. The exit status is 0 whether or not they are
# met (the JSON says); non-zero only if the benchmark could not run.
#
# Usage: http_bench.sh --weir PATH [--json] [--duration S] [--runs N]
#                      [--connections 1,8,64] [--model FILE] [--pin] [--keep]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
weir="" json=0 duration=5 runs=3 conns="1,8,64" model="" keep=0 pin=0
while [ $# -gt 0 ]; do
  case "$1" in
    --weir) weir="$2"; shift 2 ;;
    --json) json=1; shift ;;
    --duration) duration="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --connections) conns="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --pin) pin=1; shift ;;
    -h|--help)
      sed -n '2,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "weir bench http: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
fail() { echo "weir bench http: $*" >&2; exit 1; }
[ -n "$weir" ] && [ -x "$weir" ] || fail "no weir binary (--weir PATH)"
command -v wrk >/dev/null || fail "wrk is not installed (scripts/install-deps.sh installs it)"
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$nginx_bin" ] || fail "nginx is not installed (scripts/install-deps.sh installs it)"
[[ "$duration" =~ ^[0-9]+$ ]] && [ "$duration" -gt 0 ] || fail "--duration must be a positive number of seconds"
[[ "$runs" =~ ^[0-9]+$ ]] && [ "$runs" -gt 0 ] || fail "--runs must be a positive number"
# CPU placement, the same for both servers: SRV (prefix) and WRK (prefix).
ncpu="$(nproc)" workers="$(nproc)" SRV=() WRK=()
if [ "$pin" = 1 ]; then
  [ "$ncpu" -ge 2 ] || fail "--pin needs at least 2 CPUs"
  command -v taskset >/dev/null || fail "--pin needs taskset (util-linux)"
  workers=$((ncpu - 1))
  SRV=(taskset -c "1-$((ncpu - 1))")
  WRK=(taskset -c 0)
fi

tmp="$(mktemp -d /tmp/weir-bench-http.XXXXXX)"
weir_pid="" nginx_pid=""
cleanup() {
  [ -n "$weir_pid" ] && kill -TERM "$weir_pid" 2>/dev/null && wait "$weir_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
  [ "$keep" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT
log() { [ "$json" = 1 ] || echo "$*" >&2; }

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- the pipeline: examples/fraud's spec with a model -------------------
sed -e 's|^  path: .*|  path: fraud.model.json|' "$repo/examples/fraud/fraud.yaml" > "$tmp/fraud.yaml"
if [ -z "$model" ] && [ -f "$repo/examples/fraud/fraud.model.json" ]; then
  model="$repo/examples/fraud/fraud.model.json"
fi
if [ -n "$model" ]; then
  cp "$model" "$tmp/fraud.model.json"
  model_desc="$(basename "$model")"
else
  # No committed model yet: train a representative one (100 trees, depth
  # 6) on synthetic rows with the spec's inputs.
  log "training an XGBoost model (100 trees, depth 6) ..."
  /usr/bin/python3 - "$tmp/fraud.model.json" <<'EOF'
import sys
import numpy as np
import xgboost as xgb
rng = np.random.default_rng(1)
n = 20000
names = ["amount", "txn_count_1h", "amount_sum_24h", "amount_ratio", "merchants_24h", "new_country", "secs_since"]
amount = rng.lognormal(3, 1.2, n)
cnt = rng.poisson(2, n) + 1
X = np.column_stack([amount, cnt, amount * cnt * rng.uniform(0.5, 2, n), rng.lognormal(0, 0.7, n),
                     rng.poisson(1.5, n) + 1, rng.integers(0, 2, n), rng.exponential(3600, n)])
X[rng.random(n) < 0.1, 6] = np.nan
z = 0.002 * amount + 0.4 * cnt + 1.5 * X[:, 5] + 0.8 * X[:, 3] - 5
y = (z + rng.normal(0, 1, n) > 0).astype(float)
d = xgb.DMatrix(X, y, feature_names=names)
bst = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "nthread": 2, "seed": 1}, d, 100)
bst.save_model(sys.argv[1])
EOF
  model_desc="trained here: XGBoost binary:logistic, 100 trees, depth 6"
fi

# ---- the wrk script: a fresh realistic transaction per request ----------
# Event time is the wall clock: the current second plus a sub-second offset,
# so events are out of order within a second (well inside the spec's 30 s
# lateness), as live traffic is. (It once was start time + one ms per
# request: at 50k requests/s event time ran 50 times faster than the clock,
# and every run after the first sent only events behind the watermark —
# late events, scored but not applied: the benchmark measured that path.)
cat > "$tmp/events.lua" <<'EOF'
local countries = {"US", "US", "US", "GB", "DE", "FR", "ES", "IT", "NL", "SE"}
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function setup(thread) thread:set("id", math.random(1, 1000000)) end
function init(args) math.randomseed(os.time() + (id or 0)) end
function request()
  counter = counter + 1
  local card = math.random(1, 100000)
  local amount = math.floor(math.exp(3 + 1.2 * (math.random() + math.random() + math.random() - 1.5)) * 100) / 100
  local body = string.format(
    '{"card_id":"card-%06d","amount":%.2f,"merchant":"m%d","country":"%s","ts":%d}',
    card, amount, math.random(1, 5000), countries[math.random(1, #countries)],
    os.time() * 1000 + counter % 1000)
  return wrk.format(nil, nil, nil, body)
end
EOF

# ---- nginx: a fixed small JSON, on its own port and config --------------
nport="$(free_port)"
mkdir -p "$tmp/nginx"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat > "$tmp/nginx/nginx.conf" <<EOF
$user_line
worker_processes $workers;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$nport;
    location / {
      default_type application/json;
      return 200 '{"decision":"allow","score":0.0123,"reason":null,"offset":1,"model":1,"late":false}';
    }
  }
}
EOF
"${SRV[@]}" "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/stderr" &
nginx_pid=$!

# ---- weir run ------------------------------------------------------------
wport="$(free_port)"
"${SRV[@]}" "$weir" run "$tmp/fraud.yaml" --data "$tmp/data" --listen "127.0.0.1:$wport" \
  --threads "$workers" >"$tmp/weir.out" 2>"$tmp/weir.err" &
weir_pid=$!

wait_up() { # url pid name
  for _ in $(seq 200); do
    if /usr/bin/python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || fail "$3 exited: $(tail -3 "$tmp"/*.err "$tmp"/nginx/stderr 2>/dev/null | tr '\n' ' ')"
    sleep 0.05
  done
  fail "$3 did not come up"
}
wait_up "http://127.0.0.1:$nport/" "$nginx_pid" nginx
wait_up "http://127.0.0.1:$wport/readyz" "$weir_pid" "weir run"

# ---- runs ----------------------------------------------------------------
# wrk output (and the server's CPU ticks in FILE.cpu) → "rps p50_us p99_us
# non2xx socket_errors requests cpu_ticks"
parse_wrk() {
  /usr/bin/python3 - "$1" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
cpu = open(sys.argv[1] + ".cpu").read().strip()
def us(v, unit):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
lat = dict((p, us(v, u)) for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", t, re.M))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
err = re.search(r"Socket errors:.*", t)
reqs = int(re.search(r"(\d+) requests in", t).group(1))
print(rps, lat["50"], lat["99"], int(bad.group(1)) if bad else 0, "1" if err else "0", reqs, cpu)
EOF
}

# weir's stage="total" histogram: "le count le count ..." (cumulative)
scrape_total() {
  /usr/bin/python3 - "http://127.0.0.1:$wport/metrics" <<'EOF'
import re, sys, urllib.request
t = urllib.request.urlopen(sys.argv[1]).read().decode()
b = re.findall(r'^weir_stage_latency_seconds_bucket\{stage="total",le="([^"]+)"\} (\S+)$', t, re.M)
print(" ".join("%s %s" % (le, v) for le, v in b))
EOF
}

# The upper bound (us) of the bucket holding the 99th percentile of what was
# observed between two scrapes.
server_p99() { # before after
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import sys
def parse(s):
    f = s.split()
    return [(f[i], float(f[i + 1])) for i in range(0, len(f), 2)]
a, b = parse(sys.argv[1]), parse(sys.argv[2])
d = [(le, vb - va) for (le, va), (_, vb) in zip(a, b)]
total = d[-1][1] if d else 0
for le, v in d:
    if total and v >= 0.99 * total:
        print("inf" if le == "+Inf" else "%g" % (float(le) * 1e6))
        break
else:
    print("nan")
EOF
}

# CPU time (user + system, clock ticks, all threads) of processes: the
# server's own cost per request, which a shared machine's other load
# disturbs far less than throughput.
cpu_ticks() { # pid ...
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}

run_wrk() { # url conns out pid... (the server's processes)
  local url="$1" c="$2" out="$3" t=2 before
  shift 3
  [ "$c" -lt 2 ] || [ "$pin" = 1 ] && t=1
  "${WRK[@]}" wrk -t"$t" -c"$c" -d1s -s "$tmp/events.lua" "$url" >/dev/null 2>&1 || true # warm-up
  before="$(cpu_ticks "$@")"
  "${WRK[@]}" wrk -t"$t" -c"$c" -d"${duration}s" --latency -s "$tmp/events.lua" "$url" >"$out" 2>&1 ||
    fail "wrk failed: $(cat "$out")"
  echo $(($(cpu_ticks "$@") - before)) >"$out.cpu"
}

results=()
IFS=',' read -r -a clist <<<"$conns"
for c in "${clist[@]}"; do
  for r in $(seq "$runs"); do
    log "connections $c, run $r/$runs: nginx ..."
    run_wrk "http://127.0.0.1:$nport/v1/score/transactions" "$c" "$tmp/nginx-$c-$r.txt" \
      "$nginx_pid" $(pgrep -P "$nginx_pid")
    log "connections $c, run $r/$runs: weir ..."
    before="$(scrape_total)"
    run_wrk "http://127.0.0.1:$wport/v1/score/transactions" "$c" "$tmp/weir-$c-$r.txt" "$weir_pid"
    sp99="$(server_p99 "$before" "$(scrape_total)")"
    log "connections $c, run $r/$runs: weir, ?contributions=false ..."
    run_wrk "http://127.0.0.1:$wport/v1/score/transactions?contributions=false" "$c" \
      "$tmp/weirnc-$c-$r.txt" "$weir_pid"
    results+=("$c $(parse_wrk "$tmp/nginx-$c-$r.txt") $(parse_wrk "$tmp/weir-$c-$r.txt") $(parse_wrk "$tmp/weirnc-$c-$r.txt") $sp99")
  done
done
counter() { # name: the sum of a weir counter's samples
  /usr/bin/python3 -c "import urllib.request,re,sys; t=urllib.request.urlopen(sys.argv[1]).read().decode(); print(int(sum(float(m) for m in re.findall(r'^' + sys.argv[2] + r'\S* (\S+)', t, re.M))))" "http://127.0.0.1:$wport/metrics" "$1"
}
events="$(counter weir_events_accepted_total)"
late="$(counter weir_events_late_total)"

/usr/bin/python3 - "$json" "$duration" "$(nproc)" "$model_desc" "$events" "$runs" "$late" "$pin" "$workers" \
  "$(getconf CLK_TCK)" "${results[@]}" <<'EOF'
import json, statistics, sys
as_json, duration, cores, model, events = sys.argv[1] == "1", int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
nruns, late, pinned, workers = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8] == "1", int(sys.argv[9])
clk_tck = float(sys.argv[10])
samples = {}  # connections -> one entry per run
for r in sys.argv[11:]:
    f = r.split()
    side = lambda i: {"rps": float(f[i]), "p50_us": float(f[i + 1]), "p99_us": float(f[i + 2]),
                      "non_2xx": int(f[i + 3]),
                      "cpu_us_per_request": float(f[i + 6]) / clk_tck * 1e6 / max(int(f[i + 5]), 1)}
    n, w, wn = side(1), side(8), side(15)
    w["server_p99_us_at_most"] = float(f[22])
    samples.setdefault(int(f[0]), []).append(
        {"nginx": n, "weir": w, "weir_no_contributions": wn,
         "ratio": w["rps"] / n["rps"] if n["rps"] else 0.0,
         "ratio_no_contributions": wn["rps"] / n["rps"] if n["rps"] else 0.0,
         "cpu_ratio": n["cpu_us_per_request"] / w["cpu_us_per_request"] if w["cpu_us_per_request"] else 0.0})
med = statistics.median
def median_side(rs, key):
    out = {k: med([r[key][k] for r in rs]) for k in ("rps", "p50_us", "p99_us", "cpu_us_per_request")}
    out["non_2xx"] = sum(r[key]["non_2xx"] for r in rs)
    if key == "weir":
        out["server_p99_us_at_most"] = med([r[key]["server_p99_us_at_most"] for r in rs])
    return out
runs = []
for c, rs in samples.items():
    runs.append({"connections": c, "nginx": median_side(rs, "nginx"), "weir": median_side(rs, "weir"),
                 "weir_no_contributions": median_side(rs, "weir_no_contributions"),
                 "ratio": med([r["ratio"] for r in rs]),
                 "ratio_no_contributions": med([r["ratio_no_contributions"] for r in rs]),
                 "cpu_ratio": med([r["cpu_ratio"] for r in rs]),
                 "ratios": [r["ratio"] for r in rs], "each_run": rs})
at8 = [r for r in runs if r["connections"] == 8]
targets = {"throughput_ratio_min": 0.5, "p99_us_at_8_max": 250.0}
met = {"throughput_ratio": all(r["ratio"] >= 0.5 for r in at8) if at8 else None,
       "p99_at_8": all(r["weir"]["p99_us"] <= 250.0 for r in at8) if at8 else None,
       "throughput_ratio_no_contributions": all(r["ratio_no_contributions"] >= 0.5 for r in at8) if at8 else None,
       "p99_at_8_no_contributions": all(r["weir_no_contributions"]["p99_us"] <= 250.0 for r in at8) if at8 else None,
       "server_p99_at_8": all(r["weir"]["server_p99_us_at_most"] <= 250.0 for r in at8) if at8 else None,
       # what the machine allows: nginx answering a fixed string under the same load
       "nginx_p99_at_8": all(r["nginx"]["p99_us"] <= 250.0 for r in at8) if at8 else None}
placement = ("pinned: wrk on CPU 0 (1 thread), each server on CPUs 1-%d (%d worker%s)"
             % (cores - 1, workers, "s" if workers > 1 else "") if pinned else
             "shared: wrk, nginx and weir on all %d CPUs (%d workers each)" % (cores, workers))
doc = {"bench": "http", "duration_s": duration, "runs_per_point": nruns, "cores": cores, "model": model,
       "endpoint": "POST /v1/score/transactions", "events_scored": events, "events_late": late,
       "pinned": pinned, "placement": placement,
       "runs": runs, "targets": targets, "targets_met": met}
if as_json:
    print(json.dumps(doc))
    sys.exit(0)
print("weir bench http: wrk -> POST /v1/score (fraud features, %s, decision rules, event + decision logs)" % model)
print("beside nginx returning a fixed small JSON; %d s per run, median of %d run%s, same wrk threads/connections/script"
      % (duration, nruns, "s" if nruns > 1 else ""))
print(placement)
print()
print("%5s  %-28s %10s %9s %9s %7s %11s  %s" % ("conns", "server", "req/s", "p50 us", "p99 us", "ratio",
                                               "CPU us/req", "weir's own p99"))
for r in runs:
    for name, key, ratio in (("nginx (fixed JSON)", "nginx", None), ("weir", "weir", "ratio"),
                             ("weir ?contributions=false", "weir_no_contributions", "ratio_no_contributions")):
        s = r[key]
        own = "<= %g" % s["server_p99_us_at_most"] if "server_p99_us_at_most" in s else ""
        print("%5d  %-28s %10.0f %9.1f %9.1f %7s %11.1f  %s%s" % (r["connections"], name, s["rps"], s["p50_us"],
              s["p99_us"], "%.2f" % r[ratio] if ratio else "", s["cpu_us_per_request"], own,
              "  (%d non-2xx!)" % s["non_2xx"] if s["non_2xx"] else ""))
    if nruns > 1:
        print("%5s  weir/nginx per run: %s" % ("", " ".join("%.2f" % x for x in r["ratios"])))
        print("%5s  p99 us per run, weir: %s; nginx: %s" % ("", " ".join("%.0f" % e["weir"]["p99_us"] for e in r["each_run"]),
              " ".join("%.0f" % e["nginx"]["p99_us"] for e in r["each_run"])))
print()
print("CPU us/req: the server's own CPU time (user + system, all threads) per request; nginx's over "
      "weir's, per run: %s" % "; ".join("%d conns %s" % (r["connections"], " ".join("%.2f" % e["cpu_ratio"]
                                                                                  for e in r["each_run"]))
                                        for r in runs))
fmt = lambda v: "-" if v is None else ("met" if v else "NOT met")
print("targets at 8 connections: weir >= 50%% of nginx's throughput: %s (no contributions: %s); "
      "weir p99 <= 250 us: %s (no contributions: %s; weir's own p99: %s; nginx's own p99: %s)" %
      (fmt(met["throughput_ratio"]), fmt(met["throughput_ratio_no_contributions"]), fmt(met["p99_at_8"]),
       fmt(met["p99_at_8_no_contributions"]), fmt(met["server_p99_at_8"]), fmt(met["nginx_p99_at_8"])))
for r in at8:
    print("p99 at 8 connections: weir %.0f us, nginx %.0f us — nginx answers a fixed string, so its p99 is "
          "what this machine allows an HTTP server under this load" % (r["weir"]["p99_us"], r["nginx"]["p99_us"]))
print("(weir's own p99: request received -> response ready, the bucket of its weir_stage_latency_seconds"
      "{stage=\"total\"} histogram that holds it)")
if cores <= 4 and not pinned:
    print("(wrk, nginx and weir share %d cores here: much of wrk's p99 is time waiting for a core, as nginx's own "
          "p99 shows; --pin gives wrk a core of its own)" % cores)
print("(contributions are path attribution, model_contrib_row_approx — XGBoost's approx_contribs, about two "
      "predictions' cost; ?contributions=false skips them)")
print("weir scored %d events in total, %d of them late (all of them logged, with one decision each)" % (events, late))
EOF
