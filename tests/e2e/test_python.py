#!/usr/bin/python3
"""End-to-end tests of the wsfwd server, driven by Python `websockets` (Debian python3-websockets,
asyncio API) and by raw sockets where a client must misbehave.

    /usr/bin/python3 tests/e2e/test_python.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

Each test starts its own wsfwd on 127.0.0.1:0 (the port is read from the "listening on" log
line), and stops it with SIGTERM at the end, requiring exit status 0. With --valgrind the
server runs under valgrind memcheck (any error or definite/indirect leak makes it exit 99), only
the tests marked for it run, and every time bound is multiplied by WSFWD_E2E_SLOW (default 10
under valgrind, 1 otherwise). The last line printed is "N passed, N failed" (", N skipped" added
when a test could not run on this machine, e.g. without IPv6 on ::1; under CI=true that is a
failure instead); the exit status is non-zero when any test failed.
"""
import asyncio
import os
import random
import re
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (T, Fail, Raw, Server, check, close_code, closed_code, eq,  # noqa: E402
                     expect_silence, ipv6_loopback, main, need, recv, run_wsfwd, status_of, test)

from websockets.exceptions import ConnectionClosed, InvalidStatusCode  # noqa: E402


# ---- Tests -----------------------------------------------------------------------------------------

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
        no_auth = {k: 0 for k in ("missing", "too_long", "malformed", "alg", "signature",
                                  "claims", "expired", "not_yet_valid", "room")}
        want = {"400": 4, "401": 0, "403": 2, "404": 2, "405": 1, "426": 1, "431": 1,
                "503": 1, "other": 0, "fd_limit": 0, "per_address": 0, "auth": no_auth}
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
        eq([close_code(f[2]) for f in frames if f[1] == 8], [1001], "close code before the drop")
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


# ---- The command line, IPv6, signals ---------------------------------------------------------------

def options_of_source():
    """Every option in cli/options.c's table (.name and .alias), when the source tree is at
    hand."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cli",
                        "options.c")
    try:
        with open(path, encoding="utf-8") as f:
            src = f.read()
    except OSError:
        return None
    return sorted(set(re.findall(r'\.(?:name|alias) = "(--?[a-z][a-z-]*)"', src)))


@test(valgrind=True)
async def bind_errors_exit_with_one_line():
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        busy = f"127.0.0.1:{held.getsockname()[1]}"
        cases = [
            ([busy], busy, "in use"),
            (["127.0.0.1:0", "--listen", busy], busy, "in use"),   # the first one did bind
            (["999.1.1.1:80"], "999.1.1.1:80", None),
            (["nonsense"], "nonsense", None),
            (["127.0.0.1:0", "--listen", "nonsense"], "nonsense", None),
            (["127.0.0.1:65536"], "127.0.0.1:65536", None),
            (["[::1]80"], "[::1]80", None),
            (["localhost:80"], "localhost:80", None),
        ]
        for listen, culprit, words in cases:
            rc, _, err, took = await run_wsfwd(["--listen"] + listen)
            what = "--listen " + " --listen ".join(listen[::2])
            check(rc not in (0, None) and 0 < rc < 128,
                  f"{what}: exit status {rc} (want an error status, not 0 nor a signal)\n"
                  + "\n".join(err))
            eq(len(err), 1, f"{what}: lines on stderr {err}")
            check(culprit in err[0], f"{what}: the line does not name {culprit}: {err[0]!r}")
            if words:
                check(words in err[0].lower(), f"{what}: the line does not say '{words}': "
                      f"{err[0]!r}")
            check(took < T(2), f"{what}: exit took {took:.2f}s")
    finally:
        held.close()


@test(valgrind=True)
async def help_version_and_unknown_options():
    rc, out, err, _ = await run_wsfwd(["--help"])
    eq(rc, 0, "--help exit status")
    eq(err, [], "--help stderr")
    rc2, out2, _, _ = await run_wsfwd(["-h"])
    eq((rc2, out2), (0, out), "-h is --help")
    opts = options_of_source()
    if opts is None:   # no source tree: the options of the day
        opts = ["--listen", "--max-connections", "--max-message", "--max-queue",
                "--slow-policy", "--max-header", "--max-rooms", "--max-room-name",
                "--max-room-members", "--allow-origin", "--handshake-timeout",
                "--idle-timeout", "--pong-timeout", "--close-timeout", "--shutdown-timeout",
                "--log-level", "--version", "--help", "-h"]
    check(len(opts) >= 15, f"options found in cli/options.c: {opts}")
    # Each option's entry: its line and the indented lines after it, up to the next option.
    entries = {}
    for block in re.split(r"\n(?=\s{2}-)", out):
        m = re.match(r"\s*((?:-\w, )?--[a-z-]+)", block)
        if m:
            for name in m.group(1).split(", "):
                entries[name] = block
    for name in opts:
        check(name in entries, f"--help does not list {name}:\n{out}")
        if name not in ("--version", "--help", "-h"):
            check("default" in entries[name], f"--help gives no default for {name}: "
                  f"{entries[name]!r}")
    rc, out, err, _ = await run_wsfwd(["--version"])
    eq((rc, err), (0, []), "--version exit status and stderr")
    check(re.fullmatch(r"wsfwd \d+\.\d+\.\d+\S*\n", out), f"--version printed {out!r}")
    async with Server() as s:
        eq(out.split()[1], (await asyncio.to_thread(s.stats))["version"], "/stats version")
    for args, culprit in ((["--bogus"], "--bogus"), (["--bogus=1"], "--bogus"),
                          (["--listen=127.0.0.1:0", "--nope", "1"], "--nope"),
                          (["stray"], "stray"), (["--max-rooms"], "--max-rooms"),
                          (["--max-rooms", "many"], "many"),
                          (["--slow-policy", "wait"], "wait")):
        rc, out, err, took = await run_wsfwd(args)
        eq(rc, 2, f"exit status of wsfwd {' '.join(args)}")
        eq(out, "", f"stdout of wsfwd {' '.join(args)}")
        check(len(err) == 1 and culprit in err[0],
              f"wsfwd {' '.join(args)}: want one line naming {culprit!r}, got {err}")
        check(took < T(2), f"wsfwd {' '.join(args)} took {took:.2f}s")


@test(valgrind=True)
async def ipv6_and_ipv4_share_the_pools():
    need(ipv6_loopback(), "IPv6 is not available on ::1 on this machine")
    async with Server(listen=["[::1]:0"]) as s:
        eq([h for h, _ in s.bound], ["::1"], "bound addresses")
        a, b = await s.ws("/ws"), await s.ws("/ws/six")
        c, d = await s.ws("/ws"), await s.ws("/ws/six")
        await a.send("v6 global")
        eq(await recv(c), "v6 global", "global pool over IPv6")
        await d.send("v6 room")
        eq(await recv(b), "v6 room", "room over IPv6")
        eq(s.get("/healthz")[0], 200, "/healthz over IPv6")
    async with Server(listen=["127.0.0.1:0", "[::1]:0"]) as s:
        eq(sorted(h for h, _ in s.bound), ["127.0.0.1", "::1"], "bound addresses")
        v4 = [await s.ws("/ws", host="127.0.0.1") for _ in range(2)]
        v6 = [await s.ws("/ws", host="::1") for _ in range(2)]
        r4, r6 = await s.ws("/ws/both", host="127.0.0.1"), await s.ws("/ws/both", host="::1")
        await v4[0].send("from v4")
        for c in (v4[1], *v6):
            eq(await recv(c), "from v4", "an IPv4 sender's message")
        await v6[0].send("from v6")
        for c in (v4[0], v4[1], v6[1]):
            eq(await recv(c), "from v6", "an IPv6 sender's message")
        await r6.send(b"room v6")
        eq(await recv(r4), b"room v6", "a room shared across both listeners")
        await r4.send(b"room v4")
        eq(await recv(r6), b"room v4", "a room shared across both listeners")
        for c in (*v4, *v6):
            await expect_silence(c, 0.1)
        raw = s.raw(host="::1")
        eq(raw.handshake("/ws/both")[0], 101, "raw handshake over IPv6")
        st = await asyncio.to_thread(s.stats, "::1")
        eq((st["connections"], st["global_members"], st["rooms"]), (7, 4, 1),
           "/stats over IPv6: connections, global members, rooms")


@test(valgrind=True)
async def sigint_like_sigterm():
    async with Server(shutdown_timeout_ms=4000) as s:
        clients = [await s.ws("/ws"), await s.ws("/ws/room"), await s.ws("/echo")]
        raw = s.raw()
        eq(raw.handshake("/ws/room")[0], 101, "handshake")
        await clients[0].send("x")  # a sign of life first
        await s.wait_stats(lambda st: st["connections"] == 4, "4 connections")
        start = time.monotonic()
        s.proc.send_signal(signal.SIGINT)
        codes = await asyncio.gather(*(closed_code(c) for c in clients))
        eq(codes, [1001] * len(clients), "close codes on SIGINT")
        f = await asyncio.to_thread(raw.read_frame)
        eq((f[1], close_code(f[2])), (8, 1001), "raw client's frame on SIGINT")
        raw.send_frame(0x8, f[2][:2])            # its answer: the closing handshake is done
        frames, _ = await asyncio.to_thread(raw.frames_until_eof, T(2))
        eq(frames, [], "raw client's frames after the closing handshake")
        raw.close()   # as clients do at EOF (wsfwd drains until the peer's FIN)
        rc = await s.wait_exit(T(4))
        eq(rc, 0, "exit status after SIGINT")
        check(time.monotonic() - start < T(4), "exit within the bound")
        check(any("shutting down" in line for line in s.lines), "the shutdown logged")
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
            raise Fail("the listener still accepts after SIGINT")
        except ConnectionRefusedError:
            pass


# ---- Slow readers: drop ----------------------------------------------------------------------------

@test(valgrind=True)
async def slow_policy_drop_keeps_the_stalled_reader():
    """--slow-policy drop: the stalled reader is never closed; messages that would overflow its
    queue are dropped whole for it alone. Once it reads, it gets a subsequence of what was sent,
    in order, every frame intact, then the messages sent after."""
    size, window, cap = 8192, 4, 8192
    async with Server("--max-queue", "65536", "--slow-policy", "drop") as s:
        stall = s.raw(rcvbuf=4096)
        eq(stall.handshake("/ws/drop")[0], 101, "stalled reader's handshake")
        sender = await s.ws("/ws/drop")
        fast = [await s.ws("/ws/drop", max_queue=None) for _ in range(2)]
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
            return struct.pack("!I", i) + bytes([i % 251]) * (size - 4)

        async def send_window(i):
            async with progress:
                await asyncio.wait_for(progress.wait_for(
                    lambda: min(len(g) for g in got) >= i - window), T(10))
            await sender.send(msg(i))

        readers = [asyncio.create_task(reader(k)) for k in range(2)]
        sent = 0
        try:
            drops = 0
            while sent < cap and drops < 200:
                for _ in range(64):
                    await send_window(sent)
                    sent += 1
                st = await asyncio.to_thread(s.stats)
                drops = st["slow_drops"]
                eq(st["slow_closes"], 0, "slow_closes with --slow-policy drop")
            check(drops >= 200, f"only {drops} drops after {sent} messages of {size} bytes")

            def drain():
                """The stalled reader reads now: what was queued for it, to a quiet 0.5 s."""
                frames = []
                stall.sock.settimeout(0.5)
                deadline = time.monotonic() + T(15)
                while time.monotonic() < deadline:
                    try:
                        f = stall.read_frame()
                    except (socket.timeout, TimeoutError):
                        return frames
                    check(f is not None, f"EOF for the stalled reader after {len(frames)} frames")
                    frames.append(f)
                raise Fail("the stalled reader's queue never ran dry")

            frames = await asyncio.to_thread(drain)
            stall.sock.settimeout(T(5))
            idx = []
            for k, (fin, op, payload) in enumerate(frames):
                check(op != 8, f"the stalled reader was closed ({close_code(payload)}) "
                      f"after {k} frames")
                eq((fin, op), (True, 2), f"stalled reader's frame {k}")
                i = struct.unpack("!I", payload[:4])[0]
                check(payload == msg(i), f"stalled reader's frame {k} (message {i}) is torn or "
                      f"altered: {len(payload)} bytes")
                idx.append(i)
            check(idx, "the stalled reader got nothing")
            eq(idx[0], 0, "the stalled reader's first message (its queue was empty)")
            check(all(x < y for x, y in zip(idx, idx[1:])), "the stalled reader's messages are "
                  f"out of order: {idx[:50]}")
            check(len(idx) < sent, "nothing was dropped for the stalled reader")
            # A message after the drain reaches every reader, the stalled one too.
            await sender.send(b"end")
            f = await asyncio.to_thread(stall.read_frame)
            eq(f, (True, 2, b"end"), "the stalled reader's next frame after it read again")
            await asyncio.wait_for(asyncio.gather(*readers), T(20))
        finally:
            for r in readers:
                r.cancel()
        for k in range(2):
            eq(len(got[k]), sent, f"messages fast reader {k} got")
            for i, m in enumerate(got[k]):
                if m != msg(i):
                    raise Fail(f"fast reader {k}: message {i} out of order or altered")
        stall.send_frame(0x1, b"still here")     # and it can still send
        eq(await recv(sender), "still here", "a message from the stalled reader")
        st = await asyncio.to_thread(s.stats)
        eq(st["slow_closes"], 0, "slow_closes")
        eq(st["slow_drops"], sent - len(idx), "slow_drops: the messages the stalled reader "
           "missed")
        eq(st["connections"], 4, "connections")
        print(f"    {sent} messages sent; the stalled reader got {len(idx)}, "
              f"{st['slow_drops']} dropped", flush=True)


# ---- Room limits ------------------------------------------------------------------------------------

@test(valgrind=True)
async def max_rooms_and_members():
    async with Server("--max-rooms", "2", "--max-room-members", "2") as s:
        a1, b1 = await s.ws("/ws/a"), await s.ws("/ws/b")
        eq(await status_of(s, "/ws/c"), 503, "a third room past --max-rooms 2")
        eq((await asyncio.to_thread(s.stats))["rooms"], 2, "rooms after the refusal")
        a2 = await s.ws("/ws/a")          # an existing room still takes members
        eq(await status_of(s, "/ws/a"), 503, "a third member past --max-room-members 2")
        g1, g2 = await s.ws("/ws"), await s.ws("/ws")   # the global pool is no room
        eq(await status_of(s, "/ws"), 503, "a third member of /ws")
        eq(await status_of(s, "/echo"), 101, "/echo is in no pool")
        await a1.send("in a")
        eq(await recv(a2), "in a", "room a still works")
        await g2.send("in /ws")
        eq(await recv(g1), "in /ws", "/ws still works")
        await b1.close()                  # room b empties and goes
        await s.wait_stats(lambda st: st["rooms"] == 1, "room b freed")
        c1 = await s.ws("/ws/c")
        c2 = await s.ws("/ws/c")
        await c1.send("in c")
        eq(await recv(c2), "in c", "the new room works")
        eq(await status_of(s, "/ws/b"), 503, "room b again, now past --max-rooms")
        await a2.close()                  # a member leaves: room a takes one again
        await s.wait_stats(lambda st: st["connections"] == 5, "a2 gone")
        a3 = await s.ws("/ws/a")
        await a3.send("a3")
        eq(await recv(a1), "a3", "a member that took a freed place")
        st = await asyncio.to_thread(s.stats)
        eq(st["refused"]["503"], 4, "refused 503")
        eq(st["rooms"], 2, "rooms")


@test(valgrind=True)
async def room_name_checks():
    async with Server("--max-room-name", "8") as s:
        cases = [
            ("/ws/12345678", 101, "8 bytes"),
            ("/ws/123456789", 400, "9 bytes"),
            ("/ws/" + "%C3%A9" * 4, 101, "4 x é: 8 bytes decoded, 24 encoded"),
            ("/ws/" + "%C3%A9" * 4 + "x", 400, "9 bytes decoded"),
            ("/ws/%41%42", 101, "plain letters encoded"),
            ("/ws/%zz", 400, "invalid escape %zz"),
            ("/ws/a%g1", 400, "invalid escape %g1"),
            ("/ws/a%4", 400, "escape cut short"),
            ("/ws/a%", 400, "a lone %"),
            ("/ws/%ff", 400, "%ff: not UTF-8"),
            ("/ws/%C3", 400, "UTF-8 cut short"),
            ("/ws/%C3%28", 400, "a bad continuation byte"),
            ("/ws/%C0%AF", 400, "an overlong encoding"),
            ("/ws/%ED%A0%80", 400, "a UTF-16 surrogate"),
            ("/ws/%F4%90%80%80", 400, "past U+10FFFF"),
        ]
        statuses = {}
        for path, want, what in cases:
            r = s.raw()
            status, _ = r.handshake(path)
            r.close()
            statuses[path] = status
            eq(status, want, f"{path} ({what})")
        st = await asyncio.to_thread(s.stats)
        eq(st["refused"]["400"], sum(1 for _, w, _ in cases if w == 400), "refused 400")


# ---- Out of descriptors -------------------------------------------------------------------------

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


async def wait_fds(pid, want, what):
    deadline = time.monotonic() + T(5)
    while open_fds(pid) != want:
        check(time.monotonic() < deadline, f"{what}: wsfwd has {open_fds(pid)} descriptors "
              f"open after 5 s, want {want}")
        await asyncio.sleep(0.02)


def shed(raws, settle):
    """Which of these silent connections the server closed: polled until none closes for
    `settle` seconds."""
    import select
    closed = set()
    quiet_since = time.monotonic()
    deadline = time.monotonic() + T(10)
    while time.monotonic() - quiet_since < settle:
        check(time.monotonic() < deadline, "connections still closing after 10 s")
        live = [r for r in raws if r not in closed]
        ready, _, _ = select.select([r.sock for r in live], [], [], 0.05)
        for r in live:
            if r.sock in ready:
                try:
                    data = r.sock.recv(1)
                except ConnectionResetError:
                    data = b""
                check(data == b"", f"the server wrote to a silent connection: {data!r}")
                closed.add(r)
                quiet_since = time.monotonic()
    return closed


@test()
async def out_of_descriptors_no_busy_loop():
    """With RLIMIT_NOFILE 40 (wsfwd raises its soft limit to the hard one, 40 too), open far
    more connections than it can hold: the excess is shed, not left in the backlog for poll()
    to report forever; the CPU stays idle, the clients already in keep being served, and once
    descriptors free up new connections come in again. /stats counts the shed ones."""
    nofile, extra = 40, 30
    async with Server(nofile=nofile) as s:
        with open(f"/proc/{s.proc.pid}/limits") as f:
            check(re.search(rf"Max open files\s+{nofile}\s+{nofile}\s", f.read()),
                  "the server's descriptor limit was not set")
        a, b = await s.ws("/ws/fd"), await s.ws("/ws/fd")
        base = open_fds(s.proc.pid)
        raws = []
        try:
            raws = [Raw(s.port) for _ in range(nofile + extra)]   # the backlog takes them
            closed = await asyncio.to_thread(shed, raws, 0.5)
            held = [r for r in raws if r not in closed]
            check(closed, f"none of {len(raws)} connections was shed at RLIMIT_NOFILE {nofile}")
            check(len(held) >= nofile // 2, f"only {len(held)} connections held")
            check(len(held) < nofile, f"{len(held)} connections held at RLIMIT_NOFILE {nofile}")
            # At the limit: ~2 s of traffic for the clients already in, and of new connections
            # that must be shed at once; the server's own CPU time meanwhile.
            cpu0, t0 = cpu_seconds(s.proc.pid), time.monotonic()
            late = []
            for i in range(20):
                await a.send(f"at the limit {i}")
                eq(await recv(b), f"at the limit {i}", "a client already in, at the limit")
                if i % 4 == 0:
                    r = Raw(s.port)
                    late.append(r)
                    raws.append(r)
                await asyncio.sleep(0.1)
            late_closed = await asyncio.to_thread(shed, late, 0.2)
            await asyncio.sleep(max(0, 2 - (time.monotonic() - t0)))
            cpu = cpu_seconds(s.proc.pid) - cpu0
            took = time.monotonic() - t0
            eq(len(late_closed), len(late), "new connections shed at the limit")
            check(cpu < 0.2 * took, f"wsfwd used {cpu:.2f}s of CPU in {took:.2f}s at its "
                  "descriptor limit (a busy loop?)")
            await b.send("b still sends")
            eq(await recv(a), "b still sends", "a client already in, after")
            # One descriptor comes back: the next connection takes it and is held, not shed
            # (and not counted: accept() fails with EMFILE right after, with no connection
            # waiting).
            held.pop().close()
            await wait_fds(s.proc.pid, nofile - 1, "one connection closed")
            r = Raw(s.port)
            raws.append(r)
            held.append(r)
            eq(await asyncio.to_thread(shed, [r], 0.3), set(), "a connection in the one free "
               "descriptor is shed")
            eq(open_fds(s.proc.pid), nofile, "descriptors open")
        finally:
            for r in raws:
                r.close()
        # The held connections close: the descriptors come back.
        await wait_fds(s.proc.pid, base, "the extra connections closed")
        st = await asyncio.to_thread(s.stats)
        c = [await s.ws("/ws/fd") for _ in range(nofile // 2)]
        await a.send("after")
        for x in [b] + c:
            eq(await recv(x), "after", "a connection after the shedding")
        eq(st["refused"]["fd_limit"], len(closed) + len(late_closed), "refused fd_limit")
        print(f"    {len(held)} held, {len(closed) + len(late_closed)} shed; "
              f"{cpu:.2f}s of CPU in {took:.2f}s at the limit", flush=True)
        for x in c:
            await x.close()
            s.clients.remove(x)


# ---- The demo page and methods ---------------------------------------------------------------------

@test(valgrind=True)
async def demo_page_and_methods():
    async with Server() as s:
        for path in ("/", "/?room=x"):
            status, hdrs, body = s.get(path)
            eq(status, 200, f"GET {path}")
            check(hdrs.get("content-type", "").startswith("text/html"),
                  f"GET {path}: content type {hdrs.get('content-type')!r}")
            page = body.decode("utf-8")
            used = set(re.findall(r"getElementById\(\s*[\"']([^\"']+)[\"']\s*\)", page))
            check({"status", "messages", "text"} <= used,
                  f"GET {path}: the page script uses the ids {sorted(used)}")
            for name in used:
                check(re.search(rf"\bid=[\"']{re.escape(name)}[\"']", page),
                      f"GET {path}: the script uses #{name}, which the page lacks")
            check("new WebSocket(" in page, "the page opens a WebSocket")
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cli",
                           "demo.html")
        if os.path.exists(src):
            with open(src, "rb") as f:
                eq(body, f.read(), "the page served against cli/demo.html")
        for method, path in (("HEAD", "/"), ("POST", "/"), ("PUT", "/"), ("POST", "/stats"),
                             ("DELETE", "/stats"), ("POST", "/healthz")):
            r = s.raw()
            extra = "Content-Length: 0\r\n" if method in ("POST", "PUT") else ""
            r.send(f"{method} {path} HTTP/1.1\r\nHost: {r.hostport}\r\n{extra}\r\n".encode())
            status, hdrs = r.read_head()
            eq(status, 405, f"{method} {path}")
            eq(hdrs.get("allow"), "GET", f"{method} {path}: Allow")
            r.wait_eof(T(2))
            r.close()
        st = await asyncio.to_thread(s.stats)
        eq(st["refused"]["405"], 6, "refused 405")


if __name__ == "__main__":
    main(__doc__)
