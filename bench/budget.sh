#!/usr/bin/env bash
# The work budget: how much work per request a server on this stack (hyper + tokio, this machine,
# this wrk load) can do and still reach a given multiple of the peer's throughput.
#
# Runs the `cc` load against the http floor with a fixed amount of synthetic work per request
# (busy waiting, `http_floor ADDR WORK_NS`) at each amount in $WORKS, against oauth-server, and
# against the peer, in $RUNS interleaved rounds, and prints each one's median requests per second,
# its ratio to the peer's, and its CPU time per request. oauth-server's row lands between two floor
# rows: that is how much work per request it does beyond answering HTTP, in the floor's units.
#
# Environment: RUNS (3), DURATION (5s), CONNS (16), WORKS ("0 1000 2000 3000 4000 6000", in ns),
# CARGO_TARGET_DIR, SKIP_BUILD=1. Ports: OURS_PORT (18080), PEER_PORT (13000), FLOOR_PORT (18081).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-5s}"
CONNS="${CONNS:-16}"
WORKS="${WORKS:-0 1000 2000 3000 4000 6000}"
OURS_PORT="${OURS_PORT:-18080}"
PEER_PORT="${PEER_PORT:-13000}"
FLOOR_PORT="${FLOOR_PORT:-18081}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d)"
RESULTS="$WORK/results.txt"
trap 'stop_server; rm -rf "$WORK"' EXIT

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p oauth-server --bin oauth-server --example http_floor >&2)
fi
if [ ! -d "$HERE/peer/node_modules/oidc-provider" ]; then
  (cd "$HERE/peer" && npm ci --no-audit --no-fund >&2)
fi

ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }

# Runs the cc load against BASE with AUTH and records "NAME rps=... cpu_us=..." in RESULTS.
measure() { # name base auth path
  local t0 t1 res n
  t0="$(ticks)"
  res="$(BENCH_MODE=fixed BENCH_PATH="$4" BENCH_AUTH="$3" BENCH_BODY="grant_type=client_credentials&scope=mail" \
    wrk -t2 -c"$CONNS" -d"$DURATION" -s "$HERE/load.lua" "$2" | grep '^RESULT')"
  t1="$(ticks)"
  n="$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$res")"
  echo "$1 ${res#RESULT } cpu_us=$(awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="$n" \
    'BEGIN { printf "%.1f", t / hz / n * 1e6 }')" | tee -a "$RESULTS" >&2
}

for r in $(seq 1 "$RUNS"); do
  echo "[budget] round $r" >&2
  (cd "$HERE/peer" && NODE_ENV=production exec node server.js "$PEER_PORT" "$CONNS" "$WORK/peer-rt.txt") \
    > "$WORK/peer.log" 2>&1 &
  SERVER_PID=$!
  wait_http "http://127.0.0.1:$PEER_PORT/.well-known/openid-configuration" "$WORK/peer.log"
  measure peer "http://127.0.0.1:$PEER_PORT" \
    "$(basic bench-confidential bench-confidential-secret-0123456789abcdef)" /token
  stop_server

  serve_memory "$WORK/ours.log" "$TARGET/release/oauth-server" "$OURS_PORT"
  measure oauth-server "http://127.0.0.1:$OURS_PORT" "$(cc_client_auth "http://127.0.0.1:$OURS_PORT")" /token
  stop_server

  for w in $WORKS; do
    "$TARGET/release/examples/http_floor" "127.0.0.1:$FLOOR_PORT" "$w" > "$WORK/floor.log" 2>&1 &
    SERVER_PID=$!
    wait_http "http://127.0.0.1:$FLOOR_PORT/" "$WORK/floor.log"
    measure "floor+${w}ns" "http://127.0.0.1:$FLOOR_PORT" "Basic eDp5" /token
    stop_server
  done
done

echo
awk -f "$HERE/results.awk" -f - "$RESULTS" <<'AWK'
  END {
    peer = med("rps", "peer")
    printf "| server | rps | ratio to the peer | CPU per request (us) | p99 ms |\n|---|---:|---:|---:|---:|\n"
    for (o = 1; o <= names; o++) {
      s = order[o]; rps = med("rps", s)
      printf "| %s | %.0f | %.1fx | %.1f | %.2f |\n", s, rps, rps / peer, med("cpu_us", s), med("p99_ms", s)
    }
  }
AWK
