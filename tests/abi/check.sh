#!/usr/bin/env bash
# ctest `abi`: the ABI of libwsfwd.so, as its public headers expose it, compared with the
# baseline kept in tests/abi/libwsfwd.abi (abidw and abidiff, Debian's abigail-tools).
#
#   check.sh SOURCE_DIR            compare; fails on an incompatible change
#   check.sh SOURCE_DIR --update   write a new baseline (what tests/abi/update.sh does)
#
# The library is built again for the check, in a fixed configuration whatever the caller's
# build: CMake's own shared library target, gcc -O0 -g (the DWARF abidw reads), nothing else.
# Only types defined in include/ count (--headers-dir, --drop-private-types): lib/'s private
# structs may change freely.
#
# Verdict: an added function, an added enumerator or no change passes (additions keep old
# callers working; the baseline is updated at the next release). A removed or changed function
# or variable, or a public type changed in size or layout, fails, unless the SONAME changed
# with it: then the break is declared, and the test says to update the baseline.
# Without abidw or abidiff the test is skipped (exit 77), but fails under CI=true.
set -euo pipefail

src=$(cd "$1" && pwd)
mode=${2:-check}
baseline=$src/tests/abi/libwsfwd.abi

for tool in abidw abidiff cmake; do
    if ! command -v "$tool" >/dev/null; then
        if [[ ${CI:-false} == true ]]; then
            echo "FAIL: $tool not found (Debian: apt-get install -y abigail-tools)" >&2
            exit 1
        fi
        echo "SKIP: $tool not found (Debian: apt-get install -y abigail-tools)" >&2
        exit 77
    fi
done
cc=$(command -v gcc || command -v cc)

work=$(mktemp -d "${TMPDIR:-/tmp}/wsfwd-abi.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== building libwsfwd.so with $cc -O0 -g in $work"
cmake -S "$src" -B "$work/build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS_DEBUG="-O0 -g -fdebug-prefix-map=$src=. -fdebug-prefix-map=$work=." \
    -DWSFWD_BUILD_TESTS=OFF -DWSFWD_BUILD_BENCH=OFF \
    -DWSFWD_BUILD_EXAMPLES=OFF -DWSFWD_REDIS=OFF >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --target wsfwd_shared >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; exit 1; }
lib=$(find "$work/build" -maxdepth 1 -name 'libwsfwd.so.*.*.*' -type f | head -1)
[[ -n $lib ]] || { echo "FAIL: no libwsfwd.so.X.Y.Z in $work/build" >&2; exit 1; }

# The opaque types (a typedef of a struct the headers never define) are the library's own:
# their members may change in any release, so abidw leaves them out of the ABI.
opaque=$(grep -rhoE 'typedef struct (wsfwd_[a-z0-9_]+) \1;' "$src/include" |
    sed -E 's/typedef struct ([a-z0-9_]+) .*/\1/' | sort -u | paste -sd '|')
[[ -n $opaque ]] || { echo "FAIL: found no opaque types in $src/include" >&2; exit 1; }
printf '[suppress_type]\n  type_kind = struct\n  name_regexp = ^(%s)$\n  drop = yes\n' "$opaque" \
    >"$work/opaque.suppr"

# Paths and line numbers stay out of the XML, so the baseline changes only with the ABI.
# --exported-interfaces-only: without it abidw 2.2 loses the link between some exported
# functions and their types (those declared in one file and defined in another), and a
# changed parameter type of theirs would go unnoticed.
abidw --exported-interfaces-only --headers-dir "$src/include" --drop-private-types \
    --suppressions "$work/opaque.suppr" --no-corpus-path --no-comp-dir-path --no-show-locs \
    --out-file "$work/new.abi" "$lib"
linked=$(grep -o "<function-decl name='[a-z0-9_]*'[^>]*elf-symbol-id=" "$work/new.abi" |
    sed -E "s/<function-decl name='([a-z0-9_]*)'.*/\1/" | sort -u | grep -c . || true)
symbols=$(grep -c "<elf-symbol name='wsfwd_[a-z0-9_]*' type='func-type'" "$work/new.abi" || true)
if ((linked != symbols)); then
    echo "FAIL: abidw described $linked of the $symbols exported functions" >&2
    exit 1
fi
soname_of() { sed -nE "s/.*<abi-corpus [^>]*soname='([^']*)'.*/\1/p" "$1" | head -1; }
new_soname=$(soname_of "$work/new.abi")

if [[ $mode == --update ]]; then
    cp "$work/new.abi" "$baseline"
    echo "wrote $baseline ($new_soname, $(grep -c '<elf-symbol ' "$baseline") symbols)"
    exit 0
fi
[[ $mode == check ]] || { echo "usage: check.sh SOURCE_DIR [--update]" >&2; exit 2; }
[[ -f $baseline ]] || { echo "FAIL: no baseline $baseline (run tests/abi/update.sh)" >&2; exit 1; }

old_soname=$(soname_of "$baseline")
echo "== abidiff baseline ($old_soname) against this tree ($new_soname)"
# Added functions are listed but are no break: they are counted apart from the verdict below.
set +e
abidiff --suppressions "$src/tests/abi/libwsfwd.suppr" --no-added-syms "$baseline" \
    "$work/new.abi" >"$work/diff.txt"
rc=$?
set -e
full_rc=0
abidiff --suppressions "$src/tests/abi/libwsfwd.suppr" "$baseline" "$work/new.abi" \
    >"$work/full.txt" || full_rc=$?
cat "$work/full.txt"
# abidiff's status is a bit mask: 1 error, 2 usage error, 4 an ABI change, 8 an incompatible
# change (a removed symbol). With --no-added-syms, 4 means something other than an addition.
if ((rc & 3)); then
    echo "FAIL: abidiff could not compare (status $rc)" >&2
    exit 1
fi
if ((rc & 12)); then
    if [[ $new_soname != "$old_soname" ]]; then
        echo "ok: the ABI broke and the SONAME changed with it ($old_soname -> $new_soname)."
        echo "    Update the baseline: bash tests/abi/update.sh"
        exit 0
    fi
    echo "FAIL: an incompatible ABI change under the same SONAME $new_soname (above)." >&2
    echo "    Keep the old ABI (a new function instead of a changed one; see 'ABI rules' in" >&2
    echo "    include/wsfwd/base.h), or break it on purpose in a new minor release (0.x: the" >&2
    echo "    SONAME follows the version) and then run: bash tests/abi/update.sh" >&2
    exit 1
fi
if ((full_rc & 4)); then
    echo "ok: compatible additions only; the baseline is updated at the next release."
else
    echo "ok: the ABI matches the baseline."
fi
