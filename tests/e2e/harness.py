#!/usr/bin/python3
"""The shared code of the Python end-to-end suites (test_python.py, test_auth.py, test_flow.py,
test_cluster.py, test_proxy.py): the wsfwd under test and its wrapper, time bounds, failures
and skips, the Server (one wsfwd process), Raw (a socket client that can misbehave), frame
encoding, client helpers, Nginx (one nginx of the test's own) and a self-signed certificate,
the test registry, the runner and the command line. A suite imports this module and
never another suite.

The settings (WSFWD, WRAPPER, SLOW) are set by main() (or by a suite's own main) before any
test runs; read them as harness.NAME, not copied by `from harness import`.
"""
import asyncio
import base64
import ctypes
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

try:
    import websockets
    from websockets.exceptions import InvalidStatusCode
    from websockets.frames import apply_mask
except ImportError:  # pragma: no cover
    print("python3-websockets is missing (apt-get install python3-websockets)", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(1)

WSFWD = None
WRAPPER = []
SLOW = 1.0
PROCS = []  # every wsfwd started, to be killed at exit whatever happens
# Appended to every wsfwd command line: run.sh runs the suites again with "--io epoll".
EXTRA_ARGS = shlex.split(os.environ.get("WSFWD_E2E_ARGS", ""))

# --freelist-vol: memcheck keeps freed blocks out of reuse, to catch a use after free, up to
# 20 MB by default; that shows in the RSS bounds some tests check (permessage-deflate's
# buffers, grown as messages inflate, churn through it fast). 4 MB still covers the last
# hundreds of blocks freed.
VALGRIND = [
    "valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
    "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect",
    "--freelist-vol=4000000",
]


def die_with_parent():
    """In the child, before exec: SIGKILL when this runner dies, however it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def T(seconds):
    """A time bound, stretched under valgrind."""
    return seconds * SLOW


class Fail(AssertionError):
    pass


class Skip(Exception):
    """Raised by a test that cannot run here; never under CI=true (use need() for that)."""


def need(cond, msg):
    """A precondition of the machine, not of wsfwd: a skip, but a failure under CI=true."""
    if not cond:
        if os.environ.get("CI") == "true":
            raise Fail(msg + " (CI=true: a failure, not a skip)")
        raise Skip(msg)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what):
    if got != want:
        raise Fail(f"{what}: got {got!r}, want {want!r}")


# ---- The server --------------------------------------------------------------------------------

class Server:
    """One wsfwd process. `async with Server(args) as s:` starts it and, on the way out, closes
    the clients opened through it, sends SIGTERM and requires exit status 0 within a bound;
    whatever happens, the process group is killed at the end."""

    def __init__(self, *args, shutdown_timeout_ms=2000, listen=("127.0.0.1:0",), nofile=None,
                 listen_tls=(), env=None):
        self.args = list(args)
        self.env = None if env is None else {**os.environ, **env}  # added to the environment
        self.listen = list(listen)
        self.listen_tls = list(listen_tls)  # --listen-tls (give --tls-cert and --tls-key too)
        self.nofile = nofile   # RLIMIT_NOFILE (soft and hard) for the server
        self.bound = []        # (host, port) of each "listening on" line, brackets removed
        self.bound_tls = []    # the same for each "TLS listening on" line
        if not any(a.startswith("--shutdown-timeout") for a in self.args):
            self.args += ["--shutdown-timeout", str(shutdown_timeout_ms)]
        self.shutdown_s = int(self.args[self.args.index("--shutdown-timeout") + 1]) / 1000
        self.lines = []
        self.clients = []
        self.raws = []
        self.proc = None
        self.port = None

    async def __aenter__(self):
        cmd = WRAPPER + [WSFWD] + [a for spec in self.listen for a in ("--listen", spec)]
        cmd += [a for spec in self.listen_tls for a in ("--listen-tls", spec)]
        cmd += self.args + EXTRA_ARGS

        def preexec():
            die_with_parent()
            if self.nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

        self.proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, preexec_fn=preexec,
            env=self.env)
        PROCS.append(self.proc)
        self._port = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read_stderr())
        try:
            self.port = await asyncio.wait_for(asyncio.shield(self._port), T(10))
        except BaseException:
            await self.kill()
            raise
        self.host = next((h for h, _ in self.bound if h == "127.0.0.1"), self.bound[0][0])
        self.url = self.url_for(self.host)
        return self

    def port_of(self, host):
        return next(p for h, p in self.bound if h == host)

    def url_for(self, host):
        return f"ws://{'[' + host + ']' if ':' in host else host}:{self.port_of(host)}"

    async def _read_stderr(self):
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(text)
            m = re.search(r"(TLS )?listening on \[?([^\]\s]+?)\]?:(\d+)$", log_message(text))
            if m:
                (self.bound_tls if m.group(1) else self.bound).append((m.group(2),
                                                                        int(m.group(3))))
                opened = len(self.bound) + len(self.bound_tls)
                if opened == len(self.listen) + len(self.listen_tls) and not self._port.done():
                    h = next((h for h, _ in self.bound if h == "127.0.0.1"), self.bound[0][0])
                    self._port.set_result(self.port_of(h))
        if not self._port.done():
            self._port.set_exception(Fail("wsfwd exited before listening:\n" +
                                          "\n".join(self.lines[-20:])))

    async def ws(self, path, host=None, **kw):
        """A websockets client, closed by __aexit__ if the test leaves it open."""
        kw.setdefault("open_timeout", T(5))
        kw.setdefault("close_timeout", T(3))
        kw.setdefault("ping_interval", None)
        kw.setdefault("max_size", None)
        url = self.url if host is None else self.url_for(host)
        c = await websockets.connect(url + path, **kw)
        self.clients.append(c)
        return c

    def raw(self, host=None, **kw):
        host = host or self.host
        r = Raw(self.port_of(host), host=host, **kw)
        self.raws.append(r)
        return r

    async def sigterm(self):
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)

    async def wait_exit(self, bound):
        try:
            rc = await asyncio.wait_for(self.proc.wait(), bound)
        except asyncio.TimeoutError:
            raise Fail(f"wsfwd did not exit within {bound:.1f}s of SIGTERM")
        await asyncio.wait_for(self._reader, T(5))
        return rc

    async def kill(self):
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                pass

    async def __aexit__(self, etype, exc, tb):
        try:
            for r in self.raws:
                r.close()
            for c in self.clients:
                try:
                    await asyncio.wait_for(c.close(), T(5))
                except Exception:
                    pass
            if self.proc.returncode is None:
                await self.sigterm()
                rc = await self.wait_exit(self.shutdown_s + T(5))
            else:
                rc = self.proc.returncode
            if etype is None and rc != 0:
                raise Fail(f"wsfwd exited with {rc} (99: valgrind found an error or a leak):\n" +
                           "\n".join(self.lines[-60:]))
        finally:
            await self.kill()
            if etype is not None:
                print("    --- wsfwd stderr (last lines) ---", file=sys.stderr)
                for line in self.lines[-15:]:
                    print("    " + line, file=sys.stderr)

    # ---- plain HTTP --------------------------------------------------------------------------

    def get(self, path, method="GET", headers=None, host=None):
        host = host or self.host
        return http_request(self.port_of(host), path, method, headers, host=host)

    def stats(self, host=None):
        status, hdrs, body = self.get("/stats", host=host)
        eq(status, 200, "/stats status")
        check(hdrs.get("content-type", "").startswith("application/json"),
              f"/stats content type {hdrs.get('content-type')!r}")
        return json.loads(body)

    async def wait_stats(self, pred, what, bound=5):
        deadline = time.monotonic() + T(bound)
        while True:
            st = await asyncio.to_thread(self.stats)
            if pred(st):
                return st
            if time.monotonic() > deadline:
                raise Fail(f"/stats never showed {what}: {st}")
            await asyncio.sleep(0.05)


def log_message(line):
    """The message of a log line, text or --log-format json (then the line as is if it does
    not parse: the suite that asked for JSON checks that)."""
    if line.startswith("{"):
        try:
            return str(json.loads(line).get("msg", line))
        except ValueError:
            pass
    return line


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    """One frame (RFC 6455 5.2): masked with a random key as a client sends it, or not; rsv
    holds RSV1..RSV3 as bits 2..0 (RSV1, 4: a compressed message's first frame, RFC 7692)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + apply_mask(payload, key)


def vm_rss(pid):
    """A process's VmRSS in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) * 1024
    except (OSError, AttributeError):
        return 0


# ---- Raw sockets ---------------------------------------------------------------------------------

def http_request(port, path, method="GET", headers=None, timeout=None, host="127.0.0.1"):
    r = Raw(port, timeout=timeout, host=host)
    try:
        req = f"{method} {path} HTTP/1.1\r\nHost: {r.hostport}\r\n"
        for k, v in (headers or {}).items():
            req += f"{k}: {v}\r\n"
        r.send((req + "\r\n").encode())
        status, hdrs = r.read_head()
        n = int(hdrs.get("content-length", "0"))
        body = r.read_exact(n)
        return status, hdrs, body
    finally:
        r.close()


class Raw:
    """A blocking TCP client with a timeout on every call: for what no polite client does."""

    def __init__(self, port, timeout=None, rcvbuf=None, host="127.0.0.1"):
        self.port = port
        v6 = ":" in host
        self.hostport = f"[{host}]:{port}" if v6 else f"{host}:{port}"
        self.sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout if timeout is not None else T(5))
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    def close(self, reset=False):
        if self.sock is None:
            return
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.sock = None

    def send(self, data):
        self.sock.sendall(data)

    def _more(self):
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._more():
                raise Fail(f"EOF after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if not self._more():
                raise Fail(f"EOF before the end of the response head: {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs

    def handshake(self, path, version="13", key=True, extra=None):
        req = (f"GET {path} HTTP/1.1\r\nHost: {self.hostport}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\n")
        if key:
            req += "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode() + "\r\n"
        if version is not None:
            req += f"Sec-WebSocket-Version: {version}\r\n"
        for k, v in (extra or {}).items():
            req += f"{k}: {v}\r\n"
        self.send((req + "\r\n").encode())
        return self.read_head()

    def send_frame(self, opcode, payload, fin=True, mask=True, rsv=0):
        self.send(frame(opcode, payload, fin, mask, rsv))

    def read_frame(self):
        """(fin, opcode, payload), or None at EOF."""
        try:
            b0, b1 = self.read_exact(2)
        except Fail:
            if self.eof and not self.buf:
                return None
            raise
        self.last_rsv = (b0 >> 4) & 7  # RSV1..RSV3 of this frame (RSV1: compressed)
        n = b1 & 0x7F
        check(not (b1 & 0x80), "the server masked a frame")
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self.read_exact(n)

    def frames_until_eof(self, bound):
        """Every frame up to EOF, each with its arrival time; fails past the bound."""
        self.sock.settimeout(bound)
        start = time.monotonic()
        out = []
        while True:
            try:
                f = self.read_frame()
            except socket.timeout:
                raise Fail(f"no EOF within {bound:.1f}s; frames so far: "
                           f"{[(op, p[:20]) for _, op, p, _ in out]}")
            if f is None:
                return out, time.monotonic() - start
            out.append((f[0], f[1], f[2], time.monotonic() - start))
            if time.monotonic() - start > bound:
                raise Fail(f"no EOF within {bound:.1f}s")

    def wait_eof(self, bound):
        self.sock.settimeout(bound)
        start = time.monotonic()
        while True:
            try:
                if not self._more():
                    return time.monotonic() - start
            except socket.timeout:
                raise Fail(f"the server did not close the connection within {bound:.1f}s")
            self.buf = b""


def close_code(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


async def recv(ws, bound=5):
    return await asyncio.wait_for(ws.recv(), T(bound))


async def expect_silence(ws, seconds=0.3):
    try:
        msg = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise Fail(f"unexpected message {msg!r}")


async def closed_code(ws, bound=5):
    """Wait for the connection to close; its close code."""
    try:
        await asyncio.wait_for(ws.wait_closed(), T(bound))
    except asyncio.TimeoutError:
        raise Fail(f"the connection was not closed within {T(bound):.1f}s")
    return ws.close_code


TESTS = []


def test(valgrind=False):
    def mark(fn):
        TESTS.append((fn.__name__, fn, valgrind))
        return fn
    return mark


# ---- Helpers more than one suite uses ----------------------------------------------------------

async def run_wsfwd(args, bound=5):
    """wsfwd run to its exit with these arguments: (exit status, stdout, stderr lines, seconds).
    Killed (and failed) past the bound."""
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *WRAPPER, WSFWD, *args, *EXTRA_ARGS, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent)
    PROCS.append(proc)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), T(bound))
    except asyncio.TimeoutError:
        raise Fail(f"wsfwd {' '.join(args)} still running after {T(bound):.1f}s")
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    return (proc.returncode, out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace").splitlines(), time.monotonic() - start)


def free_port():
    """A loopback port free a moment ago (for a server given a fixed port: wsfwd, redis,
    nginx, prometheus)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    """Whether a TCP connection to the port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=T(1)):
            return True
    except OSError:
        return False


def ipv6_loopback():
    """Whether ::1 can be bound here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


async def status_of(s, path, **kw):
    """The handshake status of a websockets client at path (the client closed again)."""
    try:
        c = await s.ws(path, **kw)
    except InvalidStatusCode as e:
        return e.status_code
    s.clients.remove(c)
    await c.close()
    return 101


async def wait_until(pred, what, bound=10):
    deadline = time.monotonic() + bound
    while not pred():
        if time.monotonic() > deadline:
            raise Fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def self_signed_cert(d, name="localhost"):
    """A certificate for name and 127.0.0.1 with its key, made now by openssl in directory d:
    (cert path, key path). A client trusts it with ssl.create_default_context(cafile=cert)."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    need(shutil.which("openssl") is not None, "openssl is missing (apt-get install openssl)")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=T(30))
    return cert, key


# ---- nginx -----------------------------------------------------------------------------------

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# The main context around a test's http { } text: nothing outside its temporary directory.
NGINX_MAIN = """worker_processes 1;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{http}
}}
"""


class Nginx:
    """One nginx of the test's own: `async with Nginx(http) as ng:` writes NGINX_MAIN around
    http(dir, port) (the text inside http { }, for a fresh temporary directory and a free
    loopback port) and runs nginx as its own master (-p DIR -c CONF -g 'daemon off; pid ...;')
    in a process group of its own; on the way out SIGQUIT, then SIGKILL to the group past a
    bound, and the directory is removed."""

    def __init__(self, http):
        need(os.path.exists(NGINX), "nginx is missing (apt-get install nginx)")
        self.http = http
        self.proc = None

    async def __aenter__(self):
        self.dir = tempfile.mkdtemp(prefix="wsfwd-nginx.")
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_MAIN.format(dir=self.dir, http=self.http(self.dir, self.port)))
        with open(os.path.join(self.dir, "stderr.log"), "wb") as err:
            self.proc = subprocess.Popen(
                [NGINX, "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log"),
                 "-g", f"daemon off; pid {self.dir}/nginx.pid;"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True, preexec_fn=die_with_parent)
        PROCS.append(self.proc)  # killed by run() whatever happens
        try:
            await wait_until(lambda: port_open(self.port) or self.proc.poll() is not None,
                             "nginx to listen", T(10))
            check(self.proc.poll() is None, f"nginx exited: {self.log()}")
        except BaseException:
            self.stop()
            raise
        return self

    def log(self):
        """What nginx wrote to its error log and standard error."""
        out = ""
        for name in ("error.log", "stderr.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(T(10))
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    async def __aexit__(self, *exc):
        self.stop()


# ---- Runner ----------------------------------------------------------------------------------------

async def run(selected, bound=None, after=None):
    """Run (name, fn, ...) tests in turn, each within bound seconds (default T(60)), calling
    after() when each ends. Returns (passed, failed, skipped); under CI=true a skip is counted
    as a failure, whatever raised it."""
    bound = T(60) if bound is None else bound
    ci = os.environ.get("CI") == "true"
    passed = failed = skipped = 0
    try:
        for name, fn, *_ in selected:
            start = time.monotonic()
            try:
                await asyncio.wait_for(fn(), bound)
                passed += 1
                print(f"PASS {name} ({time.monotonic() - start:.1f}s)", flush=True)
            except Skip as e:
                if ci:
                    failed += 1
                    print(f"FAIL {name}: {e} (CI=true: a failure, not a skip)", flush=True)
                else:
                    skipped += 1
                    print(f"SKIP {name}: {e}", flush=True)
            except Exception as e:
                failed += 1
                if isinstance(e, asyncio.TimeoutError):
                    e = Fail(f"test timed out after {bound:.0f}s")
                print(f"FAIL {name} ({time.monotonic() - start:.1f}s): {e}", flush=True)
                if not isinstance(e, Fail):
                    traceback.print_exc()
            finally:
                if after is not None:
                    after()
    finally:
        for p in PROCS:
            if p.returncode is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    return passed, failed, skipped


def kill_all_and_exit(signum, frame):
    for p in PROCS:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    print(f"killed by signal {signum}")
    print("0 passed, 1 failed")
    os._exit(1)


def main(doc, title="wsfwd e2e"):
    """The command line of a suite: PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]; runs the
    tests registered with @test, prints "N passed, N failed" and exits."""
    global WSFWD, WRAPPER, SLOW
    signal.signal(signal.SIGTERM, kill_all_and_exit)
    signal.signal(signal.SIGINT, kill_all_and_exit)
    args = sys.argv[1:]
    use_valgrind = "--valgrind" in args
    args = [a for a in args if a != "--valgrind"]
    names = []
    while "-k" in args:
        i = args.index("-k")
        names.append(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        print(doc, file=sys.stderr)
        sys.exit(2)
    WSFWD = os.path.abspath(args[0])
    if use_valgrind:
        WRAPPER = VALGRIND
    SLOW = float(os.environ.get("WSFWD_E2E_SLOW", "10" if use_valgrind else "1"))
    selected = [t for t in TESTS if (t[2] or not use_valgrind) and
                (not names or any(n in t[0] for n in names))]
    print(f"{title} (python websockets {websockets.__version__})"
          f"{' under valgrind' if use_valgrind else ''}"
          f"{' with ' + ' '.join(EXTRA_ARGS) if EXTRA_ARGS else ''}: {len(selected)} tests",
          flush=True)
    passed, failed, skipped = asyncio.run(run(selected))
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    sys.exit(1 if failed or not selected else 0)
