#!/usr/bin/env python3
"""Summary of tests/bench/ab.sh: per scenario and figure, the median of the before and after
runs with their range, and the ratio after/before of the medians."""
import glob
import json
import statistics
import sys

FIGURES = ("server CPU-s per M deliveries", "deliveries/s (M)", "deliveries/s (k)",
           "p50 latency ms", "p99 latency ms")


def main(out):
    runs = {}
    for side in ("before", "after"):
        for path in sorted(glob.glob(f"{out}/{side}.*.json")):
            with open(path) as f:
                doc = json.load(f)
            for scenario, result in doc["scenarios"].items():
                for figure in FIGURES:
                    if figure in result["summary"]:
                        runs.setdefault((scenario, figure), {}).setdefault(side, []).append(
                            result["summary"][figure]["median"])
    print("| scenario | figure | before: median (range) | after: median (range) | after/before |")
    print("|---|---|---|---|---|")
    for (scenario, figure), sides in runs.items():
        b, a = sides.get("before"), sides.get("after")
        if not b or not a:
            continue
        mb, ma = statistics.median(b), statistics.median(a)
        print(f"| {scenario} | {figure} | {mb:.3g} ({min(b):.3g}-{max(b):.3g}) | "
              f"{ma:.3g} ({min(a):.3g}-{max(a):.3g}) | {ma / mb:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/ab")
