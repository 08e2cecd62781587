#!/usr/bin/env bash
# Instructions per message for bench_deflate's contenders, under callgrind (issue 15): for each
# library (zlib, libdeflate), level (1, 3, 6) and message size (64 B to 16 KiB) it runs
#   valgrind --tool=callgrind --toggle-collect=bench_run bench_deflate --callgrind LIB LEVEL SIZE N
# so only the N compressions are counted (not making the messages nor the compressors).
#
#   bash tests/bench/callgrind_deflate.sh BUILD_DIR/bench_deflate [N]
set -euo pipefail

bin=${1:?usage: callgrind_deflate.sh PATH/TO/bench_deflate [N]}
n=${2:-200}
out=${OUT:-$(mktemp -d)}
command -v valgrind >/dev/null || { echo "callgrind_deflate.sh: needs valgrind" >&2; exit 1; }

printf '%-6s %5s %14s %14s %8s\n' size level zlib libdeflate ld/zlib
for size in 64 256 1024 4096 16384; do
    for level in 1 3 6; do
        declare -A ir=()
        for lib in zlib libdeflate; do
            f=$out/callgrind.out.$lib.$level.$size
            valgrind --tool=callgrind --callgrind-out-file="$f" --toggle-collect=bench_run \
                "$bin" --callgrind "$lib" "$level" "$size" "$n" >/dev/null 2>&1
            total=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$f" | head -1)
            # bench_run ran twice (warm-up with 32 messages, then n): both were counted.
            ir[$lib]=$(awk -v t="$total" -v n="$n" 'BEGIN { printf "%.0f", t / (n + 32) }')
        done
        awk -v s="$size" -v l="$level" -v z="${ir[zlib]}" -v d="${ir[libdeflate]}" \
            'BEGIN { printf "%-6s %5s %14d %14d %8.2f\n", s, l, z, d, d / z }'
    done
done
echo "Ir per message (bench_run inclusive), $n messages per run; files in $out"
