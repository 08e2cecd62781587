#!/usr/bin/python3
"""End-to-end tests of GET /metrics (issue 16), against the real wsfwd binary: known traffic,
then the Prometheus text parsed here and compared with what was sent and with /stats;
`promtool check metrics` on it (Debian's prometheus package); and a real Prometheus server,
started here on loopback with its own configuration and data folder, scraping wsfwd every
second, whose query API must then return the expected values.

    /usr/bin/python3 tests/e2e/test_metrics.py PATH/TO/wsfwd [-k SUBSTRING]... [--valgrind]

Same runner and options as test_python.py (Server, Raw and helpers from harness.py); last line
"N passed, N failed". Every process started here is killed by pid at the end.
"""
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (T, Fail, Server, check, eq, free_port, need, port_open,  # noqa: E402
                     recv, status_of, test)

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse(text):
    """{(name, frozenset of (label, value)): value}, and {family: type}; a line that is no
    comment and no sample fails."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        check(m is not None, f"not a sample line: {line!r}")
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def value(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    check(key in samples, f"/metrics has no {name}{labels or ''}")
    return samples[key]


def scrape(s):
    status, hdrs, body = s.get("/metrics")
    eq(status, 200, "/metrics status")
    eq(hdrs.get("content-type"), CONTENT_TYPE, "/metrics content type")
    return body.decode()


MAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "wsfwd.1")


def documented(types):
    """Every family is named in docs/wsfwd.1 (its Metrics section)."""
    with open(MAN) as f:
        man = f.read()
    missing = sorted(name for name in types if name not in man)
    eq(missing, [], "metrics not in docs/wsfwd.1")


def promtool_check(text):
    need(os.path.exists(PROMTOOL), "promtool is missing (apt-get install prometheus)")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=30)
    eq((r.returncode, r.stdout.decode() + r.stderr.decode()), (0, ""), "promtool check metrics")


async def known_traffic(s):
    """Two members of room r (one sends 10 and 300 bytes), /echo three times 5 bytes, one 404.
    Returns the receiving member (still open)."""
    a, b = await s.ws("/ws/r"), await s.ws("/ws/r")
    await a.send("x" * 10)
    await a.send("y" * 300)
    eq(await recv(b), "x" * 10, "first in the room")
    eq(await recv(b), "y" * 300, "second in the room")
    e = await s.ws("/echo")
    for _ in range(3):
        await e.send("hello")
        eq(await recv(e), "hello", "echo")
    eq((await asyncio.to_thread(s.get, "/nope"))[0], 404, "GET /nope")
    return b


@test()
async def values_after_known_traffic():
    async with Server() as s:
        await known_traffic(s)
        text = await asyncio.to_thread(scrape, s)
        m, types = parse(text)
        eq(value(m, "wsfwd_messages_received_total"), 5, "messages received")
        eq(value(m, "wsfwd_received_bytes_total"), 10 + 300 + 15, "bytes received")
        eq(value(m, "wsfwd_deliveries_total"), 2 + 3, "deliveries (room and echoes)")
        eq(value(m, "wsfwd_delivered_bytes_total"), 310 + 15, "bytes delivered")
        eq(value(m, "wsfwd_echoes_total"), 3, "echoes")
        eq(value(m, "wsfwd_connections"), 3, "WebSocket connections now")
        eq(value(m, "wsfwd_rooms"), 1, "rooms")
        eq(value(m, "wsfwd_global_members"), 0, "global members")
        eq(value(m, "wsfwd_refusals_total", status="404"), 1, "404s")
        eq(value(m, "wsfwd_refusals_total", status="401"), 0, "401s")
        eq(value(m, "wsfwd_auth_refusals_total", cause="missing"), 0, "auth refusals")
        buckets = [(le, value(m, "wsfwd_message_size_bytes_bucket", le=le))
                   for le in ("16", "64", "256", "1024", "+Inf")]
        eq(buckets, [("16", 4), ("64", 4), ("256", 4), ("1024", 5), ("+Inf", 5)],
           "message size buckets")
        eq((value(m, "wsfwd_message_size_bytes_sum"), value(m, "wsfwd_message_size_bytes_count")),
           (325, 5), "message size sum and count")
        eq(types["wsfwd_message_size_bytes"], "histogram", "histogram type")
        documented(types)
        start = value(m, "wsfwd_process_start_time_seconds")
        check(time.time() - 60 < start <= time.time(), f"start time {start} not recent")
        ver = [dict(k[1]) for k in m if k[0] == "wsfwd_build_info"]
        check(len(ver) == 1 and re.match(r"^\d+\.\d+\.\d+", ver[0].get("version", "")),
              f"build info {ver}")
        check(not any(k[0].startswith("wsfwd_cluster_") for k in m), "no cluster without --redis")
        check(all(n.endswith("_total") for n, t in types.items() if t == "counter"),
              "every counter ends in _total")
        await asyncio.to_thread(promtool_check, text)


@test()
async def same_figures_as_stats():
    async with Server() as s:
        await known_traffic(s)
        st = await asyncio.to_thread(s.stats)
        m, _ = parse(await asyncio.to_thread(scrape, s))
        pairs = [("messages_in", "wsfwd_messages_received_total"),
                 ("bytes_in", "wsfwd_received_bytes_total"),
                 ("messages_out", "wsfwd_deliveries_total"),
                 ("bytes_out", "wsfwd_delivered_bytes_total"), ("echoed", "wsfwd_echoes_total"),
                 ("connections", "wsfwd_connections"), ("accepted", None),
                 ("tcp_connections", "wsfwd_tcp_connections"), ("rooms", "wsfwd_rooms"),
                 ("protocol_errors", "wsfwd_protocol_errors_total"),
                 ("rate_limited", "wsfwd_rate_limited_total")]
        for key, name in pairs:
            if name is not None:
                eq(value(m, name), st[key], f"{name} against /stats {key}")
        # /metrics' own connection came after /stats'
        eq(value(m, "wsfwd_tcp_connections_accepted_total"), st["accepted"] + 1, "accepted")
        for status in ("400", "401", "403", "404", "405", "426", "431", "503", "other"):
            eq(value(m, "wsfwd_refusals_total", status=status), st["refused"][status], status)
        for cause, n in st["refused"]["auth"].items():
            eq(value(m, "wsfwd_auth_refusals_total", cause=cause), n, f"auth {cause}")
        flow = st["flow"]
        eq(value(m, "wsfwd_paced_connections"), flow["paced_now"], "paced now")
        eq(value(m, "wsfwd_slow_reader_cuts_total", cause="time"), flow["cut_by_time"], "cut")
        eq(value(m, "wsfwd_deflate_enabled"), int(st["deflate"]["enabled"]), "deflate enabled")
        eq(value(m, "wsfwd_deflate_compressions_total"), st["deflate"]["compressed"], "deflate")


@test()
async def auth_refusals_by_cause():
    with tempfile.TemporaryDirectory(prefix="wsfwd-e2e-metrics-") as d:
        key = os.path.join(d, "key")
        with open(key, "wb") as f:
            f.write(b"k3y-for-the-metrics-e2e-test-0123456789")
        async with Server("--auth-secret-file", key) as s:
            eq(await status_of(s, "/ws/r"), 401, "no token")
            eq(await status_of(s, "/ws/r?token=abc"), 403, "a malformed token")
            text = await asyncio.to_thread(scrape, s)
            m, _ = parse(text)
            eq(value(m, "wsfwd_auth_refusals_total", cause="missing"), 1, "missing")
            eq(value(m, "wsfwd_auth_refusals_total", cause="malformed"), 1, "malformed")
            eq(value(m, "wsfwd_refusals_total", status="401"), 1, "401s")
            eq(value(m, "wsfwd_refusals_total", status="403"), 1, "403s")
            eq(value(m, "wsfwd_auth_required"), 1, "auth required")
            await asyncio.to_thread(promtool_check, text)


def start_own(cmd, log):
    """A process of our own in its own session, killed by pid at the end (harness.PROCS)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True, preexec_fn=harness.die_with_parent)
    harness.PROCS.append(p)
    return p


def stop_own(p):
    if p.poll() is None:
        p.kill()
        p.wait(10)


async def wait_for(pred, what, bound):
    deadline = time.monotonic() + T(bound)
    while True:
        got = await asyncio.to_thread(pred)
        if got:
            return got
        if time.monotonic() > deadline:
            raise Fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@test()
async def cluster_link_and_counters():
    need("no hiredis" not in subprocess.run([harness.WSFWD, "--help"], capture_output=True,
                                            text=True).stdout, "a wsfwd built with hiredis")
    need(os.path.exists(REDIS), "redis-server is missing (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="wsfwd-e2e-metrics-") as d:
        port = free_port()
        with open(os.path.join(d, "redis.log"), "wb") as log:
            redis = start_own([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", d], log)
        try:
            await wait_for(lambda: port_open(port), "redis-server to listen", 10)
            async with Server("--redis", f"127.0.0.1:{port}") as s:
                def link_up():
                    m, _ = parse(scrape(s))
                    return m if value(m, "wsfwd_cluster_link_state", state="up") == 1 else None
                await wait_for(link_up, "the cluster link to come up", 10)
                a, b = await s.ws("/ws/c"), await s.ws("/ws/c")
                await a.send("across")
                eq(await recv(b), "across", "through Redis")
                text = await asyncio.to_thread(scrape, s)
                m, types = parse(text)
                documented(types)
                eq(value(m, "wsfwd_cluster_link_state", state="down"), 0, "not down")
                eq(value(m, "wsfwd_cluster_published_total"), 1, "published")
                eq(value(m, "wsfwd_cluster_received_total"), 1, "received")
                eq(value(m, "wsfwd_cluster_subscribed_rooms"), 1, "subscribed rooms")
                eq(value(m, "wsfwd_cluster_link_losses_total"), 0, "link losses")
                await asyncio.to_thread(promtool_check, text)
        finally:
            stop_own(redis)


PROM_CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: wsfwd
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def prom_query(port, query):
    """The value of the first series of an instant query, or None."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            doc = json.load(r)
    except OSError:
        return None
    result = doc.get("data", {}).get("result", []) if doc.get("status") == "success" else []
    return float(result[0]["value"][1]) if result else None


@test()
async def prometheus_scrapes_wsfwd():
    need(os.path.exists(PROMETHEUS), "prometheus is missing (apt-get install prometheus)")
    with tempfile.TemporaryDirectory(prefix="wsfwd-e2e-prometheus-") as d:
        async with Server() as s:
            await known_traffic(s)
            with open(os.path.join(d, "prometheus.yml"), "w") as f:
                f.write(PROM_CONFIG.replace("{port}", str(s.port)))
            port = free_port()
            with open(os.path.join(d, "prometheus.log"), "wb") as log:
                prom = start_own([PROMETHEUS, "--config.file", os.path.join(d, "prometheus.yml"),
                                  "--storage.tsdb.path", os.path.join(d, "data"),
                                  "--web.listen-address", f"127.0.0.1:{port}"], log)
            try:
                want = {"wsfwd_messages_received_total": 5,
                        "wsfwd_received_bytes_total": 325,
                        "wsfwd_deliveries_total": 5,
                        "wsfwd_echoes_total": 3,
                        'wsfwd_refusals_total{status="404"}': 1,
                        'wsfwd_message_size_bytes_bucket{le="1024"}': 5,
                        "wsfwd_connections": 3,
                        'up{job="wsfwd"}': 1}

                def scraped():
                    if prom.poll() is not None:
                        raise Fail("prometheus exited:\n" + tail(d))
                    return prom_query(port, "wsfwd_messages_received_total") is not None
                await wait_for(scraped, "a scrape by prometheus", 30)
                got = {q: await asyncio.to_thread(prom_query, port, q) for q in want}
                eq(got, {q: float(v) for q, v in want.items()}, "prometheus' query API")
                start = await asyncio.to_thread(prom_query, port,
                                                "wsfwd_process_start_time_seconds")
                check(start is not None and abs(start - time.time()) < 120,
                      f"process start time {start}")
            finally:
                stop_own(prom)


def tail(d):
    with open(os.path.join(d, "prometheus.log"), errors="replace") as f:
        return "".join(f.readlines()[-15:])


if __name__ == "__main__":
    harness.main(__doc__, title="wsfwd e2e metrics")
