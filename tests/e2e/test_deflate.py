#!/usr/bin/python3
"""End-to-end tests of permessage-deflate (RFC 7692) against the real wsfwd binary, with Python
`websockets` clients (compression on, their default, and off) and raw sockets that compress
with Python's zlib or misbehave.

    /usr/bin/python3 tests/e2e/test_deflate.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

What they pin: the server answers an offer with server_no_context_takeover; clients with and
without the extension share a room and each gets every message intact and in order; a
broadcast is compressed at most once whatever the room's size (/stats); tiny messages go
uncompressed; a compression bomb is refused with 1009 while the server's memory stays flat;
fragmented compressed messages with pings between the fragments arrive whole; RSV1 where it
may not be, corrupt data and invalid UTF-8 after inflating fail the connection (1002, 1007)
without disturbing the others; --deflate off answers no extension. Same runner and options as
the other suites (harness.py); last line "N passed, N failed".
"""
import asyncio
import json
import os
import random
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import T, Fail, Server, check, close_code, eq, test, vm_rss  # noqa: E402

KIB = 1024
MIB = 1024 * KIB
TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10
RSV1 = 4
OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}


def deflate(data, level=6):
    """A whole message compressed as RFC 7692 section 7.2.1 says, with a fresh context."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    check(out.endswith(b"\x00\x00\xff\xff"), "zlib's sync flush tail")
    return out[:-4]


def inflate(data):
    d = zlib.decompressobj(-15)
    return d.decompress(data + b"\x00\x00\xff\xff")


def chat(i, sender, size):
    """A JSON chat message of about size bytes (chat traffic is what compression is for)."""
    body = {"from": sender, "seq": i, "room": "deflate", "text": ""}
    base = len(json.dumps(body))
    words = ["hello", "world", "message", "room", "wsfwd", "deflate", "again", "and"]
    rnd = random.Random(i * 7919 + len(sender))
    text = ""
    while len(text) < size - base:
        text += rnd.choice(words) + " "
    body["text"] = text[:max(0, size - base)]
    return json.dumps(body)


def extension_of(ws):
    """The Sec-WebSocket-Extensions answer a websockets client got, or ''."""
    return ws.response_headers.get("Sec-WebSocket-Extensions", "")


def deflate_stats(st):
    check("deflate" in st, f"/stats has no deflate object: {st}")
    return st["deflate"]


def negotiated_raw(s, path):
    r = s.raw()
    status, hdrs = r.handshake(path, extra=OFFER)
    eq(status, 101, "handshake status")
    ext = hdrs.get("sec-websocket-extensions", "")
    check(ext.startswith("permessage-deflate"), f"no permessage-deflate in the answer: {ext!r}")
    check("server_no_context_takeover" in ext, f"no server_no_context_takeover: {ext!r}")
    return r


def expect_close(r, code, what, bound=5):
    """Read up to the close frame; its code must be code, then EOF."""
    r.sock.settimeout(T(bound))
    while True:
        f = r.read_frame()
        if f is None:
            raise Fail(f"{what}: EOF without a close frame")
        if f[1] == CLOSE:
            eq(close_code(f[2]), code, f"{what}: close code")
            r.wait_eof(T(bound))
            return


@test(valgrind=True)
async def answer_and_flag():
    async with Server() as s:
        ws = await s.ws("/ws/a")  # websockets offers permessage-deflate by default
        ext = extension_of(ws)
        check(ext.startswith("permessage-deflate"), f"answer {ext!r}")
        check("server_no_context_takeover" in ext, f"answer {ext!r}")
        check(any(type(e).__name__ == "PerMessageDeflate" for e in ws.extensions),
              f"the client did not accept it: {ws.extensions}")
        plain = await s.ws("/ws/a", compression=None)
        eq(extension_of(plain), "", "answer to a client that offered nothing")
        # An offer the server cannot take (a window below zlib's 9 bits) is declined; the next
        # offer in the list is taken.
        r = s.raw()
        status, hdrs = r.handshake("/ws/a", extra={
            "Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=8, "
                                        "permessage-deflate; server_max_window_bits=10"})
        eq(status, 101, "status")
        check("server_max_window_bits=10" in hdrs.get("sec-websocket-extensions", ""),
              f"answer {hdrs}")
        # A malformed header is refused.
        r = s.raw()
        status, _ = r.handshake("/ws/a", extra={"Sec-WebSocket-Extensions": "permessage-deflate;"})
        eq(status, 400, "status for a malformed Sec-WebSocket-Extensions")
    async with Server("--deflate", "off") as s:
        ws = await s.ws("/ws/a")
        eq(extension_of(ws), "", "answer with --deflate off")
        eq(deflate_stats(s.stats())["enabled"], False, "/stats deflate.enabled")


@test(valgrind=True)
async def mixed_room_in_order():
    """Compressing and plain clients in one room: every message, intact, in order, for each."""
    async with Server() as s:
        names = ["z1", "z2", "p1", "p2"]
        clients = {}
        for n in names:
            clients[n] = await s.ws("/ws/mixed", compression="deflate" if n[0] == "z" else None)
        count = 40
        sizes = [8, 60, 200, 1024, 5000, 70000]

        async def send_all(n):
            for i in range(count):
                await clients[n].send(chat(i, n, sizes[i % len(sizes)]))

        await asyncio.gather(*(send_all(n) for n in names))
        for n in names:
            got = {m: [] for m in names if m != n}
            for _ in range(count * (len(names) - 1)):
                msg = json.loads(await harness.recv(clients[n], 10))
                got[msg["from"]].append(msg)
            for m, msgs in got.items():
                eq([x["seq"] for x in msgs], list(range(count)), f"{n}'s messages from {m}")
                for x in msgs:
                    eq(json.dumps(x), chat(x["seq"], m, sizes[x["seq"] % len(sizes)]),
                       f"{n}: message {x['seq']} from {m}")
        st = deflate_stats(s.stats())
        # 160 broadcasts, each compressed at most once (the tiny ones not at all).
        check(0 < st["compressed"] <= len(names) * count,
              f"compress calls {st['compressed']} for {len(names) * count} broadcasts")
        check(st["bytes_out"] < st["bytes_in"], f"nothing gained: {st}")


@test()
async def compress_once_per_broadcast():
    """One broadcast to 30 compressing members costs one compress call."""
    async with Server() as s:
        members = [await s.ws("/ws/many") for _ in range(30)]
        before = deflate_stats(s.stats())["compressed"]
        text = chat(1, "m0", 4096)
        await members[0].send(text)
        for m in members[1:]:
            eq(await harness.recv(m), text, "the message")
        after = deflate_stats(s.stats())["compressed"]
        eq(after - before, 1, "compress calls for one broadcast to 29 members")
        # A raw member sees the frame compressed (RSV1) and inflates it to the message.
        r = negotiated_raw(s, "/ws/many")
        await asyncio.sleep(0.1)
        await members[0].send(text)
        r.sock.settimeout(T(5))
        fin, op, payload = r.read_frame()
        eq((fin, op, r.last_rsv), (True, TEXT, RSV1), "fin, opcode, RSV of a compressed frame")
        eq(inflate(payload).decode(), text, "inflated")
        # A message under --deflate-min-size (default 64) goes plain.
        await members[0].send("tiny")
        fin, op, payload = r.read_frame()
        eq((op, r.last_rsv, payload), (TEXT, 0, b"tiny"), "a tiny message")


@test(valgrind=True)
async def bomb_refused():
    """64 MiB of zeros in 64 KiB on the wire: 1009 before it is inflated, memory flat."""
    async with Server("--max-message", str(MIB)) as s:
        a = await s.ws("/ws/b")
        b = await s.ws("/ws/b")
        rss0 = vm_rss(s.proc.pid)
        bomb = deflate(bytes(64 * MIB), 9)
        check(len(bomb) < 100 * KIB, f"bomb of {len(bomb)} bytes")
        r = negotiated_raw(s, "/ws/b")
        r.send_frame(BINARY, bomb, rsv=RSV1)
        await asyncio.to_thread(expect_close, r, 1009, "the bomb")
        rss1 = vm_rss(s.proc.pid)
        if not harness.WRAPPER:
            check(rss1 - rss0 < 8 * MIB, f"RSS grew by {(rss1 - rss0) // KIB} KiB")
        # The others are undisturbed.
        await a.send("still here")
        eq(await harness.recv(b), "still here", "a message after the bomb")
        # Just under the limit inflates fine.
        r = negotiated_raw(s, "/ws/b")
        r.send_frame(BINARY, deflate(bytes(MIB)), rsv=RSV1)
        eq(await harness.recv(a, 10), bytes(MIB), "a message of exactly --max-message")


@test()
async def compressed_flood_paced():
    """A compressing sender floods a room with 64 KiB messages that deflate to ~100 bytes: the
    whole flood is a few reads for the server, and each read inflates into megabytes. A
    full-speed plain reader still gets every message, in order, and is never closed; the
    never-reader holds the room for --slow-timeout and is cut by time, not by --max-queue; the
    server's memory stays bounded. (Before the library held back the rest of a paced
    connection's feed, one read filled every reader's queue past --max-queue at once.)"""
    count, size, slow_ms = 400, 64 * KIB, 2000
    async with Server("--slow-timeout", str(slow_ms)) as s:
        sender = await s.ws("/ws/flood")
        fast = await s.ws("/ws/flood", compression=None, max_queue=None)
        never = s.raw(rcvbuf=4096)
        eq(never.handshake("/ws/flood")[0], 101, "the never-reader's handshake")
        await s.wait_stats(lambda st: st["connections"] == 3, "three members")
        rss0 = vm_rss(s.proc.pid)

        def flood_msg(i):
            return i.to_bytes(4, "big") + bytes([i % 251]) * (size - 4)

        check(len(deflate(flood_msg(1))) < 200, "the flood's messages deflate to little")
        t0 = asyncio.get_running_loop().time()

        async def send_all():
            for i in range(count):
                await asyncio.wait_for(sender.send(flood_msg(i)), T(15))

        async def read_all():
            for i in range(count):
                got = await harness.recv(fast, 15)
                eq(got[:4], i.to_bytes(4, "big"), f"message {i}'s number")
                eq(len(got), size, f"message {i}'s size")

        await asyncio.gather(send_all(), read_all())
        took = asyncio.get_running_loop().time() - t0
        check(fast.open, f"the full-speed reader was closed ({fast.close_code})")
        check(sender.open, f"the sender was closed ({sender.close_code})")
        st = s.stats()["flow"]
        eq((st["cut_by_bytes"], st["cut_by_time"]), (0, 1),
           f"cuts (by bytes, by time) after {took:.1f}s: {st}")
        check(took * 1000 >= slow_ms * 0.9, f"the room did not wait for the never-reader: {took}s")
        rss1 = vm_rss(s.proc.pid)
        if not harness.WRAPPER:
            check(rss1 - rss0 < 16 * MIB, f"RSS grew by {(rss1 - rss0) // KIB} KiB")


@test(valgrind=True)
async def fragmented_with_pings():
    async with Server() as s:
        peer = await s.ws("/ws/f", compression=None)
        r = negotiated_raw(s, "/ws/f")
        text = chat(7, "raw", 3000)
        z = deflate(text.encode())
        parts = [z[:10], z[10:len(z) // 2], z[len(z) // 2:]]
        r.send_frame(TEXT, parts[0], fin=False, rsv=RSV1)
        r.send_frame(PING, b"p1")
        r.send_frame(0, parts[1], fin=False)
        r.send_frame(PING, b"p2")
        r.send_frame(0, parts[2], fin=True)
        r.sock.settimeout(T(5))
        pongs = [r.read_frame() for _ in range(2)]
        eq([(op, p) for _, op, p in pongs], [(PONG, b"p1"), (PONG, b"p2")], "pongs")
        eq(await harness.recv(peer), text, "the reassembled, inflated message")
        # Split on every byte boundary of the first fragment's header and payload.
        z = deflate(b"x" * 500)
        data = harness.frame(BINARY, z, rsv=RSV1)
        for i in range(len(data)):
            r.send(data[i:i + 1])
        eq(await harness.recv(peer), b"x" * 500, "a message sent one byte at a time")


@test(valgrind=True)
async def protocol_errors():
    """Each fails only its own connection, with the right code."""
    async with Server() as s:
        a = await s.ws("/ws/e")
        b = await s.ws("/ws/e")
        cases = [
            ("RSV1 without the extension", False, [(TEXT, deflate(b"hello"), True, RSV1)], 1002),
            ("RSV1 on a continuation", True,
             [(TEXT, deflate(b"hello")[:2], False, RSV1), (0, deflate(b"hello")[2:], True, RSV1)],
             1002),
            ("RSV1 on a ping", True, [(PING, b"", True, RSV1)], 1002),
            ("RSV2", True, [(TEXT, b"hello", True, 2)], 1002),
            ("corrupt data", True, [(BINARY, b"\xff\xff\xff\xff\x00\x01", True, RSV1)], 1007),
            ("invalid UTF-8 after inflating", True, [(TEXT, deflate(b"caf\xc3("), True, RSV1)],
             1007),
        ]
        for what, negotiate, frames, code in cases:
            if negotiate:
                r = negotiated_raw(s, "/ws/e")
            else:
                r = s.raw()
                eq(r.handshake("/ws/e")[0], 101, "handshake")
            for op, payload, fin, rsv in frames:
                r.send_frame(op, payload, fin=fin, rsv=rsv)
            await asyncio.to_thread(expect_close, r, code, what)
        await a.send("fine")
        eq(await harness.recv(b), "fine", "the room after the protocol errors")


@test()
async def client_context_takeover():
    """websockets keeps its compression context across messages (it is not asked not to):
    the server keeps an inflate stream per such client; 200 alike messages arrive intact."""
    async with Server() as s:
        tx = await s.ws("/ws/ctx")
        rx = await s.ws("/ws/ctx", compression=None)
        msgs = [chat(i, "tx", 300) for i in range(200)]
        for m in msgs:
            await tx.send(m)
        for i, m in enumerate(msgs):
            eq(await harness.recv(rx), m, f"message {i}")
        st = deflate_stats(s.stats())
        eq(st["inflated"], 200, "messages received compressed")
        eq(st["inflate_streams"], 1, "inflate streams kept (tx's)")
        eq(st["compressed"], 0, "compressions (rx did not negotiate)")
        await tx.close()
        await asyncio.sleep(0.2)
        eq(deflate_stats(s.stats())["inflate_streams"], 0, "streams after tx left")


@test(valgrind=True)
async def client_context_reset():
    """--deflate-client-context reset: clients are asked for client_no_context_takeover, and
    no inflate stream stays between messages; the ratio is in /stats."""
    async with Server("--deflate-client-context", "reset") as s:
        tx = await s.ws("/ws/r")
        check("client_no_context_takeover" in extension_of(tx), f"answer {extension_of(tx)!r}")
        rx = await s.ws("/ws/r")
        msgs = [chat(i, "tx", 1024) for i in range(50)]
        for m in msgs:
            await tx.send(m)
        for i, m in enumerate(msgs):
            eq(await harness.recv(rx), m, f"message {i}")
        st = deflate_stats(s.stats())
        eq(st["inflated"], 50, "messages received compressed")
        check(st["inflate_streams"] <= 1, f"streams kept: {st}")  # at most the config's spare
        eq(st["compressed"], 50, "one compression per broadcast")
        eq(st["sent_compressed"], 50, "deliveries sent compressed")
        check(st["ratio"] > 2.0, f"ratio of 1 KiB chat messages: {st}")
        eq(st["ratio"], int(st["bytes_in"] * 100 // st["bytes_out"]) / 100, "ratio")


@test()
async def levels_and_min_size_flags():
    async with Server("--deflate-level", "1", "--deflate-min-size", "1000") as s:
        r = negotiated_raw(s, "/ws/l")
        tx = await s.ws("/ws/l", compression=None)
        await asyncio.sleep(0.1)
        await tx.send("y" * 999)
        r.sock.settimeout(T(5))
        _, op, payload = r.read_frame()
        eq((r.last_rsv, payload), (0, b"y" * 999), "under --deflate-min-size: plain")
        await tx.send("y" * 1000)
        _, op, payload = r.read_frame()
        eq((r.last_rsv, inflate(payload)), (RSV1, b"y" * 1000), "at --deflate-min-size")
    for bad in (["--deflate", "maybe"], ["--deflate-level", "10"], ["--deflate-min-size", "x"],
                ["--deflate-client-context", "forget"]):
        rc, _, err, _ = await harness.run_wsfwd(bad)
        eq(rc, 2, f"exit status for {bad}")
        check(err, f"no message for {bad}")


if __name__ == "__main__":
    harness.main(__doc__)
