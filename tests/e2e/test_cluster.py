#!/usr/bin/python3
"""End-to-end tests of wsfwd --redis: several wsfwd nodes on one Redis, behind nginx, and
as two processes on one port (--reuse-port).

    /usr/bin/python3 tests/e2e/test_cluster.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

Each test starts its own redis-server (and nginx) on 127.0.0.1 on a free port, with its own
temporary directory and configuration given on the command line, and kills only the processes
it started. Clients are Python `websockets`; the wsfwd process handling comes from
harness.py (Server). The last line printed is "N passed, N failed". With CI=true a missing
redis-server or nginx is a failure, never a skip.
"""
import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Fail, Nginx, Server, T, check, eq, expect_silence,  # noqa: E402
                     free_port, need, port_open, recv, run_wsfwd, vm_rss, wait_until)

import websockets  # noqa: E402

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
OWN = []  # every redis-server started here: killed by pid at exit (nginx: harness.Nginx)


class Redis:
    """A redis-server of our own on a free loopback port; stop() and start() again keep it."""

    def __init__(self, password=None):
        need(os.path.exists(REDIS), "redis-server is missing (apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="wsfwd-redis.")
        self.port = free_port()
        self.proc = None
        self.password = password

    async def start(self):
        auth = ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
             "--protected-mode", "yes", "--logfile", os.path.join(self.dir, "redis.log")] + auth,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=harness.die_with_parent)
        OWN.append(self.proc)
        await wait_until(lambda: port_open(self.port) or self.proc.poll() is not None,
                         "redis-server to listen")
        check(self.proc.poll() is None, "redis-server exited at start")
        return self

    def stop(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def signal(self, sig):
        self.proc.send_signal(sig)

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        self.close()


class Nodes:
    """n wsfwd nodes on one Redis; every one must exit 0 on SIGTERM at the end."""

    def __init__(self, redis, n, *args):
        self.servers = [Server("--redis", redis.addr, *args) for _ in range(n)]

    async def __aenter__(self):
        for s in self.servers:
            await s.__aenter__()
        return self.servers

    async def __aexit__(self, etype, exc, tb):
        err = None
        for s in self.servers:
            try:
                await s.__aexit__(etype, exc, tb)
            except Exception as e:  # report the first, but stop them all
                err = err or e
        if err is not None and etype is None:
            raise err


def cluster(s):
    return s.stats()["cluster"]


async def wait_cluster(s, pred, what, bound=10):
    return (await s.wait_stats(lambda st: pred(st["cluster"]), what, bound))["cluster"]


async def subscribed(servers, rooms=1):
    for s in servers:
        await wait_cluster(s, lambda c: c["link"] == "up" and c["subscribed_rooms"] >= rooms,
                           f"{rooms} subscribed rooms")


TESTS = []


def test(fn):
    TESTS.append((fn.__name__, fn))
    return fn


# ---- Tests ---------------------------------------------------------------------------------------

@test
async def three_nodes_fan_out_without_echo():
    async with Redis() as r, Nodes(r, 3) as (a, b, c):
        ca, ca2 = await a.ws("/ws/room1"), await a.ws("/ws/room1")
        cb, cc = await b.ws("/ws/room1"), await c.ws("/ws/room1")
        await subscribed([a, b, c])
        await ca.send("from A")
        eq(await recv(cb), "from A", "B's client")
        eq(await recv(cc), "from A", "C's client")
        eq(await recv(ca2), "from A", "A's other client")
        await cb.send(b"\x00\xffbinary from B")
        eq(await recv(ca), b"\x00\xffbinary from B", "A's client gets B's binary")
        eq(await recv(cc), b"\x00\xffbinary from B", "C's client")
        eq(await recv(ca2), b"\x00\xffbinary from B", "A's other client")
        # The senders never got their own messages, and nothing came twice.
        for cl in (ca, cb, cc, ca2):
            await expect_silence(cl, 0.3)
        st = cluster(a)
        check(re.fullmatch(r"[0-9a-f]{32}", st["node"]), f"node id {st['node']!r}")
        eq((st["link"], st["subscribed_rooms"], st["not_crossed"]), ("up", 1, 0),
           "A's link, subscribed rooms and messages that did not cross")
        check(st["published"] >= 1 and st["received"] >= 2, f"A's counters {st}")
        check(len({cluster(x)["node"] for x in (a, b, c)}) == 3, "three distinct node ids")


@test
async def local_first_order_mode():
    async with Redis() as r, Nodes(r, 2, "--redis-order", "local-first") as (a, b):
        ca, ca2, cb = await a.ws("/ws/lf"), await a.ws("/ws/lf"), await b.ws("/ws/lf")
        await subscribed([a, b])
        eq(cluster(a)["order"], "local-first", "order in /stats")
        for k in range(20):
            await ca.send(f"m{k}")
        eq([await recv(ca2) for _ in range(20)], [f"m{k}" for k in range(20)], "local member")
        eq([await recv(cb) for _ in range(20)], [f"m{k}" for k in range(20)], "remote member")
        for cl in (ca, ca2, cb):
            await expect_silence(cl, 0.3)


@test
async def password_database_and_bad_addresses():
    async with Redis(password="s3cret") as r:
        good = f"redis://:s3cret@127.0.0.1:{r.port}/2"
        async with Server("--redis", good) as a, Server("--redis", good) as b:
            ca, cb = await a.ws("/ws/pw"), await b.ws("/ws/pw")
            await subscribed([a, b])
            await ca.send("with a password")
            eq(await recv(cb), "with a password", "B's member")
        # The password from a file, out of the process list; it overrides the URL's.
        with tempfile.TemporaryDirectory(prefix="wsfwd-e2e-redis-") as d:
            pw = os.path.join(d, "pw")
            with open(pw, "w") as f:
                f.write("s3cret\n")
            args = ("--redis", f"redis://:wrong@127.0.0.1:{r.port}", "--redis-password-file", pw)
            async with Server(*args) as a, Server("--redis", good) as b:
                ca, cb = await a.ws("/ws/pwf"), await b.ws("/ws/pwf")
                await subscribed([a, b])
                await ca.send("password from a file")
                eq(await recv(cb), "password from a file", "B's member (A's password from a file)")
            rc, out, err, _ = await run_wsfwd(["--listen", "127.0.0.1:0", "--redis", good,
                                                  "--redis-password-file", d + "/missing"])
            check(rc == 1 and len(err) == 1 and "Redis password file" in err[0],
                  f"a missing password file: {rc} {err}")
        async with Server("--redis", f"redis://:wrong@127.0.0.1:{r.port}") as a:
            ca, ca2 = await a.ws("/ws/pw"), await a.ws("/ws/pw")
            await ca.send("local")
            eq(await recv(ca2), "local", "local delivery with a refused password")
            await wait_until(lambda: any("redis: link" in ln and "AUTH" in ln for ln in a.lines),
                             "a log line naming AUTH", 5)
            check(cluster(a)["link"] != "up", "the link is not up with a wrong password")
    # A host name, resolved once at start-up (localhost may give ::1 first: the next address
    # is tried after a failed attempt).
    async with Redis() as r:
        named = f"redis://localhost:{r.port}"
        async with Server("--redis", named) as a, Server("--redis", named) as b:
            ca, cb = await a.ws("/ws/named"), await b.ws("/ws/named")
            await subscribed([a, b])
            await ca.send("by name")
            eq(await recv(cb), "by name", "B's member, Redis given by name")
    rc, out, err, _ = await run_wsfwd(["--listen", "127.0.0.1:0", "--redis",
                                          "no-such-host.invalid:6379"], bound=30)
    eq(rc, 1, "exit status with an unresolvable Redis host")
    check(any("cannot resolve 'no-such-host.invalid'" in line for line in err),
          f"an unresolvable Redis host: {err}")
    for bad in ("localhost", "redis://h:0", "http://h:1", "redis://pw@h", "h:1:2"):
        rc, out, err, _ = await run_wsfwd(["--listen", "127.0.0.1:0", "--redis", bad])
        eq(rc, 2, f"exit status with --redis {bad!r}")
        check(len(err) == 1 and "--redis" in err[0], f"--redis {bad!r}: {err}")


@test
async def rooms_isolated_across_nodes():
    async with Redis() as r, Nodes(r, 3) as (a, b, c):
        # /ws (global), a room called "global", one called like the global channel, and one
        # whose name has bytes a channel could confuse.
        paths = ["/ws", "/ws/global", "/ws/wsfwd%3Aglobal", "/ws/a%20b%0A%C3%A9"]
        clients = {p: [await n.ws(p) for n in (a, b, c)] for p in paths}
        await subscribed([a, b, c], rooms=len(paths))
        for i, p in enumerate(paths):
            await clients[p][i % 3].send(f"to {p}")
        for i, p in enumerate(paths):
            for k in range(3):
                if k != i % 3:
                    eq(await recv(clients[p][k]), f"to {p}", f"{p} on node {k}")
        for p in paths:
            for cl in clients[p]:
                await expect_silence(cl, 0.2)
        # Rooms are unsubscribed when their last local member leaves.
        for cl in clients["/ws/global"]:
            await cl.close()
        for n in (a, b, c):
            await wait_cluster(n, lambda st: st["subscribed_rooms"] == len(paths) - 1,
                               "the room unsubscribed after its last member left")


@test
async def many_rooms():
    n = 200
    async with Redis() as r, Nodes(r, 2) as (a, b):
        pairs = [(await a.ws(f"/ws/many{k}"), await b.ws(f"/ws/many{k}")) for k in range(n)]
        await subscribed([a, b], rooms=n)
        for k, (ca, _) in enumerate(pairs):
            await ca.send(f"room {k}")
        for k, (_, cb) in enumerate(pairs):
            eq(await recv(cb), f"room {k}", f"room {k} on B")
        for ca, cb in pairs[:20]:
            await expect_silence(ca, 0.05)
            await expect_silence(cb, 0.05)
        for ca, cb in pairs:
            await ca.close()
            await cb.close()
        for x in (a, b):
            await wait_cluster(x, lambda st: st["rooms"] == 0 and st["subscribed_rooms"] == 0,
                               "every room forgotten")


@test
async def room_churn_subscribes_again():
    async with Redis() as r, Nodes(r, 2, "--log-level", "debug") as (a, b):
        cb = await b.ws("/ws/churn")
        await subscribed([b])
        # The room's only member on A comes and goes quickly: subscribe, unsubscribe and
        # subscribe again cross each other on the way to Redis.
        async def come_and_go(k):
            c = await websockets.connect(a.url + "/ws/churn", ping_interval=None)
            if k % 3 == 0:
                await c.send(f"churn {k}")
            await asyncio.sleep(random.random() * 0.003)
            await c.close()

        for k in range(0, 60, 3):
            await asyncio.gather(*(come_and_go(k + i) for i in range(3)))
        # The same crossings made certain, with Redis paused while members come and go:
        # an unsubscription confirmed after a member came back, then a subscription confirmed
        # after the member left.
        c = await a.ws("/ws/churn")
        await subscribed([a])
        r.signal(signal.SIGSTOP)
        await c.close()
        c = await a.ws("/ws/churn")
        await asyncio.sleep(0.1)
        r.signal(signal.SIGCONT)
        await wait_until(lambda: any("redis: unsubscribed" in ln and "members=1" in ln
                                     for ln in a.lines), "the unsubscription confirmed", 5)
        await wait_cluster(a, lambda st: st["subscribed_rooms"] == 1, "subscribed again")
        await c.close()
        await wait_cluster(a, lambda st: st["rooms"] == 0, "the room forgotten")
        r.signal(signal.SIGSTOP)
        c = await a.ws("/ws/churn")
        await c.close()
        await asyncio.sleep(0.1)
        r.signal(signal.SIGCONT)
        await wait_cluster(a, lambda st: st["rooms"] == 0 and st["subscribed_rooms"] == 0,
                           "the room forgotten after its subscription was confirmed")
        ca = await a.ws("/ws/churn")
        await subscribed([a])
        await ca.send("after the churn")
        while True:  # messages sent during the churn may cross, or not (at most once)
            m = await recv(cb)
            if m == "after the churn":
                break
            check(m.startswith("churn "), f"B got {m!r}")
        await cb.send("back to A")
        eq(await recv(ca), "back to A", "A's member after the churn")
        for n in (a, b):
            eq(cluster(n)["subscribed_rooms"], 1, "subscribed rooms after the churn")


@test
async def one_order_across_nodes_with_concurrent_senders():
    n_msgs = 150
    async with Redis() as r, Nodes(r, 3) as nodes:
        senders = [await n.ws("/ws/order") for n in nodes]
        readers = [await n.ws("/ws/order") for n in nodes for _ in range(2)]
        await subscribed(nodes)
        total = len(senders) * n_msgs
        got = {i: [] for i in range(len(readers) + len(senders))}
        everyone = readers + senders

        async def read(i):
            want = total if i < len(readers) else total - n_msgs
            while len(got[i]) < want:
                got[i].append(await recv(everyone[i], 20))

        async def send(j):
            for k in range(n_msgs):
                await senders[j].send(f"{j}:{k}")
                if random.random() < 0.3:
                    await asyncio.sleep(0)

        tasks = [asyncio.create_task(read(i)) for i in range(len(everyone))]
        await asyncio.gather(*(send(j) for j in range(len(senders))))
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        ref = got[0]
        eq(len(set(ref)), total, "reader 0: every message once")
        for j in range(len(senders)):
            eq([m for m in ref if m.startswith(f"{j}:")], [f"{j}:{k}" for k in range(n_msgs)],
               f"reader 0: sender {j}'s order")
        for i in range(1, len(everyone)):
            seq = got[i]
            if i >= len(readers):
                j = i - len(readers)
                check(not any(m.startswith(f"{j}:") for m in seq), f"sender {j} got its own")
                want = [m for m in ref if not m.startswith(f"{j}:")]
            else:
                want = ref
            if seq != want:
                k = next((k for k in range(min(len(seq), len(want))) if seq[k] != want[k]),
                         min(len(seq), len(want)))
                raise Fail(f"client {i} saw another order than reader 0 from message {k}: "
                           f"{seq[k:k + 4]} against {want[k:k + 4]}")


@test
async def redis_restart_local_delivery_never_stops():
    async with Redis() as r, Nodes(r, 2, "--max-queue", "67108864") as (a, b):
        sender, local = await a.ws("/ws/live"), await a.ws("/ws/live")
        remote = await b.ws("/ws/live")
        await subscribed([a, b])
        stop = asyncio.Event()
        sent = []

        async def keep_sending():
            k = 0
            while not stop.is_set():
                await sender.send(f"m{k}")
                sent.append(f"m{k}")
                k += 1
                await asyncio.sleep(0.01)

        local_got = []

        async def keep_reading():
            while True:
                local_got.append(await recv(local, 5))

        reader = asyncio.create_task(keep_reading())
        remote_got = []

        async def remote_reading():
            while True:
                remote_got.append(await remote.recv())

        rreader = asyncio.create_task(remote_reading())
        writer = asyncio.create_task(keep_sending())
        await asyncio.sleep(0.3)
        r.stop(signal.SIGKILL)
        await wait_cluster(a, lambda c: c["link"] != "up", "A's link down")
        rss_before = vm_rss(a.proc.pid) // 1024
        # While Redis is away: big messages too, local delivery goes on, memory stays flat.
        big = "x" * 20000
        for _ in range(200):
            await sender.send(big)
        await asyncio.sleep(1.0)
        rss_after = vm_rss(a.proc.pid) // 1024
        check(rss_after - rss_before < 16 * 1024,
              f"A's RSS grew from {rss_before} to {rss_after} KiB while Redis was away")
        st = cluster(a)
        check(st["not_crossed"] > 0 and st["inflight_bytes"] == 0,
              f"A's stats while Redis is away: {st}")
        n_remote_down = len(remote_got)
        await r.start()
        await subscribed([a, b])
        await asyncio.sleep(0.3)
        stop.set()
        await writer
        await asyncio.sleep(0.5)
        reader.cancel()
        rreader.cancel()
        # Local: every message, once, in order (the bigs among them).
        eq([m for m in local_got if m != big], sent, "local member's messages")
        eq(local_got.count(big), 200, "local member's big messages")
        check(len(remote_got) > n_remote_down, "cross-node delivery came back by itself")
        eq(len(set(remote_got)), len(remote_got), "no duplicates on the remote node")
        check(remote_got[-1] == sent[-1], f"remote's last {remote_got[-1]!r}, sent {sent[-1]!r}")
        st = cluster(a)
        check(st["link_losses"] >= 1 and st["reconnects"] >= 1, f"A's counters after: {st}")
        warns = [ln for ln in a.lines if "redis: link" in ln and "lost" in ln]
        eq(len(warns), 1, f"'link lost' log lines: {warns}")


@test
async def redis_unreachable_at_start_then_up():
    r = Redis()  # not started yet: its port refuses connections
    try:
        async with Nodes(r, 2) as (a, b):
            ca, ca2, cb = await a.ws("/ws/x"), await a.ws("/ws/x"), await b.ws("/ws/x")
            await ca.send("alone")
            eq(await recv(ca2), "alone", "local delivery without Redis")
            await expect_silence(cb, 0.3)
            await asyncio.sleep(1.5)  # several attempts
            eq(cluster(a)["link"] != "up", True, "A's link without Redis")
            warns = [ln for ln in a.lines if "redis: link" in ln and "unavailable" in ln]
            eq(len(warns), 1, f"one 'unavailable' log line, got {warns}")
            await r.start()
            await subscribed([a, b], rooms=1)
            await ca.send("together")
            eq(await recv(cb), "together", "B after Redis came up")
            eq(await recv(ca2), "together", "A's other member")
    finally:
        r.close()


@test
async def stalled_redis_does_not_block_the_loop():
    async with Redis() as r, Nodes(r, 2, "--redis-timeout", "500",
                                   "--redis-max-inflight", "65536") as (a, b):
        ca, ca2, cb = await a.ws("/ws/s"), await a.ws("/ws/s"), await b.ws("/ws/s")
        await subscribed([a, b])
        r.signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            for k in range(50):  # more than the in-flight cap: the rest stays local
                await ca.send("y" * 4000 + str(k))
            status, _, _ = await asyncio.to_thread(a.get, "/healthz")
            eq(status, 200, "/healthz while Redis is stalled")
            check(time.monotonic() - t0 < 2, "the loop answered while Redis was stalled")
            # Every message reaches the local member: some on the link's loss, the rest at once.
            got = [await recv(ca2, 5) for _ in range(50)]
            eq(sorted(got, key=lambda m: int(m[4000:])), ["y" * 4000 + str(k) for k in range(50)],
               "local member's messages")
            st = await wait_cluster(a, lambda c: c["link"] != "up", "the PING timeout")
            check(st["not_crossed"] > 0, f"stats after the stall: {st}")
        finally:
            r.signal(signal.SIGCONT)
        await subscribed([a, b])
        await ca.send("back")
        # What Redis had taken before the stall reaches B late (A delivered it locally when
        # the link was lost), then the new message.
        while True:
            m = await recv(cb)
            if m == "back":
                break
            check(m.startswith("y" * 4000), f"B got {m[:20]!r}")


@test
async def flood_with_redis_flapping_and_members_churning():
    """Nothing crashes, nothing is lost locally and nothing is duplicated, while Redis is
    killed and restarted three times under a flood and members come and go on every node."""
    async with Redis() as r, Nodes(r, 3, "--max-queue", "67108864") as nodes:
        senders = [await n.ws("/ws/flood") for n in nodes]
        locals_ = [await n.ws("/ws/flood") for n in nodes]
        await subscribed(nodes)
        stop = asyncio.Event()
        sent = {j: 0 for j in range(3)}

        async def flood(j):
            while not stop.is_set():
                await senders[j].send(f"{j}:{sent[j]}:" + "z" * random.randrange(0, 3000))
                sent[j] += 1
                if sent[j] % 5 == 0:
                    await asyncio.sleep(0.002)

        got = {i: [] for i in range(3)}

        async def read(i):
            while True:
                got[i].append(await locals_[i].recv())

        async def discard(c):
            async for _ in c:
                pass

        async def churn(n):
            while not stop.is_set():
                c = await websockets.connect(n.url + "/ws/flood", ping_interval=None,
                                                close_timeout=1)
                await asyncio.sleep(random.random() * 0.05)
                await c.close()

        tasks = [asyncio.create_task(f) for f in
                 [flood(j) for j in range(3)] + [read(i) for i in range(3)] +
                 [churn(n) for n in nodes]]
        drains = [asyncio.create_task(discard(c)) for c in senders]
        t0 = time.monotonic()
        for _ in range(3):
            await asyncio.sleep(0.4)
            r.stop(signal.SIGKILL)
            await asyncio.sleep(0.4)
            await r.start()
        await subscribed(nodes)
        await asyncio.sleep(0.3)
        stop.set()
        t1 = time.monotonic()
        await asyncio.gather(*tasks[:3])
        await asyncio.gather(*tasks[6:])
        await wait_until(lambda: all(sum(1 for m in got[i] if m.startswith(f"{i}:")) >= sent[i]
                                     for i in range(3)), "the local members' messages", 20)
        await asyncio.sleep(0.5)  # what still crosses, to check for duplicates
        t2 = time.monotonic()
        print(f"    flood {t1 - t0:.1f}s, drain {t2 - t1:.1f}s, sent {sent}", flush=True)
        # Closing while the readers still read: a client left with unread messages would
        # wait out its close timeout.
        for c in locals_ + senders:
            await asyncio.wait_for(c.close(), 10)
        await asyncio.gather(*tasks[3:6], *drains, return_exceptions=True)
        for i in range(3):
            keys = [tuple(m.split(":")[:2]) for m in got[i]]
            eq(len(set(keys)), len(keys), f"node {i}'s local member: duplicates")
            mine = [int(k[1]) for k in keys if k[0] == str(i)]
            eq(mine, list(range(sent[i])), f"node {i}'s local member: its node's sender")
            for j in range(3):  # what crossed from other nodes came in its sender's order
                theirs = [int(k[1]) for k in keys if k[0] == str(j)]
                eq(theirs, sorted(theirs), f"node {i}: order of node {j}'s messages")
        for n in nodes:
            st = cluster(n)
            check(st["link_losses"] >= 1 and st["link"] == "up", f"stats {st}")


@test
async def killed_node_leaves_the_others_undisturbed():
    async with Redis() as r:
        a, c = Server("--redis", r.addr), Server("--redis", r.addr)
        b = Server("--redis", r.addr)
        await a.__aenter__()
        await c.__aenter__()
        await b.__aenter__()
        try:
            ca, cc, cb = await a.ws("/ws/k"), await c.ws("/ws/k"), await b.ws("/ws/k")
            await subscribed([a, b, c])
            os.killpg(b.proc.pid, signal.SIGKILL)
            await b.proc.wait()
            for k in range(20):
                await ca.send(f"a{k}")
                await cc.send(f"c{k}")
            got_c = [await recv(cc) for _ in range(20)]
            got_a = [await recv(ca) for _ in range(20)]
            eq(got_c, [f"a{k}" for k in range(20)], "C's client")
            eq(got_a, [f"c{k}" for k in range(20)], "A's client")
            eq((cluster(a)["link"], cluster(c)["link"]), ("up", "up"), "links")
            eq((a.stats()["connections"], c.stats()["connections"]), (1, 1), "connections")
        finally:
            await b.kill()
            b.clients = []
            for s in (a, c):
                await s.__aexit__(None, None, None)


def nginx_conf(port, upstreams):
    """docs/scaling.md's nginx example, as written, on our ports: the text inside its http { }
    (harness.Nginx puts it in a directory of its own)."""
    doc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                       "scaling.md")
    with open(doc, encoding="utf-8") as f:
        m = re.search(r"```nginx\n(.*?)```", f.read(), re.S)
    check(m, "docs/scaling.md has no nginx example")
    conf = m.group(1)
    ports = re.findall(r"server 127\.0\.0\.1:(\d+);", conf)
    eq(len(ports), len(upstreams), "upstream servers in docs/scaling.md")
    for old, new in zip(ports, upstreams):
        conf = conf.replace(f"server 127.0.0.1:{old};", f"server 127.0.0.1:{new};")
    check("listen 80;" in conf, "docs/scaling.md's example listens on 80")
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    inner = re.fullmatch(r"\s*http \{(.*)\}\s*", conf, re.S)
    check(inner, "docs/scaling.md's example is one http { } block")
    return inner.group(1)


@test
async def two_nodes_behind_nginx():
    async with Redis() as r, Nodes(r, 2) as (a, b), \
            Nginx(lambda d, port: nginx_conf(port, [a.port, b.port])) as ng:
        clients = []
        try:
            for _ in range(4):  # round robin: two on each node
                clients.append(await websockets.connect(
                    f"ws://127.0.0.1:{ng.port}/ws/behind", open_timeout=5, ping_interval=None))
            eq((a.stats()["connections"], b.stats()["connections"]), (2, 2),
               "connections per node through nginx")
            await subscribed([a, b])
            await clients[0].send("through nginx")
            for cl in clients[1:]:
                eq(await recv(cl), "through nginx", "a client behind nginx")
            await expect_silence(clients[0], 0.3)
        finally:
            for cl in clients:
                try:
                    await asyncio.wait_for(cl.close(), 3)
                except Exception:
                    pass


def reuse_port_nodes(r, port, n=2):
    """n nodes sharing one port with --reuse-port on, each with a private port listed first (so
    that Server.port, and stats(), reach that process and no other)."""
    nodes = Nodes(r, n, "--reuse-port", "on")
    for s in nodes.servers:
        s.listen = ["127.0.0.1:0", f"127.0.0.1:{port}"]
    return nodes


def check_one_order(got, sent, what):
    """got[i]: what member i received; sent[i]: what it sent, in order. Every member gets every
    other member's message once, each sender's in its order, and any two members see the
    messages they both got in one order."""
    mine = {m: i for i, ms in enumerate(sent) for m in ms}
    for i, seq in enumerate(got):
        want = sorted(m for j, ms in enumerate(sent) if j != i for m in ms)
        eq(sorted(seq), want, f"{what}: member {i} gets every other member's message once")
        for j, ms in enumerate(sent):
            if j != i:
                eq([m for m in seq if mine[m] == j], ms, f"{what}: member {i}, sender {j}'s order")
    for i in range(len(got)):
        for j in range(i + 1, len(got)):
            a = [m for m in got[i] if mine[m] != j]
            b = [m for m in got[j] if mine[m] != i]
            if a != b:
                k = next(k for k in range(len(a)) if a[k] != b[k])
                raise Fail(f"{what}: members {i} and {j} saw two orders from message {k}: "
                           f"{a[k:k + 3]} against {b[k:k + 3]}")


@test
async def reuse_port_two_processes_one_port_one_order():
    port = free_port()
    n_clients, n_rooms, n_msgs = 40, 2, 6
    async with Redis() as r, reuse_port_nodes(r, port) as nodes:
        for s in nodes:
            eq([p for _, p in s.bound][1], port, "the shared port, bound second")
            check(s.port != port, f"a private port for /stats: {s.bound}")
        clients = []
        for i in range(n_clients):  # to the shared port: the kernel picks the process
            clients.append(await websockets.connect(
                f"ws://127.0.0.1:{port}/ws/rp{i % n_rooms}", open_timeout=T(5),
                close_timeout=T(3), ping_interval=None))
        nodes[0].clients += clients  # closed on the way out
        counts = [s.stats()["connections"] for s in nodes]
        eq(sum(counts), n_clients, f"connections of the two processes {counts}")
        check(min(counts) > 0, f"the kernel gave each process some clients: {counts}")
        # Each room has members on both processes (20 members: all on one is 1 in 2^18).
        for s in nodes:
            await wait_cluster(s, lambda c: c["link"] == "up" and c["rooms"] == n_rooms and
                               c["subscribed_rooms"] == n_rooms,
                               f"{n_rooms} rooms, each subscribed, on each process")
        members = [[c for i, c in enumerate(clients) if i % n_rooms == k]
                   for k in range(n_rooms)]
        sent = [[[f"{k}.{j}:{m}" for m in range(n_msgs)] for j in range(len(ms))]
                for k, ms in enumerate(members)]
        got = [[[] for _ in ms] for ms in members]

        async def read(k, j):
            want = (len(members[k]) - 1) * n_msgs
            while len(got[k][j]) < want:
                got[k][j].append(await recv(members[k][j], 20))

        async def send(k, j):
            for msg in sent[k][j]:
                await members[k][j].send(msg)
                if random.random() < 0.5:
                    await asyncio.sleep(0)

        readers = [asyncio.create_task(read(k, j))
                   for k in range(n_rooms) for j in range(len(members[k]))]
        await asyncio.gather(*(send(k, j) for k in range(n_rooms)
                               for j in range(len(members[k]))))
        await asyncio.wait_for(asyncio.gather(*readers), T(30))
        for k in range(n_rooms):
            check_one_order(got[k], sent[k], f"room rp{k}")
        for c in clients[:4]:
            await expect_silence(c, 0.3)
        for s in nodes:
            c = cluster(s)
            check(c["published"] > 0 and c["received"] > c["published"] and
                  c["not_crossed"] == 0, f"every message through Redis: {c}")


@test
async def port_taken_without_reuse_port_fails_clearly():
    port = free_port()
    async with Server("--reuse-port", "on", listen=(f"127.0.0.1:{port}",)):
        rc, _, err, _ = await run_wsfwd(["--listen", f"127.0.0.1:{port}"])
        check(rc == 1 and len(err) == 1 and "Address already in use" in err[0] and
              "--reuse-port on" in err[0], f"a second process without --reuse-port: {rc} {err}")
    async with Server(listen=(f"127.0.0.1:{port}",)):
        rc, _, err, _ = await run_wsfwd(["--listen", f"127.0.0.1:{port}", "--reuse-port", "on"])
        check(rc == 1 and len(err) == 1 and "Address already in use" in err[0] and
              "also set it" in err[0], f"--reuse-port on a port taken without it: {rc} {err}")


# ---- Runner ------------------------------------------------------------------------------------

def kill_own():
    for p in OWN:
        if p.poll() is None:
            p.kill()


async def run(selected):
    try:
        return await harness.run(selected, bound=90, after=kill_own)
    finally:
        kill_own()


def main():
    def on_signal(signum, frame):
        kill_own()
        harness.kill_all_and_exit(signum, frame)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    args = sys.argv[1:]
    if "--valgrind" in args:  # wsfwd under valgrind memcheck: exit 99 on any error or leak
        args.remove("--valgrind")
        harness.WRAPPER = harness.VALGRIND
        harness.SLOW = float(os.environ.get("WSFWD_E2E_SLOW", "10"))
    names = []
    while "-k" in args:
        i = args.index("-k")
        names.append(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    harness.WSFWD = os.path.abspath(args[0])
    selected = [t for t in TESTS if not names or any(n in t[0] for n in names)]
    print(f"wsfwd cluster e2e: {len(selected)} tests", flush=True)
    passed, failed, skipped = asyncio.run(run(selected))
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    sys.exit(1 if failed or not selected else 0)


if __name__ == "__main__":
    main()
