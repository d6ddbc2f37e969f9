#!/usr/bin/env bash
# Load benchmark: the release oauth-server against node-oidc-provider (the peer), one after the
# other on this machine (never at the same time, so each gets all of the machine's cores), for
#   cc          client_credentials token requests (confidential client, client_secret_basic)
#   introspect  introspection of a client_credentials access token (same client, Basic auth: any
#               client may introspect its own tokens, so it needs no --resource-server)
#   refresh     refresh-token rotation (public client; every request spends the chain's current
#               refresh token and gets the next one; one chain per connection)
# with wrk at $CONNS connections for $DURATION each, $RUNS rounds; the table shows medians.
#
# Environment: RUNS (3), DURATION (10s), CONNS (16), OURS_PORT (18080), PEER_PORT (13000),
# CARGO_TARGET_DIR (default: the workspace's target/), SKIP_BUILD=1 to use an existing binary.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
ROOT="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-16}"
OURS_PORT="${OURS_PORT:-18080}"
PEER_PORT="${PEER_PORT:-13000}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/oauth-server"
FLOOR_BIN="$TARGET/release/examples/http_floor"
FLOOR_PORT="${FLOOR_PORT:-18081}"
# wrk threads per load, and refresh chains: each thread drives its connections' share of chains
# plus one spare (wrk calls the first thread's request() once before the run to check it, and
# that call takes a chain whose request is never sent; see load.lua).
THREADS=2; [ "$CONNS" -lt 2 ] && THREADS=1
CHAINS_PER_THREAD=$((CONNS / THREADS + 1))
CHAINS=$((THREADS * CHAINS_PER_THREAD))
WORK="$(mktemp -d)"
RESULTS="$WORK/results.txt"
SERVER_PID=""

cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[bench] $*" >&2; }

# --- what we need ---------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building oauth-server (release)"
  (cd "$ROOT" && cargo build --release -p oauth-server --bin oauth-server --example http_floor >&2)
fi
[ -x "$BIN" ] || { echo "no $BIN (set CARGO_TARGET_DIR?)" >&2; exit 1; }
[ -x "$FLOOR_BIN" ] || { echo "no $FLOOR_BIN (set CARGO_TARGET_DIR?)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update >&2 && apt-get install -y wrk >&2
fi
for tool in curl jq node npm; do command -v "$tool" >/dev/null || { echo "need $tool" >&2; exit 1; }; done
if [ ! -d "$HERE/peer/node_modules/oidc-provider" ]; then
  log "installing the peer (npm ci)"
  (cd "$HERE/peer" && npm ci --no-audit --no-fund >&2)
fi

# Value of hidden form field $2 in HTML file $1.
hidden() { grep -o "name=\"$2\" value=\"[^\"]*\"" "$1" | head -1 | sed 's/.*value="//; s/"$//'; }
# The oauth_session cookie set in headers file $1.
session() { grep -i '^set-cookie: oauth_session=' "$1" | head -1 | sed 's/^[^=]*=//; s/;.*//' | tr -d '\r'; }

# --- oauth-server -----------------------------------------------------------------------------
VERIFIER="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
PUB_REDIRECT="http://127.0.0.1:4711/cb"

start_ours() {
  local base="http://127.0.0.1:$OURS_PORT"
  serve_memory "$WORK/ours.log" "$BIN" "$OURS_PORT"
  sleep 0.2
  local password
  password="$(sed -n 's/.*created user admin with password \([^ ]*\).*/\1/p' "$WORK/ours.log" | head -1)"
  [ -n "$password" ] || { cat "$WORK/ours.log" >&2; echo "no admin password printed" >&2; exit 1; }

  # Confidential client for client_credentials and introspection.
  local reg
  reg="$(curl -sf -H 'content-type: application/json' -d '{
      "client_name": "bench confidential",
      "grant_types": ["client_credentials", "refresh_token", "authorization_code"],
      "response_types": ["code"],
      "token_endpoint_auth_method": "client_secret_basic",
      "redirect_uris": ["https://client.example.com/cb"],
      "scope": "mail"}' "$base/register")"
  CONF_ID="$(jq -r .client_id <<<"$reg")"
  CONF_SECRET="$(jq -r .client_secret <<<"$reg")"
  # Public client for refresh rotation.
  reg="$(curl -sf -H 'content-type: application/json' -d '{
      "client_name": "bench public",
      "grant_types": ["authorization_code", "refresh_token"],
      "response_types": ["code"],
      "token_endpoint_auth_method": "none",
      "redirect_uris": ["'"$PUB_REDIRECT"'"],
      "scope": "mail offline_access"}' "$base/register")"
  PUB_ID="$(jq -r .client_id <<<"$reg")"

  # One authorization code flow per refresh chain, through the login and consent pages.
  : > "$WORK/ours-rt.txt"
  local i code cookie q h="$WORK/h.txt" b="$WORK/b.html"
  for i in $(seq 1 "$CHAINS"); do
    q="response_type=code&client_id=$PUB_ID&redirect_uri=$(jq -rn --arg u "$PUB_REDIRECT" '$u|@uri')&state=s$i&scope=mail+offline_access&code_challenge=$CHALLENGE&code_challenge_method=S256"
    curl -sf -D "$h" -o "$b" "$base/authorize?$q"
    cookie="$(session "$h")"
    curl -sf -D "$h" -o "$b" -b "oauth_session=$cookie" \
      --data-urlencode "csrf=$(hidden "$b" csrf)" --data-urlencode "page=$(hidden "$b" page)" \
      --data-urlencode "username=admin" --data-urlencode "password=$password" "$base/authorize"
    cookie="$(session "$h")"
    curl -s -D "$h" -o "$b" -b "oauth_session=$cookie" \
      --data-urlencode "csrf=$(hidden "$b" csrf)" --data-urlencode "page=$(hidden "$b" page)" \
      --data-urlencode "decision=approve" "$base/authorize"
    code="$(grep -i '^location:' "$h" | sed 's/.*[?&]code=\([^&]*\).*/\1/' | tr -d '\r')"
    [ -n "$code" ] || { cat "$h" "$b" >&2; echo "no code" >&2; exit 1; }
    curl -sf -d "grant_type=authorization_code&code=$code&client_id=$PUB_ID&code_verifier=$VERIFIER" \
      --data-urlencode "redirect_uri=$PUB_REDIRECT" "$base/token" | jq -er .refresh_token >> "$WORK/ours-rt.txt"
  done

  BASE="$base"
  TOKEN_PATH=/token
  INTROSPECT_PATH=/introspect
  AUTH="$(basic "$CONF_ID" "$CONF_SECRET")"
  RT_FILE="$WORK/ours-rt.txt"
}

# --- node-oidc-provider -------------------------------------------------------------------------
start_peer() {
  (cd "$HERE/peer" && NODE_ENV=production exec node server.js "$PEER_PORT" "$CHAINS" "$WORK/peer-rt.txt") > "$WORK/peer.log" 2>&1 &
  SERVER_PID=$!
  local base="http://127.0.0.1:$PEER_PORT"
  wait_http "$base/.well-known/openid-configuration" "$WORK/peer.log"
  for _ in $(seq 1 100); do [ -s "$WORK/peer-rt.txt" ] && break; sleep 0.1; done
  BASE="$base"
  TOKEN_PATH=/token
  INTROSPECT_PATH=/token/introspection
  CONF_ID=bench-confidential
  PUB_ID=bench-public
  AUTH="$(basic bench-confidential bench-confidential-secret-0123456789abcdef)"
  RT_FILE="$WORK/peer-rt.txt"
}

# --- the floor: the same hyper setup answering a fixed body (adapters/hyper/examples/http_floor.rs) ---
start_floor() {
  "$FLOOR_BIN" "127.0.0.1:$FLOOR_PORT" > "$WORK/floor.log" 2>&1 &
  SERVER_PID=$!
  BASE="http://127.0.0.1:$FLOOR_PORT"
  wait_http "$BASE/" "$WORK/floor.log"
}

# The cc and introspection requests as oauth-server gets them (the floor ignores what they say;
# the token is as long as oauth-server's access tokens), so each has its own ceiling.
run_floor() {
  local auth token
  auth="$(basic bench-client-id-0123456789 bench-client-secret-0123456789abcdef0123)"
  token="$(printf 'x%.0s' $(seq 1 118))"
  BENCH_MODE=fixed BENCH_PATH=/token BENCH_AUTH="$auth" \
    BENCH_BODY="grant_type=client_credentials&scope=mail" run_wrk cc http-floor "$THREADS"
  BENCH_MODE=fixed BENCH_PATH=/introspect BENCH_AUTH="$auth" \
    BENCH_BODY="token=$token" run_wrk introspect http-floor "$THREADS"
}

# --- loads --------------------------------------------------------------------------------------
run_wrk() { # name server threads
  local out
  out="$(wrk -t"$3" -c"$CONNS" -d"$DURATION" -s "$HERE/load.lua" "$BASE" 2>&1)"
  local line
  line="$(grep '^RESULT' <<<"$out" || true)"
  [ -n "$line" ] || { echo "$out" >&2; echo "wrk gave no result" >&2; exit 1; }
  log "$2 $1: $line"
  echo "$1 $2 ${line#RESULT }" >> "$RESULTS"
}

run_loads() { # server
  local at
  at="$(curl -sf -H "Authorization: $AUTH" -d 'grant_type=client_credentials&scope=mail' "$BASE$TOKEN_PATH" | jq -er .access_token)"
  local active
  active="$(curl -sf -H "Authorization: $AUTH" --data-urlencode "token=$at" "$BASE$INTROSPECT_PATH" | jq -r .active)"
  [ "$active" = true ] || { echo "$1: introspection of a fresh token is not active" >&2; exit 1; }
  BENCH_MODE=fixed BENCH_PATH="$TOKEN_PATH" BENCH_AUTH="$AUTH" \
    BENCH_BODY="grant_type=client_credentials&scope=mail" run_wrk cc "$1" "$THREADS"
  BENCH_MODE=fixed BENCH_PATH="$INTROSPECT_PATH" BENCH_AUTH="$AUTH" \
    BENCH_BODY="token=$at" run_wrk introspect "$1" "$THREADS"
  BENCH_MODE=refresh BENCH_PATH="$TOKEN_PATH" BENCH_AUTH="" BENCH_RT_FILE="$RT_FILE" \
    BENCH_CLIENT_ID="$PUB_ID" BENCH_CHAINS_PER_THREAD="$CHAINS_PER_THREAD" run_wrk refresh "$1" "$THREADS"
}

log "$RUNS rounds, $CONNS connections, $DURATION per load; servers run one at a time on $(nproc) cores"
for r in $(seq 1 "$RUNS"); do
  log "round $r: oauth-server"
  start_ours; run_loads oauth-server; stop_server
  log "round $r: oidc-provider"
  start_peer; run_loads oidc-provider; stop_server
  log "round $r: http floor"
  start_floor; run_floor; stop_server
done

# --- table --------------------------------------------------------------------------------------
echo
echo "Raw results (one line per run):"
cat "$RESULTS"
echo
awk -f "$HERE/results.awk" -f - "$RESULTS" <<'AWK'
  END {
    printf "| workload | server | rps | p50 ms | p99 ms | errors | rps ratio (to the peer) |\n"
    printf "|---|---|---:|---:|---:|---:|---:|\n"
    split("cc introspect refresh", wl, " "); split("oauth-server oidc-provider http-floor", sv, " ")
    split("", notes)
    for (w = 1; w <= 3; w++) {
      split("", rps)
      for (s = 1; s <= 3; s++) {
        k = wl[w] SUBSEP sv[s]
        if (!n[k]) continue
        rps[s] = med("rps", k)
        err = 0; for (i = 1; i <= n[k]; i++) err += v["errors", k, i] + v["chain_failures", k, i]
        row[s] = sprintf("| %s | %s | %.0f | %.2f | %.2f | %d |", wl[w], (s == 3) ? "http floor (fixed answer)" : sv[s], rps[s], med("p50_ms", k), med("p99_ms", k), err)
      }
      for (s = 1; s <= 3; s++) {
        if (!(s in rps)) continue
        ratio = (s != 2 && rps[2] > 0) ? sprintf("%.1fx", rps[s] / rps[2]) : ""
        printf "%s %s |\n", row[s], ratio
      }
      if ((3 in rps) && rps[2] > 0)
        notes[w] = sprintf("%s: oauth-server reaches %.0f%% of the http floor; the floor is %.1fx the peer, the most any server on this stack could reach here; 15x the peer is %.0f%% of the floor.", wl[w], 100 * rps[1] / rps[3], rps[3] / rps[2], 100 * 15 * rps[2] / rps[3])
    }
    printf "\n"
    for (w = 1; w <= 3; w++) if (w in notes) print notes[w]
  }
AWK
