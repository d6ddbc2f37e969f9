#!/usr/bin/env bash
# Profiles the release oauth-server under one fixed load (cc or introspect) with `perf record -g`,
# and prints the server's CPU time per request. Usage: bench/profile.sh [cc|introspect]
# Environment: CARGO_TARGET_DIR, PORT (18181), DURATION (8), CONNS (16), THREADS (2, wrk threads),
# RUST_LOG (server's log level), NO_PERF=1 to measure CPU per request only.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
MODE="${1:-cc}"
PORT="${PORT:-18181}"
DURATION="${DURATION:-8}"
CONNS="${CONNS:-16}"
BIN="${CARGO_TARGET_DIR:-$HERE/../target}/release/oauth-server"
OUT="${OUT:-/tmp/oauth-server-perf-$MODE.data}"
WORK="$(mktemp -d)"
trap 'stop_server; rm -rf "$WORK"' EXIT
base="http://127.0.0.1:$PORT"
serve_memory "$WORK/log" "$BIN" "$PORT"
AUTH="$(cc_client_auth "$base")"
AT="$(curl -sf -H "Authorization: $AUTH" -d 'grant_type=client_credentials&scope=mail' "$base/token" | jq -r .access_token)"
if [ "$MODE" = cc ]; then P=/token; B="grant_type=client_credentials&scope=mail"; else P=/introspect; B="token=$AT"; fi
ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
T0="$(ticks)"
PP=""
if [ "${NO_PERF:-0}" != 1 ]; then
  perf record -F "${PERF_FREQ:-999}" --call-graph "${PERF_CALLGRAPH:-fp}" -p "$SERVER_PID" -o "$OUT" -- sleep "$DURATION" > /dev/null 2>&1 &
  PP=$!
fi
res="$(BENCH_MODE=fixed BENCH_PATH="$P" BENCH_AUTH="$AUTH" BENCH_BODY="$B" \
  wrk -t"${THREADS:-2}" -c"$CONNS" -d"${DURATION}s" -s "$HERE/load.lua" "$base" | grep '^RESULT')"
[ -n "$PP" ] && wait "$PP" || true
T1="$(ticks)"
echo "$res"
reqs="$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$res")"
awk -v t="$((T1 - T0))" -v hz="$(getconf CLK_TCK)" -v n="$reqs" \
  'BEGIN { printf "server CPU %.2f s, %.1f us per request\n", t / hz, t / hz / n * 1e6 }'
[ -n "$PP" ] && echo "profile: perf report -i $OUT --no-children --sort dso,symbol"
