#!/usr/bin/python3
"""Every scenario for wsfwd on both backends and for every peer built, side by side in one run.

    /usr/bin/python3 tests/bench/table.py --wsfwd build/bench/wsfwd \
        --loadgen build/bench/tests/bench/loadgen [--peers-dir build/peers] [--rounds 3] \
        [--scenarios S1,S2,S3r2,S3r10,S4,S5,S6] [--s6-args '--subscribers 19900'] \
        [--loadgen-args '...'] [--json-out table.json]

The servers: `wsfwd --io poll`, `wsfwd --io epoll` and the peers that
tests/bench/peers/commands.sh names (built by tests/bench/peers/build.sh into --peers-dir;
one not built is left out, and said so). Every run starts a fresh server and one loadgen run
of the scenario (scenarios.py's names and figures). The runs are interleaved: in each round
every scenario runs once for every server, the servers' order rotated from round to round, so
all of them see the same noisy machine. The tables give medians with the spread (min-max);
a server whose runs of a scenario failed shows FAIL (all failed) or how many passed, and the
errors are listed under the tables. Exit 1 when a wsfwd run failed (a peer's failures are
its own, and reported).

S6 needs some 100,020 descriptors in the server and in loadgen: where the hard limit is lower,
pass --s6-args '--subscribers N' with N below it. --loadgen-args: more loadgen arguments for
every run (ctest bench_table_smoke: one short S1 round of both wsfwd backends).
"""
import argparse
import json
import os
import subprocess
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenarios  # noqa: E402
import sidebyside  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def peer_commands(peers_dir):
    """(name, command) of each peer whose binary is built, and the names of those missing."""
    env = dict(os.environ, WSFWD_PEERS_DIR=os.path.abspath(peers_dir))
    out = subprocess.run(["bash", os.path.join(HERE, "peers", "commands.sh")], env=env,
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    found, missing = [], []
    for line in out.splitlines():
        name, cmd = line.split("\t", 1)
        words = cmd.split()
        binary = words[1] if os.path.basename(words[0]) == "node" else words[0]
        (found if os.path.exists(binary) else missing).append((name, cmd))
    return found, [n for n, _ in missing]


def run(server_cmd, args, scen):
    a = types.SimpleNamespace(cmd=server_cmd, loadgen=args.loadgen, run_timeout=None,
                              stats=False, verbose=False)
    extra = args.loadgen_args.split() + (args.s6_args.split() if scen == "S6" else [])
    return scenarios.run_once(a, scen, extra)


def print_tables(runs, names, scens):
    for scen in scens:
        print("\n%s\n" % scen)
        print("| figure | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for label, path, scale, fmt in scenarios.METRICS[scen]:
            cells = []
            for n in names:
                results = runs.get((scen, n), [])
                ok = [r for r in results if r.get("ok")]
                text, _ = sidebyside.cell([sidebyside.path_of(r, path, scale) for r in ok], fmt)
                if ok and len(ok) < len(results):
                    text += " [%d of %d runs]" % (len(ok), len(results))
                cells.append(text)
            print("| %s | %s |" % (label, " | ".join(cells)))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wsfwd", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--peers-dir", default=os.path.join(HERE, "..", "..", "build", "peers"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scenarios", default="S1,S2,S3r2,S3r10,S4,S5,S6")
    ap.add_argument("--s6-args", default="", help="extra loadgen arguments for S6")
    ap.add_argument("--loadgen-args", default="", help="extra loadgen arguments for every run")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    scens = args.scenarios.split(",")
    for s in scens:
        if s not in scenarios.SCENARIOS:
            ap.error("unknown scenario %s" % s)
    servers = [("wsfwd-poll", "%s --listen 127.0.0.1:{port} --io poll" % args.wsfwd),
               ("wsfwd-epoll", "%s --listen 127.0.0.1:{port} --io epoll" % args.wsfwd)]
    peers, missing = peer_commands(args.peers_dir)
    servers += peers
    if missing:
        print("not built, left out: %s (tests/bench/peers/build.sh)" % ", ".join(missing),
              file=sys.stderr)
    names = [n for n, _ in servers]
    runs = {}
    for r in range(args.rounds):
        order = servers[r % len(servers):] + servers[:r % len(servers)]
        for scen in scens:
            for name, cmd in order:
                res = run(cmd, args, scen)
                runs.setdefault((scen, name), []).append(res)
                print("round %d %s %s: %s" % (r + 1, scen, name, "ok" if res.get("ok")
                      else "FAILED: %s" % res.get("error")), file=sys.stderr, flush=True)
    print_tables(runs, names, scens)
    failures = [(s, n, i + 1, res.get("error")) for (s, n), rs in sorted(runs.items())
                for i, res in enumerate(rs) if not res.get("ok")]
    if failures:
        print("\nfailed runs:")
        for s, n, i, err in failures:
            print("- %s %s run %d: %s" % (s, n, i, err))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"servers": dict(servers), "scenarios": scens, "rounds": args.rounds,
                       "runs": {"%s %s" % k: v for k, v in runs.items()}}, f, indent=1)
    return 1 if any(n.startswith("wsfwd") for _, n, _, _ in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
