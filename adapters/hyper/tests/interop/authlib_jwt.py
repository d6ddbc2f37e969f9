"""Validates our RFC 9068 JWT access tokens as a resource server would, with authlib's validator.

Reads one JSON object on stdin: {"base", "resource", "tokens": {name: token}}. Finds the JWK Set
through the server's metadata (RFC 8414 `jwks_uri`), then gives each token to authlib's
`JWTBearerTokenValidator` (RFC 9068 §4) for the issuer `base` and the resource server `resource`,
and once more for another resource server. Prints one JSON object: per token, the claims authlib
accepted (or the error it raised), whether the other resource server was refused, and the
header. An unexpected failure is printed as {"fatal": ...} with a non-zero exit.
"""

import base64
import json
import sys
import traceback

import requests
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator

TIMEOUT = 15
OTHER = "https://other-resource.example/"


def header(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def main():
    given = json.load(sys.stdin)
    base = given["base"]
    metadata = requests.get(
        base + "/.well-known/oauth-authorization-server", timeout=TIMEOUT
    ).json()
    jwks = requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json()

    class Validator(JWTBearerTokenValidator):
        def get_jwks(self):
            return jwks

    def check(token, resource):
        v = Validator(issuer=metadata["issuer"], resource_server=resource)
        try:
            claims = v.authenticate_token(token)
            v.validate_token(claims, scopes=["mail"], request=None)
            return {"claims": dict(claims)}
        except InvalidTokenError as e:
            return {"error": type(e).__name__}
        except Exception as e:  # authlib raises its own errors for a token that is no JWT
            return {"error": type(e).__name__}

    out = {"jwks_uri": metadata["jwks_uri"], "kids": [k["kid"] for k in jwks["keys"]]}
    for name, token in given["tokens"].items():
        seen = check(token, given["resource"])
        seen["other_resource"] = check(token, OTHER)
        try:
            seen["header"] = header(token)
        except Exception:
            seen["header"] = None
        out[name] = seen
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except Exception:
        print(json.dumps({"fatal": traceback.format_exc()}))
        sys.exit(1)
