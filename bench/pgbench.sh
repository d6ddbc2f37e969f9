#!/usr/bin/env bash
# Scale-out figures (issue 19): oauth-server nodes on one PostgreSQL, against PostgreSQL itself.
#
# Starts a throwaway cluster (initdb into a temporary directory, a unix socket only; as root the
# server runs as the `postgres` user), then measures, one after the other, at $CONNS connections
# for $DURATION each:
#   pgbench     PostgreSQL's own pgbench, one one-row UPDATE per transaction (pg/update.sql), the
#               physical reference; run before and after the loads, the ratio uses their mean
#   cc          client_credentials token requests            } with 1, 2 and 3 oauth-server nodes
#   introspect  introspection of an access token             } on the cluster's one database,
#   refresh     refresh-token rotation (load.lua's chains)   } and with one node on the file
#   register    dynamic registration of a confidential client} store, side by side
# With N nodes, N wrk processes run at once, one per node, the connections split between them (a
# load balancer in front would cost its own CPU on this machine); rps is their sum, p99 the worst
# of their p99s, errors their sum.
#
# Environment: DURATION (10s), CONNS (16), NODES ("1 2 3"), FILE_STORE (1: also the file store),
# LOADS ("cc introspect refresh register": which loads, in that order), COSTS (1: after each
# load, where the CPU went: the nodes' and PostgreSQL's CPU per request, WAL records and bytes
# per request, and the costliest statements by pg_stat_statements; 0 to skip), URL_EXTRA (appended
# to the nodes' database URL, e.g. "&options=-c%20plan_cache_mode%3Dforce_generic_plan"),
# METRICS (1: each node also serves /metrics, and after each load the script prints, per node,
# how many requests and store operations so far took over 0.5 s, from its histograms),
# AUTOGROUP (off: the run turns the kernel's session autogroups off and back on at the end, see
# below; keep: leaves them as they are), POOL (each node's connections to PostgreSQL at most,
# `[store] postgres_max_connections`; unset: the default, 16), PORT (18180: nodes on PORT, PORT+1, ...), SKIP_BUILD=1 to use an existing release binary,
# PERF_DIR (unset: none; else each load is recorded system-wide, `perf record -a $PERF_ARGS`,
# into PERF_DIR/LOAD-LABEL.data, for `perf report --sort comm,dso`; PERF_ARGS "--call-graph fp
# -F 499"; "--call-graph dwarf -F 499" shows the nodes' own frames, "-e raw_syscalls:sys_enter"
# counts system calls, for `perf report --sort comm`),
# BESIDE (1: pgbench runs again right after each refresh load on PostgreSQL, and the table gives
# refresh's ratio to that run too: on a shared machine the minutes between the first and the last
# pgbench can move it by a third; 0 to skip),
# CARGO_TARGET_DIR (default: the workspace's target/), PG_BIN (newest /usr/lib/postgresql/*/bin).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
ROOT="$(cd "$HERE/.." && pwd)"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-16}"
NODES="${NODES:-1 2 3}"
LOADS=" ${LOADS:-cc introspect refresh register} "
COSTS="${COSTS:-1}"
FILE_STORE="${FILE_STORE:-1}"
PORT="${PORT:-18180}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/oauth-server"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
WORK="$(mktemp -d)"
RESULTS="$WORK/results.txt"
PG_DIR="$(mktemp -d)" # its own: as root, the `postgres` user owns it and must reach it
NODE_PIDS=()

log() { echo "[pgbench] $*" >&2; }

# Runs a PostgreSQL program as the cluster's owner (`postgres` when this is root: the server
# refuses to run as root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then (cd "$PG_DIR" && runuser -u postgres -- "$@"); else "$@"; fi
}

stop_nodes() {
  local pid
  for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  NODE_PIDS=()
}

# The kernel's autogroup scheduling (kernel.sched_autogroup_enabled) shares the CPU between
# sessions before threads: every PostgreSQL backend starts a session of its own, while the nodes,
# wrk and pgbench's client share this script's. On two cores that left some backends runnable but
# unscheduled for 0.3 to 6 s at a time: the multi-node loads' second-long tails and wrk timeouts
# of earlier runs, with the nodes and PostgreSQL idle meanwhile. With autogroups off every thread
# is scheduled on its own, as the figures assume, and the tails are gone. Set back at the end.
AUTOGROUP_WAS=""
if [ "${AUTOGROUP:-off}" = off ] && [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
  if echo 0 2>/dev/null > /proc/sys/kernel/sched_autogroup_enabled; then
    AUTOGROUP_WAS=1
  else
    log "cannot turn kernel.sched_autogroup_enabled off (not root?): expect multi-node tails"
  fi
fi

cleanup() {
  if [ -n "$AUTOGROUP_WAS" ]; then echo "$AUTOGROUP_WAS" > /proc/sys/kernel/sched_autogroup_enabled; fi
  stop_nodes
  if [ -d "$PG_DIR/data" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK" "$PG_DIR"
}
trap cleanup EXIT

# --- what we need ---------------------------------------------------------------------------
[ -x "$PG_BIN/pgbench" ] && [ -x "$PG_BIN/initdb" ] || {
  echo "no PostgreSQL server binaries with pgbench in ${PG_BIN:-/usr/lib/postgresql/*/bin} (apt-get install postgresql)" >&2
  exit 1
}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building oauth-server (release)"
  (cd "$ROOT" && cargo build --release -p oauth-server --bin oauth-server >&2)
fi
[ -x "$BIN" ] || { echo "no $BIN (set CARGO_TARGET_DIR?)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update >&2 && apt-get install -y wrk >&2
fi
for tool in curl jq; do command -v "$tool" >/dev/null || { echo "need $tool" >&2; exit 1; }; done

# --- the cluster ----------------------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR"; fi
log "initdb in $PG_DIR ($("$PG_BIN/postgres" --version))"
as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U oauth --auth=trust --encoding=UTF8 --no-locale >/dev/null
# The server's durability defaults (fsync, synchronous_commit): the reference pays what the
# nodes pay. Room for three nodes' pools (16 each) and pgbench.
# pg_stat_statements (Debian's postgresql package ships it) only counts: its cost is a few
# microseconds per statement, paid by pgbench's statement too.
as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
  -o "-k $PG_DIR -c listen_addresses='' -p 5432 -c max_connections=200 -c shared_preload_libraries=pg_stat_statements" start >/dev/null
psql_run() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p 5432 -U oauth "$@"; }
psql_run -d postgres -c "CREATE DATABASE pgb" -c "CREATE DATABASE oauth" \
  -c "CREATE EXTENSION pg_stat_statements"
psql_run -d pgb -c "CREATE TABLE pgb (id int PRIMARY KEY, n bigint NOT NULL)" \
  -c "INSERT INTO pgb SELECT g, 0 FROM generate_series(1, 1000) g"
URL="postgresql://oauth@localhost/oauth?host=$PG_DIR&port=5432${URL_EXTRA:-}"
# The cluster's next transaction id: how many transactions that wrote (or locked rows) began so
# far, plus this one (read-only transactions take none).
xids() { psql_run -d postgres -At -c "SELECT pg_current_xact_id()"; }

# --- where the CPU goes (COSTS=1) ---------------------------------------------------------------
# CPU clock ticks of a process and its reaped children (a backend whose connection closed is
# counted in the postmaster's children).
ticks_of() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# PostgreSQL's CPU ticks so far: the postmaster (with its reaped children) and its live children.
pg_ticks() {
  local pm t=0 pid
  pm="$(head -1 "$PG_DIR/data/postmaster.pid")"
  t=$(ticks_of "$pm")
  for pid in $(pgrep -P "$pm"); do t=$((t + $(ticks_of "$pid"))); done
  echo "$t"
}
nodes_ticks() {
  local t=0 pid
  for pid in "${NODE_PIDS[@]}"; do t=$((t + $(ticks_of "$pid"))); done
  echo "$t"
}
wal() { psql_run -d postgres -At -F ' ' -c "SELECT wal_records, wal_bytes FROM pg_stat_wal"; }
costs_begin() {
  [ "$COSTS" = 1 ] || return 0
  psql_run -d postgres -At -c "SELECT pg_stat_statements_reset()" >/dev/null
  COST_PG="$(pg_ticks)" COST_NODES="$(nodes_ticks)" COST_WAL="$(wal)"
}
costs_end() { # label requests
  [ "$COSTS" = 1 ] || return 0
  local hz pg nodes w
  hz="$(getconf CLK_TCK)" pg="$(pg_ticks)" nodes="$(nodes_ticks)" w="$(wal)"
  [ "$2" -gt 0 ] || return 0
  awk -v l="$1" -v r="$2" -v hz="$hz" -v pg0="$COST_PG" -v pg1="$pg" -v n0="$COST_NODES" -v n1="$nodes" \
    -v w0="$COST_WAL" -v w1="$w" 'BEGIN {
      split(w0, a, " "); split(w1, b, " ")
      printf "[pgbench]   %s costs per request: nodes %.0f us CPU, PostgreSQL %.0f us CPU, %.1f WAL records, %.0f WAL bytes\n", \
        l, (n1 - n0) * 1e6 / hz / r, (pg1 - pg0) * 1e6 / hz / r, (b[1] - a[1]) / r, (b[2] - a[2]) / r }' >&2
  # The statements that took the most execution time, per request.
  psql_run -d postgres -At -F $'\t' -c "SELECT round(calls::numeric / $2, 2), round(mean_exec_time::numeric * 1000, 1),
      round(shared_blks_dirtied::numeric / greatest(calls, 1), 2), round(wal_records::numeric / greatest(calls, 1), 2),
      regexp_replace(left(query, 110), '\s+', ' ', 'g')
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 5" |
    awk -F '\t' '{printf "[pgbench]     %5s calls/req  %7s us mean  %5s pages dirtied  %5s WAL records  %s\n", $1, $2, $3, $4, $5}' >&2
}

# --- pgbench ------------------------------------------------------------------------------------
run_pgbench() { # name
  local secs="${DURATION%s}" out perf_pid=""
  rm -f "$WORK"/pgb_log*
  costs_begin
  if [ -n "${PERF_DIR:-}" ]; then
    mkdir -p "$PERF_DIR"
    # shellcheck disable=SC2086 # PERF_ARGS is several words
    perf record -a ${PERF_ARGS:---call-graph fp -F 499} -o "$PERF_DIR/$1.data" -- sleep "$secs" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  out="$(cd "$WORK" && "$PG_BIN/pgbench" -n -h "$PG_DIR" -p 5432 -U oauth -f "$HERE/pg/update.sql" \
    -c "$CONNS" -j 2 -T "$secs" -l --log-prefix=pgb_log pgb 2>&1)" || { echo "$out" >&2; exit 1; }
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
  local tps p99
  tps="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | head -1)"
  # Per-transaction log: client, transaction, latency in microseconds, ...
  p99="$(cat "$WORK"/pgb_log* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.3f", a[i]/1000}')"
  [ -n "$tps" ] || { echo "$out" >&2; echo "pgbench gave no tps" >&2; exit 1; }
  log "$1: tps=$tps p99_ms=$p99"
  costs_end "$1" "$(cat "$WORK"/pgb_log* | wc -l)"
  echo "$1 pgbench rps=$tps p99_ms=$p99 errors=0" >> "$RESULTS"
}

# --- the nodes ----------------------------------------------------------------------------------
VERIFIER="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
PUB_REDIRECT="http://127.0.0.1:4711/cb"
ADMIN_PASSWORD="bench admin password, long enough"
ISSUER="http://127.0.0.1:$PORT"
# Open confidential registration and quotas no load here reaches: every registration is a write.
cat > "$WORK/node.toml" <<EOF
confidential_registration = "open"
[throttle]
registrations_per_address = 1000000000
registrations_total = 1000000000
EOF
if [ "${METRICS:-0}" = 1 ]; then printf '[server]\nmetrics_listen = "127.0.0.1:0"\n' >> "$WORK/node.toml"; fi
if [ -n "${POOL:-}" ]; then printf '[store]\npostgres_max_connections = %s\n' "$POOL" >> "$WORK/node.toml"; fi

# With METRICS=1: per node, the requests and store operations that took over 0.5 s since the
# node started (its histograms' counts above the 0.5 s bucket).
slow_calls() {
  local i url
  for i in "${!NODE_PIDS[@]}"; do
    url="$(sed -n 's|^metrics listening on \(http://[^ ]*\)$|\1|p' "$WORK/node$i.log" | head -1)"
    [ -n "$url" ] || continue
    curl -sf "$url" | awk -v node="$i" '
      /_duration_seconds_bucket\{/ {
        split($1, parts, "{"); name = parts[1]; sub(/_bucket$/, "", name); labels = parts[2]; sub(/\}$/, "", labels)
        le = labels; sub(/.*le="/, "", le); sub(/".*/, "", le)
        key = labels; sub(/,?le="[^"]*"/, "", key)
        if (le == "0.5") at[name "{" key "}"] = $2
        if (le == "+Inf") total[name "{" key "}"] = $2
      }
      END { for (k in total) if (total[k] - at[k] > 0) printf "[pgbench]   node%s %s: %d over 0.5 s (of %d)\n", node, k, total[k] - at[k], total[k] }' >&2
  done
}

# Admin command on the store: `--postgres URL` or `--data DIR` in STORE_ARGS.
admin() { "$BIN" "$@" "${STORE_ARGS[@]}"; }

# Prepares a store (STORE_ARGS): the admin user and the two clients.
prepare_store() {
  if [ "${STORE_ARGS[0]:-}" = --postgres ]; then admin db migrate >/dev/null; fi
  echo "$ADMIN_PASSWORD" | admin user add admin --password-stdin >/dev/null
  local reg
  reg="$(admin client add --name "bench confidential" --grant-type client_credentials --scope mail)"
  AUTH="$(basic "$(jq -r .client_id <<<"$reg")" "$(jq -r .client_secret <<<"$reg")")"
  reg="$(admin client add --name "bench public" --public --redirect-uri "$PUB_REDIRECT" --scope "mail offline_access")"
  PUB_ID="$(jq -r .client_id <<<"$reg")"
}

start_nodes() { # count; STORE_ARGS; sets BASES
  local i port
  BASES=()
  for i in $(seq 0 $(($1 - 1))); do
    port=$((PORT + i))
    "$BIN" serve --config "$WORK/node.toml" --listen "127.0.0.1:$port" --issuer "$ISSUER" \
      "${STORE_ARGS[@]}" --data "$WORK/keys" > "$WORK/node$i.log" 2>&1 &
    NODE_PIDS+=($!)
    wait_http "http://127.0.0.1:$port/healthz" "$WORK/node$i.log"
    BASES+=("http://127.0.0.1:$port")
  done
}

hidden() { grep -o "name=\"$2\" value=\"[^\"]*\"" "$1" | head -1 | sed 's/.*value="//; s/"$//'; }
session() { grep -i '^set-cookie: oauth_session=' "$1" | head -1 | sed 's/^[^=]*=//; s/;.*//' | tr -d '\r'; }

# Appends COUNT new refresh tokens, each from a code flow through BASE's pages, to FILE.
make_chains() { # base count file
  local base="$1" i code cookie q h="$WORK/h.txt" b="$WORK/b.html"
  for i in $(seq 1 "$2"); do
    q="response_type=code&client_id=$PUB_ID&redirect_uri=$(jq -rn --arg u "$PUB_REDIRECT" '$u|@uri')&state=s$i&scope=mail+offline_access&code_challenge=$CHALLENGE&code_challenge_method=S256"
    curl -sf -D "$h" -o "$b" "$base/authorize?$q"
    cookie="$(session "$h")"
    curl -sf -D "$h" -o "$b" -b "oauth_session=$cookie" \
      --data-urlencode "csrf=$(hidden "$b" csrf)" --data-urlencode "page=$(hidden "$b" page)" \
      --data-urlencode "username=admin" --data-urlencode "password=$ADMIN_PASSWORD" "$base/authorize"
    # The consent page, unless the user's consent to this client is remembered (then the sign-in
    # answers with the redirect at once).
    if ! grep -qi '^location:.*[?&]code=' "$h"; then
      cookie="$(session "$h")"
      curl -s -D "$h" -o "$b" -b "oauth_session=$cookie" \
        --data-urlencode "csrf=$(hidden "$b" csrf)" --data-urlencode "page=$(hidden "$b" page)" \
        --data-urlencode "decision=approve" "$base/authorize"
    fi
    code="$(grep -i '^location:' "$h" | sed 's/.*[?&]code=\([^&]*\).*/\1/' | tr -d '\r' || true)"
    [ -n "$code" ] || { cat "$h" "$b" >&2; echo "no code" >&2; exit 1; }
    curl -sf -d "grant_type=authorization_code&code=$code&client_id=$PUB_ID&code_verifier=$VERIFIER" \
      --data-urlencode "redirect_uri=$PUB_REDIRECT" "$base/token" | jq -er .refresh_token >> "$3"
  done
}

# Runs one load on every node at once (one wrk each), sums the results. The wrk script's
# environment (BENCH_*) is set by the caller; for refresh, each node's chains are made first.
run_load() { # workload label script
  local n=${#BASES[@]} i pids=() conns=() threads=() per_thread=()
  rm -f "$WORK"/wrk*.out
  for i in $(seq 0 $((n - 1))); do
    conns[i]=$((CONNS / n + (i < CONNS % n ? 1 : 0)))
    threads[i]=1; if [ "$n" = 1 ] && [ "${conns[i]}" -ge 2 ]; then threads[i]=2; fi
    per_thread[i]=$((conns[i] / threads[i] + 1))
    if [ "$1" = refresh ]; then
      : > "$WORK/rt$i.txt"
      make_chains "${BASES[$i]}" $((threads[i] * per_thread[i])) "$WORK/rt$i.txt"
    fi
  done
  local xids_before
  xids_before="$(xids)"
  costs_begin
  local perf_pid=""
  if [ -n "${PERF_DIR:-}" ]; then
    mkdir -p "$PERF_DIR"
    # shellcheck disable=SC2086 # PERF_ARGS is several words
    perf record -a ${PERF_ARGS:---call-graph fp -F 499} -o "$PERF_DIR/$1-$2.data" -- sleep "${DURATION%s}" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  for i in $(seq 0 $((n - 1))); do
    BENCH_RT_FILE="$WORK/rt$i.txt" BENCH_CHAINS_PER_THREAD="${per_thread[i]}" \
      wrk -t"${threads[i]}" -c"${conns[i]}" -d"$DURATION" -s "$3" "${BASES[$i]}" > "$WORK/wrk$i.out" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || { cat "$WORK/wrk$i.out" >&2; exit 1; }; done
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
  local line sum
  sum="$(for i in $(seq 0 $((n - 1))); do
      line="$(grep '^RESULT' "$WORK/wrk$i.out" || true)"
      [ -n "$line" ] || { cat "$WORK/wrk$i.out" >&2; echo "wrk gave no result" >&2; exit 1; }
      echo "${line#RESULT }"
    done | tr '=' ' ' | awk '{rps += $2; if ($6 > p99) p99 = $6; n += $8; err += $10 + $12}
      END {printf "rps=%.1f p99_ms=%.3f errors=%d requests=%d", rps, p99, err, n}')"
  costs_end "$1 $2" "${sum##*requests=}"
  # PostgreSQL's writing transactions per request (the nodes' background work adds a few per
  # second; each xids call one).
  if [ "${STORE_ARGS[0]:-}" = --postgres ]; then
    sum="$sum writes_per_request=$(awk -v a="$xids_before" -v b="$(xids)" \
      -v r="${sum##*requests=}" 'BEGIN {printf "%.2f", (b - a - 1) / r}')"
  fi
  if [ "${METRICS:-0}" = 1 ]; then slow_calls; fi
  log "$1 $2: $sum (p99 per node: $(grep -h '^RESULT' "$WORK"/wrk*.out | sed 's/.*p99_ms=\([^ ]*\).*/\1/' | paste -sd/))"
  # What the errors were (wrk's own lines: socket errors by kind, non-2xx answers).
  if [[ "$sum" != *" errors=0 "* ]]; then
    grep -h -e 'Socket errors' -e 'Non-2xx' "$WORK"/wrk*.out | sed "s/^/[pgbench]   $1 $2: /" >&2 || true
  fi
  echo "$1 $2 $sum" >> "$RESULTS"
}

run_loads() { # label
  local at active
  at="$(curl -sf -H "Authorization: $AUTH" -d 'grant_type=client_credentials&scope=mail' "${BASES[0]}/token" | jq -er .access_token)"
  active="$(curl -sf -H "Authorization: $AUTH" --data-urlencode "token=$at" "${BASES[-1]}/introspect" | jq -r .active)"
  [ "$active" = true ] || { echo "$1: introspection of a fresh token is not active" >&2; exit 1; }
  if [[ "$LOADS" == *" cc "* ]]; then
    BENCH_MODE=fixed BENCH_PATH=/token BENCH_AUTH="$AUTH" \
      BENCH_BODY="grant_type=client_credentials&scope=mail" run_load cc "$1" "$HERE/load.lua"
  fi
  if [[ "$LOADS" == *" introspect "* ]]; then
    BENCH_MODE=fixed BENCH_PATH=/introspect BENCH_AUTH="$AUTH" \
      BENCH_BODY="token=$at" run_load introspect "$1" "$HERE/load.lua"
  fi
  if [[ "$LOADS" == *" refresh "* ]]; then
    BENCH_MODE=refresh BENCH_PATH=/token BENCH_AUTH="" BENCH_CLIENT_ID="$PUB_ID" \
      run_load refresh "$1" "$HERE/load.lua"
    if [ "${BESIDE:-1}" = 1 ] && [ "${STORE_ARGS[0]:-}" = --postgres ]; then
      run_pgbench "pgbench-beside-$1"
    fi
  fi
  if [[ "$LOADS" == *" register "* ]]; then run_load register "$1" "$HERE/pg/register.lua"; fi
}

log "$CONNS connections, $DURATION per load, one load at a time on $(nproc) cores (wrk, the nodes and PostgreSQL share them), autogroups $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null | sed 's/0/off/; s/1/on/')"
run_pgbench pgbench-before
for n in $NODES; do
  log "$n node(s) on PostgreSQL"
  psql_run -d postgres -c "DROP DATABASE oauth" -c "CREATE DATABASE oauth"
  rm -rf "$WORK/keys"
  STORE_ARGS=(--postgres "$URL")
  prepare_store
  start_nodes "$n"
  run_loads "postgres-$n"
  stop_nodes
done
if [ "$FILE_STORE" = 1 ]; then
  log "1 node on the file store"
  rm -rf "$WORK/keys"
  mkdir -p "$WORK/keys"
  STORE_ARGS=()
  # The file store is the data directory itself (--data, given by start_nodes and here).
  admin() { "$BIN" "$@" --data "$WORK/keys"; }
  prepare_store
  start_nodes 1
  run_loads file-1
  stop_nodes
fi
run_pgbench pgbench-after

# --- table --------------------------------------------------------------------------------------
echo
echo "Raw results:"
cat "$RESULTS"
echo
awk -f "$HERE/results.awk" -f - "$RESULTS" <<'AWK'
  END {
    pg = (med("rps", "pgbench-before" SUBSEP "pgbench") + med("rps", "pgbench-after" SUBSEP "pgbench")) / 2
    printf "pgbench (one-row UPDATE per transaction): %.0f tps before, %.0f after, p99 %.2f / %.2f ms; mean %.0f\n\n", \
      med("rps", "pgbench-before" SUBSEP "pgbench"), med("rps", "pgbench-after" SUBSEP "pgbench"), \
      med("p99_ms", "pgbench-before" SUBSEP "pgbench"), med("p99_ms", "pgbench-after" SUBSEP "pgbench"), pg
    printf "| workload | store, nodes | rps | p99 ms | errors | PostgreSQL writing transactions per request | rps / pgbench tps | rps / pgbench tps right after |\n"
    printf "|---|---|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= names; i++) {
      k = order[i]; split(k, w, SUBSEP)
      if (w[2] == "pgbench") continue
      c = (("writes_per_request", k, 1) in v) ? sprintf("%.2f", med("writes_per_request", k)) : ""
      b = "pgbench-beside-" w[2] SUBSEP "pgbench"
      beside = (w[1] == "refresh" && ("rps", b, 1) in v) ? sprintf("%.2f", med("rps", k) / med("rps", b)) : ""
      printf "| %s | %s | %.0f | %.2f | %d | %s | %.2f | %s |\n", w[1], w[2], med("rps", k), med("p99_ms", k), med("errors", k), c, med("rps", k) / pg, beside
    }
  }
AWK
