// Drives the running oauth-server with the MCP TypeScript SDK's client auth
// (`@modelcontextprotocol/sdk/client/auth.js`), the code MCP clients run to reach a protected MCP
// server: its `auth()` orchestration with an in-memory OAuthClientProvider does RFC 9728 discovery
// from the resource's URL, RFC 8414 discovery, dynamic registration (RFC 7591), authorization code
// + PKCE with the resource indicator (RFC 8707), and refresh.
//
// Reads one JSON object on stdin: {"resource", "redirect_uri", "username", "password"}, and
// optionally "client_metadata_url": the https URL of the client's metadata document
// (draft-ietf-oauth-client-id-metadata-document), which the SDK then uses as its client_id instead
// of registering when the server's metadata says it accepts one. The person's browser is plain fetch posting the sign-in and consent forms. Prints one JSON object of
// observations on stdout (every request the SDK made, the tokens it saved); the Rust test
// (tests/interop_mcp.rs) asserts them and introspects the tokens. An unexpected failure is printed
// as {"fatal": ...} with a non-zero exit.

import { auth } from "@modelcontextprotocol/sdk/client/auth.js";

const TIMEOUT_MS = 15000;

/** The SDK's requests, as the server received them. */
const requests = [];

/** The fetch the SDK is given: records each request, then sends it. */
async function recordingFetch(input, init = {}) {
  const url = input instanceof Request ? input.url : String(input);
  const method = init.method ?? (input instanceof Request ? input.method : "GET");
  const contentType = new Headers(init.headers).get("content-type");
  let body = null;
  if (typeof init.body === "string") {
    body = contentType?.includes("application/json")
      ? JSON.parse(init.body)
      : Object.fromEntries(new URLSearchParams(init.body));
  } else if (init.body instanceof URLSearchParams) {
    body = Object.fromEntries(init.body);
  }
  const response = await fetch(input, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
  requests.push({ method, url, body, status: response.status });
  return response;
}

/** An OAuthClientProvider that keeps everything in memory, as a command-line MCP client would. */
class MemoryProvider {
  constructor(redirectUri, clientMetadataUrl) {
    this.redirectUri = redirectUri;
    this.clientMetadataUrl = clientMetadataUrl;
    this.saved = {};
    this.authorizationUrls = [];
  }
  get redirectUrl() {
    return this.redirectUri;
  }
  get clientMetadata() {
    return {
      client_name: "MCP SDK interop",
      redirect_uris: [this.redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    return "mcp-state";
  }
  clientInformation() {
    return this.saved.client;
  }
  saveClientInformation(info) {
    this.saved.client = info;
  }
  tokens() {
    return this.saved.tokens;
  }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
  }
  redirectToAuthorization(url) {
    this.authorizationUrls.push(url);
  }
  saveCodeVerifier(verifier) {
    this.saved.verifier = verifier;
  }
  codeVerifier() {
    return this.saved.verifier;
  }
}

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

/** The person signs in and approves in a browser; returns the redirect the browser is sent to. */
async function signInAndApprove(authorizationUrl, cfg, out) {
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
  const action = new URL("/authorize", authorizationUrl);
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
  out.consent_shows_client = consentHtml.includes("MCP SDK interop");
  const answer = await fetch(
    action,
    form(
      {
        csrf: hidden(consentHtml, "csrf"),
        page: hidden(consentHtml, "page"),
        decision: "approve",
      },
      sessionCookie(consent),
    ),
  );
  out.approval_status = answer.status;
  const location = answer.headers.get("location");
  if (!location) throw new Error(`approval: HTTP ${answer.status}: ${await answer.text()}`);
  return new URL(location);
}

async function main() {
  const cfg = JSON.parse(await new Response(process.stdin).text());
  const out = {};
  const provider = new MemoryProvider(cfg.redirect_uri, cfg.client_metadata_url);
  const serverUrl = cfg.resource;

  // 1. No client, no tokens: discovery, registration (or the metadata URL as client_id), then the
  // redirect to sign in.
  out.first = await auth(provider, { serverUrl, fetchFn: recordingFetch });
  out.registered = provider.saved.client;
  const [authorizationUrl] = provider.authorizationUrls;
  out.authorization_url = authorizationUrl.href;

  // 2. The browser: sign in, approve, land on the redirect URI with the code.
  const callback = await signInAndApprove(authorizationUrl, cfg, out);
  out.callback = callback.href;
  if (callback.searchParams.get("state") !== "mcp-state") throw new Error(`state: ${callback}`);
  const code = callback.searchParams.get("code");
  if (!code) throw new Error(`no code in ${callback}`);

  // 3. The code exchange (the client comes back with the code).
  out.exchange = await auth(provider, { serverUrl, authorizationCode: code, fetchFn: recordingFetch });
  out.tokens = provider.saved.tokens;

  // 4. Later: the client holds a refresh token, so auth() refreshes.
  const before = requests.length;
  out.refresh = await auth(provider, { serverUrl, fetchFn: recordingFetch });
  out.refreshed = provider.saved.tokens;
  out.refresh_requests = requests.slice(before);
  out.requests = requests.slice(0, before);
  out.redirects_after_refresh = provider.authorizationUrls.length;

  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String(e), stack: e?.stack, requests }));
  process.exit(1);
});
