#!/usr/bin/python3
"""permessage-deflate on and off, side by side: S1 and S2 with JSON-like 1 KiB messages.

    /usr/bin/python3 tests/bench/deflate_ab.py --wsfwd build/bench/wsfwd \
        --loadgen build/bench/tests/bench/loadgen [--rounds 3] [--scenarios S1,S2]
    /usr/bin/python3 tests/bench/deflate_ab.py --smoke --wsfwd ... --loadgen ...

Every run starts a fresh `wsfwd --deflate on` or `--deflate off` (alternating, the order
swapped every round, so both see the same noisy machine) and one loadgen whose clients all
offer permessage-deflate (`--deflate --json --size 1024`): with the server's extension off the
same clients send and receive plain frames. Per run: the server's CPU seconds per million
deliveries (from /proc, over the measured part), the bytes read from the sockets per delivery
(frames as they travel), and, from the server's /stats, the compressions per broadcast
(deflate.compressed / messages_in: 1 whatever the room's size is the claim) and the ratio.
The table gives medians with the spread and the on/off ratio of the medians.

--smoke (ctest deflate_smoke, label bench): one 1-second S1 with 10 subscribers each way;
passes when every message arrives (loadgen's own checks), the server compressed exactly once
per broadcast with deflate on and never with it off, and deflate on put fewer than half the
bytes on the wire. No timing is asserted.
"""
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenarios  # noqa: E402
import sidebyside  # noqa: E402

LOAD = ["--size", "1024", "--json", "--deflate"]


def one(args, mode, scen, extra):
    a = types.SimpleNamespace(cmd="%s --listen 127.0.0.1:0 --deflate %s" % (args.wsfwd, mode),
                              loadgen=args.loadgen, run_timeout=120, stats=True,
                              verbose=False)
    res = scenarios.run_once(a, scen, LOAD + extra)
    st = res.get("server_stats") or {}
    z = st.get("deflate") or {}
    msgs = st.get("messages_in") or 0
    res["compress_per_broadcast"] = z.get("compressed", 0) / msgs if msgs else None
    res["deflate_ratio"] = z.get("ratio")
    return res


def figures(res):
    return {
        "server CPU-s per M deliveries": res.get("server_cpu_s_per_m_deliveries"),
        "wire bytes per delivery": res.get("wire_bytes_per_delivery"),
        "deliveries/s (k)": (res.get("deliveries_per_s") or 0) / 1e3,
        "compressions per broadcast": res.get("compress_per_broadcast"),
        "compression ratio (/stats)": res.get("deflate_ratio"),
    }


def smoke(args):
    extra = ["--subscribers", "10", "--duration", "1", "--drain", "2", "--connect-timeout", "5",
             "--settle", "0"]
    on, off = one(args, "on", "S1", extra), one(args, "off", "S1", extra)
    problems = []
    for name, r in (("on", on), ("off", off)):
        if not (r.get("ok") is True and r.get("exit") == 0 and r.get("deliveries", 0) > 0):
            problems.append("deflate %s: run failed: %s" % (name, r.get("error")))
    if on.get("compress_per_broadcast") != 1:
        problems.append("deflate on: %s compressions per broadcast, not 1"
                        % on.get("compress_per_broadcast"))
    if off.get("compress_per_broadcast") not in (0, 0.0):
        problems.append("deflate off: %s compressions per broadcast"
                        % off.get("compress_per_broadcast"))
    won, woff = on.get("wire_bytes_per_delivery") or 0, off.get("wire_bytes_per_delivery") or 0
    if not (0 < won < woff / 2):
        problems.append("wire bytes per delivery: %.1f on, %.1f off" % (won, woff))
    print("deflate_smoke: on %.1f B/delivery, off %.1f; %s compressions per broadcast"
          % (won, woff, on.get("compress_per_broadcast")))
    for p in problems:
        print("FAILED: " + p)
    return 1 if problems else 0


def main():
    args = sidebyside.parser(__doc__).parse_args()
    if args.smoke:
        return smoke(args)
    scens = args.scenarios.split(",")
    runs = sidebyside.rounds(("on", "off"), scens, args.rounds,
                             lambda mode, scen: one(args, mode, scen, []))
    fmts = {"server CPU-s per M deliveries": "%.3f", "wire bytes per delivery": "%.1f",
            "deliveries/s (k)": "%.0f", "compressions per broadcast": "%.3f",
            "compression ratio (/stats)": "%.2f"}
    figs = [(label, fmt, lambda x, label=label: figures(x)[label]) for label, fmt in fmts.items()]
    failed = sidebyside.table(runs, ("on", "off"), scens, figs,
                              ("deflate on", "deflate off", "on / off"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
