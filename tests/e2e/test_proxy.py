#!/usr/bin/python3
"""End-to-end tests of wsfwd behind nginx terminating TLS: docs/deployment.md's nginx
configuration as written, and --trust-proxy (the client's address from X-Forwarded-For).

    /usr/bin/python3 tests/e2e/test_proxy.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

Each test starts its own wsfwd and its own nginx (harness.Nginx: its own master in a temporary
directory, on a free loopback port, killed by pid) with a certificate made at test time by
openssl; clients are Python `websockets` over wss:// trusting that certificate. The nginx
block is read from docs/deployment.md between its begin and end comments; only the listen
port, the certificate paths, the upstream port and (in the timeout tests) the two proxy
timeouts are changed, as that page says. The last line printed is "N passed, N failed". With
CI=true a missing nginx or openssl is a failure, never a skip.
"""
import asyncio
import http.client
import os
import re
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Fail, Nginx, Server, T, check, eq, expect_silence, recv,  # noqa: E402
                     self_signed_cert, test, wait_until)

from websockets.exceptions import InvalidStatusCode  # noqa: E402
import websockets  # noqa: E402

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                   "deployment.md")
BLOCK = re.compile(r"```nginx\n(# --- begin: docs/deployment\.md nginx .*?\n"
                   r"# --- end: docs/deployment\.md nginx ---\n)```", re.S)
# What the page promises the block holds (checked before it runs).
REQUIRED = [
    "proxy_http_version 1.1;",
    "proxy_set_header Upgrade $http_upgrade;",
    "proxy_set_header Connection $connection_upgrade;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_buffering off;",
    "location = /ws {",
    "location /ws/ {",
    "location = /echo {",
]
TRUST = ("--trust-proxy", "127.0.0.1", "--log-level", "debug")


def deployment_conf(d, port, upstream, timeout=None):
    """docs/deployment.md's nginx block with the test's substitutions, its certificate made
    in d; (conf, cert path)."""
    with open(DOC, encoding="utf-8") as f:
        m = BLOCK.search(f.read())
    check(m, "docs/deployment.md has no nginx block between its begin and end comments")
    conf = m.group(1)
    for line in REQUIRED:
        check(line in conf, f"docs/deployment.md's nginx block lacks {line!r}")
    cert, key = self_signed_cert(d)
    subs = [
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("ssl_certificate     /etc/ssl/certs/chat.example.org.pem;",
         f"ssl_certificate     {cert};"),
        ("ssl_certificate_key /etc/ssl/private/chat.example.org.key;",
         f"ssl_certificate_key {key};"),
        ("proxy_pass http://127.0.0.1:8080;", f"proxy_pass http://127.0.0.1:{upstream};"),
    ]
    if timeout is not None:
        subs += [("proxy_read_timeout 90s;", f"proxy_read_timeout {timeout};"),
                 ("proxy_send_timeout 90s;", f"proxy_send_timeout {timeout};")]
    for old, new in subs:
        check(old in conf, f"docs/deployment.md's nginx block has no {old!r}")
        conf = conf.replace(old, new)
    return conf, cert


class Proxy(Nginx):
    """docs/deployment.md's nginx in front of the wsfwd s; ws() opens a client through it."""

    def __init__(self, s, timeout=None):
        super().__init__(self._http)
        self.server = s
        self.timeout = timeout
        self.clients = []

    def _http(self, d, port):
        conf, self.cert = deployment_conf(d, port, self.server.port, self.timeout)
        return conf

    async def ws(self, path, xff=None, **kw):
        ctx = ssl.create_default_context(cafile=self.cert)
        headers = {"X-Forwarded-For": xff} if xff is not None else {}
        c = await websockets.connect(f"wss://127.0.0.1:{self.port}{path}", ssl=ctx,
                                     extra_headers=headers, open_timeout=T(5),
                                     close_timeout=T(3), ping_interval=None, **kw)
        self.clients.append(c)
        return c

    def get(self, path):
        """The status of a plain GET over https through nginx."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=T(5),
                                           context=ssl.create_default_context(cafile=self.cert))
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    async def status(self, path, xff=None):
        """101, or the status nginx passed on from wsfwd's refusal."""
        try:
            await self.ws(path, xff)
        except InvalidStatusCode as e:
            return e.status_code
        return 101

    async def __aexit__(self, *exc):
        for c in self.clients:
            try:
                await asyncio.wait_for(c.close(), T(3))
            except Exception:
                pass
        await super().__aexit__(*exc)


async def logged(s, pattern, what):
    """The first line of wsfwd's log matching pattern (waited for: stderr is read apart)."""
    rx = re.compile(pattern)
    await wait_until(lambda: any(rx.search(ln) for ln in s.lines), what, T(5))
    return next(ln for ln in s.lines if rx.search(ln))


def forwarded(s):
    return s.stats()["forwarded"]


@test(valgrind=True)
async def messages_cross_a_room_over_wss_through_nginx():
    async with Server(*TRUST) as s, Proxy(s) as p:
        a = await p.ws("/ws/lobby")
        b = await p.ws("/ws/lobby")
        await s.wait_stats(lambda st: st["connections"] == 2, "two connections")
        await a.send("through nginx over TLS")
        eq(await recv(b), "through nginx over TLS", "b's message")
        await expect_silence(a)
        g1, g2 = await p.ws("/ws"), await p.ws("/ws")
        await s.wait_stats(lambda st: st["connections"] == 4, "four connections")
        await g2.send(b"\x00binary\xff")
        eq(await recv(g1), b"\x00binary\xff", "a binary message in /ws")
        e = await p.ws("/echo")
        await e.send("echo")
        eq(await recv(e), "echo", "/echo through nginx")
        # A room name percent-encoded reaches wsfwd as sent, and is decoded there.
        c1, c2 = await p.ws("/ws/caf%C3%A9"), await p.ws("/ws/caf%C3%A9")
        await s.wait_stats(lambda st: st["connections"] == 7, "seven connections")
        await c1.send("x")
        eq(await recv(c2), "x", "a room with an encoded name")
        await logged(s, r"room=caf\\xc3\\xa9 opened", "the decoded room name in the log")
        # Only the WebSocket routes are proxied: the page and /stats stay on loopback.
        for path in ("/stats", "/"):
            status = await asyncio.to_thread(p.get, path)
            check(status in (403, 404), f"GET {path} through nginx: {status}, not nginx's own")


@test(valgrind=True)
async def log_names_the_right_most_untrusted_address():
    async with Server(*TRUST) as s, Proxy(s) as p:
        # The client claims 198.51.100.1 and says it came through 203.0.113.7; nginx appends
        # 127.0.0.1 (itself, trusted): the right-most untrusted address is 203.0.113.7.
        await p.ws("/ws/who", xff="198.51.100.1, 203.0.113.7")
        line = await logged(s, r"peer=203\.0\.113\.7 via=proxy room=who opened in a room",
                            "the forwarded client's line")
        check("198.51.100.1" not in "\n".join(s.lines), f"the claimed address was logged: {line}")
        await logged(s, r"peer=203\.0\.113\.7 via=proxy room=- forwarded by the proxy at "
                        r"127\.0\.0\.1:\d+$", "the line naming the proxy")
        # No header from the client: nginx sends only its own peer, 127.0.0.1, which is
        # trusted; every address trusted, the left-most is the client's.
        await p.ws("/ws/who")
        await logged(s, r"peer=127\.0\.0\.1 via=proxy room=who opened", "the client on loopback")
        # An IPv6 address the client claims, with nginx's appended after it.
        await p.ws("/echo", xff="2001:db8::7")
        await logged(s, r"peer=2001:db8::7 via=proxy room=\(echo\) opened", "an IPv6 client")
        eq(forwarded(s), {"clients": 3, "malformed": 0}, "/stats forwarded")


@test(valgrind=True)
async def per_address_limit_counts_forwarded_addresses():
    async with Server(*TRUST, "--max-connections-per-address", "1") as s, Proxy(s) as p:
        first = await p.ws("/ws/cap", xff="203.0.113.1")
        eq(await p.status("/ws/cap", xff="203.0.113.2"), 101, "another forwarded address")
        eq(await p.status("/ws/cap", xff="203.0.113.1"), 503, "the same forwarded address")
        # A claim left of it does not make it another client.
        eq(await p.status("/ws/cap", xff="198.51.100.9, 203.0.113.1"), 503,
           "the same address after a claimed one")
        st = s.stats()
        eq((st["connections"], st["refused"]["per_address"]), (2, 2), "connections, refusals")
        # The forwarded address is given back when its connection closes.
        await first.close()
        await s.wait_stats(lambda st: st["connections"] == 1, "the first one gone")
        eq(await p.status("/ws/cap", xff="203.0.113.1"), 101, "the address free again")


@test()
async def header_ignored_from_an_untrusted_peer():
    # All of this runs on loopback, so "untrusted" is a wsfwd that does not trust 127.0.0.1:
    # one trusting no proxy, and one trusting another network.
    for trust in ([], ["--trust-proxy", "10.0.0.0/8"]):
        async with Server(*trust, "--log-level", "debug", "--max-connections-per-address",
                          "1") as s, Proxy(s) as p:
            eq(await p.status("/ws/u", xff="203.0.113.1"), 101, f"{trust}: the first client")
            eq(await p.status("/ws/u", xff="203.0.113.2"), 503,
               f"{trust}: another client, counted as nginx's address")
            await logged(s, r"peer=127\.0\.0\.1:\d+ room=u opened", "the proxy's address")
            text = "\n".join(s.lines)
            check("203.0.113" not in text and "via=proxy" not in text,
                  f"{trust}: the header was used:\n{text}")
            eq(forwarded(s), {"clients": 0, "malformed": 0}, f"{trust}: /stats forwarded")


@test(valgrind=True)
async def malformed_or_missing_header_keeps_the_peer():
    # Straight to wsfwd from 127.0.0.1, a trusted address, as a proxy would come.
    async with Server(*TRUST) as s:
        status, _ = s.raw().handshake("/ws/m", extra={"X-Forwarded-For": "bogus, 127.0.0.1"})
        eq(status, 101, "a malformed header is no reason to refuse")
        line = await logged(s, r"malformed X-Forwarded-For", "the warning")
        check(re.search(r" warn .*peer=127\.0\.0\.1:\d+ room=-: malformed X-Forwarded-For "
                        r"\"bogus, 127\.0\.0\.1\" from a trusted proxy", line), line)
        status, _ = s.raw().handshake("/ws/m")
        eq(status, 101, "no header")
        status, _ = s.raw().handshake("/ws/m", extra={"X-Forwarded-For": "[2001:db8::1]:443"})
        eq(status, 101, "a bracketed IPv6 address with a port")
        await logged(s, r"peer=2001:db8::1 via=proxy room=m opened", "the bracketed address")
        opened = [ln for ln in s.lines if "room=m opened" in ln]
        eq(len(opened), 3, f"three opened lines: {opened}")
        check(all("via=proxy" not in ln for ln in opened[:2]), f"the peer kept: {opened}")
        eq(forwarded(s), {"clients": 1, "malformed": 1}, "/stats forwarded")


@test()
async def idle_connection_kept_open_by_pings_through_nginx():
    # nginx's timeouts from the page (90 s > --idle-timeout + --pong-timeout = 70 s), scaled
    # down: 3 s > 1 s + 1 s. The client answers wsfwd's pings (websockets does, unasked).
    async with Server(*TRUST, "--idle-timeout", "1000", "--pong-timeout", "1000") as s, \
            Proxy(s, timeout="3s") as p:
        c = await p.ws("/echo")
        start = time.monotonic()
        await asyncio.sleep(5)  # longer than nginx's 3 s, silent on the client's side
        await c.send("still here")
        eq(await recv(c), "still here", f"the echo after {time.monotonic() - start:.1f}s idle")
        eq(s.stats()["idle_timeouts"], 0, "idle_timeouts")


@test()
async def without_pings_nginx_cuts_an_idle_connection():
    # The control: with wsfwd's idle pings off, the same nginx closes a silent connection
    # after its 3 s, so the test above shows the pings keep it open.
    async with Server(*TRUST, "--idle-timeout", "0") as s, Proxy(s, timeout="3s") as p:
        c = await p.ws("/echo")
        start = time.monotonic()
        try:
            await asyncio.wait_for(c.wait_closed(), T(10))
        except asyncio.TimeoutError:
            raise Fail("nginx kept an idle connection past its proxy_read_timeout")
        took = time.monotonic() - start
        check(2.5 <= took, f"closed after {took:.1f}s, before nginx's 3 s")
        await s.wait_stats(lambda st: st["connections"] == 0, "wsfwd saw it go")
        # Traffic one way only, from a client alone in its room, keeps it open as well.
        alone = await p.ws("/ws/alone")
        for i in range(5):
            await asyncio.sleep(1)
            await alone.send(f"{i}")
        await asyncio.sleep(0.2)
        check(not alone.closed, "nginx cut a client that was sending")


if __name__ == "__main__":
    harness.main(__doc__, "wsfwd proxy e2e")
