# Helpers shared by the bench scripts (sourced, not run).

# Polls URL until it answers, up to WAIT_TRIES times 0.1 s (default 100); otherwise prints the
# server's LOG and exits.
wait_http() { # url log
  for _ in $(seq 1 "${WAIT_TRIES:-100}"); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "server at $1 did not come up:" >&2; cat "$2" >&2; exit 1
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
