#!/usr/bin/python3
"""End-to-end tests of wsfwd's built-in TLS (--listen-tls, --tls-cert, --tls-key) with Python
`websockets` clients over wss:// that trust a test CA made at test time by the openssl
command, and raw sockets that misbehave.

    /usr/bin/python3 tests/e2e/test_tls.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

What they pin: echo, a room's fan-out and messages of megabytes both ways over wss://; a plain
and a TLS listener in one process, their clients in one room; a TLS handshake that stalls
(nothing sent, or half a ClientHello) is closed by --handshake-timeout while others go on;
plain HTTP to the TLS port is answered 400 and closed; SIGHUP swaps the certificate (new
connections see the new serial, open ones stay and keep working; a broken file keeps the old
one); a TLS 1.1 ClientHello gets a protocol_version alert; ALPN http/1.1 is selected when
offered; thousands of small records arrive in order; a slow TLS reader is cut while its room
goes on; bad certificate files stop wsfwd at start with one line; SIGTERM closes TLS clients
with 1001. Same runner and options as the other suites (harness.py); last line
"N passed, N failed". Needs a wsfwd built with OpenSSL and the openssl command.
"""
import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import T, Fail, Raw, Server, check, eq, recv, test  # noqa: E402

MIB = 1024 * 1024
PKI = None  # the test CA and certificates, made once (make_pki)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=30)


class Pki:
    """A test CA and two server certificates for 127.0.0.1 and localhost that it signed, with
    known serials, in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wsfwd-tls-")
        self.ca = self.path("ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", self.path("ca.key"), "-out", self.ca, "-days", "2",
                "-subj", "/CN=wsfwd test CA")
        with open(self.path("ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        self.serials = {}
        for name, serial in (("one", "0x1001"), ("two", "0x2002")):
            key, csr = self.path(name + ".key"), self.path(name + ".csr")
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", f"/CN=wsfwd test {name}")
            openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.path("ca.key"),
                    "-set_serial", serial, "-days", "2", "-extfile", self.path("ext.cnf"),
                    "-out", self.path(name + ".pem"))
            self.serials[name] = int(serial, 16)

    def path(self, name):
        return os.path.join(self.dir, name)

    def install(self, name, where):
        """Copy certificate `name` and its key to where/cert.pem and where/key.pem."""
        shutil.copy(self.path(name + ".pem"), os.path.join(where, "cert.pem"))
        shutil.copy(self.path(name + ".key"), os.path.join(where, "key.pem"))

    def client_ctx(self, alpn=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        if alpn is not None:
            ctx.set_alpn_protocols(alpn)
        return ctx


def pki():
    global PKI
    if PKI is None:
        PKI = Pki()
    return PKI


class TlsServer(Server):
    """A wsfwd with a plain listener and a TLS one, on certificate `name` (copied into a
    directory of its own, so a test may swap it)."""

    def __init__(self, *args, cert="one", **kw):
        self.certdir = tempfile.mkdtemp(prefix="wsfwd-tls-srv-")
        pki().install(cert, self.certdir)
        super().__init__(*args, "--tls-cert", os.path.join(self.certdir, "cert.pem"),
                         "--tls-key", os.path.join(self.certdir, "key.pem"),
                         listen_tls=("127.0.0.1:0",), **kw)

    @property
    def tls_port(self):
        return self.bound_tls[0][1]

    @property
    def wss(self):
        return f"wss://127.0.0.1:{self.tls_port}"

    async def wss_client(self, path, alpn=None, **kw):
        kw.setdefault("open_timeout", T(5))
        kw.setdefault("close_timeout", T(3))
        kw.setdefault("ping_interval", None)
        kw.setdefault("max_size", None)
        c = await harness.websockets.connect(self.wss + path, ssl=pki().client_ctx(alpn), **kw)
        self.clients.append(c)
        return c

    async def __aexit__(self, etype, exc, tb):
        try:
            return await super().__aexit__(etype, exc, tb)
        finally:
            shutil.rmtree(self.certdir, ignore_errors=True)


def peer_serial(ws):
    cert = ws.transport.get_extra_info("ssl_object").getpeercert()
    return int(cert["serialNumber"], 16)


def client_hello(version=None):
    """The bytes of a ClientHello that Python's ssl would send (TLS 1.1 only if version is
    "1.1", else its default: TLS 1.2 and 1.3)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version == "1.1":
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    check(len(hello) > 40 and hello[0] == 0x16, f"a ClientHello record: {hello[:8].hex()}")
    return hello


def wait_line(s, text, bound=5):
    async def waiter():
        deadline = time.monotonic() + T(bound)
        while not any(text in line for line in s.lines):
            if time.monotonic() > deadline:
                raise Fail(f"no log line with {text!r}; last lines: {s.lines[-5:]}")
            await asyncio.sleep(0.05)
    return waiter()


# ---- The tests -------------------------------------------------------------------------------

@test(valgrind=True)
async def test_wss_echo_and_room():
    async with TlsServer() as s:
        e = await s.wss_client("/echo")
        await e.send("hello over TLS")
        eq(await recv(e), "hello over TLS", "echo")
        members = [await s.wss_client("/ws/tls-room") for _ in range(3)]
        await asyncio.sleep(T(0.1))
        await members[0].send("to the room")
        for m in members[1:]:
            eq(await recv(m), "to the room", "fan-out over wss://")
        await members[2].send(b"\x00\x01binary")
        for m in members[:2]:
            eq(await recv(m), b"\x00\x01binary", "binary fan-out")


@test(valgrind=True)
async def test_big_messages_both_ways():
    async with TlsServer("--max-message", str(8 * MIB), "--max-queue", str(16 * MIB)) as s:
        e = await s.wss_client("/echo")
        for size in (70000, 3 * MIB + 17):
            data = os.urandom(size)
            await e.send(data)
            got = await recv(e, 30)
            eq(len(got), size, "echoed length")
            check(got == data, f"{size} bytes echoed intact")
        a = await s.wss_client("/ws/big")
        b = await s.wss_client("/ws/big")
        await asyncio.sleep(T(0.1))
        data = os.urandom(2 * MIB)
        await a.send(data)
        check(await recv(b, 30) == data, "2 MiB through a room intact")


@test(valgrind=True)
async def test_many_small_records_in_order():
    """Thousands of small messages, each its own TLS record, sent at once: more than a turn
    reads, so some wait inside OpenSSL (read ahead) where poll() does not see them; every one
    arrives, in order, through a room and through /echo."""
    async with TlsServer() as s:
        a = await s.wss_client("/ws/small")
        b = await s.wss_client("/ws/small")
        e = await s.wss_client("/echo")
        await asyncio.sleep(T(0.1))
        n = 3000
        for i in range(n):
            await a.send(f"m{i}")
            await e.send(f"e{i}")
        for i in range(n):
            eq(await recv(b), f"m{i}", "room message in order")
            eq(await recv(e), f"e{i}", "echo in order")


@test()
async def test_plain_and_tls_listeners_share_a_room():
    async with TlsServer() as s:
        plain = await s.ws("/ws/mixed")
        secure = await s.wss_client("/ws/mixed")
        await asyncio.sleep(0.1)
        await plain.send("from ws://")
        eq(await recv(secure), "from ws://", "plain to TLS")
        await secure.send("from wss://")
        eq(await recv(plain), "from wss://", "TLS to plain")
        st = s.stats()
        eq(st["connections"], 2, "/stats connections (one plain, one TLS)")


@test(valgrind=True)
async def test_stalled_handshakes_time_out():
    async with TlsServer("--handshake-timeout", "800") as s:
        silent = Raw(s.tls_port)
        half = Raw(s.tls_port)
        half.send(client_hello()[:30])  # a ClientHello cut short
        # Meanwhile a real client connects and works.
        e = await s.wss_client("/echo")
        await e.send("still served")
        eq(await recv(e), "still served", "echo beside the stalled handshakes")
        for name, r in (("silent", silent), ("half a ClientHello", half)):
            took = await asyncio.to_thread(r.wait_eof, T(5))
            check(took < T(3), f"{name}: closed after {took:.1f}s, want about 0.8s")
            r.close()
        st = await s.wait_stats(lambda st: st["handshake_timeouts"] >= 2,
                                "two handshake timeouts")
        eq(st["handshake_timeouts"], 2, "handshake timeouts")
        await e.send("after")
        eq(await recv(e), "after", "echo after the timeouts")


@test(valgrind=True)
async def test_plain_http_to_tls_port_is_refused():
    async with TlsServer() as s:
        r = Raw(s.tls_port)
        r.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, hdrs = await asyncio.to_thread(r.read_head)
        eq(status, 400, "plain HTTP on the TLS port")
        body = r.read_exact(int(hdrs["content-length"]))
        check(b"https://" in body and b"wss://" in body, f"the 400 says what to use: {body!r}")
        await asyncio.to_thread(r.wait_eof, T(3))
        r.close()
        # A ws:// client on the TLS port fails, and the port still serves wss://.
        try:
            c = await harness.websockets.connect(f"ws://127.0.0.1:{s.tls_port}/echo",
                                                 open_timeout=T(5))
            await c.close()
            raise Fail("a ws:// handshake succeeded on the TLS port")
        except harness.InvalidStatusCode as e:
            eq(e.status_code, 400, "ws:// on the TLS port")
        e = await s.wss_client("/echo")
        await e.send("ok")
        eq(await recv(e), "ok", "wss:// after plain HTTP")


@test(valgrind=True)
async def test_sighup_swaps_the_certificate():
    p = pki()
    async with TlsServer() as s:
        old = await s.wss_client("/ws/swap")
        eq(peer_serial(old), p.serials["one"], "serial before SIGHUP")
        p.install("two", s.certdir)
        s.proc.send_signal(signal.SIGHUP)
        await wait_line(s, "TLS certificate reloaded")
        new = await s.wss_client("/ws/swap")
        eq(peer_serial(new), p.serials["two"], "serial after SIGHUP")
        await asyncio.sleep(T(0.1))
        await old.send("old connection still here")
        eq(await recv(new), "old connection still here", "old to new")
        await new.send("new to old")
        eq(await recv(old), "new to old", "new to old")
        # A broken file: the log says so and the certificate in use stays.
        with open(os.path.join(s.certdir, "cert.pem"), "w") as f:
            f.write("not a certificate\n")
        s.proc.send_signal(signal.SIGHUP)
        await wait_line(s, "the previous certificate stays")
        third = await s.wss_client("/echo")
        eq(peer_serial(third), p.serials["two"], "serial after a failed reload")
        await old.send("and still")
        eq(await recv(new), "and still", "old connection after a failed reload")


@test()
async def test_tls_1_1_is_refused():
    async with TlsServer() as s:
        r = Raw(s.tls_port)
        r.send(client_hello("1.1"))
        head = await asyncio.to_thread(r.read_exact, 7)
        # An alert record (21), level fatal (2), protocol_version (70).
        eq((head[0], head[5], head[6]), (21, 2, 70), f"the answer to TLS 1.1 ({head.hex()})")
        await asyncio.to_thread(r.wait_eof, T(3))
        r.close()
        e = await s.wss_client("/echo")
        await e.send("1.2+")
        eq(await recv(e), "1.2+", "echo after the refusal")
        v = e.transport.get_extra_info("ssl_object").version()
        check(v in ("TLSv1.2", "TLSv1.3"), f"negotiated {v}")


@test()
async def test_tls_1_2_is_served():
    async with TlsServer() as s:
        ctx = pki().client_ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        c = await harness.websockets.connect(s.wss + "/echo", ssl=ctx, open_timeout=T(5))
        s.clients.append(c)
        eq(c.transport.get_extra_info("ssl_object").version(), "TLSv1.2", "version")
        await c.send("twelve")
        eq(await recv(c), "twelve", "echo over TLS 1.2")


@test()
async def test_bad_certificate_files_at_start():
    p = pki()
    cases = [
        ([p.path("missing.pem"), p.path("one.key")], "--tls-cert", "No such file"),
        ([p.path("one.pem"), p.path("two.key")], "--tls-key", "key values mismatch"),
        ([p.path("one.key"), p.path("one.key")], "--tls-cert", "no start line"),
    ]
    for (cert, key), flag, why in cases:
        rc, _, err, _ = await harness.run_wsfwd(
            ["--listen-tls", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key])
        eq(rc, 1, f"exit status with {flag} bad")
        eq(len(err), 1, f"one line: {err}")
        check(err[0].startswith(f"wsfwd: {flag} ") and why in err[0], f"the line: {err[0]!r}")
    rc, _, err, _ = await harness.run_wsfwd(["--listen-tls", "127.0.0.1:0"])
    eq((rc, err), (2, ["wsfwd: --listen-tls needs --tls-cert and --tls-key"]), "no files")


@test(valgrind=True)
async def test_sigterm_closes_tls_clients_with_1001():
    async with TlsServer() as s:
        clients = [await s.wss_client("/ws/bye") for _ in range(3)]
        silent = Raw(s.tls_port)  # a TLS handshake not begun: dropped
        await asyncio.sleep(T(0.1))
        await s.sigterm()
        for c in clients:
            eq(await harness.closed_code(c), 1001, "close code on SIGTERM over TLS")
        await asyncio.to_thread(silent.wait_eof, T(3))
        silent.close()
        eq(await s.wait_exit(T(5)), 0, "exit status")


def alpn_of(port, offer):
    ctx = pki().client_ctx(offer)
    with socket.create_connection(("127.0.0.1", port), timeout=T(5)) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.selected_alpn_protocol()


@test()
async def test_alpn_http_1_1():
    async with TlsServer() as s:
        eq(await asyncio.to_thread(alpn_of, s.tls_port, ["h2", "http/1.1"]), "http/1.1",
           "ALPN with h2 and http/1.1 offered")
        eq(await asyncio.to_thread(alpn_of, s.tls_port, ["http/1.1"]), "http/1.1",
           "ALPN with http/1.1 offered")
        eq(await asyncio.to_thread(alpn_of, s.tls_port, ["h2"]), None,
           "ALPN with only h2 offered: none selected, the handshake goes on")
        c = await s.wss_client("/echo", alpn=["http/1.1"])
        eq(c.transport.get_extra_info("ssl_object").selected_alpn_protocol(), "http/1.1",
           "a wss:// client offering http/1.1")
        await c.send("alpn")
        eq(await recv(c), "alpn", "echo")


@test()
async def test_many_tls_clients_and_a_slow_reader():
    """A room of TLS members, one of which stops reading: the others get every message; the
    slow one is cut by --slow-timeout (its records waited for the socket)."""
    async with TlsServer("--max-queue", str(1 * MIB), "--slow-timeout", "500") as s:
        members = [await s.wss_client("/ws/flood") for _ in range(8)]
        slow = Raw(s.tls_port, rcvbuf=4096)
        ctx = pki().client_ctx()
        slow.sock = ctx.wrap_socket(slow.sock, server_hostname="127.0.0.1")
        slow.sock.settimeout(T(5))
        slow.hostport = f"127.0.0.1:{s.tls_port}"
        status, _ = await asyncio.to_thread(slow.handshake, "/ws/flood")
        eq(status, 101, "the slow member's handshake")
        await asyncio.sleep(T(0.1))
        chunk = os.urandom(32 * 1024)
        n = 320  # 10 MiB: more than the kernel's buffers hold for the slow member

        async def read_all(m):
            for i in range(n):
                got = await recv(m, 30)
                check(got == chunk, f"message {i} intact")

        readers = [asyncio.create_task(read_all(m)) for m in members[1:]]
        for i in range(n):
            await members[0].send(chunk)
        await asyncio.gather(*readers)
        st = await s.wait_stats(lambda st: st["connections"] == 8, "the slow reader cut", 10)
        eq(st["flow"]["cut_by_time"], 1, "slow members cut by --slow-timeout")
        slow.close()


if __name__ == "__main__":
    try:
        subprocess.run(["openssl", "version"], check=True, stdout=subprocess.DEVNULL,
                       timeout=10)
    except (OSError, subprocess.CalledProcessError):
        print("the openssl command is missing (apt-get install openssl)", file=sys.stderr)
        print("0 passed, 1 failed")
        sys.exit(1)
    try:
        harness.main(__doc__, "wsfwd TLS e2e")
    finally:
        if PKI is not None:
            shutil.rmtree(PKI.dir, ignore_errors=True)
