// The demo page in headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core:
// two tabs on /?room=e2e, "hello" typed and sent in the first, seen in the second, and in the
// first only as its own "you: hello" line.
//   node tests/e2e/test_browser.mjs PATH/TO/wsfwd [SCREENSHOT.png]
// Then, with --auth-secret-file, the page's room token in the query (?room=...&token=...): two
// tabs with a token for the room talk, a tab whose token opens another room is refused.
// Then over https:// and wss:// (--listen-tls, a self-signed certificate made by openssl and
// trusted by its SPKI hash): two tabs talk.
// Last line: "N passed, N failed". Never downloads a browser.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Server, T, eq, run, withTimeout } from './lib.mjs';

// The chromium processes this process started (their pids), read from /proc.
function chromiumChildren() {
  const pids = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
      if (m && Number(m[2]) === process.pid && /chrom/i.test(m[1])) pids.push(Number(d));
    } catch { /* gone */ }
  }
  return pids;
}

const binary = path.resolve(process.argv[2] || '');
const screenshot = process.argv[3];
const executablePath = process.env.WSFWD_E2E_CHROMIUM || '/usr/bin/chromium';

// Start chromium (with extra flags) and a server, run body(server, context), then end both
// whatever happens.
async function withBrowser(serverArgs, body, chromiumArgs = []) {
  const s = await new Server(binary, serverArgs).start();
  let browser;
  let ok = false;
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      timeout: T(30000),
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
        ...chromiumArgs],
    });
    const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
    context.setDefaultTimeout(T(10000));
    await body(s, context);
    await context.close();
    ok = true;
  } finally {
    const pids = chromiumChildren();
    if (browser) await withTimeout(browser.close(), T(10000), 'closing chromium').catch(() => {});
    // playwright starts chromium in a process group of its own: end what is left of it.
    for (const pid of pids) {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (ok) await s.stop();
    else s.kill();
  }
}

// A room token minted with Node's own crypto (HS256), independent of wsfwd's code.
function mint(key, claims) {
  const b64url = (buf) => Buffer.from(buf).toString('base64url');
  const signing = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signing}.${b64url(crypto.createHmac('sha256', key).update(signing).digest())}`;
}

async function tokenInQuery() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfwd-e2e-browser-'));
  const key = 'browser-e2e-key-0123456789abcdef0123456789';
  const keyFile = path.join(dir, 'key');
  fs.writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  try {
    await withBrowser(['--auth-secret-file', keyFile], async (s, context) => {
      const exp = Math.floor(Date.now() / 1000) + 600;
      const good = mint(key, { room: 'vip room', sub: 'browser', exp });
      const wrong = mint(key, { room: 'elsewhere', exp });
      const page = (token) => `${s.http}/?room=${encodeURIComponent('vip room')}&token=${token}`;
      const first = await context.newPage();
      const second = await context.newPage();
      const refused = await context.newPage();
      await first.goto(page(good));
      await second.goto(page(good));
      await refused.goto(page(wrong));
      for (const p of [first, second]) await p.locator('#status', { hasText: 'open' }).waitFor();
      await refused.locator('#status', { hasText: 'closed' }).waitFor();
      await first.locator('#text').fill('with a token');
      await first.locator('#send').click();
      await second.locator('#messages li', { hasText: 'with a token' }).waitFor();
      eq(await second.locator('#messages li').allTextContents(), ['with a token'],
        "second tab's messages");
      eq(await refused.locator('#messages li').count(), 0, 'the refused tab got nothing');
      const st = await (await fetch(`${s.http}/stats`)).json();
      eq([st.connections, st.refused['403'], st.refused.auth.room], [2, 1, 1], '/stats');
      for (const line of s.lines) {
        if (line.includes(good.split('.')[2]) || line.includes(wrong.split('.')[2])) {
          throw new Error(`a token appears in the log: ${line}`);
        }
      }
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Two tabs on url, each once its socket is open.
async function openTabs(context, url) {
  const tabs = [await context.newPage(), await context.newPage()];
  for (const page of tabs) await page.goto(url);
  for (const page of tabs) await page.locator('#status', { hasText: 'open' }).waitFor();
  return tabs;
}

async function twoTabs() {
  await withBrowser([], async (s, context) => {
    const [first, second] = await openTabs(context, `${s.http}/?room=e2e`);
    for (const page of [first, second]) {
      eq(await page.locator('#status').textContent(), 'open', '#status');
      eq(await page.locator('#room').textContent(), 'e2e', '#room');
    }
    await first.locator('#text').fill('hello');
    await first.locator('#send').click();
    await second.locator('#messages li', { hasText: 'hello' }).waitFor();
    eq(await second.locator('#messages li').allTextContents(), ['hello'], "second tab's messages");
    // No echo: give a stray copy time to arrive, then the first tab has only its own line.
    await second.locator('#text').fill('and back');
    await second.locator('#send').click();
    await first.locator('#messages li', { hasText: 'and back' }).waitFor();
    eq(await first.locator('#messages li').allTextContents(), ['you: hello', 'and back'],
      "first tab's messages");
    eq(await first.locator('#messages li.mine').allTextContents(), ['you: hello'], 'own line');
    eq(await second.locator('#messages li').allTextContents(), ['hello', 'you: and back'],
      "second tab's messages");
    eq(await first.locator('#text').inputValue(), '', 'the input is cleared after sending');
    // permessage-deflate, which Chromium offers by default: the page shows what was negotiated,
    // and a message long enough to be compressed both ways arrives intact. (A wsfwd built
    // without zlib answers no extension, and the page says so.)
    const zOn = (await (await fetch(`${s.http}/stats`)).json()).deflate.enabled;
    for (const page of [first, second]) {
      const ext = await page.locator('#ext').textContent();
      if (zOn) {
        eq(ext.startsWith('compressed: permessage-deflate') && ext.includes('server_no_context_takeover'),
          true, `#ext: ${ext}`);
      } else {
        eq(ext, 'uncompressed', '#ext from a wsfwd without permessage-deflate');
      }
    }
    const long = 'compressible chat line, '.repeat(40).trim();
    await first.locator('#text').fill(long);
    await first.locator('#send').click();
    await second.locator('#messages li', { hasText: 'compressible' }).waitFor();
    eq(await second.locator('#messages li').nth(2).textContent(), long, 'the long message');
    await second.locator('#text').fill(`${long} back`);
    await second.locator('#send').click();
    await first.locator('#messages li', { hasText: 'back' }).nth(1).waitFor();
    eq(await first.locator('#messages li').nth(3).textContent(), `${long} back`,
      'the long message back');
    const st = await (await fetch(`${s.http}/stats`)).json();
    eq([st.connections, st.rooms, st.messages_in], [2, 1, 4], '/stats');
    eq([st.deflate.compressed >= 2, st.deflate.inflated >= 2], [zOn, zOn],
      `/stats deflate (the long messages compressed by wsfwd, inflated from Chromium): ${JSON.stringify(st.deflate)}`);
    if (screenshot) await first.screenshot({ path: screenshot, fullPage: true });
  });
}

// The same demo page over https:// and wss:// from a --listen-tls listener, its self-signed
// certificate made by openssl and trusted by Chromium through its public key's hash
// (--ignore-certificate-errors-spki-list): two tabs talk, and the page chose wss:// itself.
async function twoTabsOverTls() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfwd-e2e-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext',
      'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const pub = execFileSync('openssl', ['x509', '-pubkey', '-noout', '-in', cert]);
    const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub });
    const spki = crypto.createHash('sha256').update(der).digest('base64');
    const args = ['--listen-tls', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key];
    await withBrowser(args, async (s, context) => {
      let tlsPort;
      await withTimeout((async () => {
        for (;;) {
          const m = s.lines.map((l) => /TLS listening on 127\.0\.0\.1:(\d+)/.exec(l)).find(Boolean);
          if (m) { tlsPort = Number(m[1]); return; }
          await new Promise((r) => setTimeout(r, 20));
        }
      })(), T(5000), 'the TLS listening line');
      const [first, second] = await openTabs(context, `https://127.0.0.1:${tlsPort}/?room=tls`);
      for (const page of [first, second]) {
        eq(await page.evaluate(() => location.protocol), 'https:', 'the page came over https');
      }
      await first.locator('#text').fill('hello over wss');
      await first.locator('#send').click();
      await second.locator('#messages li', { hasText: 'hello over wss' }).waitFor();
      await second.locator('#text').fill('and back over wss');
      await second.locator('#send').click();
      await first.locator('#messages li', { hasText: 'and back over wss' }).waitFor();
      eq(await first.locator('#messages li').allTextContents(),
        ['you: hello over wss', 'and back over wss'], "first tab's messages");
      const st = await (await fetch(`${s.http}/stats`)).json();
      eq([st.connections, st.rooms, st.messages_in], [2, 1, 2], '/stats');
    }, [`--ignore-certificate-errors-spki-list=${spki}`]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// A wsfwd built without OpenSSL says so in --help: then the TLS test is not run.
const haveTls = !execFileSync(binary, ['--help']).toString().includes('no openssl');
if (!haveTls && process.env.CI === 'true') {
  console.error('wsfwd was built without OpenSSL (CI=true: the TLS tab test must run)');
}

const ok = await run('wsfwd e2e (headless chromium, playwright-core)', [
  ['demo page in two tabs: hello sent from one, seen in the other, no echo', twoTabs],
  ["room tokens: the token in the page's query opens its room, and only that", tokenInQuery],
  ...(haveTls || process.env.CI === 'true'
    ? [['demo page over https, two tabs chatting over wss (certificate trusted by its SPKI hash)',
      twoTabsOverTls]]
    : []),
], T(120000));
process.exit(ok ? 0 : 1);
