#!/usr/bin/env bash
# Registration flood (issue 15, finding 1): ATTEMPTS anonymous RFC 7591 registrations from one
# address (127.0.0.2) against the release oauth-server on its default file store, with default
# settings, alternating the reported 60 KB body (25 client_name#tag variants of 2048 bytes) and
# the largest registration the server keeps (about 7.8 KB of metadata). Prints the answers by
# status, the time taken, and the growth of the data directory and of the server's RSS, per
# 10,000 attempts; then checks that a registration from 127.0.0.1 still succeeds.
#
# Reported before the fix: 2,000 attempts of 60 KB took 2.1 s, all 201; the data directory grew
# 118 MB and the RSS 147 MB. Target: under 1 MB and under 20 MB per 10,000 attempts beyond what
# the per-address allowance (20 registrations per hour) stores.
#
# Environment: ATTEMPTS (10000), PARALLEL (8), PORT (18090), CARGO_TARGET_DIR (default: the
# workspace's target/), SKIP_BUILD=1 to use an existing binary.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
ROOT="$(cd "$HERE/.." && pwd)"
ATTEMPTS="${ATTEMPTS:-10000}"
PARALLEL="${PARALLEL:-8}"
PORT="${PORT:-18090}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/oauth-server"
WORK="$(mktemp -d)"
DATA="$WORK/data"
BASE="http://127.0.0.1:$PORT"
SERVER_PID=""

cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "${SKIP_BUILD:-}" = 1 ] || cargo build --release -q -p oauth-server --manifest-path "$ROOT/Cargo.toml"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }
dir_bytes() { du -sb "$DATA" | cut -f1; }

# The two bodies.
python3 - "$WORK" <<'EOF'
import json, sys
work = sys.argv[1]
base = {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}
reported = dict(base, **{f"client_name#l{i}": "x" * 2048 for i in range(25)})
largest = dict(base, client_name="y" * 1900, **{f"client_name#l{i}": "y" * 1900 for i in range(3)})
for name, body in (("reported", reported), ("largest", largest)):
    with open(f"{work}/{name}.json", "w") as f:
        json.dump(body, f)
EOF

# One curl config entry per attempt (`next` resets the options, so each entry carries them all),
# run PARALLEL at a time from 127.0.0.2.
for i in $(seq 1 "$ATTEMPTS"); do
  if [ $((i % 2)) -eq 0 ]; then body=reported; else body=largest; fi
  [ "$i" -gt 1 ] && echo next
  printf 'url = "%s/register"\ndata-binary = "@%s/%s.json"\noutput = "/dev/null"\n' \
    "$BASE" "$WORK" "$body"
  printf 'interface = "127.0.0.2"\nheader = "content-type: application/json"\nsilent\n'
  printf 'write-out = "%%{http_code}\\n"\n'
done > "$WORK/flood.curl"

mkdir -p "$DATA"
"$BIN" serve --data "$DATA" --listen "127.0.0.1:$PORT" --issuer "$BASE" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_http "$BASE/healthz" "$WORK/server.log"

# Settle: one request from elsewhere so that lazily built state exists before the baseline.
curl -s -o /dev/null "$BASE/.well-known/oauth-authorization-server"
rss_before="$(rss_kb)"
dir_before="$(dir_bytes)"
start="$(date +%s.%N)"
curl --parallel --parallel-max "$PARALLEL" -K "$WORK/flood.curl" > "$WORK/codes" 2> "$WORK/curl.err"
end="$(date +%s.%N)"
rss_after="$(rss_kb)"
dir_after="$(dir_bytes)"

echo "oauth-server registration flood: $ATTEMPTS attempts from 127.0.0.2, $PARALLEL in parallel"
echo "answers by status:"
sort "$WORK/codes" | uniq -c | sed 's/^/  /'
awk -v s="$start" -v e="$end" -v n="$ATTEMPTS" \
  'BEGIN { printf "time: %.2f s (%.0f attempts a minute)\n", e - s, n / (e - s) * 60 }'
awk -v a="$dir_before" -v b="$dir_after" -v r="$rss_before" -v q="$rss_after" -v n="$ATTEMPTS" \
  'BEGIN {
     printf "data directory: %d -> %d bytes, growth %d bytes (%.1f KB per 10,000 attempts)\n",
       a, b, b - a, (b - a) / 1024 * 10000 / n
     printf "server RSS: %d -> %d KB, growth %d KB (%.1f MB per 10,000 attempts)\n",
       r, q, q - r, (q - r) / 1024 * 10000 / n
   }'

user="$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.1 \
  -H 'content-type: application/json' \
  -d '{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","client_name":"Thunderbird"}' \
  "$BASE/register")"
echo "a registration from 127.0.0.1 during the flood's window: $user"
[ "$user" = 201 ]
