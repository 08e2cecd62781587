#!/usr/bin/python3
"""wsfwd on poll() and on epoll, side by side: the server's CPU per delivery and the latency.

    /usr/bin/python3 tests/bench/io_ab.py --wsfwd build/bench/wsfwd \
        --loadgen build/bench/tests/bench/loadgen [--rounds 3] [--scenarios S3r10,S5]

Every run starts a fresh `wsfwd --io poll` or `--io epoll` (alternating, the order swapped
every round) and one loadgen run of the scenario (tests/bench/scenarios.py's names: S1, S2,
S3r2, S3r10, S5, ...). The table gives medians with the spread and the epoll/poll ratio of the
medians. The scenarios that matter are those with many connections (S3, S5): poll() scans
every descriptor each turn, epoll returns the ready ones.
"""
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenarios  # noqa: E402
import sidebyside  # noqa: E402

FIGURES = [("server CPU-s per M deliveries", "%.3f", "server_cpu_s_per_m_deliveries", 1),
           ("deliveries/s (k)", "%.1f", "deliveries_per_s", 1e-3),
           ("latency p50 (ms)", "%.2f", "latency_us.p50", 1e-3),
           ("latency p99 (ms)", "%.2f", "latency_us.p99", 1e-3),
           ("arrival p99 (ms)", "%.2f", "arrival_latency_us.p99", 1e-3)]


def one(args, io, scen):
    a = types.SimpleNamespace(cmd="%s --listen 127.0.0.1:0 --io %s" % (args.wsfwd, io),
                              loadgen=args.loadgen, run_timeout=300, stats=False, verbose=False)
    return scenarios.run_once(a, scen, [])


def main():
    ap = sidebyside.parser(__doc__, scenarios="S3r10,S5", smoke=False)
    args = ap.parse_args()
    scens = args.scenarios.split(",")
    for s in scens:
        if s not in scenarios.SCENARIOS:
            ap.error("unknown scenario %s" % s)
    runs = sidebyside.rounds(("epoll", "poll"), scens, args.rounds,
                             lambda io, scen: one(args, io, scen))
    figs = [(label, fmt, lambda x, p=path, k=scale: sidebyside.path_of(x, p, k))
            for label, fmt, path, scale in FIGURES]
    failed = sidebyside.table(runs, ("epoll", "poll"), scens, figs,
                              ("epoll", "poll", "epoll / poll"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
