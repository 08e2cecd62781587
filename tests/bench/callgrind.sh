#!/usr/bin/env bash
# Instruction counts per stream byte for each contender of bench_parse, under callgrind.
# Instructions, unlike time, repeat exactly on a noisy shared machine.
#
#   bash tests/bench/callgrind.sh BUILD_DIR/tests/bench/bench_parse [MIB]
#
# For each payload size (64, 4k, 1m) and contender (memcpy, wsfwd, wslay, direct) it runs
#   valgrind --tool=callgrind --toggle-collect=bench_run_CONTENDER \
#            bench_parse --mib MIB --callgrind SIZE CONTENDER
# so only the contender's run over the stream is counted (not building the stream), and
# prints Ir per stream byte. "direct" is wsfwd without the recv() copy that the other
# contenders make. Note: valgrind counts each iteration of a `rep movsb` as one instruction,
# so memcpy's figure says little about its speed. The callgrind.out files are kept in
# $OUT (default: a temporary directory) for callgrind_annotate.
set -euo pipefail

bin=${1:?usage: callgrind.sh PATH/TO/bench_parse [MIB]}
mib=${2:-16}
out=${OUT:-$(mktemp -d)}
command -v valgrind >/dev/null || { echo "callgrind.sh: needs valgrind" >&2; exit 1; }

printf '%-7s %10s %10s %10s %10s %12s\n' payload memcpy wsfwd direct wslay wslay/wsfwd
for size in 64 4k 1m; do
    declare -A ipb=()
    for who in memcpy wsfwd wslay direct; do
        f=$out/callgrind.out.$size.$who
        json=$(valgrind --tool=callgrind --callgrind-out-file="$f" \
                        --toggle-collect="bench_run_$who" \
                        "$bin" --mib "$mib" --callgrind "$size" "$who" 2>/dev/null)
        bytes=$(sed -n 's/.*"stream_bytes":\([0-9]*\).*/\1/p' <<<"$json")
        ir=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$f" | head -1)
        ipb[$who]=$(awk -v i="$ir" -v b="$bytes" 'BEGIN { printf "%.3f", i / b }')
        printf '{"callgrind":"%s","payload":"%s","stream_bytes":%s,"ir":%s,"ir_per_byte":%s}\n' \
               "$who" "$size" "$bytes" "$ir" "${ipb[$who]}" >>"$out/results.jsonl"
    done
    awk -v s="$size" -v m="${ipb[memcpy]}" -v w="${ipb[wsfwd]}" -v d="${ipb[direct]}" \
        -v y="${ipb[wslay]}" \
        'BEGIN { printf "%-7s %10.3f %10.3f %10.3f %10.3f %12.1f\n", s, m, w, d, y, y / w }'
done
echo "Ir per stream byte (headers included), ${mib} MiB stream per size; files in $out"
