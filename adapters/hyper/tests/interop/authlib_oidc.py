"""Signs in to the running oauth-server as an OpenID Connect relying party built from authlib.

authlib's own OpenID client code does the checking: `OpenIDProviderMetadata` validates the
discovery document, and `OpenIDMixin.parse_id_token` fetches `jwks_uri`, verifies the ID token's
signature with the algorithms discovery offers, and validates its claims (`CodeIDToken`: issuer,
audience, expiry, nonce, `azp`, `at_hash`). The relying party is authlib's framework-neutral
client (`OAuth2Mixin` + `OpenIDMixin` over its requests session), the same code its Flask,
Django and Starlette clients run.

Reads one JSON object on stdin: {"base", "username", "password", "redirect_uri", "phase",
"client_ids" (phase "second"), "old_id_tokens" (phase "second")}.
- phase "first": discovery, registration of three public clients (ES256 by default, RS256 and
  EdDSA by `id_token_signed_response_alg`), a sign-in through the pages with a nonce for each,
  userinfo, and a refresh returning a new ID token.
- phase "second" (after the test rotated the signing keys and restarted the server): the ID
  tokens of the first phase still verify against the new JWK Set, and a new sign-in is signed
  by the new key.
Prints one JSON object of observations; the Rust test (tests/interop_authlib_oidc.rs) asserts
them. An unexpected failure is printed as {"fatal": ...} with a non-zero exit.
"""

import html.parser
import json
import sys
import traceback
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from authlib.integrations.base_client.sync_app import BaseApp, OAuth2Mixin
from authlib.integrations.base_client.sync_openid import OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jws

TIMEOUT = 15
SCOPE = "openid email profile offline_access"


class RelyingParty(OAuth2Mixin, OpenIDMixin, BaseApp):
    """authlib's OpenID Connect client, without a web framework around it."""

    client_cls = OAuth2Session


class Script:
    """The web framework authlib's clients are written for: it would store a refreshed token in
    the user's session; this script keeps its tokens in variables."""

    @staticmethod
    def update_token(token, refresh_token=None, access_token=None):
        pass


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


def relying_party(cfg, client_id):
    return RelyingParty(
        framework=Script(),
        client_id=client_id,
        server_metadata_url=cfg["base"] + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "none",
        },
    )


def sign_in(cfg, rp, browser):
    """Authorization code + PKCE + nonce through the pages (sign-in when asked, consent when
    asked: a consent given before may be remembered); returns the token response, the nonce
    sent, and the authorization URL."""
    rv = rp.create_authorization_url(redirect_uri=cfg["redirect_uri"])
    response = browser.get(rv["url"], allow_redirects=False, timeout=TIMEOUT)
    for _ in range(4):
        location = response.headers.get("location", "")
        if response.is_redirect and location.startswith(cfg["redirect_uri"] + "?"):
            break
        if response.is_redirect:
            response = browser.get(
                urljoin(response.url, location), allow_redirects=False, timeout=TIMEOUT
            )
            continue
        action, fields = parse_form(response.url, response.text)
        if "password" in fields:
            fields.update(username=cfg["username"], password=cfg["password"])
        else:
            fields["decision"] = "approve"
        response = browser.post(action, data=fields, allow_redirects=False, timeout=TIMEOUT)
    else:
        raise RuntimeError(f"no redirect to the client: HTTP {response.status_code}")
    assert parse_qs(urlparse(location).query)["state"] == [rv["state"]]
    token = rp.fetch_access_token(
        redirect_uri=cfg["redirect_uri"],
        authorization_response=location,
        state=rv["state"],
        code_verifier=rv["code_verifier"],
    )
    return token, rv["nonce"], rv["url"]


def validate(cfg, rp, token, nonce, claims_cls=None):
    """authlib's ID token validation, with the audience checked too; the claims."""
    options = {
        "iss": {"essential": True, "values": [cfg["base"]]},
        "aud": {"essential": True, "values": [rp.client_id]},
    }
    return dict(rp.parse_id_token(token, nonce, claims_options=options, claims_cls=claims_cls))


def header(id_token):
    return jws.extract_compact(id_token.encode()).protected


def first(cfg):
    base = cfg["base"]
    out = {}
    meta = requests.get(base + "/.well-known/openid-configuration", timeout=TIMEOUT).json()
    m = OpenIDProviderMetadata(meta)
    # Every check of OpenID Connect Discovery but the issuer's https scheme (the test server
    # is plain http on loopback).
    checked = []
    for name in sorted(dir(m)):
        if name.startswith("validate_") and name != "validate_issuer":
            getattr(m, name)()
            checked.append(name)
    out["discovery_checks"] = len(checked)
    out["jwks_uri"] = meta.get("jwks_uri")

    browser = requests.Session()
    out["clients"] = {}
    for alg in ["default", "RS256", "EdDSA"]:
        body = {
            "client_name": f"authlib oidc {alg}",
            "redirect_uris": [cfg["redirect_uri"]],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": SCOPE,
        }
        if alg != "default":
            body["id_token_signed_response_alg"] = alg
        reg = requests.post(meta["registration_endpoint"], json=body, timeout=TIMEOUT)
        client_id = reg.json()["client_id"]
        rp = relying_party(cfg, client_id)
        token, nonce, url = sign_in(cfg, rp, browser)
        claims = validate(cfg, rp, token, nonce)
        seen = {
            "client_id": client_id,
            "auth_url_has_nonce": "nonce=" in url,
            "alg": header(token["id_token"])["alg"],
            "kid": header(token["id_token"])["kid"],
            "sub": claims["sub"],
            "nonce_matches": claims.get("nonce") == nonce,
            "azp": claims.get("azp") == client_id,
            "has_at_hash": "at_hash" in claims,
            "has_auth_time": isinstance(claims.get("auth_time"), int),
            "id_token": token["id_token"],
        }
        if alg == "default":
            info = rp.userinfo(token=token)
            seen["userinfo_sub"] = info.get("sub")
            seen["userinfo_email"] = info.get("email")
            # A refresh returns a new ID token: same subject and authentication time, no nonce
            # (authlib validates it with no expected nonce, and at_hash against the new token).
            with rp._get_oauth_client(**rp.load_server_metadata()) as session:
                refreshed = session.refresh_token(
                    meta["token_endpoint"], refresh_token=token["refresh_token"]
                )
            again = validate(cfg, rp, refreshed, None)
            seen["refresh_new_id_token"] = refreshed["id_token"] != token["id_token"]
            seen["refresh_sub"] = again["sub"]
            seen["refresh_same_auth_time"] = again.get("auth_time") == claims.get("auth_time")
            seen["refresh_has_nonce"] = "nonce" in again
            # A tampered nonce is caught by authlib: the server echoed the one sent.
            try:
                validate(cfg, rp, token, nonce + "x")
                seen["wrong_nonce_rejected"] = False
            except Exception:
                seen["wrong_nonce_rejected"] = True
        out["clients"][alg] = seen
    return out


def second(cfg):
    out = {}
    browser = requests.Session()
    # The first phase's ID tokens (signed by keys now rotated out) verify against the new set.
    still = {}
    for alg, (client_id, id_token) in cfg["old"].items():
        rp = relying_party(cfg, client_id)
        try:
            claims = validate(cfg, rp, {"id_token": id_token}, None, CodeIDToken)
            still[alg] = claims["sub"]
        except Exception as e:  # report which failed
            still[alg] = repr(e)
    out["old_tokens_verify"] = still
    client_id = cfg["old"]["default"][0]
    rp = relying_party(cfg, client_id)
    token, nonce, _ = sign_in(cfg, rp, browser)
    claims = validate(cfg, rp, token, nonce)
    out["new_kid"] = header(token["id_token"])["kid"]
    out["new_sub"] = claims["sub"]
    out["new_nonce_matches"] = claims.get("nonce") == nonce
    return out


def main():
    cfg = json.load(sys.stdin)
    out = first(cfg) if cfg["phase"] == "first" else second(cfg)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, then fail
        print(json.dumps({"fatal": repr(e), "trace": traceback.format_exc()}))
        sys.exit(1)
