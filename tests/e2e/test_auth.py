#!/usr/bin/python3
"""End-to-end tests of room tokens and the limits per connection and per address (issue 7),
against the real wsfwd binary, with Python `websockets` as the client.

    /usr/bin/python3 tests/e2e/test_auth.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

The tokens are minted here with nothing but Python's standard library (hmac, hashlib, base64,
json): an implementation of RFC 7519/7515 independent of wsfwd's. Same runner and options as
test_python.py (Server, Raw and helpers from harness.py); last line "N passed, N failed".
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Fail, Server, check, closed_code, eq, expect_silence, need,  # noqa: E402
                         recv, status_of)

import websockets  # noqa: E402

from harness import test  # noqa: E402

KEY = b"k3y-for-the-e2e-tests-0123456789abcdef"   # 38 bytes
OTHER = b"another-key-nobody-gave-to-wsfwd-0123456789"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(claims, key=KEY, header=None):
    """A compact JWS (HS256 unless the header says otherwise) of these claims."""
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
               b64url(json.dumps(claims, separators=(",", ":")).encode()))
    digest = hashlib.sha512 if header.get("alg") == "HS512" else hashlib.sha256
    return signing + "." + b64url(hmac.new(key, signing.encode(), digest).digest())


def claims(**kw):
    c = {"exp": int(time.time()) + 3600}
    c.update(kw)
    return c


class Keys:
    """Key files in a temporary folder, removed at the end."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="wsfwd-e2e-keys-")

    def write(self, name, key, newline=b"\n"):
        path = os.path.join(self.dir.name, name)
        with open(path, "wb") as f:
            f.write(key + newline)
        os.chmod(path, 0o600)
        return path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.dir.cleanup()


def bearer(token):
    return {"extra_headers": {"Authorization": f"Bearer {token}"}}


def no_token_in_logs(s, *tokens):
    for line in s.lines:
        for t in tokens:
            # The signature part alone would already be a leak.
            sig = t.rsplit(".", 1)[-1]
            check(t not in line and (len(sig) < 8 or sig not in line),
                  f"a token appears in the log: {line!r}")


# ---- Room tokens -----------------------------------------------------------------------------

@test(valgrind=True)
async def tokens_open_exactly_their_rooms():
    with Keys() as keys:
        async with Server("--auth-secret-file", keys.write("key", KEY),
                          "--log-level", "debug") as s:
            ta = mint(claims(room="a", sub="alice"))
            tab = mint(claims(rooms=["a", "b"], sub="bob"))
            tg = mint(claims(room=""))
            tcafe = mint(claims(room="café"))
            tnone = mint(claims(sub="echo-only"))
            # In the query (what a browser can send) and in the header (what others prefer).
            a1 = await s.ws(f"/ws/a?token={ta}")
            a2 = await s.ws("/ws/a", **bearer(tab))
            b1 = await s.ws(f"/ws/b?token={tab}")
            b2 = await s.ws("/ws/b", **bearer(tab))
            g1 = await s.ws(f"/ws?token={tg}")
            g2 = await s.ws("/ws", **bearer(tg))
            c1 = await s.ws(f"/ws/caf%C3%A9?token={tcafe}")
            c2 = await s.ws("/ws/caf%C3%A9", **bearer(tcafe))
            # And nowhere else.
            eq(await status_of(s, f"/ws/b?token={ta}"), 403, "room a's token at /ws/b")
            eq(await status_of(s, "/ws/c", **bearer(tab)), 403, "rooms a,b's token at /ws/c")
            eq(await status_of(s, f"/ws?token={ta}"), 403, "room a's token at /ws")
            eq(await status_of(s, f"/ws/a?token={tg}"), 403, "/ws's token at /ws/a")
            eq(await status_of(s, f"/ws/cafe?token={tcafe}"), 403, "café's token at /ws/cafe")
            eq(await status_of(s, f"/ws/a?token={tnone}"), 403, "a token with no room")
            # /echo takes any valid token, rooms or none.
            for t in (ta, tnone):
                e = await s.ws(f"/echo?token={t}")
                await e.send("ping?")
                eq(await recv(e), "ping?", "echo with a valid token")
            # The rooms work as rooms.
            await a1.send("to a")
            eq(await recv(a2), "to a", "room a")
            await b2.send("to b")
            eq(await recv(b1), "to b", "room b")
            await g1.send("to all")
            eq(await recv(g2), "to all", "the global pool")
            await c2.send("au café")
            eq(await recv(c1), "au café", "room café")
            for c in (a1, b2, g1, c2):
                await expect_silence(c, 0.1)
            # The header wins over the query: a good header with a bad query parameter.
            x = await s.ws("/ws/a?token=garbage", **bearer(ta))
            await x.send("via header")
            eq(await recv(a1), "via header", "header token")
            st = await asyncio.to_thread(s.stats)
            eq(st["auth_required"], True, "auth_required")
            eq(st["refused"]["auth"]["room"], 6, "refusals for the wrong room")
            eq(st["refused"]["403"], 6, "403s")
            no_token_in_logs(s, ta, tab, tg, tcafe, tnone)
            check(any("sub=bob" in line and "403" in line for line in s.lines),
                  "a refusal logs the token's sub")


@test(valgrind=True)
async def refusals_by_cause():
    with Keys() as keys:
        async with Server("--auth-secret-file", keys.write("key", KEY)) as s:
            now = int(time.time())
            tokens = {
                "signature": mint(claims(room="r"), key=OTHER),
                "expired": mint({"exp": now - 10, "room": "r", "sub": "late"}),
                "not_yet_valid": mint(claims(room="r", nbf=now + 3600)),
                "alg": mint(claims(room="r"), header={"alg": "HS512", "typ": "JWT"}),
                "claims": mint({"exp": str(now + 3600), "room": "r"}),
                "room": mint(claims(room="elsewhere")),
            }
            # alg none: no signature at all.
            none = (b64url(b'{"alg":"none"}') + "." + b64url(json.dumps(claims(room="r"))
                                                               .encode()) + ".")
            good = mint(claims(room="r"))
            h, p, sig = good.split(".")
            malformed = {
                "garbage": "not-a-token",
                "padding": good + "=",
                "bad characters": h + "." + p + "." + sig[:-2] + "+/",
                "nested JSON": mint({"exp": now + 3600, "room": "r", "x": {"y": 1}}),
                "two parts": h + "." + p,
                "empty": "",
            }
            tampered = {
                "header": b64url(b'{"alg":"HS256","typ":"JWS"}') + "." + p + "." + sig,
                "payload": h + "." + b64url(json.dumps(claims(room="r", sub="mallory"))
                                            .encode()) + "." + sig,
                "signature": h + "." + p + "." + ("A" if sig[0] != "A" else "B") + sig[1:],
            }
            for cause, t in tokens.items():
                eq(await status_of(s, f"/ws/r?token={t}"), 403, cause)
            eq(await status_of(s, f"/ws/r?token={none}"), 403, "alg none")
            for what, t in malformed.items():
                eq(await status_of(s, f"/ws/r?token={t}"), 403, what)
            for what, t in tampered.items():
                eq(await status_of(s, "/ws/r", **bearer(t)), 403, f"tampered {what}")
            eq(await status_of(s, "/ws/r?token=" + "a" * 5000), 403, "a 5,000-byte token")
            eq(await status_of(s, "/ws/r"), 401, "no token")
            eq(await status_of(s, "/echo"), 401, "no token at /echo")
            eq(await status_of(s, "/ws/r?room=r"), 401, "a query without token")
            eq(await status_of(s, "/ws/r", extra_headers={"Authorization": "Basic dTpw"}), 401,
               "Basic credentials are no token")
            # A 401 names the scheme (RFC 9110 15.5.2).
            raw = s.raw()
            status, hdrs = raw.handshake("/ws/r")
            eq(status, 401, "raw 401")
            eq(hdrs.get("www-authenticate"), 'Bearer realm="wsfwd"', "WWW-Authenticate")
            # Plain HTTP needs no token.
            eq(s.get("/healthz")[0], 200, "/healthz")
            ok = await s.ws(f"/ws/r?token={good}")
            st = await asyncio.to_thread(s.stats)
            want = {"missing": 5, "too_long": 1, "malformed": 6, "alg": 2, "signature": 4,
                    "claims": 1, "expired": 1, "not_yet_valid": 1, "room": 1}
            eq(st["refused"]["auth"], want, "refusals by cause")
            eq(st["refused"]["401"], 5, "401s")
            eq(st["refused"]["403"], sum(want.values()) - 5, "403s")
            eq(st["connections"], 1, "connections")
            await ok.close()
            no_token_in_logs(s, good, *tokens.values(), *tampered.values())
            lines = [line for line in s.lines if "refused with 40" in line]
            eq(len(lines), sum(want.values()), "one log line per refusal")
            check(any("expired" in line and "sub=late" in line for line in lines),
                  f"the expiry line names the sub: {lines}")


@test(valgrind=True)
async def key_rotation_with_two_files_and_sighup():
    new_key = b"the-new-key-0123456789abcdef0123456789"
    with Keys() as keys:
        current = keys.write("current", KEY)
        previous = keys.write("previous", OTHER)
        async with Server("--auth-secret-file", current, "--auth-secret-file", previous) as s:
            eq(await status_of(s, f"/ws/r?token={mint(claims(room='r'))}"), 101, "first key")
            eq(await status_of(s, f"/ws/r?token={mint(claims(room='r'), key=OTHER)}"), 101,
               "second key")
            # Rotate: the files change, SIGHUP re-reads them.
            keys.write("current", new_key)
            keys.write("previous", KEY)
            stay = await s.ws(f"/ws/r?token={mint(claims(room='r'))}")
            s.proc.send_signal(signal.SIGHUP)
            await wait_line(s, "SIGHUP: re-read 2 room token keys")
            eq(await status_of(s, f"/ws/r?token={mint(claims(room='r'), key=OTHER)}"), 403,
               "the retired key")
            eq(await status_of(s, f"/ws/r?token={mint(claims(room='r'), key=new_key)}"), 101,
               "the new key")
            eq(await status_of(s, f"/ws/r?token={mint(claims(room='r'))}"), 101,
               "the previous key, still accepted")
            # A broken file on SIGHUP keeps the keys in use.
            keys.write("current", b"short")
            s.proc.send_signal(signal.SIGHUP)
            await wait_line(s, "the keys in use stay")
            eq(await status_of(s, f"/ws/r?token={mint(claims(room='r'), key=new_key)}"), 101,
               "keys kept after a failed reload")
            # The connection opened before the rotation is undisturbed.
            other = await s.ws(f"/ws/r?token={mint(claims(room='r'), key=new_key)}")
            await other.send("still here?")
            eq(await recv(stay), "still here?", "a connection from before the rotation")


async def wait_line(s, text, bound=5):
    deadline = time.monotonic() + harness.T(bound)
    while not any(text in line for line in s.lines):
        if time.monotonic() > deadline:
            raise Fail(f"no log line with {text!r}: {s.lines[-5:]}")
        await asyncio.sleep(0.05)


@test(valgrind=True)
async def bad_secret_files_stop_the_start():
    with Keys() as keys:
        cases = [
            (["--auth-secret-file", keys.write("short", b"too short")], "at least 32"),
            (["--auth-secret-file", os.path.join(keys.dir.name, "missing")], "cannot open"),
            (["--auth-secret-file", keys.dir.name], "not a regular file"),
            (["--auth-secret-file", keys.write("a", KEY)] * 3, "at most 2"),
            (["--auth-secret-file="], "needs a path"),
            (["--rate-burst", "5"], "needs --rate-limit"),
            (["--rate-limit", "-1"], "whole number"),
            (["--rate-limit", "1000001"], "whole number"),
            (["--max-connections-per-address", "x"], "whole number"),
        ]
        for args, words in cases:
            rc, out, err, _ = await harness.run_wsfwd(["--listen", "127.0.0.1:0"] + args)
            check(rc in (1, 2), f"{args}: exit status {rc}")
            lines = [line for line in err if line]
            eq(len(lines), 1, f"{args}: one line on stderr ({lines})")
            check(words in lines[0], f"{args}: {lines[0]!r} does not say {words!r}")


def doc_block(name):
    """The code block after the marker "<!-- e2e: NAME" in docs/auth.md."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                        "auth.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    at = text.index(f"<!-- e2e: {name}")
    start = text.index("```", at)
    start = text.index("\n", start) + 1
    return text[start:text.index("```", start)]


@test(valgrind=True)
async def docs_minting_recipes_work():
    """docs/auth.md's two recipes, run as written (the key path swapped for a test file)."""
    with Keys() as keys:
        key_file = keys.write("secret", b"0123456789abcdef" * 4)
        async with Server("--auth-secret-file", key_file) as s:
            tokens = {}
            need(os.path.exists("/usr/bin/openssl"), "openssl is not installed")
            sh = doc_block("mint-openssl").replace("/etc/wsfwd/secret", key_file)
            proc = await asyncio.create_subprocess_exec(
                "bash", "-euo", "pipefail", "-c", sh, stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(proc.communicate(), harness.T(10))
            eq(proc.returncode, 0, "the openssl recipe's exit status")
            tokens["openssl"] = out.decode().strip()
            try:
                import jwt  # noqa: F401  (Debian python3-jwt)
                have_jwt = True
            except ImportError:
                have_jwt = False
            need(have_jwt, "PyJWT is missing (apt-get install python3-jwt)")
            py = doc_block("mint-pyjwt").replace("/etc/wsfwd/secret", key_file)
            scope = {}
            exec(py, scope)
            tokens["pyjwt"] = scope["token"]
            for how, t in tokens.items():
                c = await s.ws(f"/ws/lobby?token={t}")
                d = await s.ws("/ws/lobby", **bearer(t))
                await c.send(f"minted with {how}")
                eq(await recv(d), f"minted with {how}", f"a token minted with {how}")
                eq(await status_of(s, f"/ws/other?token={t}"), 403, f"{how}: another room")


# ---- Limits ----------------------------------------------------------------------------------

@test()
async def flooding_client_closed_others_unaffected():
    async with Server("--rate-limit", "50", "--rate-burst", "20") as s:
        flood = await s.ws("/ws/busy")
        calm = await s.ws("/ws/busy")
        readers = [await s.ws("/ws/busy") for _ in range(3)]
        # The calm sender, 20 a second for a second, stays under the limit.
        for i in range(20):
            await calm.send(f"calm {i}")
            await asyncio.sleep(0.05)
        # The flooder sends 2,000 at once.
        try:
            for i in range(2000):
                await flood.send(f"flood {i}")
        except websockets.ConnectionClosed:
            pass
        eq(await closed_code(flood), 1008, "the flooder's close code")
        eq(flood.close_reason, "message rate limit exceeded", "the close reason")
        await calm.send("after the flood")
        for r in readers:
            got = []
            while True:
                m = await recv(r)
                got.append(m)
                if m == "after the flood":
                    break
            calm_got = [m for m in got if m.startswith("calm")]
            flood_got = [m for m in got if m.startswith("flood")]
            eq(calm_got, [f"calm {i}" for i in range(20)], "the calm sender's messages")
            # The flooder's burst passes, the excess reaches nobody.
            check(20 <= len(flood_got) <= 40, f"{len(flood_got)} flood messages got through")
            eq(flood_got, [f"flood {i}" for i in range(len(flood_got))], "in order, no gaps")
        st = await asyncio.to_thread(s.stats)
        eq(st["rate_limited"], 1, "rate_limited")
        eq(st["connections"], 4, "connections left")
        check(any("over --rate-limit 50/s (1008)" in line for line in s.lines),
              "the close is logged")
        # Echo connections are held to the same limit.
        e = await s.ws("/echo")
        try:
            for i in range(500):
                await e.send("x")
        except websockets.ConnectionClosed:
            pass
        eq(await closed_code(e), 1008, "a flooding echo client")


async def ws_from(s, path, source):
    """A websockets client whose socket is bound to a source address first."""
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((source, 0))
    host = s.host if family == socket.AF_INET else "::1"
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, s.port_of(host))),
                           harness.T(5))
    c = await websockets.connect(s.url_for(host) + path, sock=sock, open_timeout=harness.T(5),
                                 ping_interval=None)
    s.clients.append(c)
    return c


async def status_from(s, path, source):
    try:
        c = await ws_from(s, path, source)
    except websockets.InvalidStatusCode as e:
        return e.status_code
    s.clients.remove(c)
    await c.close()
    return 101


@test(valgrind=True)
async def per_address_cap():
    async with Server("--max-connections-per-address", "3") as s:
        mine = [await ws_from(s, "/ws/cap", "127.0.0.1") for _ in range(2)]
        mine.append(await ws_from(s, "/echo", "127.0.0.1"))  # every route counts
        eq(await status_from(s, "/ws/cap", "127.0.0.1"), 503, "a fourth from 127.0.0.1")
        eq(await status_from(s, "/ws", "127.0.0.1"), 503, "a fourth, on another route")
        # Another address is not affected.
        theirs = [await ws_from(s, "/ws/cap", "127.0.0.2") for _ in range(3)]
        eq(await status_from(s, "/ws/cap", "127.0.0.2"), 503, "a fourth from 127.0.0.2")
        await theirs[0].send("hello")
        for c in (mine[0], mine[1], theirs[1], theirs[2]):
            eq(await recv(c), "hello", "the room across addresses")
        # Plain HTTP is not counted.
        eq(s.get("/healthz")[0], 200, "/healthz past the cap")
        # A slot freed is a slot again.
        await mine[0].close()
        await s.wait_stats(lambda st: st["connections"] == 5, "five connections")
        again = await ws_from(s, "/ws/cap", "127.0.0.1")
        await again.send("back")
        eq(await recv(theirs[0]), "back", "a connection once under the cap")
        st = await asyncio.to_thread(s.stats)
        eq(st["refused"]["per_address"], 3, "per_address refusals")
        eq(st["refused"]["503"], 3, "503s")
    need(harness.ipv6_loopback(), "IPv6 is not available on ::1 on this machine")
    async with Server("--max-connections-per-address", "1",
                      listen=["127.0.0.1:0", "[::1]:0"]) as s:
        v6 = await ws_from(s, "/ws", "::1")
        eq(await status_from(s, "/ws", "::1"), 503, "a second from ::1")
        v4 = await ws_from(s, "/ws", "127.0.0.1")
        await v4.send("v4 and v6 counted apart")
        eq(await recv(v6), "v4 and v6 counted apart", "both in /ws")


@test(valgrind=True)
async def limits_off_by_default():
    async with Server() as s:
        many = [await s.ws("/ws/free") for _ in range(12)]
        for i in range(300):
            await many[0].send(f"m{i}")
        for c in many[1:]:
            for i in range(300):
                eq(await recv(c), f"m{i}", "a burst with no limit")
        st = await asyncio.to_thread(s.stats)
        eq((st["rate_limited"], st["refused"]["per_address"], st["auth_required"]),
           (0, 0, False), "no limit met")


if __name__ == "__main__":
    harness.main(__doc__)
