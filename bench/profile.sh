#!/usr/bin/env bash
# Profiles the release oauth-server under one fixed load (cc or introspect) with `perf record -g`,
# and prints the server's and wrk's CPU time per request, user and system apart (on two cores
# shared with wrk, the kernel's share moves with how often each side sleeps and is woken).
# Usage: bench/profile.sh [cc|introspect]
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
# The server's user and system CPU time so far, in clock ticks.
ticks() { awk '{print $14, $15}' "/proc/$SERVER_PID/stat"; }
T0="$(ticks)"
PP=""
if [ "${NO_PERF:-0}" != 1 ]; then
  perf record -F "${PERF_FREQ:-999}" --call-graph "${PERF_CALLGRAPH:-fp}" -p "$SERVER_PID" -o "$OUT" -- sleep "$DURATION" > /dev/null 2>&1 &
  PP=$!
fi
# wrk runs in a subshell whose `times` reports wrk's own CPU time (user and system) on stderr.
res="$( (BENCH_MODE=fixed BENCH_PATH="$P" BENCH_AUTH="$AUTH" BENCH_BODY="$B" \
  wrk -t"${THREADS:-2}" -c"$CONNS" -d"${DURATION}s" -s "$HERE/load.lua" "$base"; times >&2) \
  2> "$WORK/times" | grep '^RESULT')"
[ -n "$PP" ] && wait "$PP" || true
T1="$(ticks)"
echo "$res"
reqs="$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$res")"
# `times` prints "XmY.YYYs XmY.YYYs" for the subshell, then for its children (wrk).
wrk_cpu="$(sed -n 2p "$WORK/times" | sed 's/m/ /g; s/s//g')"
awk -v t0="$T0" -v t1="$T1" -v w="$wrk_cpu" -v hz="$(getconf CLK_TCK)" -v n="$reqs" 'BEGIN {
  split(t0, a, " "); split(t1, b, " "); split(w, c, " ")
  u = (b[1] - a[1]) / hz; s = (b[2] - a[2]) / hz
  wu = c[1] * 60 + c[2]; ws = c[3] * 60 + c[4]
  printf "server CPU %.2f s, %.1f us per request (user %.1f, system %.1f)\n", u + s, (u + s) / n * 1e6, u / n * 1e6, s / n * 1e6
  printf "wrk CPU %.2f s, %.1f us per request (user %.1f, system %.1f)\n", wu + ws, (wu + ws) / n * 1e6, wu / n * 1e6, ws / n * 1e6
}'
[ -n "$PP" ] && echo "profile: perf report -i $OUT --no-children --sort dso,symbol"
