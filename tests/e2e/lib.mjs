// Shared by the Node and browser end-to-end tests: start wsfwd on an ephemeral port, stop it
// with SIGTERM (exit status 0 required), a tiny test runner printing "N passed, N failed".
import { spawn } from 'node:child_process';

export const SLOW = Number(process.env.WSFWD_E2E_SLOW || 1);
export const T = (ms) => ms * SLOW;

const started = new Set();
// Appended to every wsfwd command line: run.sh runs the suites again with "--io epoll".
const EXTRA_ARGS = (process.env.WSFWD_E2E_ARGS || '').split(/\s+/).filter((a) => a !== '');

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class Server {
  constructor(binary, args = []) {
    this.binary = binary;
    this.args = ['--listen', '127.0.0.1:0', '--shutdown-timeout', '2000', ...args, ...EXTRA_ARGS];
    this.lines = [];
  }

  async start() {
    // detached: its own process group, so that the group can be killed whatever happens.
    this.proc = spawn(this.binary, this.args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    started.add(this);
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, sig) => resolve({ code, sig })));
    let partial = '';
    this.port = await withTimeout(new Promise((resolve, reject) => {
      this.proc.on('error', reject);
      this.proc.stderr.on('data', (chunk) => {
        partial += chunk.toString();
        const lines = partial.split('\n');
        partial = lines.pop();
        for (const line of lines) {
          this.lines.push(line);
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
          if (m) resolve(Number(m[1]));
        }
      });
      this.exited.then(() => reject(new Error(`wsfwd exited before listening:\n${this.lines.join('\n')}`)));
    }), T(10000), 'wsfwd start');
    this.url = `ws://127.0.0.1:${this.port}`;
    this.http = `http://127.0.0.1:${this.port}`;
    return this;
  }

  // SIGTERM, then the exit status, which must be 0; the group is killed in any case.
  async stop() {
    try {
      if (this.proc.exitCode === null && this.proc.signalCode === null) {
        process.kill(this.proc.pid, 'SIGTERM');
      }
      const { code, sig } = await withTimeout(this.exited, T(10000), 'wsfwd exit after SIGTERM');
      if (code !== 0) {
        throw new Error(`wsfwd exited with ${code ?? sig}:\n${this.lines.slice(-30).join('\n')}`);
      }
    } finally {
      this.kill();
    }
  }

  kill() {
    started.delete(this);
    try {
      process.kill(-this.proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function killAll() {
  for (const s of started) s.kill();
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

export function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

// run([[name, async fn], ...]): every test within a bound; prints the summary line.
export async function run(title, tests, boundMs = T(60000)) {
  let passed = 0;
  let failed = 0;
  console.log(`${title}: ${tests.length} tests`);
  try {
    for (const [name, fn] of tests) {
      const start = Date.now();
      try {
        await withTimeout(fn(), boundMs, name);
        passed++;
        console.log(`PASS ${name} (${((Date.now() - start) / 1000).toFixed(1)}s)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name} (${((Date.now() - start) / 1000).toFixed(1)}s): ${e.stack || e}`);
      }
    }
  } finally {
    killAll();
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0;
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(1);
  });
}
process.on('exit', killAll);
