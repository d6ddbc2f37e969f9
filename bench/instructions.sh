#!/usr/bin/env bash
# Counts the user-space instructions the release oauth-server (all its threads) executes per
# request under one fixed load, with valgrind's callgrind: a figure that does not move with the
# machine's noise, unlike requests per second, so small changes can be compared run to run.
# The kernel's share (system calls, TCP) is not counted; bench/profile.sh measures CPU time.
#
# Usage: bench/instructions.sh [cc|introspect|floor]   (floor: the http floor example, cc load)
# Environment: CARGO_TARGET_DIR, PORT (18189), DURATION (4, seconds of load), OUT (callgrind file,
# kept for `callgrind_annotate`).
# Caveat: valgrind hides the CPU's SHA extensions, so sha2 runs its portable code here and SHA-256
# counts several times what it costs on the real machine.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
MODE="${1:-cc}"
PORT="${PORT:-18189}"
TARGET="${CARGO_TARGET_DIR:-$HERE/../target}"
OUT="${OUT:-/tmp/oauth-server-callgrind-$MODE.out}"
WORK="$(mktemp -d)"
trap 'stop_server; rm -rf "$WORK"' EXIT
rm -f "$OUT" "$OUT".*
base="http://127.0.0.1:$PORT"
CG=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$OUT")
WAIT_TRIES=600 # valgrind starts slowly
if [ "$MODE" = floor ]; then
  "${CG[@]}" "$TARGET/release/examples/http_floor" "127.0.0.1:$PORT" > "$WORK/log" 2>&1 &
  SERVER_PID=$!
  wait_http "$base/healthz" "$WORK/log"
else
  serve_memory "$WORK/log" "$TARGET/release/oauth-server" "$PORT" "${CG[@]}"
fi
AUTH="Basic eDp5"; P=/token; B="grant_type=client_credentials&scope=mail"
if [ "$MODE" != floor ]; then
  AUTH="$(cc_client_auth "$base")"
  if [ "$MODE" = introspect ]; then
    AT="$(curl -sf -H "Authorization: $AUTH" -d "$B" "$base/token" | jq -r .access_token)"
    P=/introspect; B="token=$AT"
  fi
fi
load() { BENCH_MODE=fixed BENCH_PATH="$P" BENCH_AUTH="$AUTH" BENCH_BODY="$B" \
  wrk -t1 -c4 -d"$1" -s "$HERE/load.lua" "$base"; }
load 1s > /dev/null # warm up: connections, caches, the allocator's pools
callgrind_control -i on "$SERVER_PID" > /dev/null
res="$(load "${DURATION:-4}s" | grep '^RESULT')"
callgrind_control -i off "$SERVER_PID" > /dev/null
callgrind_control -d "$SERVER_PID" > /dev/null
stop_server
reqs="$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$res")"
total="$(cat "$OUT".* | awk '/^totals:/ { s += $2 } END { print s + 0 }')"
echo "$res"
awk -v t="$total" -v n="$reqs" 'BEGIN { printf "%.0f instructions per request (%d requests)\n", t / n, n }'
echo "profile: callgrind_annotate --inclusive=yes $OUT.1"
