"""Drives the running oauth-server with authlib (and requests), a client library nobody here wrote.

Reads one JSON object on stdin: {"base", "username", "password", "redirect_uri", "service_id",
"service_secret"}. Walks discovery, dynamic registration of a public client (RFC 7591),
authorization code + PKCE through the real login and consent pages, refresh with rotation, client
credentials, the device flow (RFC 8628) approved through the device page, introspection (RFC 7662)
and revocation (RFC 7009). Prints one JSON object of observations on stdout; the Rust test
(tests/interop_authlib.rs) asserts them. An unexpected failure is printed as {"fatal": ...} with a
non-zero exit.
"""

import html.parser
import json
import sys
import traceback
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TIMEOUT = 15


class Form(html.parser.HTMLParser):
    """The inputs of the page's first form that has them, and its action."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.inputs = {}
        self.forms = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms += 1
            if self.action is None:
                self.action = a.get("action")
        elif tag == "input" and self.forms == 1 and a.get("name"):
            self.inputs[a["name"]] = a.get("value") or ""


def parse_form(page_url, text):
    f = Form()
    f.feed(text)
    return urljoin(page_url, f.action or ""), f.inputs


def error_of(fn):
    """Runs fn; returns the OAuth error code it raised, or None."""
    try:
        fn()
    except OAuthError as e:
        return e.error
    return None


def main():
    cfg = json.load(sys.stdin)
    base = cfg["base"]
    out = {}

    # Discovery (RFC 8414), validated by authlib's own metadata model.
    meta = requests.get(
        base + "/.well-known/oauth-authorization-server", timeout=TIMEOUT
    ).json()
    out["issuer"] = meta["issuer"]
    m = AuthorizationServerMetadata(meta)
    validated = []
    for name in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "scopes_supported",
        "response_types_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint",
        "introspection_endpoint",
        "code_challenge_methods_supported",
    ]:
        getattr(m, "validate_" + name)()
        validated.append(name)
    out["metadata_validated"] = validated
    out["device_authorization_endpoint"] = meta.get("device_authorization_endpoint")

    # Dynamic registration of a public (native) client (RFC 7591).
    reg = requests.post(
        meta["registration_endpoint"],
        json={
            "client_name": "authlib interop",
            "redirect_uris": [cfg["redirect_uri"]],
            "grant_types": ["authorization_code", "refresh_token", DEVICE_GRANT],
            "token_endpoint_auth_method": "none",
            "scope": "mail offline_access",
        },
        timeout=TIMEOUT,
    )
    out["register_status"] = reg.status_code
    client_id = reg.json()["client_id"]
    out["registered_has_secret"] = "client_secret" in reg.json()

    # Authorization code + PKCE. The person's browser is a plain requests session posting the
    # login and consent forms.
    client = OAuth2Session(
        client_id,
        redirect_uri=cfg["redirect_uri"],
        scope="mail offline_access",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(48)
    auth_url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier
    )
    out["auth_url_has_s256"] = "code_challenge_method=S256" in auth_url
    browser = requests.Session()
    page = browser.get(auth_url, timeout=TIMEOUT)
    action, fields = parse_form(page.url, page.text)
    fields.update(username=cfg["username"], password=cfg["password"])
    consent = browser.post(action, data=fields, timeout=TIMEOUT)
    action, fields = parse_form(consent.url, consent.text)
    out["consent_shows_client"] = "authlib interop" in consent.text
    fields["decision"] = "approve"
    answer = browser.post(action, data=fields, allow_redirects=False, timeout=TIMEOUT)
    location = answer.headers["location"]
    params = parse_qs(urlparse(location).query)
    out["redirect_status"] = answer.status_code
    out["redirect_to_registered_uri"] = location.startswith(cfg["redirect_uri"] + "?")
    out["redirect_state_matches"] = params.get("state") == [state]
    out["redirect_iss"] = params.get("iss", [None])[0]
    token = client.fetch_token(
        meta["token_endpoint"],
        authorization_response=location,
        state=state,
        code_verifier=verifier,
    )
    out["code_token_type"] = token.get("token_type")
    out["code_has_refresh"] = "refresh_token" in token
    out["code_scope"] = token.get("scope")
    first_refresh = token["refresh_token"]

    # Refresh, with rotation.
    refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=first_refresh)
    out["refresh_rotated"] = refreshed["refresh_token"] != first_refresh
    out["refresh_has_access"] = bool(refreshed.get("access_token"))

    # Client credentials for a confidential client (client_secret_basic).
    service = OAuth2Session(cfg["service_id"], cfg["service_secret"], scope="mail")
    cc = service.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    out["cc_token_type"] = cc.get("token_type")
    out["cc_has_refresh"] = "refresh_token" in cc
    out["cc_scope"] = cc.get("scope")
    wrong = OAuth2Session(cfg["service_id"], "wrong secret", scope="mail")
    out["cc_wrong_secret_error"] = error_of(
        lambda: wrong.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    )

    # Device flow: authorization, a poll while pending, approval through the device page (the
    # browser is still signed in), then the poll that gets the tokens.
    d = requests.post(
        meta["device_authorization_endpoint"],
        data={"client_id": client_id, "scope": "mail"},
        timeout=TIMEOUT,
    ).json()
    out["device_fields"] = sorted(d)
    device = OAuth2Session(client_id, token_endpoint_auth_method="none")

    def poll():
        return device.fetch_token(
            meta["token_endpoint"], grant_type=DEVICE_GRANT, device_code=d["device_code"]
        )

    out["device_pending_error"] = error_of(poll)
    page = browser.get(d["verification_uri_complete"], timeout=TIMEOUT)
    action, fields = parse_form(page.url, page.text)
    out["device_code_prefilled"] = fields.get("user_code") == d["user_code"]
    consent = browser.post(action, data=fields, timeout=TIMEOUT)
    out["device_consent_shows_code"] = d["user_code"] in consent.text
    action, fields = parse_form(consent.url, consent.text)
    fields["decision"] = "approve"
    done = browser.post(action, data=fields, timeout=TIMEOUT)
    out["device_page_says_return"] = "You may return to your device" in done.text
    device_token = poll()
    out["device_token_type"] = device_token.get("token_type")
    out["device_scope"] = device_token.get("scope")
    out["device_reuse_error"] = error_of(poll)

    # Introspection by the confidential client.
    def introspect(tok, hint=None):
        r = service.introspect_token(
            meta["introspection_endpoint"], token=tok, token_type_hint=hint
        )
        return r.json()

    info = introspect(refreshed["access_token"])
    out["introspect_active"] = info.get("active")
    out["introspect_sub"] = info.get("sub")
    out["introspect_client_id"] = info.get("client_id") == client_id
    out["introspect_scope"] = info.get("scope")
    out["introspect_device_sub"] = introspect(device_token["access_token"]).get("sub")
    out["introspect_cc_active"] = introspect(cc["access_token"]).get("active")
    out["introspect_garbage_active"] = introspect("not-a-token").get("active")

    # Revocation by the public client that holds the tokens (client_id in the body).
    r = client.revoke_token(
        meta["revocation_endpoint"],
        token=refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )
    out["revoke_status"] = r.status_code
    out["revoked_refresh_active"] = introspect(
        refreshed["refresh_token"], "refresh_token"
    ).get("active")
    out["refresh_after_revoke_error"] = error_of(
        lambda: client.refresh_token(
            meta["token_endpoint"], refresh_token=refreshed["refresh_token"]
        )
    )
    r = device.revoke_token(
        meta["revocation_endpoint"],
        token=device_token["access_token"],
        token_type_hint="access_token",
    )
    out["revoke_access_status"] = r.status_code
    out["revoked_access_active"] = introspect(device_token["access_token"]).get("active")
    # The first refresh token was rotated away: using it again is refused.
    out["old_refresh_error"] = error_of(
        lambda: client.refresh_token(meta["token_endpoint"], refresh_token=first_refresh)
    )
    # The code is single-use (checked last: a replayed code revokes what it issued).
    again = OAuth2Session(
        client_id, redirect_uri=cfg["redirect_uri"], token_endpoint_auth_method="none"
    )
    out["code_reuse_error"] = error_of(
        lambda: again.fetch_token(
            meta["token_endpoint"],
            authorization_response=location,
            state=state,
            code_verifier=verifier,
        )
    )

    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, then fail
        print(json.dumps({"fatal": repr(e), "trace": traceback.format_exc()}))
        sys.exit(1)
