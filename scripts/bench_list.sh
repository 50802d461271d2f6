#!/usr/bin/env bash
# The collector list at scale (issue 16, item 4): creates BENCH_LIST_COLLECTORS collectors with
# `linkmesh simulate --create-only`, labels every 100th one env=prod, then times GET /api/v1/collectors
# pages (first page, a page 50% deep through its cursor, descending, a status filter that all or none
# match, a selector filter, sorted by -last_seen_at, a text search)
# and, once, the complete list without limit, against GET /readyz on the same server and connection
# (the same-run baseline: an authenticated-free request through the same HTTP stack). Each figure is
# the wall time of one request as a client on this machine sees it (keep-alive connection, the answer
# read whole), BENCH_LIST_REPS repetitions, median and p99. Not run by CI; BENCHMARKS.md has the figures.
#
# Knobs: BENCH_LIST_COLLECTORS (100000), BENCH_LIST_REPS (300), BENCH_PROVISION_CONCURRENCY (16),
# BENCH_SKIP_BUILD=1 (use target/release/linkmesh as it is), BENCH_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
: "${BENCH_DIR:=$ROOT/target/bench/list-$(date +%Y%m%d-%H%M%S)}"
: "${BENCH_LIST_COLLECTORS:=100000}"
: "${BENCH_LIST_REPS:=300}"
: "${BENCH_PROVISION_CONCURRENCY:=16}"
: "${BENCH_SKIP_BUILD:=0}"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LINKMESH=$TARGET/release/linkmesh
PASSWORD="bench-$$-$RANDOM$RANDOM"
mkdir -p "$BENCH_DIR"
SERVER_PID=""
log() { printf '[bench-list %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

if [ "$BENCH_SKIP_BUILD" != 1 ]; then
  log "building the release binary"
  cargo build --release --locked --bin linkmesh >&2
fi

LINKMESH_ADMIN_PASSWORD=$PASSWORD LINKMESH_LOG=warn "$LINKMESH" serve --data-dir "$BENCH_DIR/data" \
  --http-addr 127.0.0.1:0 --rpc-addr 127.0.0.1:0 >"$BENCH_DIR/server.stdout" 2>"$BENCH_DIR/server.stderr" &
SERVER_PID=$!
until grep -q '^listening on ' "$BENCH_DIR/server.stdout"; do
  kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited; see $BENCH_DIR/server.stderr"; exit 1; }
  sleep 0.05
done
URL="http://$(sed -n 's/^listening on \([^,]*\).*/\1/p' "$BENCH_DIR/server.stdout" | head -n1)"
until curl -sf "$URL/readyz" >/dev/null; do sleep 0.05; done

log "creating $BENCH_LIST_COLLECTORS collectors ($BENCH_PROVISION_CONCURRENCY in flight)"
started=$(date +%s.%N)
LINKMESH_ADMIN_PASSWORD=$PASSWORD "$LINKMESH" simulate --url "$URL" --create-only \
  --collectors "$BENCH_LIST_COLLECTORS" --name-prefix sim- \
  --provision-concurrency "$BENCH_PROVISION_CONCURRENCY" --no-stdout-summary \
  --summary-shell "$BENCH_DIR/create.env" 2>"$BENCH_DIR/create.log"
CREATE_S=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
log "created in $CREATE_S s"

RSS_KIB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
BENCH_URL=$URL BENCH_PASSWORD=$PASSWORD BENCH_REPS=$BENCH_LIST_REPS BENCH_CREATE_S=$CREATE_S \
  BENCH_RSS_KIB=$RSS_KIB BENCH_N=$BENCH_LIST_COLLECTORS python3 - <<'PY' | tee "$BENCH_DIR/results.md"
import http.client, json, os, statistics, time, urllib.parse
from concurrent.futures import ThreadPoolExecutor

url = urllib.parse.urlparse(os.environ["BENCH_URL"])
reps = int(os.environ["BENCH_REPS"])

def connect():
    return http.client.HTTPConnection(url.hostname, url.port, timeout=600)

conn = connect()
conn.request("POST", "/api/v1/auth/login", json.dumps({"username": "admin", "password": os.environ["BENCH_PASSWORD"]}),
             {"Content-Type": "application/json"})
answer = conn.getresponse()
answer.read()
cookie = answer.getheader("Set-Cookie").split(";")[0]
headers = {"Cookie": cookie, "Accept": "application/json"}

def get(path, connection=conn):
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200, (path, response.status, body[:300])
    return body

# Every 100th collector gets env=prod (a label selector with 1% hits); the rest stay unlabelled.
ids = []
cursor = None
while True:
    page = json.loads(get("/api/v1/collectors?limit=1000" + (f"&cursor={cursor}" if cursor else "")))
    ids.extend(c["id"] for c in page["collectors"])
    cursor = page["next"]
    if not cursor:
        break
total = len(ids)
labelled = ids[::100]

def label(chunk):
    connection = connect()
    for collector_id in chunk:
        connection.request("PATCH", f"/api/v1/collectors/{collector_id}", json.dumps({"labels": {"env": "prod"}}),
                           {**headers, "Content-Type": "application/json", "Origin": os.environ["BENCH_URL"]})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status

with ThreadPoolExecutor(16) as pool:
    list(pool.map(label, [labelled[i::16] for i in range(16)]))

deep = json.loads(get(f"/api/v1/collectors?limit=1000"))
cursor = None
for _ in range(max(1, total // 2000)):
    cursor = json.loads(get("/api/v1/collectors?limit=1000" + (f"&cursor={cursor}" if cursor else "")))["next"]

def timed(path, repetitions=reps):
    samples = []
    size = 0
    for _ in range(repetitions):
        started = time.perf_counter()
        body = get(path)
        samples.append((time.perf_counter() - started) * 1000)
        size = len(body)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return statistics.median(samples), p99, size

rows = [
    ("baseline: `GET /readyz`", "/readyz"),
    ("first page: `?limit=100`", "/api/v1/collectors?limit=100"),
    (f"a page 50% deep: `?limit=100&cursor=…` (after {total // 2000 * 1000})", f"/api/v1/collectors?limit=100&cursor={cursor}"),
    (f"label selector: `?limit=100&selector=env=prod` ({len(labelled)} match)", "/api/v1/collectors?limit=100&selector=env%3Dprod"),
    ("descending: `?limit=100&sort=-name`", "/api/v1/collectors?limit=100&sort=-name"),
    ("status filter, all match: `?limit=100&status=awaiting_connection`", "/api/v1/collectors?limit=100&status=awaiting_connection"),
    ("status filter, none match: `?limit=100&status=degraded`", "/api/v1/collectors?limit=100&status=degraded"),
    ("sorted: `?limit=100&sort=-last_seen_at`", "/api/v1/collectors?limit=100&sort=-last_seen_at"),
    ("text search: `?limit=100&q=sim-4242`", "/api/v1/collectors?limit=100&q=sim-4242"),
]
get("/readyz")
for _, path in rows:  # warm-up
    get(path)
results = [(name, *timed(path)) for name, path in rows]
full = timed("/api/v1/collectors", 3)
base = results[0][1]
print(f"{total} collectors (created through the API by `linkmesh simulate --create-only`, "
      f"{os.environ['BENCH_PROVISION_CONCURRENCY'] if 'BENCH_PROVISION_CONCURRENCY' in os.environ else 16} in flight, "
      f"in {os.environ['BENCH_CREATE_S']} s), server RSS {int(os.environ['BENCH_RSS_KIB']) // 1024} MiB; "
      f"{reps} requests per row on one keep-alive connection, wall time per request at the client")
print()
print("| request | median ms | p99 ms | × baseline (median) | answer bytes |")
print("|---|---|---|---|---|")
for name, median, p99, size in results:
    print(f"| {name} | {median:.2f} | {p99:.2f} | {median / base:.1f} | {size} |")
print(f"| complete list without `limit` (3 requests) | {full[0]:.0f} | {full[1]:.0f} (max) | {full[0] / base:.0f} | {full[2]} |")
PY
log "results in $BENCH_DIR/results.md"
