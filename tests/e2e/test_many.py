#!/usr/bin/env python3
"""wsfwd with several thousand connections at once (more than poll()'s usual comfort), on
whichever backend WSFWD_E2E_ARGS picks (run.sh runs it with --io poll and --io epoll): 3,000
raw WebSocket clients in 300 rooms of 10, each room gets one message from one member, every
other member gets it exactly once and nothing else; then they all close. Raw non-blocking
sockets and one selector keep the client side fast; every step is bounded.

    python3 tests/e2e/test_many.py PATH/TO/wsfwd [--valgrind]
"""
import asyncio
import base64
import os
import resource
import selectors
import socket
import struct
import time

import harness
from harness import Fail, Server, check, eq, frame, test

ROOMS, PER_ROOM = 300, 10
CLIENTS = ROOMS * PER_ROOM


def raise_nofile(want):
    """This process's descriptor limit up to want (the hard limit too when allowed: root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            harness.need(False, f"RLIMIT_NOFILE hard limit {hard} < {want} and cannot be raised")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Many:
    """CLIENTS non-blocking sockets on one selector, each with its input buffer."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.bufs = []

    def connect_all(self, path_of, bound):
        """Connect and send every handshake, in batches the listen backlog takes; then read
        every 101 (a client's head only: nothing else comes before the first message)."""
        key = base64.b64encode(os.urandom(16)).decode()
        deadline = time.monotonic() + bound
        for i in range(CLIENTS):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=bound)
            s.sendall((f"GET {path_of(i)} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                       f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, i)
            self.socks.append(s)
            self.bufs.append(b"")
            if i % 500 == 499:
                self.pump(lambda: False, 0)  # read what came, so no buffer fills
            check(time.monotonic() < deadline, f"only {i + 1} of {CLIENTS} connected in {bound}s")
        self.pump(lambda: all(b"\r\n\r\n" in b for b in self.bufs), deadline - time.monotonic(),
                  "every handshake answered")
        for i, b in enumerate(self.bufs):
            head, _, rest = b.partition(b"\r\n\r\n")
            check(head.startswith(b"HTTP/1.1 101 "), f"client {i}: {head[:40]!r}")
            self.bufs[i] = rest

    def pump(self, done, bound, what=""):
        """Read whatever is ready into the buffers until done() or the bound (then Fail)."""
        deadline = time.monotonic() + bound
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                if what:
                    raise Fail(f"{what}: not within {bound:.1f}s")
                return
            for k, _ in self.sel.select(min(left, 0.5)):
                try:
                    chunk = k.fileobj.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    continue
                check(chunk, f"client {k.data}: the server closed the connection")
                self.bufs[k.data] += chunk

    def close_all(self):
        for s in self.socks:
            self.sel.unregister(s)
            s.close()
        self.sel.close()


def text_frames(buf):
    """The unmasked text frames in buf (short ones, as this test sends), and what is left."""
    out = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        n = b1 & 0x7F
        check(n < 126 and not (b1 & 0x80), f"unexpected frame header {buf[:4]!r}")
        if len(buf) < 2 + n:
            break
        eq(b0, 0x81, "a final text frame")
        out.append(buf[2:2 + n].decode())
        buf = buf[2 + n:]
    return out, buf


def many_rooms(many, s):
    """Room r's member 0 sends one message; members 1..9 each get it once, nothing else."""
    for r in range(ROOMS):
        many.socks[r * PER_ROOM].sendall(frame(0x1, f"room {r}".encode()))
    want = CLIENTS - ROOMS
    got = [[] for _ in range(CLIENTS)]

    def count():
        for i in range(CLIENTS):
            texts, many.bufs[i] = text_frames(many.bufs[i])
            got[i] += texts
        return sum(len(g) for g in got) >= want

    many.pump(count, harness.T(30), f"{want} deliveries")
    many.pump(lambda: False, 0.3)  # anything more would show now
    count()
    for i in range(CLIENTS):
        r, member = divmod(i, PER_ROOM)
        eq(got[i], [] if member == 0 else [f"room {r}"], f"client {i} (room {r})")


@test(valgrind=True)
async def thousands_of_connections_in_rooms():
    """3,000 clients in 300 rooms: all admitted, one message per room reaches exactly its
    other nine members, /stats counts them, and all leave cleanly."""
    raise_nofile(CLIENTS + 1000)
    async with Server("--max-connections", "0") as s:
        many = Many(s.port)
        try:
            await asyncio.to_thread(many.connect_all, lambda i: f"/ws/r{i // PER_ROOM}",
                                    harness.T(60))
            st = await asyncio.to_thread(s.stats)
            eq(st["connections"], CLIENTS, "connections in /stats")
            await asyncio.to_thread(many_rooms, many, s)
        finally:
            many.close_all()
        await s.wait_stats(lambda st: st["connections"] == 0, "every connection closed",
                           bound=20)


if __name__ == "__main__":
    harness.main(__doc__, "wsfwd e2e, thousands of connections")
