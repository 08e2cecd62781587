#!/usr/bin/env bash
# Before/after on the server benchmark: wsfwd built at REV and at the working tree, run
# interleaved (one run of each, in alternating order, ROUNDS times) with the same loadgen, so
# both see the same noisy machine; then medians, spreads and after/before ratios.
#
#   tests/bench/ab.sh REV [ROUNDS [SCENARIOS]]     e.g. tests/bench/ab.sh 374767b 6 S1,S2,S3r10
#
# REV is checked out in a temporary git worktree (removed at the end) and built Release in it;
# the working tree is built in build/bench. Results: build/ab/{before,after}.N.json.
set -euo pipefail

rev=${1:?usage: ab.sh REV [ROUNDS [SCENARIOS]]}
rounds=${2:-6}
scenarios=${3:-S1,S2,S3r10}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$root/build/ab
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.log

before=$(mktemp -d "${TMPDIR:-/tmp}/wsfwd-ab.XXXXXX")
cleanup() { git -C "$root" worktree remove --force "$before" >/dev/null 2>&1 || rm -rf "$before"; }
trap cleanup EXIT
git -C "$root" worktree add --detach "$before" "$rev" >/dev/null

build() { # build SRC DIR TARGET...
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$2" -j"$(nproc)" --target "${@:3}" >/dev/null
}
build "$before" "$before/build" wsfwd
build "$root" "$root/build/bench" wsfwd loadgen

for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then order=(before after); else order=(after before); fi
    for v in "${order[@]}"; do
        if [[ $v == before ]]; then bin=$before/build/wsfwd; else bin=$root/build/bench/wsfwd; fi
        /usr/bin/python3 "$root/tests/bench/scenarios.py" --name "$v" \
            --cmd "$bin --listen 127.0.0.1:{port}" \
            --loadgen "$root/build/bench/tests/bench/loadgen" \
            --scenarios "$scenarios" --runs 1 --json-out "$out/$v.$r.json" >"$out/$v.$r.log" 2>&1 \
            || { echo "run $r of $v failed: $out/$v.$r.log" >&2; exit 1; }
        echo "round $r: $v done"
    done
done
/usr/bin/python3 "$root/tests/bench/ab_summary.py" "$out"
