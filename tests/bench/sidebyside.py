"""Two variants of wsfwd side by side (deflate on/off, TLS/plain, poll/epoll): the rounds,
alternating which goes first so both see the same noisy machine, and the table of medians
with the spread and the ratio of the medians. Used by deflate_ab.py, tls_ab.py and io_ab.py.

    runs = rounds(("a", "b"), ["S1", "S2"], 3, lambda mode, scen: result_dict)
    failed = table(runs, ("a", "b"), ["S1", "S2"], [(label, fmt, getter), ...],
                   ("A", "B", "A / B"))
"""
import argparse
import statistics
import sys


def parser(doc, scenarios="S1,S2", smoke=True):
    """The command line every side-by-side runner takes."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wsfwd", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scenarios", default=scenarios)
    if smoke:
        ap.add_argument("--smoke", action="store_true")
    return ap


def rounds(modes, scens, count, one):
    """Run one(mode, scen) count times for every scenario and mode, the modes' order swapped
    every round; the results by (scen, mode)."""
    runs = {}
    for r in range(count):
        for scen in scens:
            for mode in (modes if r % 2 == 0 else tuple(reversed(modes))):
                res = one(mode, scen)
                runs.setdefault((scen, mode), []).append(res)
                print("round %d %s %s: %s" % (r + 1, scen, mode, "ok" if res.get("ok")
                      else "FAILED: %s" % res.get("error")), file=sys.stderr)
    return runs


def path_of(res, path, scale=1):
    """The number at a dotted path of a loadgen result, scaled; None if it is not there."""
    v = res
    for k in path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    return v * scale if isinstance(v, (int, float)) else None


def cell(vals, fmt):
    """'median (min-max)' of the valid values, and the median; ('FAIL', None) if none."""
    vals = [v for v in vals if isinstance(v, (int, float)) and v >= 0]
    if not vals:
        return "FAIL", None
    m = statistics.median(vals)
    return "%s (%s-%s)" % (fmt % m, fmt % min(vals), fmt % max(vals)), m


def table(runs, modes, scens, figures, heads):
    """Print the markdown table: a row per scenario and figure (label, fmt, getter(res)); the
    columns heads[0], heads[1] and their ratio heads[2]. Returns the count of failed runs."""
    print("| scenario | figure | %s | %s | %s |" % heads)
    print("|---|---|---:|---:|---:|")
    failed = sum(1 for k in runs for x in runs[k] if not x.get("ok"))
    for scen in scens:
        for label, fmt, get in figures:
            cells = [cell([get(x) for x in runs[(scen, m)] if x.get("ok")], fmt) for m in modes]
            (c0, m0), (c1, m1) = cells
            ratio = "%.2f" % (m0 / m1) if m0 is not None and m1 else ""
            print("| %s | %s | %s | %s | %s |" % (scen, label, c0, c1, ratio))
    return failed
