#!/usr/bin/python3
"""End-to-end tests of the wsfwd server, driven by Python `websockets` (Debian python3-websockets,
asyncio API) and by raw sockets where a client must misbehave.

    /usr/bin/python3 tests/e2e/test_python.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

Each test starts its own wsfwd on 127.0.0.1:0 (the port is read from the "listening on" log
line), and stops it with SIGTERM at the end, requiring exit status 0. With --valgrind the
server runs under valgrind memcheck (any error or definite/indirect leak makes it exit 99), only
the tests marked for it run, and every time bound is multiplied by WSFWD_E2E_SLOW (default 10
under valgrind, 1 otherwise). The last line printed is "N passed, N failed"; the exit status is
non-zero when any test failed.
"""
import asyncio
import base64
import ctypes
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import time
import traceback

try:
    import websockets
    from websockets.exceptions import ConnectionClosed, InvalidStatusCode
except ImportError:  # pragma: no cover
    print("python3-websockets is missing (apt-get install python3-websockets)", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(1)

WSFWD = None
WRAPPER = []
SLOW = 1.0
PROCS = []  # every wsfwd started, to be killed at exit whatever happens

VALGRIND = [
    "valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
    "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect",
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

    def __init__(self, *args, shutdown_timeout_ms=2000):
        self.args = list(args)
        if not any(a.startswith("--shutdown-timeout") for a in self.args):
            self.args += ["--shutdown-timeout", str(shutdown_timeout_ms)]
        self.shutdown_s = int(self.args[self.args.index("--shutdown-timeout") + 1]) / 1000
        self.lines = []
        self.clients = []
        self.raws = []
        self.proc = None
        self.port = None

    async def __aenter__(self):
        cmd = WRAPPER + [WSFWD, "--listen", "127.0.0.1:0"] + self.args
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent)
        PROCS.append(self.proc)
        self._port = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read_stderr())
        try:
            self.port = await asyncio.wait_for(asyncio.shield(self._port), T(10))
        except BaseException:
            await self.kill()
            raise
        self.url = f"ws://127.0.0.1:{self.port}"
        return self

    async def _read_stderr(self):
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(text)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m and not self._port.done():
                self._port.set_result(int(m.group(1)))
        if not self._port.done():
            self._port.set_exception(Fail("wsfwd exited before listening:\n" +
                                          "\n".join(self.lines[-20:])))

    async def ws(self, path, **kw):
        """A websockets client, closed by __aexit__ if the test leaves it open."""
        kw.setdefault("open_timeout", T(5))
        kw.setdefault("close_timeout", T(3))
        kw.setdefault("ping_interval", None)
        kw.setdefault("max_size", None)
        c = await websockets.connect(self.url + path, **kw)
        self.clients.append(c)
        return c

    def raw(self, **kw):
        r = Raw(self.port, **kw)
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

    def get(self, path, method="GET", headers=None):
        return http_request(self.port, path, method, headers)

    def stats(self):
        status, hdrs, body = self.get("/stats")
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


# ---- Raw sockets ---------------------------------------------------------------------------------

def http_request(port, path, method="GET", headers=None, timeout=None):
    r = Raw(port, timeout=timeout)
    try:
        req = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
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

    def __init__(self, port, timeout=None, rcvbuf=None):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout if timeout is not None else T(5))
        self.sock.connect(("127.0.0.1", port))
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
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\n")
        if key:
            req += "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode() + "\r\n"
        if version is not None:
            req += f"Sec-WebSocket-Version: {version}\r\n"
        for k, v in (extra or {}).items():
            req += f"{k}: {v}\r\n"
        self.send((req + "\r\n").encode())
        return self.read_head()

    def send_frame(self, opcode, payload, fin=True, mask=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, m | 126, n)
        else:
            head = struct.pack("!BBQ", b0, m | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.send(head + payload)

    def read_frame(self):
        """(fin, opcode, payload), or None at EOF."""
        try:
            b0, b1 = self.read_exact(2)
        except Fail:
            if self.eof and not self.buf:
                return None
            raise
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
                           f"{[(op, p[:20]) for _, op, p in out]}")
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


# ---- Tests -----------------------------------------------------------------------------------------

TESTS = []


def test(valgrind=False):
    def mark(fn):
        TESTS.append((fn.__name__, fn, valgrind))
        return fn
    return mark


async def fanout(path):
    async with Server() as s:
        a, b, c = [await s.ws(path) for _ in range(3)]
        await a.send("from a")
        eq(await recv(b), "from a", "b got")
        eq(await recv(c), "from a", "c got")
        await b.send("from b")
        # One order: had a been sent its own message, it would come before b's.
        eq(await recv(a), "from b", "a's first message (the sender is excluded)")
        eq(await recv(c), "from b", "c got")
        await c.send("from c")
        eq(await recv(a), "from c", "a got")
        eq(await recv(b), "from c", "b's next message (the sender is excluded)")
        await expect_silence(c)


@test(valgrind=True)
async def fanout_global_pool():
    await fanout("/ws")


@test(valgrind=True)
async def fanout_room():
    await fanout("/ws/lobby")


@test(valgrind=True)
async def echo():
    async with Server() as s:
        e = await s.ws("/echo")
        other = await s.ws("/echo")
        for msg in ["hi", b"\x00\xff\x01", "é" * 1000, b"x" * 70000, ""]:
            await e.send(msg)
            eq(await recv(e), msg, "echoed")
        await expect_silence(other)


@test(valgrind=True)
async def text_and_binary_kept_apart():
    async with Server() as s:
        a, b = await s.ws("/ws/types"), await s.ws("/ws/types")
        sent = ["text", b"text", "", b"", b"\xff\xfe\x00", "ünïcødé ✓", bytes(range(256)),
                "x" * 200000, b"y" * 200000]
        for m in sent:
            await a.send(m)
        for m in sent:
            got = await recv(b)
            eq(type(got), type(m), f"type of {m[:10]!r}")
            eq(got, m, "payload")
        # A fragmented message keeps its type too.
        await a.send(["frag", "mented"])
        await a.send([b"bin", b"ary"])
        eq(await recv(b), "fragmented", "fragmented text")
        eq(await recv(b), b"binary", "fragmented binary")


@test(valgrind=True)
async def rooms_isolated():
    # Path -> the room it names; two spellings of one name are one room; case matters.
    rooms = {
        "/ws/a": "a",
        "/ws/A": "A",
        "/ws/%C3%A9t%C3%A9": "été",
        "/ws/%c3%a9t%c3%a9": "été",   # lower-case hex: the same decoded name
        "/ws/%E2%9C%93%20ok": "✓ ok",
        "/ws/%E2%9C%93%20OK": "✓ OK",
        "/ws": None,                  # the global pool is no room
        "/ws/%2Fws": "/ws",
    }
    async with Server() as s:
        members = {}  # path -> [client, client]
        for path in rooms:
            members[path] = [await s.ws(path), await s.ws(path)]
        # Every first member sends a message naming its path.
        for path, (first, _) in members.items():
            await first.send("hello from " + path)
        expected = {}  # client -> messages it must get
        for path, (first, second) in members.items():
            same = [p for p in rooms if rooms[p] == rooms[path]]
            expected[second] = {"hello from " + p for p in same}
            expected[first] = {"hello from " + p for p in same if p != path}
        # Wait for all of them (so the server has forwarded every message), then a sync
        # message per room: anything leaked would have been queued before it.
        got = {c: set() for c in expected}
        for c, want in expected.items():
            while got[c] != want:
                m = await recv(c)
                check(m in want, f"{m!r} reached a client of another room (it wants {want})")
                got[c].add(m)
        for path, (first, second) in members.items():
            await second.send("sync " + path)
            while True:
                m = await recv(first)
                if m == "sync " + path:
                    break
                check(m.startswith("sync ") and rooms[m[5:]] == rooms[path],
                      f"{m!r} leaked into {path}")
        st = await asyncio.to_thread(s.stats)
        eq(st["rooms"], 6, "rooms in /stats")


@test(valgrind=True)
async def client_drops_without_close_frame():
    async with Server() as s:
        a, b = await s.ws("/ws/drop"), await s.ws("/ws/drop")
        fin = s.raw()
        eq(fin.handshake("/ws/drop")[0], 101, "handshake")
        rst = s.raw()
        eq(rst.handshake("/ws/drop")[0], 101, "handshake")
        await s.wait_stats(lambda st: st["connections"] == 4, "4 connections")
        await a.send("before")
        eq(await recv(b), "before", "b got")
        fin.close()              # FIN, no close frame
        rst.close(reset=True)    # RST, no close frame
        # tcp_connections counts the /stats request itself too.
        await s.wait_stats(lambda st: st["connections"] == 2 and st["tcp_connections"] == 3,
                           "the dropped clients gone (connections 2)")
        for i in range(20):
            await a.send(f"after {i}")
        for i in range(20):
            eq(await recv(b), f"after {i}", "b still receives")
        await b.send("back")
        eq(await recv(a), "back", "a still receives")


@test(valgrind=True)
async def one_total_order():
    n_clients, n_msgs = 5, 60
    async with Server() as s:
        clients = [await s.ws("/ws/order") for _ in range(n_clients)]
        received = {i: [] for i in range(n_clients)}

        async def reader(i):
            while len(received[i]) < (n_clients - 1) * n_msgs:
                received[i].append(await recv(clients[i], 20))

        async def sender(i):
            for k in range(n_msgs):
                await clients[i].send(f"{i}:{k}")
                if random.random() < 0.3:
                    await asyncio.sleep(0)

        readers = [asyncio.create_task(reader(i)) for i in range(n_clients)]
        await asyncio.gather(*(sender(i) for i in range(n_clients)))
        await asyncio.wait_for(asyncio.gather(*readers), T(30))
        for i in range(n_clients):
            seq = received[i]
            check(not any(m.startswith(f"{i}:") for m in seq), f"client {i} got its own message")
            eq(len(set(seq)), len(seq), f"client {i}: duplicates")
            for j in range(n_clients):  # each sender's messages in the order sent
                if j != i:
                    eq([m for m in seq if m.startswith(f"{j}:")],
                       [f"{j}:{k}" for k in range(n_msgs)], f"client {i}: order of {j}'s")
        for i in range(n_clients):
            for j in range(i + 1, n_clients):
                common = set(received[i]) & set(received[j])
                eq(len(common), (n_clients - 2) * n_msgs, "common messages")
                oi = [m for m in received[i] if m in common]
                oj = [m for m in received[j] if m in common]
                if oi != oj:
                    k = next(k for k in range(len(oi)) if oi[k] != oj[k])
                    raise Fail(f"clients {i} and {j} saw different orders: from message {k}, "
                               f"{oi[k:k + 5]} against {oj[k:k + 5]}")


@test(valgrind=True)
async def message_size_limit():
    limit = 4000
    async with Server("--max-message", str(limit), "--close-timeout", "10000") as s:
        a, b = await s.ws("/ws/big"), await s.ws("/ws/big")
        await a.send("é" * (limit // 2))                 # exactly the limit, in bytes
        eq(await recv(b), "é" * (limit // 2), "text at the limit")
        await a.send(b"\x01" * limit)
        eq(await recv(b), b"\x01" * limit, "binary at the limit")
        await a.send([b"\x02" * (limit // 2), b"\x03" * (limit // 2)])   # fragmented
        eq(await recv(b), b"\x02" * (limit // 2) + b"\x03" * (limit // 2), "fragments at the limit")
        start = time.monotonic()
        await a.send(b"\x04" * (limit + 1))
        eq(await closed_code(a), 1009, "close code one byte past the limit")
        check(time.monotonic() - start < T(5), "closed promptly")
        # A fragmented message one byte past: the same.
        c = await s.ws("/ws/big")
        await c.send(["x" * (limit // 2), "y" * (limit // 2 + 1)])
        eq(await closed_code(c), 1009, "close code, fragmented, one byte past")
        # The others are unaffected and saw nothing of it.
        d = await s.ws("/ws/big")
        await d.send("still here")
        eq(await recv(b), "still here", "b still receives")


@test(valgrind=True)
async def stalled_reader_closed_others_keep_up():
    # The sender keeps at most `window` messages in flight (sent, not yet at every fast reader):
    # wsfwd reads up to 512 KiB from one client before it writes anything (see
    # burst_larger_than_max_queue_closes_fast_readers), so an unpaced burst would overflow the
    # 64 KiB queue of fast readers too.
    size, window, cap = 8192, 4, 8192   # 64 MiB at most before the slow close
    async with Server("--max-queue", "65536", "--close-timeout", "1000") as s:
        stall = s.raw(rcvbuf=4096)
        eq(stall.handshake("/ws/slow")[0], 101, "stalled reader's handshake")
        # max_queue=None: websockets reads its socket at all times, however far recv() lags.
        sender = await s.ws("/ws/slow")
        fast = [await s.ws("/ws/slow", max_queue=None) for _ in range(2)]
        got = [[], []]
        progress = asyncio.Condition()

        async def reader(k):
            while True:
                m = await recv(fast[k], 20)
                if m == b"end":
                    return
                got[k].append(m)
                async with progress:
                    progress.notify_all()

        def msg(i):
            return struct.pack("!I", i) + b"m" * (size - 4)

        async def send_window(i):
            async with progress:
                await asyncio.wait_for(progress.wait_for(
                    lambda: min(len(g) for g in got) >= i - window), T(10))
            await sender.send(msg(i))

        readers = [asyncio.create_task(reader(k)) for k in range(2)]
        start = time.monotonic()
        sent = 0
        try:
            slow_closed = False
            while sent < cap and not slow_closed:
                for _ in range(64):
                    await send_window(sent)
                    sent += 1
                st = await asyncio.to_thread(s.stats)
                slow_closed = st["slow_closes"] >= 1
            check(slow_closed, f"no slow close after {sent} messages of {size} bytes")
            t_close = time.monotonic() - start
            for _ in range(256):  # and after it
                await send_window(sent)
                sent += 1
            await sender.send(b"end")
            await asyncio.wait_for(asyncio.gather(*readers), T(20))
        finally:
            for r in readers:
                r.cancel()
        took = time.monotonic() - start
        for k in range(2):
            eq(len(got[k]), sent, f"messages fast reader {k} got")
            for i, m in enumerate(got[k]):
                if struct.unpack("!I", m[:4])[0] != i:
                    raise Fail(f"fast reader {k}: message {i} out of order")
        check(took < T(30), f"the fast readers needed {took:.1f}s for {sent} messages")
        print(f"    {sent} messages of {size} bytes in {took:.2f}s; slow close after "
              f"{t_close:.2f}s", flush=True)
        # The stalled reader: what was queued for it, then close 1008, then EOF.
        frames, _ = await asyncio.to_thread(stall.frames_until_eof, T(15))
        check(frames and frames[-1][1] == 8, f"last frame {frames[-1][:2] if frames else None}"
              " is not a close frame")
        eq(close_code(frames[-1][2]), 1008, "the stalled reader's close code")
        check(len(frames) - 1 < sent, "the stalled reader got fewer messages than were sent")
        for i, f in enumerate(frames[:-1]):
            check(struct.unpack("!I", f[2][:4])[0] == i, f"stalled reader: message {i}")
        st = await s.wait_stats(lambda st: st["connections"] == 3, "3 connections after it")
        eq(st["slow_closes"], 1, "slow_closes")


@test()
async def burst_does_not_close_fast_readers():
    """A burst larger than --max-queue from several senders in one loop turn must not close
    readers whose sockets take everything: the server writes what each read produced before
    reading more. Here: the server is stopped while three senders each write 600 KiB, then
    continued; the default 1 MiB queue would overflow if the writes waited for the turn's end.
    (It once did: fixed by flushing after every read.)"""
    async with Server() as s:
        readers = [await s.ws("/ws/burst", max_queue=None) for _ in range(2)]
        senders = [s.raw() for _ in range(3)]
        for r in senders:
            eq(r.handshake("/ws/burst")[0], 101, "handshake")
        frame = struct.pack("!BBH", 0x82, 0x80 | 126, 10240) + b"\0\0\0\0" + b"m" * 10240
        os.kill(s.proc.pid, signal.SIGSTOP)
        try:
            for r in senders:
                r.send(frame * 60)
        finally:
            os.kill(s.proc.pid, signal.SIGCONT)
        for k, r in enumerate(readers):
            for i in range(180):
                try:
                    await recv(r, 5)
                except ConnectionClosed as e:
                    raise Fail(f"reader {k} closed with {e.rcvd.code if e.rcvd else None} "
                               f"after {i} of 180 messages")


@test(valgrind=True)
async def receivers_reset_during_a_flood():
    """Receivers reset (RST) over and over while a sender floods their room: writes fail with
    ECONNRESET in the middle of flushing. Under valgrind, no invalid access (a client closed
    while being flushed was once read after it was freed; closed clients are now freed at the
    end of the loop turn)."""
    async with Server("--max-queue", "1024") as s:
        sender = s.raw()
        eq(sender.handshake("/ws/r")[0], 101, "handshake")
        frame = struct.pack("!BB", 0x82, 0x80 | 100) + b"\0\0\0\0" + b"m" * 100
        stop = time.monotonic() + T(2)

        def flood():
            while time.monotonic() < stop:
                sender.send(frame * 50)
                time.sleep(0.001)

        def churn():
            receivers = [s.raw() for _ in range(20)]
            for r in receivers:
                r.handshake("/ws/r")
            while time.monotonic() < stop:
                i = random.randrange(len(receivers))
                receivers[i].close(reset=True)
                receivers[i] = Raw(s.port)
                receivers[i].handshake("/ws/r")
                time.sleep(random.random() * 0.005)
            for r in receivers:
                r.close()

        await asyncio.gather(asyncio.to_thread(flood), asyncio.to_thread(churn))


@test(valgrind=True)
async def handshake_refusals():
    async with Server("--allow-origin", "http://good.example", "--max-connections", "2",
                      "--max-header", "1024", "--max-room-name", "8") as s:
        async def status_of(path, **kw):
            try:
                c = await s.ws(path, **kw)
            except InvalidStatusCode as e:
                return e.status_code
            await c.close()
            return 101

        good = {"origin": "http://good.example"}
        eq(await status_of("/nope", **good), 404, "unknown path")
        eq(await status_of("/ws/", **good), 404, "/ws/ with no name")
        eq(await status_of("/ws", origin="http://evil.example"), 403, "wrong Origin")
        eq(await status_of("/ws"), 403, "no Origin")
        eq(await status_of("/ws/%zz", **good), 400, "bad percent-encoding")
        eq(await status_of("/ws/ninechars", **good), 400, "room name too long")
        eq(await status_of("/ws/%FF", **good), 400, "room name not UTF-8")
        r = s.raw()
        status, hdrs = r.handshake("/ws", version="8", extra={"Origin": "http://good.example"})
        eq(status, 426, "Sec-WebSocket-Version: 8")
        eq(hdrs.get("sec-websocket-version"), "13", "426 names the version")
        r = s.raw()
        eq(r.handshake("/ws", key=False, extra={"Origin": "http://good.example"})[0], 400,
           "no Sec-WebSocket-Key")
        r = s.raw()
        eq(r.handshake("/ws", extra={"Origin": "http://good.example",
                                     "X-Padding": "p" * 2000})[0], 431, "header too large")
        eq(s.get("/ws", method="POST")[0], 405, "POST")
        plain = s.get("/ws")[0]   # RFC 6455 4.2.1 says 400; 426 would do too
        check(plain in (400, 426), f"GET /ws without Upgrade: {plain}")
        a = await s.ws("/ws", **good)
        b = await s.ws("/ws/r", **good)
        eq(await status_of("/echo", **good), 503, "third connection past --max-connections 2")
        await b.close()
        await s.wait_stats(lambda st: st["connections"] == 1, "one connection")
        c = await s.ws("/echo", **good)
        await c.send("ok")
        eq(await recv(c), "ok", "a connection once below the limit")
        await a.send("x")
        st = await asyncio.to_thread(s.stats)
        want = {"400": 4, "403": 2, "404": 2, "405": 1, "426": 1, "431": 1, "503": 1,
                "other": 0, "fd_limit": 0}
        want[str(plain)] += 1
        eq(st["refused"], want, "refused counters")


@test(valgrind=True)
async def healthz_page_and_stats():
    async with Server() as s:
        status, hdrs, body = s.get("/healthz")
        eq((status, body.strip()), (200, b"ok"), "/healthz")
        status, hdrs, body = s.get("/")
        eq(status, 200, "/ status")
        check(hdrs["content-type"].startswith("text/html"), "the page is HTML")
        check(b'id="status"' in body and b'id="messages"' in body, "the demo page")
        st0 = s.stats()
        for k in ("connections", "rooms", "messages_in", "messages_out", "bytes_in",
                  "slow_closes", "refused", "uptime_ms", "version"):
            check(k in st0, f"/stats has {k}")
        a, b, c = await s.ws("/ws/st"), await s.ws("/ws/st"), await s.ws("/ws")
        await a.send("12345")
        await a.send(b"678")
        await recv(b)
        await recv(b)
        eq(s.get("/missing")[0], 404, "plain 404")
        try:
            await s.ws("/also/missing")
            raise Fail("a WebSocket to an unknown path was accepted")
        except InvalidStatusCode as e:
            eq(e.status_code, 404, "WebSocket 404")
        st = s.stats()
        eq(st["messages_in"] - st0["messages_in"], 2, "messages_in moved")
        eq(st["bytes_in"] - st0["bytes_in"], 8, "bytes_in moved")
        eq(st["messages_out"] - st0["messages_out"], 2, "messages_out moved")
        eq(st["refused"]["404"] - st0["refused"]["404"], 2, "refused 404 moved")
        eq(st["connections"], 3, "connections")
        eq(st["rooms"], 1, "rooms")
        eq(st["global_members"], 1, "global members")


@test(valgrind=True)
async def handshake_timeout():
    async with Server("--handshake-timeout", "500") as s:
        silent = s.raw()
        dribbler = s.raw()
        start = time.monotonic()

        def dribble():
            try:
                for ch in b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n":
                    dribbler.send(bytes([ch]))
                    time.sleep(0.05)
                    if time.monotonic() - start > T(3):
                        break
            except OSError:
                pass
            return time.monotonic() - start

        async def eof_after(r):
            await asyncio.to_thread(r.wait_eof, 0.5 + T(2.5))
            return time.monotonic() - start

        t_silent, t_dribble, _ = await asyncio.gather(eof_after(silent), eof_after(dribbler),
                                                      asyncio.to_thread(dribble))
        for what, t in (("silent", t_silent), ("dribbling", t_dribble)):
            check(0.45 <= t <= 0.5 + T(1.5), f"{what} client dropped after {t:.2f}s "
                  "(--handshake-timeout 500)")
        st = await asyncio.to_thread(s.stats)
        eq(st["handshake_timeouts"], 2, "handshake_timeouts")


@test(valgrind=True)
async def idle_ping_and_pong_deadline():
    async with Server("--idle-timeout", "300", "--pong-timeout", "300") as s:
        polite = await s.ws("/ws/idle")       # websockets answers pings by itself
        mute = s.raw()
        eq(mute.handshake("/ws/idle")[0], 101, "handshake")
        start = time.monotonic()
        frames, took = await asyncio.to_thread(mute.frames_until_eof, 0.6 + T(3))
        pings = [f for f in frames if f[1] == 9]
        check(pings, f"no ping before the drop: {[f[1] for f in frames]}")
        check(pings[0][3] >= 0.25, f"pinged after {pings[0][3]:.2f}s, before the idle timeout")
        check(0.55 <= took <= 0.6 + T(1.5), f"a client that never answers dropped after "
              f"{took:.2f}s (--idle-timeout 300 --pong-timeout 300)")
        await asyncio.sleep(max(0, 1.5 - (time.monotonic() - start)))
        check(polite.open, "the client that answers pings was dropped")
        other = await s.ws("/ws/idle")
        await other.send("still there?")
        eq(await recv(polite), "still there?", "the answering client still receives")
        st = await asyncio.to_thread(s.stats)
        eq(st["idle_timeouts"], 1, "idle_timeouts")


@test(valgrind=True)
async def failed_connection_closed_without_waiting():
    # --close-timeout is long: the TCP close must not wait for it, nor for the client.
    async with Server("--close-timeout", "20000", "--max-message", "1000") as s:
        cases = [
            ("reserved opcode", lambda r: r.send_frame(0x3, b"x"), 1002),
            ("unmasked frame", lambda r: r.send_frame(0x1, b"x", mask=False), 1002),
            ("invalid UTF-8", lambda r: r.send_frame(0x1, b"\xc3\x28"), 1007),
            ("too big", lambda r: r.send_frame(0x2, b"z" * 1001), 1009),
            ("continuation first", lambda r: r.send_frame(0x0, b"x"), 1002),
            ("fragmented ping", lambda r: r.send_frame(0x9, b"x", fin=False), 1002),
        ]
        for what, act, code in cases:
            r = s.raw()
            eq(r.handshake("/ws/fail")[0], 101, "handshake")
            act(r)
            frames, took = await asyncio.to_thread(r.frames_until_eof, T(3))
            check(frames and frames[-1][1] == 8, f"{what}: no close frame")
            eq(close_code(frames[-1][2]), code, f"{what}: close code")
            check(took < T(1.5), f"{what}: EOF only {took:.2f}s after the failure")
        # A clean closing handshake started by the client: the server answers and closes TCP.
        r = s.raw()
        eq(r.handshake("/ws/fail")[0], 101, "handshake")
        r.send_frame(0x8, struct.pack("!H", 1000) + b"bye")
        frames, took = await asyncio.to_thread(r.frames_until_eof, T(3))
        eq([(f[1], close_code(f[2])) for f in frames], [(8, 1000)], "close answered")
        check(took < T(1.5), f"EOF {took:.2f}s after the closing handshake")


@test(valgrind=True)
async def graceful_shutdown():
    async with Server(shutdown_timeout_ms=4000) as s:
        clients = [await s.ws("/ws"), await s.ws("/ws"), await s.ws("/ws/room"),
                   await s.ws("/echo")]
        await clients[0].send("x")
        eq(await recv(clients[1]), "x", "before the shutdown")
        start = time.monotonic()
        await s.sigterm()
        codes = await asyncio.gather(*(closed_code(c) for c in clients))
        eq(codes, [1001] * len(clients), "close codes on SIGTERM")
        rc = await s.wait_exit(T(4))
        took = time.monotonic() - start
        eq(rc, 0, "exit status")
        check(took < 4 + T(1), f"exit took {took:.2f}s")
        check(any("shutting down" in line for line in s.lines), "the shutdown logged")
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
            raise Fail("the listener still accepts after the shutdown")
        except ConnectionRefusedError:
            pass


@test(valgrind=True)
async def graceful_shutdown_bounded_by_a_mute_client():
    async with Server(shutdown_timeout_ms=1500) as s:
        polite = await s.ws("/ws")
        mute = s.raw()
        eq(mute.handshake("/ws")[0], 101, "handshake")
        half = s.raw()                      # connected, no handshake yet
        await s.wait_stats(lambda st: st["tcp_connections"] == 4, "3 TCP connections (+ /stats)")
        start = time.monotonic()
        await s.sigterm()
        eq(await closed_code(polite), 1001, "polite client's close code")
        rc = await s.wait_exit(1.5 + T(2))
        took = time.monotonic() - start
        eq(rc, 0, "exit status")
        check(took >= 1.3, f"exited after {took:.2f}s without waiting for the mute client")
        frames, _ = await asyncio.to_thread(mute.frames_until_eof, T(2))
        eq([(f[1], close_code(f[2])) for f in frames], [(8, 1001)], "mute client's frames")
        await asyncio.to_thread(half.wait_eof, T(2))


# ---- Runner ----------------------------------------------------------------------------------------

async def run(selected):
    passed = failed = 0
    try:
        for name, fn, _ in selected:
            start = time.monotonic()
            try:
                await asyncio.wait_for(fn(), T(60))
                passed += 1
                print(f"PASS {name} ({time.monotonic() - start:.1f}s)", flush=True)
            except Exception as e:
                failed += 1
                if isinstance(e, asyncio.TimeoutError):
                    e = Fail(f"test timed out after {T(60):.0f}s")
                print(f"FAIL {name} ({time.monotonic() - start:.1f}s): {e}", flush=True)
                if not isinstance(e, Fail):
                    traceback.print_exc()
    finally:
        for p in PROCS:
            if p.returncode is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    return passed, failed


def kill_all_and_exit(signum, frame):
    for p in PROCS:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    print(f"killed by signal {signum}")
    print("0 passed, 1 failed")
    os._exit(1)


def main():
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
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    WSFWD = os.path.abspath(args[0])
    if use_valgrind:
        WRAPPER = VALGRIND
    SLOW = float(os.environ.get("WSFWD_E2E_SLOW", "10" if use_valgrind else "1"))
    selected = [t for t in TESTS if (t[2] or not use_valgrind) and
                (not names or any(n in t[0] for n in names))]
    print(f"wsfwd e2e (python websockets {websockets.__version__})"
          f"{' under valgrind' if use_valgrind else ''}: {len(selected)} tests", flush=True)
    passed, failed = asyncio.run(run(selected))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not selected else 0)


if __name__ == "__main__":
    main()
