#!/usr/bin/python3
"""S1 (or S2, ...) across wsfwd nodes joined by Redis (--redis), against one node alone.

Usage (from the repository root, after a Release build with hiredis in build/bench):

  /usr/bin/python3 tests/bench/cluster_bench.py --wsfwd build/bench/wsfwd \
      --loadgen build/bench/tests/bench/loadgen --runs 3 [--duration 5] [--scenario S1]
      [--configs "single,2 processes one port"] [--wsfwd-args "--io epoll"] [--json-out F]

Configurations, each run --runs times with fresh processes (medians, min-max):
  single        one wsfwd, no Redis (the baseline: S1 as in BENCHMARKS.md)
  single+redis  one wsfwd with --redis: every message makes a round trip through Redis
  2 nodes       publisher on node A, subscribers spread over nodes A and B
  3 nodes       publisher on node A, subscribers spread over nodes B and C
  2 nodes local-first   as 2 nodes, with --redis-order local-first (not run by default)
  2 processes one port  two wsfwd with --reuse-port on one port and --redis, each with a
                private port for /stats; every client connects to the shared port and the
                kernel picks the process (not run by default)
Server CPU: wsfwd's, summed over its processes (loadgen --server-pid on the process or on a
shell that started them all), during loadgen's measured window; Redis's apart (from /proc,
over the whole loadgen run).
Every run starts its own redis-server on a free loopback port (no persistence) and its own
wsfwd processes, and stops them by pid. S1: 1 room, 100 subscribers, 1 publisher, 64-byte
messages, closed loop with 32 in flight (loadgen --scenario S1).
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


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


def wait_port(proc, port, what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if port_open(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen")


def stop(proc, group=False):
    """SIGTERM, then SIGKILL past 5 s; group: to proc's process group (a shell started in its
    own session, and the wsfwd processes it started)."""
    if proc is None or proc.poll() is not None:
        return
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    send(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(5)


def stats(port):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=2) as r:
        return json.loads(r.read())


CONFIGS = {
    "single": dict(nodes=1, redis=False, pub=0, subs=[0]),
    "single+redis": dict(nodes=1, redis=True, pub=0, subs=[0]),
    "2 nodes": dict(nodes=2, redis=True, pub=0, subs=[0, 1]),
    "3 nodes": dict(nodes=3, redis=True, pub=0, subs=[1, 2]),
    "2 nodes local-first": dict(nodes=2, redis=True, pub=0, subs=[0, 1], local_first=True),
    "2 processes one port": dict(nodes=2, redis=True, shared=True),
}


def cpu_ticks(pid):
    """utime + stime of one process, in clock ticks (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def start_nodes(args, cfg, redis_port, procs):
    """The wsfwd processes: one each, or (shared) all under one shell, so that loadgen counts
    them together. Returns (their private ports, the port clients use, the pid to measure)."""
    shared = free_port() if cfg.get("shared") else None
    ports, cmds = [], []
    for _ in range(cfg["nodes"]):
        port = free_port()
        cmd = [args.wsfwd, "--listen", f"127.0.0.1:{port}", "--log-level", "warn"]
        cmd += shlex.split(args.wsfwd_args)
        if shared is not None:
            cmd += ["--listen", f"127.0.0.1:{shared}", "--reuse-port", "on"]
        if cfg["redis"]:
            cmd += ["--redis", f"127.0.0.1:{redis_port}"]
        if cfg.get("local_first"):
            cmd += ["--redis-order", "local-first"]
        cmds.append(cmd)
        ports.append(port)
    if shared is None:
        for cmd, port in zip(cmds, ports):
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_port(p, port, "wsfwd")
        return ports, None, procs[-1].pid if cfg["nodes"] == 1 else None
    script = " & ".join(shlex.join(c) for c in cmds) + " & wait"
    p = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    procs.append(p)
    for port in ports:
        wait_port(p, port, "wsfwd")
    return ports, shared, p.pid


def run_once(args, cfg):
    procs = []
    tmp = tempfile.mkdtemp(prefix="wsfwd-cluster-bench.")
    try:
        redis_port = None
        if cfg["redis"]:
            redis_port = free_port()
            p = subprocess.Popen([args.redis_server, "--port", str(redis_port), "--bind",
                                  "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_port(p, redis_port, "redis-server")
        redis_pid = procs[0].pid if cfg["redis"] else None
        ports, shared, measured = start_nodes(args, cfg, redis_port, procs)
        if cfg["redis"]:
            deadline = time.monotonic() + 10
            while not all(stats(p)["cluster"]["link"] == "up" for p in ports):
                if time.monotonic() > deadline:
                    raise RuntimeError("the nodes' Redis links did not come up")
                time.sleep(0.05)
        cmd = [args.loadgen, "--quiet", "--scenario", args.scenario,
               "--duration", str(args.duration)]
        if shared is not None:
            cmd += ["--port", str(shared)]
        else:
            cmd += ["--port", str(ports[cfg["pub"]]), "--pub-port", str(ports[cfg["pub"]]),
                    "--sub-ports", ",".join(str(ports[i]) for i in cfg["subs"])]
        if measured is not None:
            cmd += ["--server-pid", str(measured)]
        redis_before = cpu_ticks(redis_pid) if redis_pid else None
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=args.duration + 90)
        redis_after = cpu_ticks(redis_pid) if redis_pid else None
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        res = json.loads(lines[-1]) if lines else {}
        res["exit"] = r.returncode
        if r.returncode != 0:
            res["error"] = res.get("error") or r.stderr.strip()[-300:]
        if redis_before is not None and redis_after is not None:
            res["redis_cpu_s"] = (redis_after - redis_before) / os.sysconf("SC_CLK_TCK")
        if cfg["redis"]:
            res["not_crossed"] = sum(stats(p)["cluster"]["not_crossed"] for p in ports)
        if shared is not None:
            res["connections_per_process"] = [stats(p)["accepted"] for p in ports]
        return res
    finally:
        for p in reversed(procs):
            stop(p, group=shared is not None and p.pid == measured)
        shutil.rmtree(tmp, ignore_errors=True)


def get(d, path):
    for k in path.split("."):
        d = d.get(k) if isinstance(d, dict) else None
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wsfwd", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--scenario", default="S1", help="loadgen's --scenario (S1, S2, ...)")
    ap.add_argument("--configs", default="single,single+redis,2 nodes,3 nodes")
    ap.add_argument("--wsfwd-args", default="", help="more arguments for every wsfwd")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    results = {}
    for name in args.configs.split(","):
        runs = []
        for i in range(args.runs):
            res = run_once(args, CONFIGS[name])
            print(f"{name} run {i + 1}: {res.get('deliveries_per_s', 0):.0f} deliveries/s, p99 "
                  f"{(get(res, 'latency_us.p99') or 0) / 1000:.2f} ms, lost {res.get('lost')}, "
                  f"dup {res.get('duplicated')}, reordered {res.get('reordered')}, self "
                  f"{res.get('self_delivered')}, cross-room {res.get('cross_room')}, not "
                  f"crossed {res.get('not_crossed', '-')}, wsfwd CPU-s/M "
                  f"{res.get('server_cpu_s_per_m_deliveries', '-')}, redis CPU-s "
                  f"{res.get('redis_cpu_s', '-')}, accepted per process "
                  f"{res.get('connections_per_process', '-')}, exit {res['exit']} "
                  f"{res.get('error', '')}",
                  file=sys.stderr, flush=True)
            runs.append(res)
        results[name] = runs
    print()
    print("| configuration | deliveries/s (median, min-max) | p50 ms | p99 ms (median, min-max) "
          "| wsfwd CPU-s per M deliveries | wsfwd + Redis CPU-s per M deliveries "
          "| lost/dup/reordered/self over all runs |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        d = [r.get("deliveries_per_s", 0) for r in runs]
        p50 = [(get(r, "latency_us.p50") or 0) / 1000 for r in runs]
        p99 = [(get(r, "latency_us.p99") or 0) / 1000 for r in runs]
        cpu = [r["server_cpu_s_per_m_deliveries"] for r in runs
               if (r.get("server_cpu_s_per_m_deliveries") or 0) > 0]
        cpu_s = f"{statistics.median(cpu):.2f}" if cpu else "-"
        both = [(r["server_cpu_s"] + (r.get("redis_cpu_s") or 0)) * 1e6 / r["deliveries"]
                for r in runs if (r.get("server_cpu_s") or 0) > 0 and r.get("deliveries")]
        both_s = f"{statistics.median(both):.2f}" if both else "-"
        errs = "/".join(str(sum(r.get(k) or 0 for r in runs))
                        for k in ("lost", "duplicated", "reordered", "self_delivered"))
        print(f"| {name} | {statistics.median(d) / 1e3:.0f}k ({min(d) / 1e3:.0f}k-"
              f"{max(d) / 1e3:.0f}k) | {statistics.median(p50):.2f} | "
              f"{statistics.median(p99):.2f} ({min(p99):.2f}-{max(p99):.2f}) | {cpu_s} | "
              f"{both_s} | {errs} |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)
    bad = [n for n, runs in results.items() for r in runs if r["exit"] != 0]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
