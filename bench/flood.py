#!/usr/bin/env python3
"""Abuse floods against a running oauth-server, as an attacker would send them.

Each flood sends N attempts (10,000 by default) from the attacker's address, 127.0.0.2, while the
user, on 127.0.0.1, does the real thing every STRIDE attempts. It prints, per flood, the growth
of the data directory and of the server's RSS per 10,000 attempts, what the attacker got, and the
user's success rate during the flood:

- registration: anonymous RFC 7591 registrations of public clients, alternating the reported
  60 KB body (25 client_name language variants of 2 KB) and the largest registration the server
  keeps (about 7.8 KB of metadata); the user registers a small client;
- pages: anonymous GET /authorize, no cookie (a new session each), alternating a 15 KB state
  and a 1,000-byte one (under the 1,024-byte bound); the user opens the page;
- sign-in: wrong passwords for the user's account; the user signs in with the right one;
- sasl: junk XOAUTH2 logins over IMAP claiming the user's name; the user logs in with a valid
  token.

Usage: flood.py BIN [N] [STRIDE]. It starts BIN (oauth-server) itself with the file store in a
temporary directory, with its IMAP listener on loopback, and stops it at the end. Only the
standard library is used; the traffic never leaves 127.0.0.0/8, and every loop is bounded.
"""

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

ATTACKER = "127.0.0.2"
USER_ADDR = "127.0.0.1"
USER = "alice"
PASSWORD = "alice's long flood password"
REDIRECT = "http://127.0.0.1:4711/cb"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """One keep-alive connection from a chosen source address, reopened when the server closes."""

    def __init__(self, port, source):
        self.port, self.source, self.conn = port, source, None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=60, source_address=(self.source, 0))
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    return 0, {}, b""
        return 0, {}, b""


def form(fields):
    return urllib.parse.urlencode(fields)


FORM = {"content-type": "application/x-www-form-urlencoded"}


def hidden(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % name, page)
    return m.group(1) if m else ""


def cookie_of(headers):
    m = re.search(r"oauth_session=([^;]+)", headers.get("set-cookie", ""))
    return m.group(1) if m else None


class Server:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="oauth-flood-")
        self.data = os.path.join(self.dir, "data")
        self.port, self.imap = free_port(), free_port()
        self.issuer = "http://127.0.0.1:%d" % self.port
        subprocess.run([binary, "user", "add", USER, "--password-stdin", "--data", self.data],
                       input=PASSWORD.encode(), check=True, stdout=subprocess.DEVNULL)
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", self.data, "--listen", "127.0.0.1:%d" % self.port,
             "--issuer", self.issuer, "--imap-listen", "127.0.0.1:%d" % self.imap],
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                if Http(self.port, USER_ADDR).request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not start; see %s" % self.dir)

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def disk(self):
        total = 0
        for root, _, files in os.walk(self.data):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(root, name))
                except OSError:
                    pass
        return total

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def register(h, body):
    return h.request("POST", "/register", json.dumps(body), {"content-type": "application/json"})


def native_client(server):
    status, _, data = register(Http(server.port, USER_ADDR), {
        "client_name": "Flood test mail app", "token_endpoint_auth_method": "none",
        "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
        "scope": "mail offline_access"})
    assert status == 201, data
    return json.loads(data)["client_id"]


def authorize_path(client_id, state, challenge):
    return "/authorize?" + form({
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "scope": "mail offline_access", "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256"})


def pkce():
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_in(h, client_id, password, challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"):
    """Opens the page and posts a password; returns (status, body, cookie)."""
    status, headers, data = h.request("GET", authorize_path(client_id, "st", challenge))
    if status != 200:
        return status, data.decode(errors="replace"), None
    page, cookie = data.decode(), cookie_of(headers)
    status, headers, data = h.request(
        "POST", "/authorize",
        form({"csrf": hidden(page, "csrf"), "page": hidden(page, "page"),
              "username": USER, "password": password}),
        dict(FORM, cookie="oauth_session=%s" % cookie))
    return status, data.decode(errors="replace"), cookie_of(headers) or cookie


def user_token(server, client_id):
    """A mail token for the user, through the code flow with PKCE."""
    h = Http(server.port, USER_ADDR)
    verifier, challenge = pkce()
    status, page, cookie = sign_in(h, client_id, PASSWORD, challenge)
    assert status == 200 and 'name="decision"' in page, page[:500]
    status, headers, _ = h.request(
        "POST", "/authorize",
        form({"csrf": hidden(page, "csrf"), "page": hidden(page, "page"), "decision": "approve"}),
        dict(FORM, cookie="oauth_session=%s" % cookie))
    code = urllib.parse.parse_qs(urllib.parse.urlparse(headers["location"]).query)["code"][0]
    status, _, data = h.request("POST", "/token", form({
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": client_id, "code_verifier": verifier}), FORM)
    assert status == 200, data
    return json.loads(data)["access_token"]


def imap_login(port, source, user, token, tries=1):
    """XOAUTH2 logins on one connection; returns how many were answered OK."""
    payload = base64.b64encode(
        ("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()).decode()
    ok = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30,
                                      source_address=(source, 0)) as s:
            f = s.makefile("rwb")
            if not f.readline().startswith(b"* OK"):
                return 0
            for i in range(tries):
                f.write(b"a%d AUTHENTICATE XOAUTH2 %s\r\n" % (i, payload.encode()))
                f.flush()
                while True:
                    line = f.readline()
                    if not line:
                        return ok
                    if line.startswith(b"+"):
                        f.write(b"\r\n")
                        f.flush()
                        continue
                    if line.startswith(b"a%d " % i):
                        ok += line.split()[1] == b"OK"
                        break
                if ok:
                    return ok
    except OSError:
        pass
    return ok


def run_flood(name, server, n, stride, attack, user_try):
    disk0, rss0 = server.disk(), server.rss()
    answers, user_ok, user_tries = {}, 0, 0
    started = time.time()
    for i in range(n):
        status = attack(i)
        answers[status] = answers.get(status, 0) + 1
        if i % stride == stride - 1:
            user_tries += 1
            user_ok += bool(user_try(i))
    elapsed = time.time() - started
    time.sleep(1.5)  # the file store's group commit and the log's flush
    scale = 10000.0 / n
    result = {
        "flood": name, "attempts": n, "seconds": round(elapsed, 1),
        "disk_growth_per_10k_bytes": int((server.disk() - disk0) * scale),
        "rss_growth_per_10k_bytes": int((server.rss() - rss0) * scale),
        "attacker_answers": {str(k): v for k, v in sorted(answers.items())},
        "user_success": "%d/%d" % (user_ok, user_tries),
    }
    print(json.dumps(result), flush=True)
    return result


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    stride = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    only = os.environ.get("FLOODS", "registration,pages,sign-in,sasl").split(",")

    base = {"token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1/cb"]}
    reported = dict(base, **{"client_name#l%d" % i: "x" * 2048 for i in range(25)})
    largest = dict(base, client_name="y" * 1900,
                   **{"client_name#l%d" % i: "y" * 1900 for i in range(3)})
    bodies = [json.dumps(reported), json.dumps(largest)]

    floods = {}

    def registration(server):
        attacker, user = Http(server.port, ATTACKER), Http(server.port, USER_ADDR)
        return ("registration",
                lambda i: attacker.request("POST", "/register", bodies[i % 2],
                                           {"content-type": "application/json"})[0],
                lambda i: register(user, {"token_endpoint_auth_method": "none",
                                           "redirect_uris": [REDIRECT],
                                           "client_name": "user app %d" % i})[0] == 201)
    floods["registration"] = registration

    def pages(server):
        client_id = native_client(server)
        attacker, user = Http(server.port, ATTACKER), Http(server.port, USER_ADDR)
        states = ["s" * 15000, "s" * 1000]
        challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        return ("pages",
                lambda i: attacker.request("GET", authorize_path(client_id, states[i % 2],
                                                                 challenge))[0],
                lambda i: user.request("GET", authorize_path(client_id, "st",
                                                             challenge))[0] == 200)
    floods["pages"] = pages

    def signin(server):
        client_id = native_client(server)
        attacker, user = Http(server.port, ATTACKER), Http(server.port, USER_ADDR)
        return ("sign-in",
                lambda i: sign_in(attacker, client_id, "guess %d" % i)[0],
                lambda i: 'name="decision"' in sign_in(user, client_id, PASSWORD)[1])
    floods["sign-in"] = signin

    def sasl(server):
        token = user_token(server, native_client(server))
        junk = "A" * 300
        return ("sasl",
                lambda i: 200 if imap_login(server.imap, ATTACKER, USER, junk) else 401,
                lambda i: imap_login(server.imap, USER_ADDR, USER, token) == 1)
    floods["sasl"] = sasl

    for name in only:
        server = Server(binary)
        try:
            label, attack, user_try = floods[name](server)
            run_flood(label, server, n, stride, attack, user_try)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
