// End-to-end tests of wsfwd driven by the Node `ws` package (npm, version 8); the
// permessage-deflate test also runs Python websockets peers (tests/e2e/peer_python.py, with
// /usr/bin/python3) in the same room.
//   node tests/e2e/test_node.mjs PATH/TO/wsfwd
// Last line: "N passed, N failed"; exit status non-zero on any failure.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Server, T, assert, eq, run, withTimeout } from './lib.mjs';

const binary = path.resolve(process.argv[2] || '');
const here = path.dirname(fileURLToPath(import.meta.url));

// A ws client with a queue of received messages.
class Client {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of this.waiters.splice(0)) w.reject(new Error(`closed with ${code}`));
    }));
    ws.on('message', (data, isBinary) => {
      const m = { data: Buffer.from(data), isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(m);
      else this.queue.push(m);
    });
    ws.on('error', () => {});
  }

  static open(url, opts = {}) {
    return withTimeout(new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { maxPayload: 0, ...opts });
      ws.once('open', () => resolve(new Client(ws)));
      ws.once('unexpected-response', (req, res) => {
        const err = new Error(`refused with ${res.statusCode}`);
        err.status = res.statusCode;
        req.destroy();
        reject(err);
      });
      ws.once('error', reject);
    }), T(5000), `open ${url}`);
  }

  next(ms = T(5000)) {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    return withTimeout(new Promise((resolve, reject) => this.waiters.push({ resolve, reject })), ms,
      'a message');
  }

  async nextText() {
    const m = await this.next();
    assert(!m.isBinary, `a binary message where text was expected: ${m.data}`);
    return m.data.toString('utf8');
  }

  async silence(ms = 300) {
    await new Promise((r) => setTimeout(r, ms));
    assert(this.queue.length === 0, `unexpected message ${this.queue[0]?.data}`);
  }

  send(data, opts = {}) {
    return new Promise((resolve, reject) => this.ws.send(data, opts, (e) => (e ? reject(e) : resolve())));
  }

  closeCode(ms = T(5000)) {
    return withTimeout(this.closed, ms, 'the close').then((c) => c.code);
  }

  async close() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    await withTimeout(this.closed, T(5000), 'closing').catch(() => this.ws.terminate());
  }
}

// A chat message, byte for byte the same as tests/e2e/peer_python.py's.
const chatMsg = (i, from) => JSON.stringify({ from, i, text: 'chat '.repeat(i % 3 === 0 ? 2 : 400) });

// A Python websockets peer (tests/e2e/peer_python.py) in a child process: resolves once it is
// connected; go() lets it send; result is its JSON verdict; kill() ends it (by its pid).
function pythonPeer(url, name, count, compression, others) {
  const proc = spawn('/usr/bin/python3', [path.join(here, 'peer_python.py'), url, name,
    String(count), compression, String(others)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d.toString();
    let at;
    while ((at = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, at);
      buf = buf.slice(at + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const nextLine = (ms) => withTimeout(new Promise((resolve) => {
    if (lines.length > 0) resolve(lines.shift());
    else waiters.push(resolve);
  }), ms, `a line from the Python peer ${name}`);
  return nextLine(T(10000)).then((ready) => {
    assert(ready.startsWith('ready'), `Python peer ${name}: ${ready}`);
    return {
      name,
      extensions: ready.slice(6),
      go: () => proc.stdin.write('go\n'),
      result: nextLine(T(25000)).then((l) => JSON.parse(l)), // the peer gives up after 20 s
      kill: () => { if (proc.exitCode === null) proc.kill('SIGKILL'); },
    };
  });
}

// Start a server, run fn(server, open), close the clients, stop it (exit 0 required).
async function withServer(args, fn) {
  const s = await new Server(binary, args).start();
  const clients = [];
  const open = async (p, opts) => {
    const c = await Client.open(s.url + p, opts);
    clients.push(c);
    return c;
  };
  let ok = false;
  try {
    await fn(s, open);
    ok = true;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    if (ok) await s.stop();
    else s.kill();
  }
}

async function fanout(p) {
  await withServer([], async (s, open) => {
    const [a, b, c] = [await open(p), await open(p), await open(p)];
    await a.send('from a');
    eq(await b.nextText(), 'from a', 'b got');
    eq(await c.nextText(), 'from a', 'c got');
    await b.send('from b');
    eq(await a.nextText(), 'from b', "a's first message (the sender is excluded)");
    eq(await c.nextText(), 'from b', 'c got');
    await c.send('from c');
    eq(await a.nextText(), 'from c', 'a got');
    eq(await b.nextText(), 'from c', "b's next message (the sender is excluded)");
    await c.silence();
  });
}

async function refused(s, p, opts) {
  try {
    const c = await Client.open(s.url + p, opts);
    await c.close();
    return 101;
  } catch (e) {
    if (e.status === undefined) throw e;
    return e.status;
  }
}

const tests = [
  ['fan-out in /ws, the sender excluded', () => fanout('/ws')],
  ['fan-out in a room, the sender excluded', () => fanout('/ws/node-room')],
  ['echo', () => withServer([], async (s, open) => {
    const e = await open('/echo');
    const other = await open('/echo');
    await e.send('hello');
    eq(await e.nextText(), 'hello', 'echoed text');
    await e.send(Buffer.from([0, 255, 1]));
    const m = await e.next();
    eq([m.isBinary, [...m.data]], [true, [0, 255, 1]], 'echoed binary');
    const big = 'é'.repeat(50000);
    await e.send(big);
    eq(await e.nextText(), big, 'echoed 100 kB text');
    await other.silence();
  })],
  ['text and binary kept apart', () => withServer([], async (s, open) => {
    const a = await open('/ws/types');
    const b = await open('/ws/types');
    const sent = [['abc', false], [Buffer.from('abc'), true], ['', false], [Buffer.alloc(0), true],
      [Buffer.from([0xff, 0xfe, 0x00]), true], ['ünïcødé ✓', false], [Buffer.alloc(100000, 7), true]];
    for (const [d, bin] of sent) await a.send(d, { binary: bin });
    for (const [d, bin] of sent) {
      const m = await b.next();
      eq(m.isBinary, bin, `type of ${String(d).slice(0, 10)}`);
      assert(Buffer.compare(m.data, Buffer.from(d)) === 0, 'payload');
    }
    // Fragmented: ws sends fin=false frames with { fin: false }.
    await a.send('frag', { fin: false });
    await a.send('mented', { fin: true });
    eq(await b.nextText(), 'fragmented', 'fragmented text');
  })],
  ['rooms isolated (case, percent-encoded UTF-8)', () => withServer([], async (s, open) => {
    const paths = ['/ws/x', '/ws/X', '/ws/%E2%9C%93', '/ws/%e2%9c%93', '/ws'];
    const room = { '/ws/x': 'x', '/ws/X': 'X', '/ws/%E2%9C%93': '✓', '/ws/%e2%9c%93': '✓', '/ws': null };
    const members = {};
    for (const p of paths) members[p] = [await open(p), await open(p)];
    for (const p of paths) await members[p][0].send(`hello from ${p}`);
    for (const p of paths) {
      const same = paths.filter((q) => room[q] === room[p]);
      const want0 = same.filter((q) => q !== p).map((q) => `hello from ${q}`).sort();
      const want1 = same.map((q) => `hello from ${q}`).sort();
      const got0 = [];
      const got1 = [];
      for (let i = 0; i < want0.length; i++) got0.push(await members[p][0].nextText());
      for (let i = 0; i < want1.length; i++) got1.push(await members[p][1].nextText());
      eq(got0.sort(), want0, `first member of ${p}`);
      eq(got1.sort(), want1, `second member of ${p}`);
    }
    for (const p of paths) {
      await members[p][0].silence(100);
      await members[p][1].silence(100);
    }
  })],
  ['at the size limit delivered, one byte past closed with 1009', () => withServer(
    ['--max-message', '2000'], async (s, open) => {
      const a = await open('/ws/big');
      const b = await open('/ws/big');
      await a.send(Buffer.alloc(2000, 1));
      const m = await b.next();
      eq([m.isBinary, m.data.length], [true, 2000], 'message at the limit');
      await a.send('x'.repeat(2001));
      eq(await a.closeCode(), 1009, 'close code one byte past the limit');
      const c = await open('/ws/big');
      await c.send('after');
      eq(await b.nextText(), 'after', 'the other member unaffected');
    })],
  ['handshake refusals: 404, 403', () => withServer(
    ['--allow-origin', 'http://good.example'], async (s, open) => {
      const good = { origin: 'http://good.example' };
      eq(await refused(s, '/nowhere', good), 404, 'unknown path');
      eq(await refused(s, '/ws', { origin: 'http://evil.example' }), 403, 'wrong Origin');
      eq(await refused(s, '/ws', good), 101, 'allowed Origin');
      const st = await (await fetch(`${s.http}/stats`)).json();
      eq([st.refused['404'], st.refused['403']], [1, 1], '/stats refused');
    })],
  ['503 past --max-connections', () => withServer(['--max-connections', '1'], async (s, open) => {
    await open('/ws');
    eq(await refused(s, '/echo'), 503, 'second connection');
  })],
  ['permessage-deflate: Node and Python clients, compressing and plain, in one room, in order',
    () => withServer([], async (s, open) => {
      // ws compresses messages of 1 KiB and more by default (its threshold); websockets all.
      const count = 30;
      const py = [await pythonPeer(`${s.url}/ws/z`, 'py-z', count, 'on', 5),
        await pythonPeer(`${s.url}/ws/z`, 'py-p', count, 'off', 5)];
      try {
        const z = [await open('/ws/z'), await open('/ws/z')];
        const p = [await open('/ws/z', { perMessageDeflate: false }),
          await open('/ws/z', { perMessageDeflate: false })];
        // A wsfwd built without zlib answers no extension: the same messages go plain.
        const zOn = (await (await fetch(`${s.http}/stats`)).json()).deflate.enabled;
        eq(z.map((c) => c.ws.extensions.startsWith('permessage-deflate')), [zOn, zOn],
          'extension negotiated by the compressing Node clients');
        eq(p.map((c) => c.ws.extensions), ['', ''], 'no extension for the plain Node clients');
        eq(py.map((c) => c.extensions.startsWith('permessage-deflate')), [zOn, false],
          'extension negotiated by the Python peers');
        const all = [...z, ...p];
        const names = ['n-z1', 'n-z2', 'n-p1', 'n-p2'];
        for (const q of py) q.go();
        await Promise.all(all.map(async (c, k) => {
          for (let i = 0; i < count; i++) await c.send(chatMsg(i, names[k]));
        }));
        for (let k = 0; k < all.length; k++) {
          const next = new Map();
          for (let n = 0; n < count * (all.length + py.length - 1); n++) {
            const raw = await all[k].nextText();
            const m = JSON.parse(raw);
            const want = next.get(m.from) ?? 0;
            eq(m.i, want, `${names[k]}: order of the messages from ${m.from}`);
            eq(raw, chatMsg(m.i, m.from), `${names[k]}: message ${m.i} from ${m.from}`);
            next.set(m.from, want + 1);
          }
          eq(next.size, 5, `${names[k]}: senders heard`);
        }
        for (const q of py) {
          const r = await q.result;
          assert(r.ok && r.got === count * 5, `Python peer ${q.name}: ${JSON.stringify(r)}`);
        }
        const st = await (await fetch(`${s.http}/stats`)).json();
        assert(zOn ? st.deflate.compressed > 0 && st.deflate.compressed <= count * 6
          : st.deflate.compressed === 0, `compress calls ${st.deflate.compressed}`);
      } finally {
        for (const q of py) q.kill();
      }
    })],
];

const ok = await run(`wsfwd e2e (node ${process.versions.node}, ws 8)`, tests);
process.exit(ok ? 0 : 1);
