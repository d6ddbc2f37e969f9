// Checks back-channel logout tokens as a relying party does (OpenID Connect Back-Channel Logout
// 1.0 §2.6), with panva's `jose`, the JOSE library under openid-client (pinned by this
// directory's package-lock.json), and nothing of the server's: the signature with the key the
// jwks_uri publishes, `typ` logout+jwt, `iss`, `aud`, `iat` recent, then the event, the absence
// of `nonce`, `sub` or `sid`. Reads {"jwks_uri", "issuer", "audience", "tokens": [...]} on stdin;
// prints one observation per token.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

let text = '';
for await (const chunk of process.stdin) text += chunk;
const input = JSON.parse(text);
const jwks = createRemoteJWKSet(new URL(input.jwks_uri));

const results = [];
for (const token of input.tokens) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: input.issuer,
      audience: input.audience,
      typ: 'logout+jwt',
      maxTokenAge: '2 minutes',
      requiredClaims: ['iat', 'exp', 'jti', 'events'],
    });
    const event = payload.events?.[EVENT];
    results.push({
      valid: true,
      alg: protectedHeader.alg,
      event: typeof event === 'object' && event !== null && !Array.isArray(event),
      nonce: 'nonce' in payload,
      sub: payload.sub ?? null,
      sid: payload.sid ?? null,
    });
  } catch (e) {
    results.push({ valid: false, error: e.code ?? String(e) });
  }
}
console.log(JSON.stringify(results));
