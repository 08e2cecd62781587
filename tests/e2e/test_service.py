#!/usr/bin/python3
"""End-to-end tests of the service conventions of the wsfwd binary: sd_notify readiness, the
JSON log lines, and the systemd unit docs/wsfwd.service.

    /usr/bin/python3 tests/e2e/test_service.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

What they pin: with NOTIFY_SOCKET naming a datagram socket bound here (a path or an abstract
name), READY=1 (with MAINPID= the process and STATUS= its addresses) arrives once the port
accepts connections, SIGHUP gives RELOADING=1 (with MONOTONIC_USEC=) then READY=1, SIGTERM
STOPPING=1; a NOTIFY_SOCKET nobody listens on is one warning and nothing else. With
--log-format json every stderr line, through connections, messages, a refused request and
closes, is one JSON object with ts, level and msg, and a client's conn, peer and room;
text stays the default. The unit passes `systemd-analyze verify` and `systemd-analyze
security` (exposure at most 2.0). Same runner as the other suites (harness.py); last line
"N passed, N failed". Under --valgrind, the tests that run wsfwd.
"""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import T, Fail, Server, check, eq, need, recv, test  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.join(HERE, "..", "..", "docs", "wsfwd.service")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = ("error", "warn", "info", "debug")


class Notify:
    """A datagram socket bound where NOTIFY_SOCKET will point: a path in a temporary
    directory, or an abstract name ("@...")."""

    def __init__(self, abstract=False):
        self.dir = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.name = f"@wsfwd-e2e-notify-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + self.name[1:])
        else:
            self.dir = tempfile.mkdtemp(prefix="wsfwd-notify.")
            self.name = os.path.join(self.dir, "notify")
            self.sock.bind(self.name)

    def env(self):
        return {"NOTIFY_SOCKET": self.name}

    def _recv(self, bound):
        self.sock.settimeout(bound)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    async def message(self, what, bound=5):
        """The next datagram as a dict of its KEY=VALUE lines."""
        text = await asyncio.to_thread(self._recv, T(bound))
        if text is None:
            raise Fail(f"no notification within {T(bound):.1f}s (waiting for {what})")
        return dict(line.split("=", 1) for line in text.split("\n") if line)

    async def silence(self, seconds=0.3):
        text = await asyncio.to_thread(self._recv, seconds)
        check(text is None, f"unexpected notification {text!r}")

    def close(self):
        self.sock.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


async def expect_ready(n, pid, status_has):
    msg = await n.message("READY=1")
    eq(msg.get("READY"), "1", f"READY in {msg}")
    eq(msg.get("MAINPID"), str(pid), f"MAINPID in {msg}")
    check(status_has in msg.get("STATUS", ""), f"STATUS names {status_has}: {msg}")


@test(valgrind=True)
async def test_ready_reload_stopping():
    """READY=1 only once the port accepts connections; SIGHUP, SIGTERM."""
    n = Notify()
    port = harness.free_port()
    proc = await asyncio.create_subprocess_exec(
        *harness.WRAPPER, harness.WSFWD, "--listen", f"127.0.0.1:{port}", "--shutdown-timeout", "2000",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
        preexec_fn=harness.die_with_parent, env={**os.environ, **n.env()})
    harness.PROCS.append(proc)
    try:
        await expect_ready(n, proc.pid, f"listening on 127.0.0.1:{port}")
        check(harness.port_open(port), "READY=1 came before the port accepted connections")
        await n.silence()
        before = time.monotonic_ns() // 1000
        proc.send_signal(signal.SIGHUP)
        msg = await n.message("RELOADING=1")
        eq(msg.get("RELOADING"), "1", f"RELOADING in {msg}")
        usec = int(msg.get("MONOTONIC_USEC", "0"))
        check(before <= usec <= time.monotonic_ns() // 1000,
              f"MONOTONIC_USEC={usec} is not the reload's time on CLOCK_MONOTONIC")
        await expect_ready(n, proc.pid, f"listening on 127.0.0.1:{port}")
        check(harness.port_open(port), "the port after a reload")
        proc.send_signal(signal.SIGTERM)
        eq(await n.message("STOPPING=1"), {"STOPPING": "1"}, "on SIGTERM")
        rc = await asyncio.wait_for(proc.wait(), T(10))
        eq(rc, 0, "exit status")
        err = (await proc.stderr.read()).decode()
        check("NOTIFY_SOCKET" not in err, f"a warning about the socket:\n{err}")
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        n.close()


@test(valgrind=True)
async def test_abstract_socket_and_clients():
    """An abstract NOTIFY_SOCKET; STOPPING=1 when the shutdown begins, clients still open."""
    n = Notify(abstract=True)
    try:
        async with Server(listen=("127.0.0.1:0", "127.0.0.1:0"), env=n.env()) as s:
            msg = await n.message("READY=1")
            eq(msg.get("MAINPID"), str(s.proc.pid), "MAINPID")
            for _, port in s.bound:
                check(f"127.0.0.1:{port}" in msg.get("STATUS", ""), f"STATUS: {msg}")
            a = await s.ws("/ws/svc")
            b = await s.ws("/ws/svc")
            await asyncio.sleep(0.1)
            await a.send("before")
            eq(await recv(b), "before", "a message")
            await s.sigterm()
            eq(await n.message("STOPPING=1"), {"STOPPING": "1"}, "on SIGTERM")
            eq(await harness.closed_code(b), 1001, "close code once stopping")
    finally:
        n.close()


@test(valgrind=True)
async def test_notify_socket_nobody_listens():
    """Never fatal: one warning, then wsfwd serves, reloads and stops as usual."""
    d = tempfile.mkdtemp(prefix="wsfwd-notify.")
    try:
        env = {"NOTIFY_SOCKET": os.path.join(d, "nobody")}
        async with Server(env=env) as s:
            s.proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.3)
            eq((await asyncio.to_thread(s.get, "/stats"))[0], 200, "/stats")
        warned = [line for line in s.lines if "NOTIFY_SOCKET" in line]
        eq(len(warned), 1, f"warnings about NOTIFY_SOCKET in {s.lines}")
        check(" warn " in warned[0], f"a warning: {warned[0]}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def parse_json_lines(lines):
    """Every line one JSON object with ts, level and msg; returns them."""
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            raise Fail(f"not a JSON line: {line!r}")
        check(isinstance(obj, dict), f"not an object: {line!r}")
        check(TS.match(obj.get("ts", "")), f"ts: {line!r}")
        check(obj.get("level") in LEVELS, f"level: {line!r}")
        check(isinstance(obj.get("msg"), str), f"msg: {line!r}")
        check(all(isinstance(v, str) for v in obj.values()), f"a member not a string: {line!r}")
        out.append(obj)
    return out


@test(valgrind=True)
async def test_json_log_lines():
    """Connect, message, a refused request, a room name to escape, close: all JSON."""
    room = "caf%C3%A9%20%22x%22%5C"
    async with Server("--log-format", "json", "--log-level", "debug") as s:
        a = await s.ws(f"/ws/{room}")
        b = await s.ws(f"/ws/{room}")
        await asyncio.sleep(0.1)
        await a.send("hello")
        eq(await recv(b), "hello", "a message")
        eq(await harness.status_of(s, "/nowhere"), 404, "a refused request")
        status, _, _ = await asyncio.to_thread(s.get, "/ws/x")  # no upgrade: refused
        check(status >= 400, f"plain GET of /ws/x: {status}")
        await a.close()
        await b.close()
        await asyncio.sleep(0.2)
    objs = parse_json_lines(s.lines)
    msgs = [o["msg"] for o in objs]
    check(any(m.startswith("listening on 127.0.0.1:") for m in msgs), f"listening: {msgs}")
    check("stopped" in msgs, f"the last line: {msgs}")
    opened = [o for o in objs if o["msg"] == "opened in a room"]
    eq(len(opened), 2, "opened lines")
    for o in opened:
        eq(o.get("room"), "caf\\xc3\\xa9\\x20\\x22x\\x22\\x5c", "room as the text line shows it")
        check(re.match(r"^[0-9a-f-]{36}$", o.get("conn", "")), f"conn: {o}")
        check(re.match(r"^127\.0\.0\.1:\d+$", o.get("peer", "")), f"peer: {o}")
    refused = [o for o in objs if o["msg"].startswith("refused with 404")]
    eq(len(refused), 1, f"refused lines in {msgs}")
    check("conn" in refused[0] and "peer" in refused[0], f"refused: {refused[0]}")
    closed = [o for o in objs if o["msg"].startswith("closed by peer with 1000")]
    check(closed, f"a close in {msgs}")
    check(all("conn" in o for o in closed), f"closed: {closed}")


@test()
async def test_text_log_lines():
    """The default stays the text line: time, level padded to five, message."""
    async with Server("--log-level", "debug") as s:
        eq(await harness.status_of(s, "/nowhere"), 404, "a refused request")
        await asyncio.sleep(0.1)
    text = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) \S")
    for line in s.lines:
        check(text.match(line), f"not a text line: {line!r}")
    check(any(re.search(r" conn=\S+ peer=127\.0\.0\.1:\d+ room=- refused with 404", line)
              for line in s.lines), f"refused line: {s.lines}")
    rc, _, err, _ = await harness.run_wsfwd(["--log-format", "xml"])
    eq(rc, 2, "--log-format xml")
    check(any("text or json" in line for line in err), f"why: {err}")


def systemd_analyze():
    path = shutil.which("systemd-analyze")
    need(path is not None, "systemd-analyze is missing (apt-get install systemd)")
    return path


def unit_for_test(d):
    """docs/wsfwd.service with ExecStart on the wsfwd under test (verify checks it exists)."""
    with open(UNIT) as f:
        text = f.read()
    check("ExecStart=/usr/local/bin/wsfwd " in text, "ExecStart names /usr/local/bin/wsfwd")
    path = os.path.join(d, "wsfwd.service")
    with open(path, "w") as f:
        f.write(text.replace("/usr/local/bin/wsfwd", harness.WSFWD))
    return path


def unit_keys():
    keys = {}
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "[")):
                k, v = line.split("=", 1)
                keys.setdefault(k, []).append(v)
    return keys


@test()
async def test_unit_file():
    """systemd-analyze verify: no warning; security: exposure at most 2.0; the settings."""
    tool = systemd_analyze()
    keys = unit_keys()
    want = {"Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID", "DynamicUser": "yes",
            "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
            "PrivateTmp": "yes", "LimitNOFILE": "1048576", "Restart": "on-failure",
            "CapabilityBoundingSet": "", "SystemCallArchitectures": "native",
            "MemoryDenyWriteExecute": "yes",
            "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}
    for k, v in want.items():
        eq(keys.get(k), [v], k)
    with tempfile.TemporaryDirectory(prefix="wsfwd-unit.") as d:
        path = unit_for_test(d)
        r = await asyncio.to_thread(subprocess.run, [tool, "verify", "--man=no", path],
                                    capture_output=True, text=True, timeout=T(60))
        eq((r.returncode, r.stdout + r.stderr), (0, ""), "systemd-analyze verify")
        # The same tool finds an unknown key: the check above is not vacuous.
        with open(path, "a") as f:
            f.write("ProtectEverything=yes\n")
        r = await asyncio.to_thread(subprocess.run, [tool, "verify", "--man=no", path],
                                    capture_output=True, text=True, timeout=T(60))
        check("Unknown key" in r.stdout + r.stderr, f"verify missed a bad key: {r.stderr}")
        path = unit_for_test(d)
        r = await asyncio.to_thread(
            subprocess.run, [tool, "security", "--offline=yes", "--threshold=20",
                             "--no-pager", path],
            capture_output=True, text=True, timeout=T(60))
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout)
        check(m is not None, f"systemd-analyze security said:\n{r.stdout}{r.stderr}")
        eq(r.returncode, 0, f"exposure {m.group(1)} over 2.0")


if __name__ == "__main__":
    harness.main(__doc__)
