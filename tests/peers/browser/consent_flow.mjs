// Drives Debian's Chromium, headless, through toolgate's sign-in as a person would, with
// playwright-core (which never downloads a browser of its own).
//
// 1. A page of the client application (another origin) frames toolgate's /authorize: the consent
//    page must not render there. A second frame, of a page that allows framing, shows that framing
//    itself works in this browser.
// 2. The consent page itself: what it shows (client name, redirect host, permissions).
// 3. A page of the application forges the consent POST, with the transaction id but without the
//    CSRF token, in the same browser (so the consent cookie goes along).
// 4. The person clicks Approve, signs in on the identity provider's login page as the chosen user,
//    and the browser lands on the client's redirect URI.
//
// Prints one JSON object on stdout; the Rust test asserts on it.
//
// Usage: node consent_flow.mjs --authorize-url URL --app-url URL --redirect-uri URL --user SUB

import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    'authorize-url': { type: 'string' },
    'app-url': { type: 'string' },
    'redirect-uri': { type: 'string' },
    user: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
for (const required of ['authorize-url', 'app-url', 'redirect-uri', 'user']) {
  if (!args[required]) {
    console.error(`--${required} is required`);
    process.exit(2);
  }
}

const STEP_TIMEOUT = 30_000;
const authorizeUrl = args['authorize-url'];
const redirectUri = new URL(args['redirect-uri']);
const issuer = new URL(authorizeUrl).origin;
const report = { console: [] };

const text = async (locator) => ((await locator.count()) ? (await locator.first().innerText()).trim() : null);

const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  chromiumSandbox: false,
  // This machine has no network but loopback: keep Chromium from trying to reach Google.
  args: [
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    '--no-first-run',
  ],
});
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  page.on('console', (message) => report.console.push(message.text()));

  // 1. Framed by another origin.
  await page.goto(`${args['app-url']}/frame?src=${encodeURIComponent(authorizeUrl)}`, { waitUntil: 'load' });
  const consentFrame = page.frames().find((f) => f.name() === 'consent');
  const controlFrame = page.frames().find((f) => f.name() === 'control');
  report.framing = {
    control_rendered: controlFrame ? await text(controlFrame.locator('#framed')) : null,
    consent_frame_url: consentFrame?.url() ?? null,
    // A frame the browser blocked holds an error page whose document cannot be inspected.
    consent_approve_buttons: consentFrame ? await consentFrame.locator('#approve').count().catch(() => 0) : null,
    consent_client_name: consentFrame ? await text(consentFrame.locator('#client-name')).catch(() => null) : null,
  };

  // 2. The consent page, opened as the application's authorization request opens it.
  const consentResponse = await page.goto(authorizeUrl, { waitUntil: 'load' });
  report.consent = {
    status: consentResponse.status(),
    title: await page.title(),
    client_name: await text(page.locator('#client-name')),
    redirect_host: await text(page.locator('#redirect-host')),
    permissions: await page.locator('#permissions li').allInnerTexts(),
    x_frame_options: consentResponse.headers()['x-frame-options'] ?? null,
    content_security_policy: consentResponse.headers()['content-security-policy'] ?? null,
    buttons: await page.locator('form button').allInnerTexts(),
  };
  const transaction = await page.locator('input[name=transaction]').inputValue();

  // 3. A forged approval from another origin, in the same browser: the transaction id but no
  // CSRF token.
  const attacker = await context.newPage();
  const forgedPost = attacker.waitForResponse(
    (r) => r.url() === `${issuer}/authorize/consent` && r.request().method() === 'POST',
  );
  await attacker.goto(
    `${args['app-url']}/forge?action=${encodeURIComponent(`${issuer}/authorize/consent`)}`
      + `&transaction=${encodeURIComponent(transaction)}`,
  );
  const forged = await forgedPost;
  await attacker.waitForLoadState('load');
  const forgedHeaders = await forged.request().allHeaders();
  report.forged = {
    status: forged.status(),
    sent_consent_cookie: (forgedHeaders.cookie ?? '').includes('toolgate-consent='),
    sent_csrf_token: (forged.request().postData() ?? '').includes('csrf_token'),
    page_text: (await attacker.locator('body').innerText()).trim(),
  };
  await attacker.close();

  // 4. The person approves, then signs in at the identity provider.
  await Promise.all([
    page.waitForURL((url) => url.origin !== issuer, { waitUntil: 'load' }),
    page.click('#approve'),
  ]);
  const idpUrl = new URL(page.url());
  report.idp_login = {
    origin: idpUrl.origin,
    path: idpUrl.pathname,
    title: await page.title(),
    text: await page.locator('body').innerText(),
    users: await page.locator('input[name=user]').evaluateAll((inputs) => inputs.map((i) => i.value)),
  };
  await page.check(`input[name=user][value="${args.user}"]`);
  await Promise.all([
    page.waitForURL(
      (url) => url.origin === redirectUri.origin && url.pathname === redirectUri.pathname,
      { waitUntil: 'load' },
    ),
    page.click('button[value=approve]'),
  ]);
  const landed = new URL(page.url());
  report.landed = {
    origin: landed.origin,
    path: landed.pathname,
    params: Object.fromEntries(landed.searchParams),
    page_text: await text(page.locator('#landed')),
  };
} catch (error) {
  // What the browser said up to the failure (a CSP refusal, say) is the useful part.
  report.error = String(error);
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
