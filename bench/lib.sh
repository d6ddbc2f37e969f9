# Helpers shared by the bench scripts (sourced, not run).

# Polls URL until it answers, up to WAIT_TRIES times 0.1 s (default 100); otherwise prints the
# server's LOG and exits.
wait_http() { # url log
  for _ in $(seq 1 "${WAIT_TRIES:-100}"); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "server at $1 did not come up:" >&2; cat "$2" >&2; exit 1
}

# Starts `oauth-server serve --memory` from BIN on 127.0.0.1:PORT, with open confidential
# registration (every load here registers its client), its output in LOG and its settings in
# LOG.toml; sets SERVER_PID and waits until it answers. Further arguments are a command to run it
# under (valgrind).
serve_memory() { # log bin port [wrapper...]
  local log="$1" bin="$2" port="$3"
  shift 3
  printf 'confidential_registration = "open"\n' > "$log.toml"
  "$@" "$bin" serve --memory --config "$log.toml" --listen "127.0.0.1:$port" \
    --issuer "http://127.0.0.1:$port" > "$log" 2>&1 &
  SERVER_PID=$!
  wait_http "http://127.0.0.1:$port/healthz" "$log"
}

# Stops the server started last, if any.
stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

# An Authorization header value for client_secret_basic.
basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }

# Registers a confidential client_credentials client (scope `mail`) with the oauth-server at BASE
# and prints its Authorization header value.
cc_client_auth() { # base
  local reg
  reg="$(curl -sf -H 'content-type: application/json' -d '{"grant_types":["client_credentials"],
    "token_endpoint_auth_method":"client_secret_basic","scope":"mail",
    "redirect_uris":["https://client.example.com/cb"]}' "$1/register")"
  basic "$(jq -r .client_id <<<"$reg")" "$(jq -r .client_secret <<<"$reg")"
}
