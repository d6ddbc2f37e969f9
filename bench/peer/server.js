// node-oidc-provider configured for the same work as oauth-server in the load benchmark:
// a confidential client (client_secret_basic) allowed client_credentials, introspection, and a
// public client (token_endpoint_auth_method none) whose refresh tokens rotate on every use.
//
// Usage: node server.js PORT CHAINS OUTFILE
// Writes OUTFILE with one line per refresh chain: the initial refresh token, minted in-process
// through the provider's own models (Grant + RefreshToken) the same way its authorization_code
// grant would mint them, so that the load measures only the refresh_token grant.
import { writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';
import MemoryAdapter from './memory-adapter.js';

const port = Number(process.argv[2] || 3000);
const chains = Number(process.argv[3] || 16);
const outfile = process.argv[4] || 'peer-refresh-tokens.txt';
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench-confidential',
      client_secret: 'bench-confidential-secret-0123456789abcdef',
      grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
      response_types: ['code'],
      redirect_uris: ['https://client.example.com/cb'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'mail',
    },
    {
      client_id: 'bench-public',
      application_type: 'native',
      grant_types: ['refresh_token', 'authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:4711/cb'],
      token_endpoint_auth_method: 'none',
      scope: 'openid mail offline_access',
    },
  ],
  scopes: ['openid', 'offline_access', 'mail'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  adapter: MemoryAdapter,
  rotateRefreshToken: true,
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
});

const server = provider.listen(port, '127.0.0.1', async () => {
  const lines = [];
  for (let i = 0; i < chains; i += 1) {
    const grant = new provider.Grant({ accountId: 'admin', clientId: 'bench-public' });
    grant.addOIDCScope('offline_access mail');
    const grantId = await grant.save();
    const client = await provider.Client.find('bench-public');
    const rt = new provider.RefreshToken({
      client,
      accountId: 'admin',
      grantId,
      gty: 'authorization_code',
      scope: 'offline_access mail',
    });
    lines.push(await rt.save());
  }
  writeFileSync(outfile, `${lines.join('\n')}\n`);
  console.log(`peer listening on ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
