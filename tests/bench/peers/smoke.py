#!/usr/bin/python3
"""Checks that each peer of the benchmark (issue 5) fans out as wsfwd does (peers_smoke).

For each peer (commands.sh), on a free port of 127.0.0.1:
  - room "a" has 3 clients, room "b" 1, the global pool /ws 2: a text and a binary message
    sent by one client of "a" reach the two others, in order and with their types, and
    neither the sender nor any other room; a message in "b" and one in /ws stay in theirs;
  - with --load also: 100 clients in one room, one publishing 3,000 64-byte messages (at most
    32 in flight), then 10 rooms of 10 clients all publishing 50 4-KiB binary messages at
    once; counts losses, duplicates and reorderings, and checks the server is still alive and
    still fans out afterwards (the load part reports, it fails only on a dead server).
Every process is started by this script and stopped by its pid. Bounded in time.

  /usr/bin/python3 tests/bench/peers/smoke.py [--load] [PEER...]
Python 3 with Debian's python3-websockets (10.x, asyncio API).
"""
import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
QUIET = 0.4  # seconds without a message that count as "nothing arrives"


def peers(names):
    out = subprocess.run(["bash", os.path.join(HERE, "commands.sh"), *names],
                         check=True, capture_output=True, text=True).stdout
    return [tuple(line.split("\t", 1)) for line in out.splitlines() if line]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not listening on {port} after {timeout}s")


def stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


async def connect(port, path):
    return await websockets.connect(f"ws://127.0.0.1:{port}{path}", max_size=None,
                                    compression=None, ping_interval=None, open_timeout=5,
                                    close_timeout=1)


async def recv_or_none(ws, timeout=QUIET):
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        return None


async def expect(ws, want, what):
    got = await recv_or_none(ws, 3.0)
    if got != want or type(got) is not type(want):
        raise AssertionError(f"{what}: expected {want!r}, got {got!r}")


async def expect_nothing(clients, what):
    got = await asyncio.gather(*(recv_or_none(c) for c in clients))
    for g in got:
        if g is not None:
            raise AssertionError(f"{what}: got {g!r}, expected nothing")


async def fanout(port):
    a = [await connect(port, "/ws/a") for _ in range(3)]
    b = [await connect(port, "/ws/b")]
    g = [await connect(port, "/ws") for _ in range(2)]
    everyone = a + b + g
    # Some servers add a connection to its room just after the handshake's answer.
    await asyncio.sleep(0.2)
    try:
        await a[0].send("hello a")
        await a[0].send(b"\x00\xffbinary a")
        for c in a[1:]:
            await expect(c, "hello a", "room a, text")
            await expect(c, b"\x00\xffbinary a", "room a, binary")
        await expect_nothing([a[0]], "room a's sender")
        await expect_nothing(b + g, "other rooms, after a message in room a")

        await b[0].send("hello b")
        await expect_nothing(everyone, "a message in room b, its only member")

        await g[1].send("hello global")
        await expect(g[0], "hello global", "global pool")
        await expect_nothing(a + b + g[1:], "after a message in the global pool")
    finally:
        await asyncio.gather(*(c.close() for c in everyone), return_exceptions=True)


async def load_one_to_many(port, subscribers=100, messages=3000, window=32):
    subs = [await connect(port, "/ws/load") for _ in range(subscribers)]
    pub = await connect(port, "/ws/load")
    await asyncio.sleep(0.3)
    stats = {"lost": 0, "dup_or_reordered": 0}
    progress = [0] * subscribers
    cond = asyncio.Condition()

    async def reader(i, ws):
        expect_seq = 0
        try:
            while expect_seq < messages:
                data = await asyncio.wait_for(ws.recv(), 5.0)
                seq = int(data[:8])
                if seq != expect_seq:
                    if seq < expect_seq:
                        stats["dup_or_reordered"] += 1
                        continue
                    stats["lost"] += seq - expect_seq
                expect_seq = seq + 1
                if i == 0:
                    async with cond:
                        progress[0] = expect_seq
                        cond.notify_all()
        except (asyncio.TimeoutError, websockets.ConnectionClosed):
            stats["lost"] += messages - expect_seq
            if i == 0:
                async with cond:
                    progress[0] = messages
                    cond.notify_all()

    t0 = time.monotonic()
    tasks = [asyncio.create_task(reader(i, s)) for i, s in enumerate(subs)]
    for seq in range(messages):
        async with cond:
            await cond.wait_for(lambda: seq - progress[0] < window)
        await pub.send(f"{seq:08d}".ljust(64, "x"))
    await asyncio.gather(*tasks)
    took = time.monotonic() - t0
    await asyncio.gather(*(c.close() for c in subs + [pub]), return_exceptions=True)
    return (f"1 -> {subscribers}: {messages} x 64 B, {subscribers * messages} deliveries in "
            f"{took:.1f}s, lost {stats['lost']}, dup/reordered {stats['dup_or_reordered']}")


async def load_rooms(port, rooms=10, per_room=10, messages=50, size=4096):
    clients = [[await connect(port, f"/ws/r{r}") for _ in range(per_room)] for r in range(rooms)]
    await asyncio.sleep(0.3)
    want = (per_room - 1) * messages
    stats = {"lost": 0, "bad": 0}

    async def reader(r, i, ws):
        last = {}
        n = 0
        try:
            while n < want:
                data = await asyncio.wait_for(ws.recv(), 5.0)
                n += 1
                room, sender, seq = int(data[0]), int(data[1]), int.from_bytes(data[2:6], "big")
                if room != r or sender == i or seq != last.get(sender, -1) + 1:
                    stats["bad"] += 1
                last[sender] = seq
        except (asyncio.TimeoutError, websockets.ConnectionClosed):
            pass
        stats["lost"] += want - n

    async def writer(r, i, ws):
        for seq in range(messages):
            await ws.send(bytes([r, i]) + seq.to_bytes(4, "big") + bytes(size - 6))

    t0 = time.monotonic()
    readers = [asyncio.create_task(reader(r, i, c)) for r in range(rooms)
               for i, c in enumerate(clients[r])]
    await asyncio.gather(*(writer(r, i, c) for r in range(rooms)
                           for i, c in enumerate(clients[r])), return_exceptions=True)
    await asyncio.gather(*readers)
    took = time.monotonic() - t0
    await asyncio.gather(*(c.close() for room in clients for c in room), return_exceptions=True)
    return (f"{rooms} rooms x {per_room}, all publishing {messages} x {size} B: "
            f"{rooms * per_room * want} deliveries in {took:.1f}s, lost {stats['lost']}, "
            f"cross-room/self/reordered {stats['bad']}")


def run_peer(name, template, load):
    port = free_port()
    cmd = template.replace("{port}", str(port))
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"peers-smoke-{name}.log"), "w")
    proc = subprocess.Popen(cmd.split(), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    notes = []
    try:
        wait_port(port, proc)
        asyncio.run(asyncio.wait_for(fanout(port), 30))
        if load:
            notes.append(asyncio.run(asyncio.wait_for(load_one_to_many(port), 120)))
            notes.append(asyncio.run(asyncio.wait_for(load_rooms(port), 120)))
            if proc.poll() is not None:
                raise RuntimeError(f"server died under load (exit {proc.returncode})")
            asyncio.run(asyncio.wait_for(fanout(port), 30))
            notes.append("fan-out still correct after the load")
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        return True, notes
    except Exception as e:  # noqa: BLE001 - any failure is the peer's result
        notes.append(f"{type(e).__name__}: {e} (server log: {log.name})")
        return False, notes
    finally:
        stop(proc)
        log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--load", action="store_true", help="also a short load, reported")
    ap.add_argument("peers", nargs="*", help="peer names (default: all of commands.sh)")
    args = ap.parse_args()
    passed = failed = 0
    for name, template in peers(args.peers):
        t0 = time.monotonic()
        ok, notes = run_peer(name, template, args.load)
        print(f"{'PASS' if ok else 'FAIL'} {name} ({time.monotonic() - t0:.1f}s)")
        for n in notes:
            print(f"     {n}")
        sys.stdout.flush()
        passed += ok
        failed += not ok
    print(f"peers_smoke: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
