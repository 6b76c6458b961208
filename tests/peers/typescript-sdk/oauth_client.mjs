// Signs in to a toolgate server with the official MCP TypeScript SDK and calls a tool.
//
// The SDK runs the OAuth flow (discovery, dynamic registration, authorization with PKCE, the code
// exchange) through its `OAuthClientProvider` interface, implemented here in memory. What a person
// does in the browser is done by `scriptedBrowser`: it follows the authorization URL with fetch,
// carries cookies by hand, answers each form it meets (toolgate's consent page, the identity
// provider's login page) as a person who approves would, and stops at the redirect to the
// client's redirect URI, which is never served.
//
// Prints one JSON object on stdout; the Rust test asserts on it. Tokens appear only as
// fingerprints and decoded claims.
//
// Usage: node oauth_client.mjs --mcp-url URL --tool NAME [--login USER]

import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const CLIENT_NAME = 'toolgate TypeScript SDK test client';
// Registered but never listened on: the browser stand-in stops at the redirect to it.
const REDIRECT_URI = 'http://127.0.0.1:9/ts-sdk/callback';
const MAX_BROWSER_STEPS = 20;

const { values: args } = parseArgs({
  options: {
    'mcp-url': { type: 'string' },
    tool: { type: 'string' },
    login: { type: 'string', default: 'alice' },
  },
});
if (!args['mcp-url'] || !args.tool) {
  console.error('usage: node oauth_client.mjs --mcp-url URL --tool NAME [--login USER]');
  process.exit(2);
}

const fingerprint = (secret) => (secret ? createHash('sha256').update(secret).digest('hex').slice(0, 16) : null);

function jwtClaims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  } catch {
    return null;
  }
}

const decodeEntities = (text) => text
  .replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<')
  .replaceAll('&gt;', '>').replaceAll('&amp;', '&');

function attributes(tag) {
  const found = {};
  for (const match of tag.matchAll(/([a-zA-Z_:-]+)(?:\s*=\s*"([^"]*)")?/g)) {
    found[match[1].toLowerCase()] = match[2] === undefined ? '' : decodeEntities(match[2]);
  }
  return found;
}

// The first POST form of a page: its action, fields and submit buttons.
function firstPostForm(html) {
  for (const form of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const formAttributes = attributes(form[1]);
    if ((formAttributes.method ?? 'get').toLowerCase() !== 'post') continue;
    const fields = [];
    const buttons = [];
    for (const control of form[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
      const a = attributes(control[2]);
      const type = (a.type ?? (control[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
      const entry = { name: a.name, value: a.value ?? '', type, checked: 'checked' in a };
      (type === 'submit' ? buttons : fields).push(entry);
    }
    return { action: formAttributes.action ?? '', fields, buttons };
  }
  return null;
}

const textOfId = (html, id) => {
  const match = html.match(new RegExp(`id="${id}"[^>]*>([^<]*)<`));
  return match ? decodeEntities(match[1]).trim() : null;
};

// Stands in for the person at the browser: follows redirects, keeps cookies, approves.
async function scriptedBrowser(authorizationUrl, login, pages) {
  const cookies = new Map(); // origin -> Map(name -> value)
  const redirect = new URL(REDIRECT_URI);
  let url = authorizationUrl;
  let request = { method: 'GET' };
  for (let step = 0; step < MAX_BROWSER_STEPS; step += 1) {
    const target = new URL(url);
    if (target.origin === redirect.origin && target.pathname === redirect.pathname) {
      pages.push({ kind: 'client-redirect', params: [...target.searchParams.keys()].sort() });
      if (target.searchParams.has('error')) {
        throw new Error(`the authorization ended in an error: ${target.search}`);
      }
      return target.searchParams;
    }
    const jar = cookies.get(target.origin) ?? new Map();
    const headers = { ...(request.headers ?? {}) };
    if (jar.size) headers.cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, { ...request, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    cookies.set(target.origin, jar);
    request = { method: 'GET' };
    if ([301, 302, 303, 307, 308].includes(response.status)) {
      url = new URL(response.headers.get('location'), url).toString();
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) {
      throw new Error(`${url} answered ${response.status}: ${html.slice(0, 500)}`);
    }
    const form = firstPostForm(html);
    if (!form) throw new Error(`${url} shows no form to answer: ${html.slice(0, 500)}`);
    const names = new Set(form.fields.map((f) => f.name));
    pages.push({
      kind: names.has('csrf_token') ? 'toolgate-consent' : 'idp-login',
      origin: target.origin,
      client_name: textOfId(html, 'client-name'),
      redirect_host: textOfId(html, 'redirect-host'),
    });
    const body = new URLSearchParams();
    for (const field of form.fields) {
      if (!field.name) continue;
      if (field.type === 'radio' && field.name === 'user') {
        if (field.value === login || field.value.split('|').pop() === login) body.set('user', field.value);
      } else if (field.type === 'checkbox' || field.type === 'radio') {
        if (field.checked) body.append(field.name, field.value);
      } else {
        body.append(field.name, field.value);
      }
    }
    const button = form.buttons.find((b) => b.value === 'approve') ?? form.buttons[0];
    if (button?.name) body.append(button.name, button.value);
    url = new URL(form.action, url).toString();
    request = { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
  throw new Error(`no redirect to the client after ${MAX_BROWSER_STEPS} steps`);
}

// The SDK's OAuthClientProvider, in memory.
class InMemoryProvider {
  constructor() {
    this.savedClient = undefined;
    this.savedTokens = undefined;
    this.verifier = undefined;
    this.expectedState = randomBytes(16).toString('hex');
    this.authorizationUrls = [];
    this.tokenHistory = [];
  }

  get redirectUrl() { return REDIRECT_URI; }

  get clientMetadata() {
    return {
      client_name: CLIENT_NAME,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() { return this.expectedState; }

  clientInformation() { return this.savedClient; }

  saveClientInformation(info) { this.savedClient = info; }

  tokens() { return this.savedTokens; }

  saveTokens(tokens) {
    this.savedTokens = tokens;
    const claims = jwtClaims(tokens.access_token) ?? {};
    this.tokenHistory.push({
      access_token: fingerprint(tokens.access_token),
      refresh_token: fingerprint(tokens.refresh_token),
      expires_in: tokens.expires_in,
      scope: tokens.scope,
      claims: Object.fromEntries(['iss', 'sub', 'aud', 'exp', 'jti', 'client_id'].map((k) => [k, claims[k]])),
    });
  }

  redirectToAuthorization(url) { this.authorizationUrls.push(url.toString()); }

  saveCodeVerifier(verifier) { this.verifier = verifier; }

  codeVerifier() { return this.verifier; }
}

const report = { client_name: CLIENT_NAME, redirect_uri: REDIRECT_URI, pages: [], requests: [] };

// Every HTTP exchange the SDK makes, without secrets.
async function loggingFetch(input, init = {}) {
  const response = await fetch(input, init);
  const url = new URL(input instanceof Request ? input.url : input.toString());
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  const auth = headers.get('authorization') ?? '';
  const entry = {
    method: init.method ?? 'GET',
    path: url.pathname,
    status: response.status,
    bearer: auth.toLowerCase().startsWith('bearer ') ? fingerprint(auth.slice(7)) : null,
  };
  if (typeof init.body === 'string' && url.pathname.endsWith('/mcp')) {
    entry.rpc = JSON.parse(init.body).method ?? null;
  }
  if (url.pathname.endsWith('/token') && init.body) {
    entry.grant_type = new URLSearchParams(init.body.toString()).get('grant_type');
  }
  report.requests.push(entry);
  return response;
}

const provider = new InMemoryProvider();
const mcpUrl = new URL(args['mcp-url']);
const connect = async () => {
  const client = new Client({ name: 'toolgate-typescript-sdk-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: loggingFetch });
  await client.connect(transport);
  return { client, transport };
};

try {
  let connection;
  try {
    connection = await connect();
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    // The SDK has registered the client and handed over the authorization URL: the person signs in.
    const authorizationUrl = provider.authorizationUrls.at(-1);
    report.authorization_query = [...new URL(authorizationUrl).searchParams.keys()].sort();
    const params = await scriptedBrowser(authorizationUrl, args.login, report.pages);
    if (params.get('state') !== provider.expectedState) {
      throw new Error('the state that came back is not the one sent');
    }
    report.iss = params.get('iss');
    const pending = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: loggingFetch });
    await pending.finishAuth(params.get('code'));
    connection = await connect();
  }
  const { client } = connection;
  const listed = await client.listTools();
  report.tools = listed.tools.map((t) => t.name).sort();
  const result = await client.callTool({ name: args.tool, arguments: {} });
  report.call = { is_error: result.isError ?? false, structured: result.structuredContent ?? null };
  await client.close();
} finally {
  report.authorization_urls = provider.authorizationUrls.length;
  report.registered = provider.savedClient
    ? {
      client_id: provider.savedClient.client_id,
      has_secret: provider.savedClient.client_secret !== undefined,
      token_endpoint_auth_method: provider.savedClient.token_endpoint_auth_method,
    }
    : null;
  report.tokens = provider.tokenHistory;
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
