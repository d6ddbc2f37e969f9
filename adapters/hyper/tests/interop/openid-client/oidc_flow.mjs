// Signs in to the running oauth-server with node's openid-client (v6, over oauth4webapi) in
// OpenID Connect mode: discovery, the authorization code flow with PKCE, state and nonce,
// `authorizationCodeGrant` expecting an ID token, which openid-client validates (issuer,
// audience, expiry, issue time, nonce, `azp`, and with `enableNonRepudiationChecks` its signature
// from `jwks_uri`, in the algorithm the client registered), then userinfo with the expected
// subject, a refresh whose new ID token it validates the same way, and RP-initiated logout: the
// browser follows `buildEndSessionUrl` (the refreshed ID token as hint, a registered
// `post_logout_redirect_uri`, a state), confirms on the server's page, and is sent back with the
// state; its old session no longer signs in.
//
// Then silent authentication (OIDC Core §3.1.2.1 `prompt=none`) with two clients the
// administrator added (`silent_clients`): after one interactive sign-in to the first, the browser
// asks again with `prompt=none` and is sent straight back with a code, whose ID token
// openid-client validates (same subject, same `auth_time`, the new nonce); the second client,
// never approved, gets `consent_required`, and a browser without a session `login_required`, both
// as authorization error responses that openid-client raises.
//
// Reads one JSON object on stdin: {"issuer", "redirect_uri", "username", "password", "algs",
// "silent_clients"}: for each algorithm (null: the server's default) a public client registers
// itself (RFC 7591, with `id_token_signed_response_alg`) and signs in. The person's browser is plain fetch
// posting the sign-in and consent forms. Prints one JSON object of observations on stdout; the
// Rust test (tests/interop_openid_client.rs) asserts them. An unexpected failure is printed as
// {"fatal": ...} with a non-zero exit.

import * as client from "openid-client";

const TIMEOUT_MS = 15000;
const SCOPE = "openid email profile offline_access";

/** The value of a hidden form field of the server's page (the pages write them one way). */
function hidden(html, name) {
  const marker = `name="${name}" value="`;
  const start = html.indexOf(marker);
  if (start < 0) throw new Error(`no ${name} field in the page: ${html}`);
  const from = start + marker.length;
  return html.slice(from, html.indexOf('"', from));
}

/** The `oauth_session` cookie a response sets. */
function sessionCookie(response) {
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith("oauth_session="));
  if (!cookie) throw new Error(`no session cookie (HTTP ${response.status})`);
  return cookie.split(";")[0];
}

/** The hidden fields of a page's form, unescaped. */
function hiddenFields(html) {
  const fields = {};
  const unescape = (v) =>
    v.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&");
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[unescape(m[1])] = unescape(m[2]);
  }
  return fields;
}

/** The person signs in and approves in a browser; returns the URL the browser is sent back to
 * and the signed-in session's cookie. */
async function signInAndApprove(authorizationUrl, cfg) {
  const opts = { redirect: "manual", signal: AbortSignal.timeout(TIMEOUT_MS) };
  const page = await fetch(authorizationUrl, opts);
  const pageHtml = await page.text();
  if (page.status !== 200) throw new Error(`authorization page: HTTP ${page.status}: ${pageHtml}`);
  const form = (fields, cookie) => ({
    ...opts,
    method: "POST",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
  });
  const action = new URL(authorizationUrl.pathname, authorizationUrl);
  const consent = await fetch(
    action,
    form(
      {
        csrf: hidden(pageHtml, "csrf"),
        page: hidden(pageHtml, "page"),
        username: cfg.username,
        password: cfg.password,
      },
      sessionCookie(page),
    ),
  );
  const consentHtml = await consent.text();
  if (consent.status !== 200) throw new Error(`sign-in: HTTP ${consent.status}: ${consentHtml}`);
  const answer = await fetch(
    action,
    form(
      { csrf: hidden(consentHtml, "csrf"), page: hidden(consentHtml, "page"), decision: "approve" },
      sessionCookie(consent),
    ),
  );
  const location = answer.headers.get("location");
  if (!location) throw new Error(`approval: HTTP ${answer.status}: ${await answer.text()}`);
  return { callback: new URL(location), cookie: sessionCookie(consent) };
}

/** The person's browser, still signed in with `cookie`, follows the relying party's logout link
 * and confirms; what it saw. */
async function logOut(logoutUrl, cookie, authorizationUrl) {
  const opts = { redirect: "manual", signal: AbortSignal.timeout(TIMEOUT_MS) };
  const page = await fetch(logoutUrl, { ...opts, headers: { cookie } });
  const html = await page.text();
  const seen = { confirm_status: page.status, confirm_asks: html.includes("Sign out?") };
  const done = await fetch(new URL(logoutUrl.pathname, logoutUrl), {
    ...opts,
    method: "POST",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(hiddenFields(html)),
  });
  seen.done_status = done.status;
  seen.done_location = done.headers.get("location");
  // The old session cookie: the authorization page asks for a password again.
  const again = await fetch(authorizationUrl, { ...opts, headers: { cookie } });
  seen.signed_out = (await again.text()).includes('name="password"');
  return seen;
}

/** Registers a public client at the server's registration endpoint; its client_id. */
async function register(cfg, alg) {
  const meta = await (await fetch(new URL(".well-known/openid-configuration", cfg.issuer + "/"))).json();
  const body = {
    client_name: `openid-client ${alg ?? "default"}`,
    redirect_uris: [cfg.redirect_uri],
    post_logout_redirect_uris: [new URL("signed-out", cfg.redirect_uri).href],
    grant_types: ["authorization_code", "refresh_token"],
    token_endpoint_auth_method: "none",
    scope: SCOPE,
  };
  if (alg) body.id_token_signed_response_alg = alg;
  const r = await fetch(meta.registration_endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  if (r.status !== 201) throw new Error(`registration: HTTP ${r.status}: ${await r.text()}`);
  return (await r.json()).client_id;
}

/** One relying party: register, sign in, userinfo, refresh. */
async function relyingParty(cfg, alg) {
  const client_id = await register(cfg, alg);
  const metadata = alg ? { id_token_signed_response_alg: alg } : undefined;
  const config = await client.discovery(new URL(cfg.issuer), client_id, metadata, client.None(), {
    // The test server is plain http on loopback; the ID token's signature is checked from
    // jwks_uri, not taken on trust from the connection.
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: cfg.redirect_uri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    nonce,
    state,
  });
  const { callback, cookie } = await signInAndApprove(url, cfg);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const header = JSON.parse(Buffer.from(tokens.id_token.split(".")[0], "base64url").toString());
  const seen = {
    alg: header.alg,
    kid: header.kid,
    sub: claims.sub,
    aud: claims.aud,
    nonce_matches: claims.nonce === nonce,
    has_at_hash: typeof claims.at_hash === "string",
    auth_time: claims.auth_time,
  };
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  seen.userinfo_sub = info.sub;
  seen.userinfo_email = info.email ?? null;
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const again = refreshed.claims();
  seen.refresh_has_id_token = typeof refreshed.id_token === "string";
  seen.refresh_new_id_token = refreshed.id_token !== tokens.id_token;
  seen.refresh_sub = again?.sub ?? null;
  seen.refresh_same_auth_time = again?.auth_time === claims.auth_time;
  seen.refresh_has_nonce = again ? "nonce" in again : null;
  const logoutUrl = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token,
    post_logout_redirect_uri: new URL("signed-out", cfg.redirect_uri).href,
    state: "bye",
  });
  seen.logout = await logOut(logoutUrl, cookie, url);
  return seen;
}

/** The browser (with `cookie`, or none) follows an authorization URL that must not show a page;
 * the callback URL it is sent to. */
async function silentCallback(url, cookie) {
  const headers = cookie ? { cookie } : {};
  const r = await fetch(url, { redirect: "manual", headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  const location = r.headers.get("location");
  if (!location) throw new Error(`prompt=none showed a page: HTTP ${r.status}: ${await r.text()}`);
  return { status: r.status, callback: new URL(location) };
}

/** openid-client's code exchange for a callback that carries an error; the error it raised. */
async function expectAuthorizationError(config, callback, verifier, state) {
  try {
    await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      idTokenExpected: true,
    });
    return null;
  } catch (e) {
    return { name: e.name, error: e.error ?? e.cause?.error ?? null };
  }
}

/** Silent authentication with administrator-added clients (`ids`: the first one is approved
 * interactively, the second never). */
async function silent(cfg, ids) {
  const configFor = (id) =>
    client.discovery(new URL(cfg.issuer), id, undefined, client.None(), {
      execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    });
  const [approved, other] = [await configFor(ids[0]), await configFor(ids[1])];
  const request = async (config, prompt) => {
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const state = client.randomState();
    const params = {
      redirect_uri: cfg.redirect_uri,
      scope: "openid email",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      nonce,
      state,
    };
    if (prompt) params.prompt = prompt;
    return { url: client.buildAuthorizationUrl(config, params), verifier, nonce, state };
  };
  const first = await request(approved);
  const { callback, cookie } = await signInAndApprove(first.url, cfg);
  const tokens = await client.authorizationCodeGrant(approved, callback, {
    pkceCodeVerifier: first.verifier,
    expectedNonce: first.nonce,
    expectedState: first.state,
    idTokenExpected: true,
  });
  const seen = { first_auth_time: tokens.claims().auth_time };

  // Signed in and approved: straight back with a code.
  const again = await request(approved, "none");
  const back = await silentCallback(again.url, cookie);
  const silentTokens = await client.authorizationCodeGrant(approved, back.callback, {
    pkceCodeVerifier: again.verifier,
    expectedNonce: again.nonce,
    expectedState: again.state,
    idTokenExpected: true,
  });
  const claims = silentTokens.claims();
  seen.session = {
    status: back.status,
    sub: claims.sub,
    nonce_matches: claims.nonce === again.nonce,
    auth_time: claims.auth_time,
  };

  // Signed in, never approved for this client.
  const consent = await request(other, "none");
  const refused = await silentCallback(consent.url, cookie);
  seen.no_consent = await expectAuthorizationError(other, refused.callback, consent.verifier, consent.state);

  // No session at all.
  const anonymous = await request(approved, "none");
  const out = await silentCallback(anonymous.url, null);
  seen.no_session = await expectAuthorizationError(approved, out.callback, anonymous.verifier, anonymous.state);
  return seen;
}

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const cfg = JSON.parse(input);
  const out = { clients: {} };
  for (const alg of cfg.algs) {
    out.clients[alg ?? "default"] = await relyingParty(cfg, alg);
  }
  out.silent = await silent(cfg, cfg.silent_clients);
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.log(JSON.stringify({ fatal: String(e), cause: String(e?.cause ?? ""), stack: e?.stack }));
  process.exit(1);
});
