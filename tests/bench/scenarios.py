#!/usr/bin/python3
"""Run loadgen's scenarios against any WebSocket server command, a fresh server per run.

Usage (from the repository root, after a Release build in build/bench):

  /usr/bin/python3 tests/bench/scenarios.py --name wsfwd \
      --cmd 'build/bench/wsfwd --listen 127.0.0.1:{port}' \
      --loadgen build/bench/tests/bench/loadgen \
      --scenarios S1,S2,S3r2,S3r10,S3max,S4 --runs 3 [--json-out results.json]

--cmd is a shell command. With {port} in it, the runner picks a free port and substitutes it;
without, the server must print a line containing "listening on ADDR:PORT" (stdout or stderr)
and the runner reads the port from it. The command is run as `exec CMD` in its own session,
so the pid the runner holds is the server's (its CPU and RSS are read from /proc by loadgen
over the measured part of the run, descendants included). Whatever happens, the server is
stopped by that pid: SIGTERM, then SIGKILL after 3 s (and its session's group after that).

Scenarios: S1, S2, S3r2 and S3r10 (S3 at 2 and 10 msg/s per client), S3max (the highest
rate sustained without loss, loadgen --search), S4, S5 (10,000 connections in 1,000 rooms of
10, 256 B at 2 msg/s each, 20 s) and S6 (100,000 idle connections over several loopback
source addresses: time to open them, server RSS per connection, one broadcast to all; the
server and loadgen each need some 100,020 descriptors: `ulimit -Hn` as root in the shell
that runs this). The runner starts each server with its soft descriptor limit raised to the
hard one (loadgen raises its own), so only the hard limit must fit. Each runs --runs times;
the table shows medians with the spread (min-max) and is followed by one JSON document on
stdout. Extra loadgen arguments for every run: --loadgen-args '...'.
--smoke [S1|S5|S6]: one scaled-down run (S1: 1 s, 10 subscribers; S5: 20 rooms of 10, 2 s;
S6: 2,000 idle connections over 2 source addresses), exit 0 when it passes with no loss and
every figure of the scenario in its JSON line (ctest loadgen_smoke, loadgen_smoke_s5/_s6).
"""
import argparse
import json
import os
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SCENARIOS = {
    "S1": ["--scenario", "S1"],
    "S2": ["--scenario", "S2"],
    "S3r2": ["--scenario", "S3", "--rate", "2"],
    "S3r10": ["--scenario", "S3", "--rate", "10"],
    "S3max": ["--scenario", "S3", "--search"],
    "S4": ["--scenario", "S4"],
    "S5": ["--scenario", "S5"],
    "S6": ["--scenario", "S6"],
}

# The runner's backstop per run (seconds) where the default --run-timeout is too short;
# loadgen's own deadline (alarm) comes first.
RUN_TIMEOUTS = {"S6": 420}

# --smoke: scaled-down runs, and the fields their JSON line must hold.
SMOKE = {
    "S1": (["--subscribers", "10", "--duration", "1", "--drain", "2", "--connect-timeout", "5",
            "--settle", "0"], []),
    "S5": (["--rooms", "20", "--duration", "2", "--drain", "3", "--connect-timeout", "10",
            "--settle", "0"],
           ["latency_us.p50", "latency_us.p99", "latency_us.p999", "latency_us.max",
            "server_cpu_s_per_m_deliveries", "send_lag_us.p99"]),
    "S6": (["--subscribers", "2000", "--source-addrs", "2", "--count", "2", "--drain", "3",
            "--connect-timeout", "20", "--settle", "0.2"],
           ["setup_s", "connections_per_s", "server_rss_per_conn_kib", "broadcast_median_ms",
            "all_receivers_us.max", "loadgen_rss_per_conn_kib", "source_addrs"]),
}

# (label, path in the final JSON line, scale, format)
METRICS = {
    "S1": [("deliveries/s (M)", "deliveries_per_s", 1e-6, "%.2f"),
           ("payload MB/s", "payload_mb_per_s", 1, "%.0f"),
           ("p50 latency ms", "latency_us.p50", 1e-3, "%.2f"),
           ("p99 latency ms", "latency_us.p99", 1e-3, "%.2f"),
           ("p99.9 latency ms", "latency_us.p999", 1e-3, "%.2f"),
           ("max latency ms", "latency_us.max", 1e-3, "%.1f"),
           ("server CPU-s per M deliveries", "server_cpu_s_per_m_deliveries", 1, "%.3f")],
    "S3": [("deliveries/s (k)", "deliveries_per_s", 1e-3, "%.1f"),
           ("p50 latency ms", "latency_us.p50", 1e-3, "%.2f"),
           ("p99 latency ms", "latency_us.p99", 1e-3, "%.2f"),
           ("max latency ms", "latency_us.max", 1e-3, "%.1f"),
           ("arrival p99 latency ms", "arrival_latency_us.p99", 1e-3, "%.2f"),
           ("generator send lag p99 ms", "send_lag_us.p99", 1e-3, "%.2f"),
           ("server CPU-s per M deliveries", "server_cpu_s_per_m_deliveries", 1, "%.2f")],
    "S3max": [("max rate without loss, msg/s/client", "max_sustained_rate", 1, "%g")],
    "S4": [("server RSS per connection KiB", "server_rss_per_conn_kib", 1, "%.3f"),
           ("broadcast to all, median ms", "broadcast_median_ms", 1, "%.1f"),
           ("broadcast to all, max ms", "all_receivers_us.max", 1e-3, "%.1f"),
           ("p50 latency ms", "latency_us.p50", 1e-3, "%.1f")],
}
METRICS["S5"] = [("deliveries/s (k)", "deliveries_per_s", 1e-3, "%.1f"),
                 ("p50 latency ms", "latency_us.p50", 1e-3, "%.2f"),
                 ("p99 latency ms", "latency_us.p99", 1e-3, "%.2f"),
                 ("p99.9 latency ms", "latency_us.p999", 1e-3, "%.2f"),
                 ("max latency ms", "latency_us.max", 1e-3, "%.1f"),
                 ("generator send lag p99 ms", "send_lag_us.p99", 1e-3, "%.2f"),
                 ("server CPU-s per M deliveries", "server_cpu_s_per_m_deliveries", 1, "%.2f")]
METRICS["S6"] = [("time to open all, s", "setup_s", 1, "%.2f"),
                 ("server RSS per connection KiB", "server_rss_per_conn_kib", 1, "%.3f"),
                 ("broadcast to all, median ms", "broadcast_median_ms", 1, "%.1f"),
                 ("broadcast to all, max ms", "all_receivers_us.max", 1e-3, "%.1f"),
                 ("loadgen RSS per connection KiB", "loadgen_rss_per_conn_kib", 1, "%.3f")]
METRICS["S2"] = METRICS["S1"]
METRICS["S3r2"] = METRICS["S3"]
METRICS["S3r10"] = METRICS["S3"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop(proc):
    """SIGTERM the server's pid, SIGKILL after 3 s, then its whole session group."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        if proc.poll() is not None:
            break
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of a wrapper; the group is ours
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass


def raise_nofile():
    """In the server's child: soft RLIMIT_NOFILE up to the hard one. wsfwd, node and Go
    programs raise their own; the lws peer does not, and a shell's soft limit (often 1,024)
    held it under S4/S5's 10,000 connections (loadgen: setup did not finish, exit 3)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_server(cmd, logf, timeout=15.0):
    """Start the server, its soft descriptor limit raised to the hard one; return (proc,
    port)."""
    port = None
    if "{port}" in cmd:
        port = free_port()
        cmd = cmd.replace("{port}", str(port))
    proc = subprocess.Popen("exec " + cmd, shell=True, stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=raise_nofile)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited with %s before listening" % proc.returncode)
        if port is None:
            with open(logf.name, errors="replace") as f:
                m = re.search(r"listening on \[?[0-9a-fA-F.:]*\]?:(\d+)", f.read())
            if m:
                port = int(m.group(1))
        if port is not None and port_open(port):
            return proc, port
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError("the server did not listen within %.0f s" % timeout)


def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def fetch_stats(port):
    """The server's GET /stats (wsfwd's), parsed; None if it does not answer with JSON."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sk:
            sk.sendall(b"GET /stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = sk.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data.split(b"\r\n\r\n", 1)[1])
    except (OSError, ValueError, IndexError):
        return None


def run_once(args, scen, extra):
    run_timeout = args.run_timeout or RUN_TIMEOUTS.get(scen, 240)
    with tempfile.NamedTemporaryFile("w+", prefix="server-", suffix=".log", delete=False) as logf:
        proc = None
        try:
            proc, port = start_server(args.cmd, logf)
            cmd = [args.loadgen, "--port", str(port), "--server-pid", str(proc.pid), "--quiet"]
            cmd += SCENARIOS[scen] + extra
            try:
                # loadgen bounds itself (alarm); this is the backstop.
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, timeout=run_timeout)
            except subprocess.TimeoutExpired:
                return {"ok": False, "error": "loadgen passed %d s" % run_timeout}
            lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
            res = json.loads(lines[-1]) if lines else {}
            if scen == "S3max":
                res["steps"] = [json.loads(l) for l in lines[:-1]]
            if scen == "S4" or "all_receivers_us" in res:
                pass
            res["exit"] = r.returncode
            if getattr(args, "stats", False):
                res["server_stats"] = fetch_stats(port)
            if r.returncode != 0:
                res["ok"] = False
                res["error"] = (res.get("error") or r.stderr.strip()[-300:]
                                or "loadgen exit %d" % r.returncode)
            if proc.poll() is not None:
                res["ok"] = False
                res["error"] = (res.get("error") or "") + " (server exited %s)" % proc.returncode
            return res
        except Exception as e:  # a server that never listened, a broken line
            return {"ok": False, "error": str(e)}
        finally:
            stop(proc)
            try:
                with open(logf.name, errors="replace") as f:
                    tail = f.read()[-2000:]
                os.unlink(logf.name)
            except OSError:
                tail = ""
            if args.verbose and tail:
                log("  server output (tail):\n" + tail)


def summarise(values):
    vals = [v for v in values if isinstance(v, (int, float))]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "n": len(vals)}


def smoke(args, scen, extra):
    """One scaled-down run: no loss and every figure of the scenario present; no timing."""
    more, fields = SMOKE[scen]
    res = run_once(args, scen, more + extra)
    print(json.dumps(res))
    missing = [f for f in fields if not isinstance(get(res, f), (int, float))]
    why = res.get("error")
    if res.get("ok") is True and res.get("exit") == 0 and missing:
        why = "missing from the JSON line: " + ", ".join(missing)
    ok = (res.get("ok") is True and res.get("exit") == 0 and res.get("deliveries", 0) > 0
          and res.get("lost") == 0 and not missing)
    log("loadgen_smoke %s: %s" % (scen, "ok" if ok else "FAILED: %s" % why))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="server")
    ap.add_argument("--cmd", required=True, help="server command; {port} or a 'listening on' line")
    ap.add_argument("--loadgen", default="build/bench/tests/bench/loadgen")
    ap.add_argument("--scenarios", default="S1,S2,S3r2,S3r10,S3max,S4")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--loadgen-args", default="", help="extra loadgen arguments, every run")
    ap.add_argument("--run-timeout", type=int, default=0,
                    help="backstop per run, seconds (default 240, S6 420)")
    ap.add_argument("--json-out", help="also write the JSON document here")
    ap.add_argument("--smoke", nargs="?", const="S1", choices=sorted(SMOKE),
                    help="one scaled-down run of S1 (default), S5 or S6")
    ap.add_argument("--stats", action="store_true",
                    help="keep the server's GET /stats after each run (wsfwd's) in the JSON")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    extra = shlex.split(args.loadgen_args)
    if args.smoke:
        return smoke(args, args.smoke, extra)

    scens = [s for s in args.scenarios.split(",") if s]
    for s in scens:
        if s not in SCENARIOS:
            ap.error("unknown scenario %s (%s)" % (s, ", ".join(SCENARIOS)))
    out = {"name": args.name, "cmd": args.cmd, "runs": args.runs, "scenarios": {}}
    for s in scens:
        runs = []
        for i in range(args.runs):
            res = run_once(args, s, extra)
            if s in ("S4", "S6") and res.get("broadcast_ms"):
                res["broadcast_median_ms"] = statistics.median(res["broadcast_ms"])
            runs.append(res)
            log("%s %s run %d: %s" % (args.name, s, i + 1,
                                      "ok" if res.get("ok") else "FAILED: %s" % res.get("error")))
        summary = {}
        for label, path, scale, fmt in METRICS[s]:
            vals = [get(r, path) for r in runs if r.get("ok")]
            vals = [v * scale for v in vals if isinstance(v, (int, float)) and v >= 0]
            summary[label] = summarise(vals)
        out["scenarios"][s] = {"summary": summary,
                               "failed_runs": sum(1 for r in runs if not r.get("ok")),
                               "runs": runs}

    # The table: one row per figure, one column for this server (columns can be appended).
    rows = []
    for s in scens:
        sc = out["scenarios"][s]
        for label, path, scale, fmt in METRICS[s]:
            m = sc["summary"][label]
            cell = ("%s (%s-%s)" % (fmt % m["median"], fmt % m["min"], fmt % m["max"])
                    if m else "FAIL")
            if sc["failed_runs"]:
                cell += " [%d failed]" % sc["failed_runs"]
            rows.append((s, label, cell))
    w1 = max(len("scenario"), max((len(r[0]) for r in rows), default=0))
    w2 = max(len("figure"), max((len(r[1]) for r in rows), default=0))
    w3 = max(len(args.name), max((len(r[2]) for r in rows), default=0))
    print("| %-*s | %-*s | %-*s |" % (w1, "scenario", w2, "figure", w3, args.name))
    print("|%s|%s|%s|" % ("-" * (w1 + 2), "-" * (w2 + 2), "-" * (w3 + 2)))
    for r in rows:
        print("| %-*s | %-*s | %-*s |" % (w1, r[0], w2, r[1], w3, r[2]))
    doc = json.dumps(out)
    print(doc)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(doc + "\n")
    return 0 if all(v["failed_runs"] == 0 for v in out["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
