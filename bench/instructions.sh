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
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
rm -f "$OUT" "$OUT".*
base="http://127.0.0.1:$PORT"
CG=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$OUT")
if [ "$MODE" = floor ]; then
  "${CG[@]}" "$TARGET/release/examples/http_floor" "127.0.0.1:$PORT" > "$WORK/log" 2>&1 &
else
  printf 'confidential_registration = "open"\n' > "$WORK/c.toml"
  "${CG[@]}" "$TARGET/release/oauth-server" serve --memory --config "$WORK/c.toml" \
    --listen "127.0.0.1:$PORT" --issuer "$base" > "$WORK/log" 2>&1 &
fi
PID=$!
# valgrind starts slowly.
WAIT_TRIES=600 wait_http "$base/healthz" "$WORK/log"
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
callgrind_control -i on "$PID" > /dev/null
res="$(load "${DURATION:-4}s" | grep '^RESULT')"
callgrind_control -i off "$PID" > /dev/null
callgrind_control -d "$PID" > /dev/null
kill "$PID"; wait "$PID" 2>/dev/null || true
reqs="$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$res")"
total="$(cat "$OUT".* | awk '/^totals:/ { s += $2 } END { print s + 0 }')"
echo "$res"
awk -v t="$total" -v n="$reqs" 'BEGIN { printf "%.0f instructions per request (%d requests)\n", t / n, n }'
echo "profile: callgrind_annotate --inclusive=yes $OUT.1"
