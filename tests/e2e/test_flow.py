#!/usr/bin/python3
"""End-to-end tests of flow control (pacing, --slow-timeout, --max-queue), against the real wsfwd
binary, with Python `websockets` clients and raw sockets for the readers that never read.

    /usr/bin/python3 tests/e2e/test_flow.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

A member whose queue passes half of --max-queue is congested: while it is, the room's senders
are not read (TCP slows them down) until it drains to an eighth or leaves; one congested past
--slow-timeout gets the slow-reader policy. These tests flood rooms with 64 KiB messages and
check that healthy readers (a full-speed one, one throttled to 3 MiB/s) get everything, in
order, and are never closed, that the never-reader is cut in time, that a calm room beside a
flooded one stays fast, that an /echo client that does not read is paced and not closed, and
that the server's memory (VmRSS, sampled every 0.1 s) stays bounded. Same runner and options
as test_python.py (Server, Raw and helpers from harness.py); last line "N passed, N
failed".
"""
import asyncio
import bisect
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import T, Fail, Server, check, close_code, eq, frame, vm_rss  # noqa: E402

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from harness import test  # noqa: E402

KIB = 1024
MIB = 1024 * KIB
SIZE = 64 * KIB          # every flood message
END = 0xFFFFFFFF         # the sequence number of a sender's end marker
RATE = 3 * MIB           # the throttled reader's pace, bytes per second
# The server's VmRSS, natively: its baseline (~1-2 MiB) plus at most --max-queue (1 MiB) queued
# per connection (6 at most here), a 64 KiB read buffer and a message being assembled per
# client: under 12 MiB (seen: 2.5-3.5 MiB). 32 MiB leaves room for the allocator and still
# catches any buffering the flow control does not bound (a flood here moves 20-250 MiB). Under
# valgrind memcheck's RSS starts near 50 MiB and grows with its shadow memory and the 20 MB of
# freed blocks it holds back (--freelist-vol): its growth is bounded instead (seen: ~26 MiB).
RSS_BOUND = 32 * MIB
RSS_GROWTH_BOUND_VG = 64 * MIB
CUT_BY_TIME = re.compile(r"\(left room=(\S+)\) closed as a slow reader \(1008\): its backlog "
                         r"stayed past the high mark for --slow-timeout (\d+) ms")


def valgrind():
    return bool(harness.WRAPPER)


# The figures here (bytes read and written, rates, slack) are those of plain frames: the
# server answers no permessage-deflate offer. Flow control under compression, where one read
# can inflate into many times its size, is test_deflate.py's compressed_flood_paced.
PLAIN = ("--deflate", "off")


def msg(sender, seq, size=SIZE):
    """Flood message seq of a sender: its numbers, then a filler that changes with them."""
    return struct.pack("!II", sender, seq) + bytes([(sender * 31 + seq) % 251]) * (size - 8)


def end_msg(sender, count):
    return struct.pack("!III", sender, END, count)


def mib(n):
    return n / MIB


class Watch:
    """Samples the server while a test runs: VmRSS every 0.1 s (the peak), /stats every 0.1 s
    (when a client was first seen paced)."""

    def __init__(self, s):
        self.s = s
        self.pid = s.proc.pid
        self.rss0 = vm_rss(self.pid)
        self.peak = self.rss0
        self.rss_samples = 0
        self.t0 = None
        self.first_paced = None
        self.tasks = []

    async def _rss(self):
        while True:
            self.peak = max(self.peak, vm_rss(self.pid))
            self.rss_samples += 1
            await asyncio.sleep(0.1)

    async def _stats(self):
        while True:
            st = await asyncio.to_thread(self.s.stats)
            if st["flow"]["paced_now"] > 0 and self.first_paced is None and self.t0 is not None:
                self.first_paced = time.monotonic() - self.t0
            await asyncio.sleep(0.1)

    async def __aenter__(self):
        self.tasks = [asyncio.create_task(self._rss()), asyncio.create_task(self._stats())]
        return self

    async def __aexit__(self, *exc):
        for t in self.tasks:
            t.cancel()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        for r in results:   # a failed /stats request is a failure of the test
            if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError):
                if exc[0] is None:
                    raise r

    def check_rss(self):
        """The peak within the bound; its description."""
        check(self.rss_samples >= 5, f"only {self.rss_samples} RSS samples")
        if valgrind():
            growth = self.peak - self.rss0
            check(growth < RSS_GROWTH_BOUND_VG, f"wsfwd's RSS (under memcheck) grew by "
                  f"{mib(growth):.1f} MiB (from {mib(self.rss0):.1f}), bound "
                  f"{mib(RSS_GROWTH_BOUND_VG):.0f} MiB")
        else:
            check(self.peak < RSS_BOUND, f"wsfwd's RSS peaked at {mib(self.peak):.1f} MiB, bound "
                  f"{mib(RSS_BOUND):.0f} MiB")
        return (f"server RSS peak {mib(self.peak):.1f} MiB (at start {mib(self.rss0):.1f}, "
                f"{self.rss_samples} samples)")


async def run_all(*aws):
    """Run these together; the first failure cancels the others and is raised."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()
        return [t.result() for t in tasks]
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def flood(ws, sender, t_stop, cap):
    """Send numbered 64 KiB messages as fast as websockets lets it (each `await send` waits
    while the server does not read us) until t_stop or cap; then the end marker. The count."""
    n = 0
    try:
        while n < cap and time.monotonic() < t_stop:
            try:
                await asyncio.wait_for(ws.send(msg(sender, n)), T(15))
            except asyncio.TimeoutError:
                raise Fail(f"sender {sender}: one send waited more than {T(15):.0f}s (paced for "
                           f"good?) after {n} messages")
            n += 1
        await asyncio.wait_for(ws.send(end_msg(sender, n)), T(15))
    except ConnectionClosed:
        raise Fail(f"sender {sender} was closed ({ws.close_code} {ws.close_reason!r}) after "
                   f"{n} messages")
    return n


class Reader:
    """A member that reads the room's flood: from each sender, messages 0, 1, 2... in order,
    none missing, every payload intact, up to the sender's end marker. rate: bytes per second at
    most (recv, then sleep), None for full speed."""

    def __init__(self, name, ws, senders, rate=None):
        self.name = name
        self.ws = ws
        self.rate = rate
        self.next = {j: 0 for j in senders}
        self.ends = set()
        self.count = 0
        self.bytes = 0
        self.arrivals = []
        self.done_at = None

    async def run(self, bound):
        while len(self.ends) < len(self.next):
            try:
                m = await asyncio.wait_for(self.ws.recv(), bound)
            except asyncio.TimeoutError:
                raise Fail(f"{self.name}: nothing for {bound:.0f}s after {self.count} messages "
                           f"(next due per sender: {self.next})")
            except ConnectionClosed:
                raise Fail(f"{self.name} was closed ({self.ws.close_code} "
                           f"{self.ws.close_reason!r}) after {self.count} messages")
            check(isinstance(m, bytes) and len(m) >= 8, f"{self.name}: unexpected {m[:20]!r}")
            j, seq = struct.unpack("!II", m[:8])
            check(j in self.next, f"{self.name}: a message from sender {j} (its own, or no "
                  "sender's)")
            if seq == END:
                count = struct.unpack("!I", m[8:12])[0]
                eq(self.next[j], count, f"{self.name}: messages of sender {j} before its end "
                   "marker")
                self.ends.add(j)
                continue
            check(j not in self.ends, f"{self.name}: sender {j}'s message {seq} after its end")
            if seq != self.next[j]:
                raise Fail(f"{self.name}: sender {j}'s message {seq} where {self.next[j]} was due "
                           "(lost or out of order)")
            check(m == msg(j, seq), f"{self.name}: sender {j}'s message {seq} altered "
                  f"({len(m)} bytes)")
            self.next[j] += 1
            self.count += 1
            self.bytes += len(m)
            self.arrivals.append(time.monotonic())
            if self.rate:
                await asyncio.sleep(len(m) / self.rate)
        self.done_at = time.monotonic()
        return self.count

    def longest_gap(self, t0):
        times = [t0] + self.arrivals
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    def check_open(self):
        check(self.ws.open and self.ws.close_code is None, f"{self.name} was closed "
              f"({self.ws.close_code} {self.ws.close_reason!r})")


def read_until_close(raw, senders, bound):
    """What a never-reader finds once it reads: data frames (each sender's messages 0, 1, 2...
    in order, intact), then a close frame. Returns (number of data frames, close payload or None
    at EOF, arrival time of the close frame)."""
    raw.sock.settimeout(bound)
    n = 0
    want = {j: 0 for j in senders}
    while True:
        try:
            f = raw.read_frame()
        except socket.timeout:
            raise Fail(f"the never-reader: no close frame nor EOF within {bound:.1f}s after "
                       f"{n} data frames")
        if f is None:
            return n, None, time.monotonic()
        fin, op, payload = f
        if op == 8:
            return n, payload, time.monotonic()
        eq((fin, op), (True, 2), f"the never-reader's frame {n}")
        j, seq = struct.unpack("!II", payload[:8])
        check(j in want, f"the never-reader's frame {n}: from sender {j}")
        eq(seq, want[j], f"the never-reader's frame {n}: sender {j}'s message number")
        check(payload == msg(j, seq), f"the never-reader's frame {n} altered")
        want[j] += 1
        n += 1


async def never_reader_cut(s, raw, t0, slow_ms, senders=(0,)):
    """The never-reader reads only once the server logs its cut by --slow-timeout: then it must
    find what was queued for it and a close frame 1008; it answers, and EOF follows. Figures in
    seconds after t0 (the first send)."""
    limit = slow_ms / 1000 + T(2.5)
    while True:
        hits = [m for m in map(CUT_BY_TIME.search, s.lines) if m]
        if hits:
            break
        if time.monotonic() - t0 > limit:
            raise Fail(f"the never-reader was not cut within {limit:.2f}s of the first send "
                       f"(--slow-timeout {slow_ms}); last log lines: {s.lines[-5:]}")
        await asyncio.sleep(0.02)
    t_log = time.monotonic() - t0
    eq(int(hits[0].group(2)), slow_ms, "the --slow-timeout named by the log line")
    n, payload, at = await asyncio.to_thread(read_until_close, raw, senders, T(5))
    check(payload is not None, f"the never-reader got EOF after {n} data frames, no close frame")
    eq(close_code(payload), 1008, "the never-reader's close code")
    t_close = at - t0
    check(slow_ms / 1000 - 0.05 <= t_close <= limit,
          f"the never-reader's close frame came {t_close:.2f}s after the first send "
          f"(--slow-timeout {slow_ms}, bound {limit:.2f}s)")
    raw.send_frame(0x8, payload[:2])       # the closing handshake, then EOF
    await asyncio.to_thread(raw.wait_eof, T(3))
    return {"t_log": t_log, "t_close": t_close, "frames": n, "room": hits[0].group(1)}


async def throttled_ws(s, path):
    """A websockets client for a reader that reads slower than the flood: its socket's receive
    buffer fixed at 256 KiB (the kernel doubles it) and 4 messages queued in websockets at most.
    Left to autotuning, loopback's receive buffer grows to tcp_rmem's maximum (32 MiB here), and
    tens of MiB would wait in the kernel, out of the server's hands."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * KIB)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (s.host, s.port)),
                               T(5))
        return await s.ws(path, sock=sock, max_queue=4)
    except BaseException:
        sock.close()
        raise


def slack_bytes():
    """What the server can have read from the senders beyond what a throttled reader has read:
    the server's queue for it (under --max-queue, 1 MiB), the server socket's send buffer (at
    most the last of net.ipv4.tcp_wmem, 4 MiB here), the reader's receive buffer (2 x 256 KiB),
    websockets' 4 messages and its reads (~0.4 MiB): 5.9 MiB here, of which 5.3-5.5 MiB were
    seen filled; a quarter more for the kernel's accounting. (What a sender has sent and the
    server not yet read waits in the sender's send buffer and the server's receive buffer: not
    the server's doing, and left out.)"""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem = int(f.read().split()[2])
    except (OSError, IndexError, ValueError):
        wmem = 4 * MIB
    return int(1.25 * (MIB + wmem + 512 * KIB + 4 * SIZE + 128 * KIB))


async def members(s, n):
    await s.wait_stats(lambda st: st["connections"] == n, f"{n} connections")


def flow_of(st):
    return {k: st["flow"][k] for k in ("pace_events", "paced_now", "congested_now",
                                       "cut_by_time", "cut_by_bytes")}


# ---- Tests -------------------------------------------------------------------------------------

@test(valgrind=True)
async def flood_paced_healthy_readers_kept():
    """One sender floods a room with 64 KiB messages; a full-speed reader and a reader at 3 MiB/s
    get all of it, in order, never closed; the never-reader holds the room for --slow-timeout,
    then is closed with 1008; the sender is slowed down, never closed; memory stays bounded."""
    slow_ms = 2000
    flood_s, cap = (5, 300) if valgrind() else (8, 2000)
    async with Server("--slow-timeout", str(slow_ms), *PLAIN) as s:
        sender = await s.ws("/ws/flood")
        fast = Reader("the full-speed reader", await s.ws("/ws/flood"), [0])
        slow = Reader("the throttled reader", await throttled_ws(s, "/ws/flood"), [0], RATE)
        never = s.raw(rcvbuf=4096)
        eq(never.handshake("/ws/flood")[0], 101, "the never-reader's handshake")
        await members(s, 4)
        lag = []   # when the flood ended: (read by the server, by the throttled reader, time)

        async def send_all():
            n = await flood(sender, 0, t0 + flood_s, cap)
            t = time.monotonic() - t0
            st = await asyncio.to_thread(s.stats)
            lag.append((st["bytes_in"], slow.bytes, t))
            return n

        async with Watch(s) as watch:
            t0 = watch.t0 = time.monotonic()
            sent, _, _, cut = await run_all(send_all(), fast.run(T(15)), slow.run(T(15)),
                                            never_reader_cut(s, never, t0, slow_ms))
        rss = watch.check_rss()
        (server_read, slow_read, t_sent), = lag
        behind = server_read - slow_read
        took = max(fast.done_at, slow.done_at) - t0
        for r in (fast, slow):
            eq(r.count, sent, f"messages {r.name} got")
            r.check_open()
        check(sender.open, f"the sender was closed ({sender.close_code})")
        gap = fast.longest_gap(t0)
        check(gap >= 0.5 * slow_ms / 1000, f"the full-speed reader's longest wait was "
              f"{gap:.2f}s: the never-reader did not hold the room up (--slow-timeout {slow_ms})")
        st = await s.wait_stats(lambda st: st["connections"] == 3, "3 connections after the cut")
        flow = flow_of(st)
        check(flow["pace_events"] >= 1, f"no pace event: {flow}")
        eq((flow["cut_by_time"], flow["cut_by_bytes"], st["slow_closes"]), (1, 0, 1),
           "cut_by_time, cut_by_bytes, slow_closes")
        eq((flow["paced_now"], flow["congested_now"]), (0, 0), "paced_now, congested_now after")
        eq(cut["room"], "flood", "the room named by the cut's log line")
        check(behind <= slack_bytes(), f"when the flood ended the server had read "
              f"{mib(behind):.1f} MiB more from the sender than the throttled reader had read "
              f"(bound {mib(slack_bytes()):.1f} MiB): the sender was not slowed to its speed")
        print(f"    {sent} messages ({mib(sent * SIZE):.0f} MiB) sent in {t_sent:.1f}s "
              f"({mib(sent * SIZE) / t_sent:.1f} MiB/s); then the server had read "
              f"{mib(server_read):.1f} MiB of it, the throttled reader "
              f"{mib(slow_read):.1f} MiB (bound on the difference {mib(slack_bytes()):.1f}); "
              f"all read by both healthy readers after {took:.1f}s (throttled: "
              f"{mib(slow.bytes) / (slow.done_at - t0):.1f} MiB/s on average); never-reader "
              f"cut {cut['t_log']:.2f}s after the first send, its close 1008 at "
              f"{cut['t_close']:.2f}s after {cut['frames']} data frames; full-speed reader's "
              f"longest wait {gap:.2f}s; first seen paced "
              f"{'never' if watch.first_paced is None else f'{watch.first_paced:.2f}s'} after the "
              f"first send; {flow}; {rss}", flush=True)


@test()
async def three_flooding_senders():
    """Three senders flood one room (each reading the others' messages too): every member gets
    each sender's messages in order, none missing; the healthy readers and the senders are never
    closed; the never-reader is cut by time, nobody by bytes."""
    slow_ms = 2000
    flood_s, cap = 6, 2000
    async with Server("--slow-timeout", str(slow_ms), *PLAIN) as s:
        senders = [await s.ws("/ws/three") for _ in range(3)]
        fast = Reader("the full-speed reader", await s.ws("/ws/three"), [0, 1, 2])
        slow = Reader("the throttled reader", await throttled_ws(s, "/ws/three"),
                      [0, 1, 2], RATE)
        back = [Reader(f"sender {j} (reading)", senders[j], [k for k in range(3) if k != j])
                for j in range(3)]
        never = s.raw(rcvbuf=4096)
        eq(never.handshake("/ws/three")[0], 101, "the never-reader's handshake")
        await members(s, 6)
        lag = []
        finished = []

        async def send_all(j):
            n = await flood(senders[j], j, t0 + flood_s, cap)
            finished.append(n)
            if len(finished) == 3:
                t = time.monotonic() - t0
                st = await asyncio.to_thread(s.stats)
                lag.append((st["bytes_in"], slow.bytes, t))
            return n

        async with Watch(s) as watch:
            t0 = watch.t0 = time.monotonic()
            res = await run_all(
                *(send_all(j) for j in range(3)),
                fast.run(T(15)), slow.run(T(15)), *(r.run(T(15)) for r in back),
                never_reader_cut(s, never, t0, slow_ms, senders=(0, 1, 2)))
        rss = watch.check_rss()
        sent, cut = res[:3], res[-1]
        for r in [fast, slow] + back:
            for j, n in r.next.items():
                eq(n, sent[j], f"{r.name}: messages of sender {j}")
            r.check_open()
        for j in range(3):
            check(sent[j] > 0, f"sender {j} sent nothing in {flood_s}s")
        (server_read, slow_read, t_sent), = lag
        behind = server_read - slow_read
        check(behind <= slack_bytes(), f"when the flood ended the server had read "
              f"{mib(behind):.1f} MiB more from the senders than the throttled reader had read "
              f"(bound {mib(slack_bytes()):.1f} MiB): the senders were not slowed to its speed")
        st = await s.wait_stats(lambda st: st["connections"] == 5, "5 connections after the cut")
        flow = flow_of(st)
        check(flow["pace_events"] >= 1, f"no pace event: {flow}")
        eq((flow["cut_by_time"], flow["cut_by_bytes"], st["slow_closes"]), (1, 0, 1),
           "cut_by_time, cut_by_bytes, slow_closes")
        print(f"    sent {sent} messages ({mib(sum(sent) * SIZE):.0f} MiB) in {t_sent:.1f}s; "
              f"then the server had read {mib(server_read):.1f} MiB, the throttled reader "
              f"{mib(slow_read):.1f} MiB; all read by every member after "
              f"{max(r.done_at for r in [fast, slow] + back) - t0:.1f}s; "
              f"never-reader's close 1008 at {cut['t_close']:.2f}s; {flow}; {rss}", flush=True)


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def room_a_child(url, flood_s, cap):
    """Room A's sender and full-speed reader, run by calm_room_stays_fast in a process of their
    own (this file with --room-a-child), so that room B's latency, measured in the test's
    process, is the server's and not that of an event loop busy with A's 64 KiB messages.
    Prints "ready" once both are in, floods on a line on stdin, prints its figures as JSON."""
    kw = {"ping_interval": None, "max_size": None, "open_timeout": T(5), "close_timeout": T(3)}
    sender = await websockets.connect(url, **kw)
    fast = Reader("A's full-speed reader", await websockets.connect(url, **kw), [0])
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    t0 = time.monotonic()
    out = {}
    try:
        took = []

        async def send_all():
            n = await flood(sender, 0, t0 + flood_s, cap)
            took.append(time.monotonic() - t0)
            return n

        out["sent"], out["got"] = await run_all(send_all(), fast.run(T(15)))
        out["took"] = took[0]
        fast.check_open()
        check(sender.open, f"A's sender was closed ({sender.close_code})")
    except Exception as e:   # noqa: BLE001  (reported by the test)
        out["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out), flush=True)
    for c in (sender, fast.ws):
        await c.close()


@test()
async def calm_room_stays_fast():
    """Room A is flooded (a sender and a full-speed reader in a process of their own, and a
    never-reader that holds A for --slow-timeout, then A at full speed); room B beside it
    exchanges small timestamped messages, 50 a second each way: B's latency stays low (the
    bound: 100 ms at p99, a few scheduler slices of a busy 2-core machine; seen: 10-40 ms), and
    nothing of B is lost or closed."""
    slow_ms = 2000
    flood_s, cap, period = 6, 4000, 0.02
    bound_p99 = 0.1
    async with Server("--slow-timeout", str(slow_ms), *PLAIN) as s:
        child = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--room-a-child", s.url + "/ws/A",
            str(flood_s), str(cap), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, start_new_session=True,
            preexec_fn=harness.die_with_parent)
        harness.PROCS.append(child)
        try:
            ready = await asyncio.wait_for(child.stdout.readline(), T(10))
            eq(ready, b"ready\n", "room A's process")
            never = s.raw(rcvbuf=4096)
            eq(never.handshake("/ws/A")[0], 101, "the never-reader's handshake")
            b = [await s.ws("/ws/B"), await s.ws("/ws/B")]
            await members(s, 5)
            lat = [[], []]   # (when sent, latency) of the messages b[k] got

            async def b_send(k, t_stop):
                n = 0
                due = time.monotonic()
                while time.monotonic() < t_stop:
                    await b[k].send(struct.pack("!Id", n, time.monotonic()) + b"." * 52)
                    n += 1
                    due += period
                    await asyncio.sleep(max(0, due - time.monotonic()))
                await b[k].send(struct.pack("!Id", END, 0.0))
                return n

            async def b_recv(k):
                want = 0
                while True:
                    try:
                        m = await asyncio.wait_for(b[k].recv(), T(5))
                    except asyncio.TimeoutError:
                        raise Fail(f"B's member {k}: nothing for {T(5):.0f}s after {want} "
                                   "messages")
                    except ConnectionClosed:
                        raise Fail(f"B's member {k} was closed ({b[k].close_code}) after {want}")
                    now = time.monotonic()
                    n, t = struct.unpack("!Id", m[:12])
                    if n == END:
                        return want
                    eq(n, want, f"B's member {k}: the other's message number")
                    lat[k].append((t, now - t))
                    want += 1

            async def room_a():
                line = await asyncio.wait_for(child.stdout.readline(), T(30))
                out = json.loads(line or b"{}")
                check("error" not in out, f"room A: {out.get('error')}")
                check("sent" in out, f"room A's process said {line!r}")
                eq(out["got"], out["sent"], "A's full-speed reader's messages")
                return out

            async with Watch(s) as watch:
                child.stdin.write(b"go\n")
                await child.stdin.drain()
                t0 = watch.t0 = time.monotonic()
                a, cut, b0_sent, b1_sent, b0_got, b1_got = await run_all(
                    room_a(), never_reader_cut(s, never, t0, slow_ms), b_send(0, t0 + flood_s),
                    b_send(1, t0 + flood_s), b_recv(0), b_recv(1))
            eq(await asyncio.wait_for(child.wait(), T(10)), 0, "room A's process exit status")
        finally:
            if child.returncode is None:
                os.killpg(child.pid, signal.SIGKILL)
                await child.wait()
        rss = watch.check_rss()
        eq((b0_got, b1_got), (b1_sent, b0_sent), "B's messages received")
        for k in range(2):
            check(b[k].open, f"B's member {k} was closed ({b[k].close_code})")
        cut_at = t0 + cut["t_log"]
        all_lat = [x for side in lat for _, x in side]
        held = [x for side in lat for t, x in side if t < cut_at]
        free = [x for side in lat for t, x in side if t >= cut_at]
        check(len(held) >= 20 and len(free) >= 20, f"B's samples: {len(held)} while A was held, "
              f"{len(free)} after")
        p50, p99, worst = percentile(all_lat, 50), percentile(all_lat, 99), max(all_lat)
        st = await asyncio.to_thread(s.stats)
        flow = flow_of(st)
        check(flow["pace_events"] >= 1, f"room A was never paced: {flow}")
        eq((flow["cut_by_time"], flow["cut_by_bytes"], st["slow_closes"]), (1, 0, 1),
           "cut_by_time, cut_by_bytes, slow_closes")
        print(f"    room A: {a['sent']} messages ({mib(a['sent'] * SIZE):.0f} MiB) in "
              f"{a['took']:.1f}s, held {cut['t_log']:.2f}s by its never-reader; room B: "
              f"{len(all_lat)} messages, latency p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} "
              f"ms, max {worst * 1000:.1f} ms (p99 while A was held "
              f"{percentile(held, 99) * 1000:.1f} ms, after {percentile(free, 99) * 1000:.1f} "
              f"ms); {rss}", flush=True)
        check(p99 < bound_p99, f"room B's p99 latency {p99 * 1000:.1f} ms (bound "
              f"{bound_p99 * 1000:.0f} ms; p50 {p50 * 1000:.1f} ms, max {worst * 1000:.1f} ms)")


class Writer(threading.Thread):
    """Writes these bytes to a raw socket as the kernel takes them, until done, past the bound,
    or the socket closed; `sent` is how many it took so far."""

    def __init__(self, raw, data, bound):
        super().__init__(daemon=True)
        self.raw, self.data, self.bound = raw, memoryview(data), bound
        self.sent = 0
        self.error = None

    def run(self):
        deadline = time.monotonic() + self.bound
        try:
            while self.sent < len(self.data):
                if time.monotonic() > deadline:
                    raise Fail(f"the writer still had {len(self.data) - self.sent} bytes to "
                               f"send after {self.bound:.0f}s")
                try:
                    self.sent += self.raw.sock.send(self.data[self.sent:self.sent + 256 * KIB])
                except (socket.timeout, TimeoutError, BlockingIOError):
                    pass
        except Exception as e:   # noqa: BLE001  (reported by the test)
            self.error = e


@test(valgrind=True)
async def echo_non_reader_paced_not_closed():
    """An /echo client writes 64 KiB messages and reads none of its echoes: past half of
    --max-queue the server stops reading it (the client's writes block), for longer than twice
    --slow-timeout, without closing it; once it reads, it gets every echo in order."""
    slow_ms = 1500
    n = 200   # 12.5 MiB: more than the kernel buffers take (4-5 MiB seen) once not read
    async with Server("--slow-timeout", str(slow_ms), *PLAIN) as s:
        e = s.raw(rcvbuf=4096)
        e.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * KIB)
        eq(e.handshake("/echo")[0], 101, "the /echo handshake")
        frames = [frame(0x2, msg(0, i)) for i in range(n)]
        ends = []
        for f in frames:
            ends.append((ends[-1] if ends else 0) + len(f))
        e.sock.settimeout(0.1)
        writer = Writer(e, b"".join(frames), T(30))
        async with Watch(s) as watch:
            t0 = watch.t0 = time.monotonic()
            writer.start()
            st = await s.wait_stats(lambda st: st["flow"]["paced_now"] >= 1, "the echo client "
                                    "paced")
            t_paced = time.monotonic() - t0
            await asyncio.sleep(0.3)
            held_from = await asyncio.to_thread(s.stats)
            written_from = writer.sent
            # More than twice --slow-timeout (plus a timer tick): still open, still paced, not
            # read (bytes_in does not move), and the client's writes are stuck.
            hold = 2 * slow_ms / 1000 + 1.0
            while time.monotonic() - t0 < t_paced + 0.3 + hold:
                await asyncio.sleep(0.25)
                st = await asyncio.to_thread(s.stats)
                check(st["flow"]["paced_now"] >= 1, f"the echo client no longer paced after "
                      f"{time.monotonic() - t0:.2f}s, before it read: {flow_of(st)}")
                eq(st["bytes_in"], held_from["bytes_in"], "bytes_in while paced (the server "
                   "reads the paced client)")
                eq(st["connections"], 1, "connections while paced")
                check(writer.error is None, f"the writer: {writer.error}")
            held = time.monotonic() - t0 - t_paced
            flow = flow_of(st)
            eq((flow["cut_by_time"], flow["cut_by_bytes"], st["slow_closes"]), (0, 0, 0),
               f"cut_by_time, cut_by_bytes, slow_closes after {held:.1f}s paced")
            check(not any("slow reader" in line for line in s.lines),
                  f"a slow-reader log line: {[ln for ln in s.lines if 'slow reader' in ln]}")
            stuck_at = writer.sent
            check(stuck_at < len(writer.data), f"the client wrote all {n} messages "
                  f"({mib(len(writer.data)):.1f} MiB) while paced: not held by TCP")
            done_when_paced = bisect.bisect_right(ends, stuck_at)

            # Now it reads: every echo, in order, intact; its writes go through meanwhile.
            def read_all():
                e.sock.settimeout(T(10))
                for i in range(n):
                    f = e.read_frame()
                    check(f is not None, f"EOF after {i} of {n} echoes")
                    check(f[1] != 8, f"a close frame ({close_code(f[2])}) after {i} echoes")
                    eq((f[0], f[1]), (True, 2), f"echo {i}'s frame")
                    eq(struct.unpack("!II", f[2][:8]), (0, i), f"echo {i}'s numbers")
                    check(f[2] == msg(0, i), f"echo {i} altered ({len(f[2])} bytes)")

            t_read = time.monotonic()
            await asyncio.wait_for(asyncio.to_thread(read_all), T(30))
            t_read = time.monotonic() - t_read
            writer.join(T(5))
            check(writer.error is None, f"the writer: {writer.error}")
            eq(writer.sent, len(writer.data), "bytes the client wrote in the end")
        rss = watch.check_rss()
        st = await s.wait_stats(lambda st: st["flow"]["paced_now"] == 0, "no one paced")
        flow = flow_of(st)
        check(flow["pace_events"] >= 1, f"no pace event: {flow}")
        eq((flow["cut_by_time"], flow["cut_by_bytes"], st["slow_closes"], st["connections"],
            st["echoed"]), (0, 0, 0, 1, n), "cut_by_time, cut_by_bytes, slow_closes, "
           "connections, echoed")
        # A clean closing handshake ends it.
        e.sock.settimeout(T(5))
        e.send(frame(0x8, struct.pack("!H", 1000)))
        frames_after, _ = await asyncio.to_thread(e.frames_until_eof, T(3))
        eq([(f[1], close_code(f[2])) for f in frames_after], [(8, 1000)], "close answered")
        print(f"    paced {t_paced:.2f}s after its first write, held {held:.1f}s (--slow-timeout "
              f"{slow_ms}) with {done_when_paced} of {n} messages "
              f"({mib(stuck_at):.1f} MiB) written ({(stuck_at - written_from) / KIB:.0f} KiB "
              f"of it while held, in kernel buffers: the server read none), "
              f"{mib(held_from['bytes_in']):.1f} MiB read by the server; then all {n} echoes "
              f"read in {t_read:.2f}s; {flow}; {rss}", flush=True)


@test()
async def slow_policy_drop_by_time():
    """--slow-policy drop --slow-timeout 1500: the never-reader holds the room for about 1.5 s,
    then the room's messages skip it and the room goes on; it is not closed, and once it reads
    it finds an ordered subsequence of the flood, then what comes after."""
    slow_ms = 1500
    flood_s, cap = 6, 2000
    async with Server("--slow-policy", "drop", "--slow-timeout", str(slow_ms), *PLAIN) as s:
        sender = await s.ws("/ws/drop")
        fast = Reader("the full-speed reader", await s.ws("/ws/drop"), [0])
        never = s.raw(rcvbuf=4096)
        eq(never.handshake("/ws/drop")[0], 101, "the never-reader's handshake")
        await members(s, 3)

        async def dropped_at(t0):
            limit = slow_ms / 1000 + T(2.5)
            while True:
                st = await asyncio.to_thread(s.stats)
                if st["flow"]["cut_by_time"] >= 1:
                    return time.monotonic() - t0
                check(time.monotonic() - t0 < limit, f"no cut by time within {limit:.2f}s: "
                      f"{flow_of(st)}")
                await asyncio.sleep(0.05)

        flood_took = []

        async def send_all():
            n = await flood(sender, 0, t0 + flood_s, cap)
            flood_took.append(time.monotonic() - t0)
            return n

        async with Watch(s) as watch:
            t0 = watch.t0 = time.monotonic()
            sent, _, t_drop = await run_all(send_all(), fast.run(T(15)), dropped_at(t0))
        rss = watch.check_rss()
        check(slow_ms / 1000 - 0.05 <= t_drop <= slow_ms / 1000 + T(2.5),
              f"the room's messages skip the never-reader {t_drop:.2f}s after the first send "
              f"(--slow-timeout {slow_ms})")
        eq(fast.count, sent, "messages the full-speed reader got")
        fast.check_open()
        check(sender.open, f"the sender was closed ({sender.close_code})")
        gap = fast.longest_gap(t0)
        after = sum(1 for t in fast.arrivals if t > t0 + t_drop)
        check(gap >= 0.5 * slow_ms / 1000, f"the full-speed reader's longest wait was {gap:.2f}s:"
              f" the never-reader did not hold the room up (--slow-timeout {slow_ms})")
        check(after >= 10, f"only {after} messages reached the room after the cut")
        check(any("is a slow reader: its room's messages skip it" in line for line in s.lines),
              "the drop is logged")

        def drain():
            """The never-reader reads now: what was queued for it, to a quiet 0.5 s."""
            got = []
            never.sock.settimeout(0.5)
            deadline = time.monotonic() + T(15)
            while time.monotonic() < deadline:
                try:
                    f = never.read_frame()
                except (socket.timeout, TimeoutError):
                    return got
                check(f is not None, f"EOF for the never-reader after {len(got)} frames")
                check(f[1] != 8, f"the never-reader was closed ({close_code(f[2])}) after "
                      f"{len(got)} frames")
                eq((f[0], f[1]), (True, 2), f"the never-reader's frame {len(got)}")
                j, seq = struct.unpack("!II", f[2][:8])
                if seq == END:
                    eq(f[2], end_msg(0, sent), "the never-reader's end marker")
                else:
                    check(f[2] == msg(j, seq), f"the never-reader's frame {len(got)} (message "
                          f"{seq}) altered")
                got.append(seq)
            raise Fail("the never-reader's queue never ran dry")

        idx = await asyncio.to_thread(drain)
        got_end = bool(idx) and idx[-1] == END
        if got_end:
            idx.pop()
        check(idx and idx[0] == 0, f"the never-reader's first messages: {idx[:5]}")
        check(all(x < y for x, y in zip(idx, idx[1:])), f"the never-reader's messages out of "
              f"order: {idx[:40]}")
        check(len(idx) < sent, "nothing was dropped for the never-reader")
        st = await asyncio.to_thread(s.stats)
        flow = flow_of(st)
        check(flow["pace_events"] >= 1, f"no pace event: {flow}")
        eq((flow["cut_by_time"], flow["cut_by_bytes"], st["slow_closes"]), (1, 0, 0),
           "cut_by_time, cut_by_bytes, slow_closes")
        eq(st["slow_drops"], sent + 1 - len(idx) - got_end, "slow_drops: the messages the "
           "never-reader missed (the end marker counted)")
        eq(st["connections"], 3, "connections")
        # Drained, it is a member like the others again.
        await sender.send(b"after")
        eq(await harness.recv(fast.ws), b"after", "the full-speed reader's next message")
        never.sock.settimeout(T(5))
        eq(await asyncio.to_thread(never.read_frame), (True, 2, b"after"),
           "the never-reader's next frame once drained")
        print(f"    {sent} messages sent in {flood_took[0]:.1f}s; the never-reader skipped from "
              f"{t_drop:.2f}s after the first send; the full-speed reader's longest wait "
              f"{gap:.2f}s, {after} messages after the cut; the never-reader got {len(idx)}"
              f"{' and the end marker' if got_end else ''}, "
              f"{st['slow_drops']} dropped; {flow}; {rss}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--room-a-child"]:
        asyncio.run(room_a_child(sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
    else:
        harness.main(__doc__)
