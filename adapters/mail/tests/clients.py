#!/usr/bin/env python3
"""Drives the auth-only listeners with Python's own imaplib and smtplib.

Usage: clients.py < cases.json   (written by tests/python_clients.rs)

Input: {"host": ..., "imap": port, "smtp": port, "cases": [case, ...]}, each case
{"name", "proto": "imap"|"smtp", "mech": "OAUTHBEARER"|"XOAUTH2", "user", "token", "mode"}:
  imap modes: "auth" (imaplib.authenticate), "cancel" (answer the first continuation with '*')
  smtp modes: "auth_ir" (smtplib auth with initial response), "auth_no_ir" (without),
              "docmd" (raw docmd('AUTH', 'OAUTHBEARER <b64>') then the dummy reply)
Output: one JSON object on stdout mapping case names to what the client library reported.
The libraries do the protocol work; this script only builds the SASL messages and records.
"""

import base64
import imaplib
import json
import smtplib
import sys
import time


def sasl_message(mech, user, token, host, port):
    if mech == "OAUTHBEARER":
        return f"n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def dummy(mech):
    return "\x01" if mech == "OAUTHBEARER" else ""


class Auth:
    """An authobject: the credentials on the first call, then the dummy reply to each challenge."""

    def __init__(self, mech, message, cancel=False):
        self.mech, self.message, self.cancel = mech, message, cancel
        self.calls = 0
        self.challenges = []

    def __call__(self, challenge=None):
        self.calls += 1
        if self.calls == 1:
            return None if self.cancel else self.message
        data = challenge if isinstance(challenge, bytes) else (challenge or b"")
        self.challenges.append(data.decode("utf-8", "replace"))
        return dummy(self.mech)


def imap_case(cfg, case):
    m = imaplib.IMAP4(cfg["host"], cfg["imap"], timeout=5)
    out = {"capabilities": list(m.capabilities)}
    msg = sasl_message(case["mech"], case["user"], case["token"], cfg["host"], cfg["imap"])
    auth = Auth(case["mech"], msg.encode(), cancel=case["mode"] == "cancel")
    try:
        typ, data = m.authenticate(case["mech"], auth)
        out.update(ok=True, typ=typ, text=data[-1].decode("utf-8", "replace"))
        out["after"] = m.noop()[0]
    except imaplib.IMAP4.error as e:
        out.update(ok=False, text=str(e))
    out["challenges"] = auth.challenges
    out["logout"] = m.logout()[0]
    return out


def smtp_case(cfg, case):
    s = smtplib.SMTP(cfg["host"], cfg["smtp"], timeout=5)
    ehlo_code, _ = s.ehlo()
    out = {"ehlo": ehlo_code, "auth_feature": s.esmtp_features.get("auth", "")}
    mech = case["mech"]
    msg = sasl_message(mech, case["user"], case["token"], cfg["host"], cfg["smtp"])
    challenges = []
    if case["mode"] == "docmd":
        code, resp = s.docmd("AUTH", mech + " " + base64.b64encode(msg.encode()).decode())
        if code == 334:
            challenges.append(base64.b64decode(resp).decode("utf-8", "replace"))
            code, resp = s.docmd(base64.b64encode(dummy(mech).encode()).decode())
        out.update(ok=code == 235, code=code, text=resp.decode("utf-8", "replace"))
    else:
        auth = Auth(mech, msg)
        try:
            code, resp = s.auth(mech, auth, initial_response_ok=case["mode"] == "auth_ir")
            out.update(ok=True, code=code, text=resp.decode("utf-8", "replace"))
        except smtplib.SMTPAuthenticationError as e:
            out.update(ok=False, code=e.smtp_code, text=e.smtp_error.decode("utf-8", "replace"))
        challenges = auth.challenges
    out["challenges"] = challenges
    out["mail"] = s.docmd("MAIL", "FROM:<a@example.com>")[0]
    out["quit"] = s.quit()[0]
    return out


def main():
    cfg = json.load(sys.stdin)
    results = {}
    for case in cfg["cases"]:
        run = imap_case if case["proto"] == "imap" else smtp_case
        start = time.monotonic()
        try:
            results[case["name"]] = run(cfg, case)
            results[case["name"]]["ms"] = round((time.monotonic() - start) * 1000)
        except Exception as e:  # reported to the Rust test, which fails on it
            results[case["name"]] = {"error": f"{type(e).__name__}: {e}"}
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
