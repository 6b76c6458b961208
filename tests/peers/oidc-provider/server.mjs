// A certified OpenID provider (oidc-provider) standing in for Auth0, so toolgate's token
// verification and its authorization server are tested against an implementation we did not write.
//
// Usage: node server.mjs [PORT] [--exit-on-stdin-close] [--upstream-callback URL]
//                        [--access-token-ttl SECONDS] [--tls-cert FILE --tls-key FILE]
//   PORT (or the PORT variable) defaults to 0, an ephemeral port.
//   The first line on stdout is {"issuer": "http://127.0.0.1:N", "port": N, ...}; nothing else
//   goes to stdout, so a parent can read the line as a handshake.
//   --exit-on-stdin-close: a parent that dies without killing us closes our stdin, and we follow.
//   --upstream-callback URL: also act as the upstream "Auth0" of a toolgate authorization server
//     whose /auth/callback is URL: a confidential client for it (authorization code with PKCE,
//     refresh tokens), a login and consent page (devInteractions: any login name, any password),
//     ID tokens with profile and email claims. The client's secret comes from the environment
//     variable UPSTREAM_CLIENT_SECRET; the handshake names the client's id.
//   --access-token-ttl SECONDS: lifetime of the API's access tokens (default one hour), so a
//     test can watch them expire and be refreshed.
//   --tls-cert FILE --tls-key FILE: serve HTTPS with this PEM certificate chain and key, at
//     https://localhost:N (the name the test CA's certificates are made for), as Auth0 is
//     https-only.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints notices with console.info; stdout is reserved for the handshake line.
console.info = console.error;
console.log = console.error;

const API = 'https://api.toolgate.test';
// The permissions of the tests' own tools and of the example server's.
const API_SCOPE = 'tool:get_user_info tool:read_audit_log tool:admin tool:a tool:b';

let exitWithStdin = false;
let upstreamCallback;
let accessTokenTtl = 3600;
let tlsCert;
let tlsKey;
let portArg = process.env.PORT ?? '0';
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i += 1) {
  const value = () => {
    i += 1;
    if (args[i] === undefined) {
      console.error(`${args[i - 1]} needs a value`);
      process.exit(2);
    }
    return args[i];
  };
  switch (args[i]) {
    case '--exit-on-stdin-close':
      exitWithStdin = true;
      break;
    case '--upstream-callback':
      upstreamCallback = value();
      break;
    case '--tls-cert':
      tlsCert = value();
      break;
    case '--tls-key':
      tlsKey = value();
      break;
    case '--access-token-ttl': {
      const raw = value();
      accessTokenTtl = Number.parseInt(raw, 10);
      if (!/^[0-9]+$/.test(raw) || accessTokenTtl < 1) {
        console.error(`--access-token-ttl: not a number of seconds: ${raw}`);
        process.exit(2);
      }
      break;
    }
    default:
      if (args[i].startsWith('--')) {
        console.error(`unknown option ${args[i]}`);
        process.exit(2);
      }
      portArg = args[i];
  }
}
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
if ((tlsCert === undefined) !== (tlsKey === undefined)) {
  console.error('--tls-cert and --tls-key go together');
  process.exit(2);
}
const server = tlsCert
  ? createTlsServer({ cert: readFileSync(tlsCert), key: readFileSync(tlsKey) })
  : createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(requestedPort, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = tlsCert ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;

const clients = [
  {
    client_id: 'toolgate-test',
    client_secret: 'toolgate-test-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];
// toolgate's authorization server signs in here as Auth0's Regular Web Application does: a
// confidential client posting its secret, with our callback as its one redirect URI.
const upstreamClientId = 'toolgate-upstream';
if (upstreamCallback) {
  const secret = process.env.UPSTREAM_CLIENT_SECRET ?? '';
  if (secret.length < 16) {
    console.error('--upstream-callback needs UPSTREAM_CLIENT_SECRET (at least 16 characters) in the environment');
    process.exit(2);
  }
  clients.push({
    client_id: upstreamClientId,
    client_secret: secret,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [upstreamCallback],
    token_endpoint_auth_method: 'client_secret_post',
  });
}

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingKey] },
  // Random keys keep the cookie-signing warning away; the interaction cookies use them.
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'nickname'],
  },
  // Any login name is an account; its profile is made from the name.
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({
      sub,
      email: `${sub}@example.com`,
      email_verified: true,
      name: `${sub[0]?.toUpperCase() ?? ''}${sub.slice(1)} Example`,
      nickname: sub,
    }),
  }),
  features: {
    // The built-in login and consent pages: enough for a scripted browser, never for production.
    devInteractions: { enabled: Boolean(upstreamCallback) },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Auth0 issues for its default API when no audience is asked for; mirror that.
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? API,
      // Auth0 decides the token's audience at /authorize (its `audience` parameter) and never
      // asks for it again at the token endpoint; without this the code exchange would yield an
      // opaque token for userinfo instead of the API's JWT.
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== API) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: API_SCOPE,
          audience: API,
          accessTokenFormat: 'jwt',
          accessTokenTTL: accessTokenTtl,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Auth0's revocation path, where toolgate sends the refresh tokens of revoked grants.
  routes: { revocation: '/oauth/revoke' },
  // Auth0 issues a refresh token to an application allowed to refresh whenever it asks for
  // offline_access, and keeps it past the login session. OpenID Connect (and oidc-provider's
  // default) honour offline_access only with prompt=consent, which toolgate does not send: it
  // asks for consent on its own page. Without these two, toolgate gets no upstream refresh token.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  // Auth0 RBAC puts the granted permissions in a `permissions` array; toolgate checks that claim,
  // not `scope`.
  extraTokenClaims: async (_ctx, token) => ({
    permissions: (token.scope ?? '').split(' ').filter(Boolean),
  }),
});

// Refusals go to stderr, which the tests print when something fails.
for (const event of ['authorization.error', 'grant.error', 'revocation.error', 'server_error']) {
  provider.on(event, (_ctx, error) => {
    console.error(`${event}: ${error.message}${error.error_description ? ` (${error.error_description})` : ''}`);
  });
}

server.on('request', provider.callback());

const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (exitWithStdin) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

const upstreamClient = upstreamCallback ? { client_id: upstreamClientId } : undefined;
process.stdout.write(`${JSON.stringify({ issuer, port, upstream_client: upstreamClient })}\n`);
