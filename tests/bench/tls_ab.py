#!/usr/bin/python3
"""wsfwd with TLS and without, side by side: S1 and S2, the server's CPU per delivery.

    /usr/bin/python3 tests/bench/tls_ab.py --wsfwd build/bench/wsfwd \
        --loadgen build/bench/tests/bench/loadgen [--rounds 3] [--scenarios S1,S2]
    /usr/bin/python3 tests/bench/tls_ab.py --smoke --wsfwd ... --loadgen ...

Every run starts a fresh wsfwd, either `--listen-tls` with a self-signed certificate made by
openssl for the run (ECDSA P-256) or plain `--listen` (alternating, the order swapped every
round, so both see the same noisy machine), and one loadgen, with `--tls` (wss://, TLS 1.3)
or without. Per run: the server's CPU seconds per million deliveries (from /proc, over the
measured part), deliveries per second, the median latency and the server's RSS per connection.
The table gives medians with the spread and the TLS/plain ratio of the medians. (Both wsfwd
and loadgen share the machine's cores: throughput is bounded by both; CPU per delivery is the
server's own.)

--smoke (ctest tls_smoke, label bench): one 1-second S1 with 10 subscribers each way; passes
when every message arrives over TLS and without (loadgen's own checks). No timing is asserted.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenarios  # noqa: E402
import sidebyside  # noqa: E402

FIGURES = {"server CPU-s per M deliveries": ("server_cpu_s_per_m_deliveries", "%.3f", 1),
           "deliveries/s (k)": ("deliveries_per_s", "%.0f", 1e-3),
           "latency p50 (us)": ("latency_us.p50", "%.0f", 1),
           "server RSS per connection (KiB)": ("server_rss_per_conn_kib", "%.1f", 1)}


def certificate(where):
    cert, key = os.path.join(where, "cert.pem"), os.path.join(where, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    return cert, key


def one(args, mode, scen, extra):
    if mode == "tls":
        cmd = "%s --listen-tls 127.0.0.1:0 --tls-cert %s --tls-key %s" % (
            args.wsfwd, args.cert, args.key)
        extra = ["--tls"] + extra
    else:
        cmd = "%s --listen 127.0.0.1:0" % args.wsfwd
    a = types.SimpleNamespace(cmd=cmd, loadgen=args.loadgen, run_timeout=120, stats=False,
                              verbose=False)
    return scenarios.run_once(a, scen, extra)


def smoke(args):
    extra = ["--subscribers", "10", "--duration", "1", "--drain", "2", "--connect-timeout", "5",
             "--settle", "0"]
    problems = []
    for mode in ("tls", "plain"):
        r = one(args, mode, "S1", extra)
        if not (r.get("ok") is True and r.get("exit") == 0 and r.get("deliveries", 0) > 0):
            problems.append("%s: run failed: %s" % (mode, r.get("error")))
        elif r.get("tls") is not (mode == "tls"):
            problems.append("%s: loadgen says tls=%s" % (mode, r.get("tls")))
        print("tls_smoke %s: %s deliveries, %s server CPU-s per M"
              % (mode, r.get("deliveries"), r.get("server_cpu_s_per_m_deliveries")))
    for p in problems:
        print("FAILED: " + p)
    return 1 if problems else 0


def table(args):
    scens = args.scenarios.split(",")
    runs = sidebyside.rounds(("tls", "plain"), scens, args.rounds,
                             lambda mode, scen: one(args, mode, scen, []))
    figs = [(label, fmt, lambda x, p=path, k=scale: sidebyside.path_of(x, p, k))
            for label, (path, fmt, scale) in FIGURES.items()]
    failed = sidebyside.table(runs, ("tls", "plain"), scens, figs, ("TLS", "plain", "TLS / plain"))
    return 1 if failed else 0


def main():
    args = sidebyside.parser(__doc__).parse_args()
    where = tempfile.mkdtemp(prefix="wsfwd-tls-ab-")
    try:
        args.cert, args.key = certificate(where)
        return smoke(args) if args.smoke else table(args)
    finally:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
