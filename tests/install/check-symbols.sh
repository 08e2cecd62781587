#!/usr/bin/env bash
# shellcheck disable=SC2001 # sed indents multi-line lists more plainly
# ctest `symbols`: the shared library exports wsfwd_* symbols only, exactly the functions
# the public headers declare with WSFWD_API, and its SONAME is libwsfwd.so.<soversion>
# (major.minor while the major version is 0, else the major: see CMakeLists.txt).
# Usage: check-symbols.sh LIBRARY SOVERSION INCLUDE_DIR
set -euo pipefail

lib=$1 soversion=$2 include=$3
status=0

# The rule, from the version in the header, independently of CMakeLists.txt.
version_macro() { sed -nE "s/^#define WSFWD_VERSION_$1 ([0-9]+)$/\1/p" "$include/wsfwd/base.h"; }
hmajor=$(version_macro MAJOR) hminor=$(version_macro MINOR)
if ((hmajor == 0)); then want=$hmajor.$hminor; else want=$hmajor; fi
if [[ $want != "$soversion" ]]; then
    echo "FAIL: the build's SOVERSION is '$soversion', the rule says $want" >&2
    status=1
fi

soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
if [[ $soname == "libwsfwd.so.$want" ]]; then
    echo "ok SONAME $soname"
else
    echo "FAIL: SONAME is '$soname', expected libwsfwd.so.$want" >&2
    status=1
fi

exported=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u)
count=$(grep -c . <<<"$exported" || true)
if ((count == 0)); then
    echo "FAIL: $lib exports no symbols" >&2
    exit 1
fi
echo "ok $count exported symbols"

# Internal helpers that once were public: the shared library must keep them hidden.
for name in wsfwd_sha256 wsfwd_hmac_sha256; do
    if grep -qx "$name" <<<"$exported"; then
        echo "FAIL: $name is internal (lib/sha256.h) but exported" >&2
        status=1
    else
        echo "ok $name not exported"
    fi
done

foreign=$(grep -v '^wsfwd_' <<<"$exported" || true)
if [[ -n $foreign ]]; then
    echo "FAIL: exported symbols without the wsfwd_ prefix:" >&2
    sed 's/^/  /' <<<"$foreign" >&2
    status=1
fi

# The API as the headers declare it: the function name on each line starting with WSFWD_API.
declared=$(find "$include" -name '*.h' -exec cat {} + |
    sed -nE 's/^WSFWD_API[^(]*[^A-Za-z0-9_](wsfwd_[A-Za-z0-9_]+)[[:space:]]*\(.*/\1/p' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
extra=$(comm -13 <(echo "$declared") <(grep '^wsfwd_' <<<"$exported" || true))
if [[ -n $missing ]]; then
    echo "FAIL: declared with WSFWD_API but not defined in $lib:" >&2
    sed 's/^/  /' <<<"$missing" >&2
    status=1
fi
if [[ -n $extra ]]; then
    echo "FAIL: exported but not declared in the public headers (mark them static or hide them):" >&2
    sed 's/^/  /' <<<"$extra" >&2
    status=1
fi
((status == 0)) && echo "ok exports match the $(grep -c . <<<"$declared") WSFWD_API declarations"
exit $status
