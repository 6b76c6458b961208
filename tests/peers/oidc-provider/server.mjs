// A certified OpenID provider (oidc-provider) standing in for Auth0, so toolgate's token
// verification is tested against an implementation we did not write.
//
// Usage: node server.mjs [PORT] [--exit-on-stdin-close]
//   PORT (or the PORT variable) defaults to 0, an ephemeral port.
//   The first line on stdout is {"issuer": "http://127.0.0.1:N", "port": N}; nothing else goes
//   to stdout, so a parent can read the line as a handshake.
//   --exit-on-stdin-close: a parent that dies without killing us closes our stdin, and we follow.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints notices with console.info; stdout is reserved for the handshake line.
console.info = console.error;
console.log = console.error;

const API = 'https://api.toolgate.test';
const API_SCOPE = 'tool:get_user_info tool:a tool:b';

const args = process.argv.slice(2);
const exitWithStdin = args.includes('--exit-on-stdin-close');
const portArg = args.find((a) => !a.startsWith('--')) ?? process.env.PORT ?? '0';
const requestedPort = Number.parseInt(portArg, 10);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  console.error(`not a port: ${portArg}`);
  process.exit(2);
}

// A fresh key per run: nothing secret is ever written to disk or committed.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `toolgate-test-${randomBytes(6).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

// The issuer names the port, so the port must be known before the provider exists.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(requestedPort, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'toolgate-test',
      client_secret: 'toolgate-test-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey] },
  // Only the token endpoint is used; random keys keep the cookie-signing warning away.
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Auth0 issues for its default API when no audience is asked for; mirror that.
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? API,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== API) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: API_SCOPE,
          audience: API,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Auth0 RBAC puts the granted permissions in a `permissions` array; toolgate checks that claim,
  // not `scope`.
  extraTokenClaims: async (_ctx, token) => ({
    permissions: (token.scope ?? '').split(' ').filter(Boolean),
  }),
});

server.on('request', provider.callback());

const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (exitWithStdin) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
