#!/usr/bin/env bash
# ctest `install`: install the build into a fresh temporary prefix, then build and run
# consumer/main.c outside the source tree against it, twice:
#   (a) cc main.c $(pkg-config --cflags --libs wsfwd), run with LD_LIBRARY_PATH;
#   (b) a CMake project using find_package(wsfwd) and wsfwd::wsfwd (and wsfwd::wsfwd_static);
# then (c) one program per header of include/wsfwd/, each including that header alone.
# Usage: run.sh BUILD_DIR LIBDIR VERSION SOURCE_DIR SOVERSION
#   (SOVERSION: the SONAME's number, major.minor while the major version is 0, else major)
# WSFWD_KEEP_INSTALL_TEST=1 keeps the temporary directory for inspection.
set -euo pipefail

build=$1 libdir=$2 version=$3 src=$4 soversion=$5
cc=${CC:-cc}

work=$(mktemp -d "${TMPDIR:-/tmp}/wsfwd-install-test.XXXXXX")
cleanup() {
    if [[ ${WSFWD_KEEP_INSTALL_TEST:-0} == 1 ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

prefix=$work/prefix
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { printf '\n== %s\n' "$*"; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix"

step "installed files"
for f in include/wsfwd.h include/wsfwd/base.h include/wsfwd/frame.h include/wsfwd/handshake.h \
    include/wsfwd/conn.h include/wsfwd/hub.h include/wsfwd/token.h include/wsfwd/deflate.h \
    "$libdir/libwsfwd.so" "$libdir/libwsfwd.so.$soversion" "$libdir/libwsfwd.so.$version" \
    "$libdir/libwsfwd.a" "$libdir/pkgconfig/wsfwd.pc" \
    "$libdir/cmake/wsfwd/wsfwdConfig.cmake" "$libdir/cmake/wsfwd/wsfwdConfigVersion.cmake" \
    "$libdir/cmake/wsfwd/wsfwdTargets.cmake" bin/wsfwd; do
    [[ -e $prefix/$f ]] || fail "$f was not installed"
    echo "ok $f"
done
# Installed metadata must not point back into the source or build tree.
if grep -rl -e "$src" -e "$build" "$prefix/$libdir/pkgconfig" "$prefix/$libdir/cmake"; then
    fail "installed .pc or CMake files mention the source or build directory"
fi
"$prefix/bin/wsfwd" --version

# The consumer is built from a copy, far from the source tree and its include/.
mkdir -p "$work/consumer"
cp "$src/tests/install/consumer/main.c" "$src/tests/install/consumer/CMakeLists.txt" \
    "$work/consumer/"
cd "$work"

step "(a) pkg-config"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
cat "$PKG_CONFIG_PATH/wsfwd.pc"
[[ $(pkg-config --modversion wsfwd) == "$version" ]] || fail "pkg-config --modversion"
[[ $(pkg-config --variable=prefix wsfwd) == "$prefix" ]] || fail "prefix is not $prefix"
[[ $(pkg-config --variable=exec_prefix wsfwd) == "$prefix" ]] || fail "exec_prefix"
[[ $(pkg-config --variable=libdir wsfwd) == "$prefix/$libdir" ]] || fail "libdir"
[[ $(pkg-config --variable=includedir wsfwd) == "$prefix/include" ]] || fail "includedir"
# shellcheck disable=SC2046 # word splitting of the flags is intended
"$cc" -std=c11 -Wall -Wextra -Werror -o consumer_pc consumer/main.c \
    $(pkg-config --cflags --libs wsfwd)
LD_LIBRARY_PATH=$prefix/$libdir ldd ./consumer_pc | grep -F "$prefix/$libdir/libwsfwd.so.$soversion" \
    || fail "consumer_pc does not load libwsfwd.so.$soversion from the prefix"
LD_LIBRARY_PATH=$prefix/$libdir ./consumer_pc || fail "consumer_pc failed"
unset PKG_CONFIG_PATH

step "(b) find_package(wsfwd)"
cmake -S consumer -B consumer-build -DCMAKE_PREFIX_PATH="$prefix" \
    -DEXPECTED_VERSION="$version" -DCMAKE_BUILD_TYPE=Release
cmake --build consumer-build
ldd consumer-build/consumer | grep -F "$prefix/$libdir/libwsfwd.so.$soversion" \
    || fail "consumer does not load libwsfwd.so.$soversion from the prefix"
consumer-build/consumer || fail "consumer (wsfwd::wsfwd) failed"
if readelf -d consumer-build/consumer_static | grep -q 'NEEDED.*libwsfwd'; then
    fail "consumer_static depends on the shared library"
fi
consumer-build/consumer_static || fail "consumer_static (wsfwd::wsfwd_static) failed"

step "(c) each header of include/wsfwd/ alone"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
# header, then a statement that uses it and fails (non-zero) if the call misbehaves
headers=(
    base 'return strcmp(wsfwd_version(), WSFWD_VERSION_STRING) != 0;'
    frame 'uint8_t h[WSFWD_FRAME_HEADER_MAX]; return wsfwd_frame_encode_header(h, true, WSFWD_OP_TEXT, 5, NULL) != 2 || h[0] != 0x81;'
    handshake 'char a[WSFWD_ACCEPT_LEN + 1]; wsfwd_handshake_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, a); return strcmp(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0;'
    conn 'wsfwd_config *c; if (wsfwd_config_new(NULL, &c) != WSFWD_OK) return 1; wsfwd_config_free(c); return 0;'
    hub 'wsfwd_config *c; wsfwd_hub *h; if (wsfwd_config_new(NULL, &c) != WSFWD_OK || wsfwd_hub_new(c, &h) != WSFWD_OK) return 1; wsfwd_hub_free(h); wsfwd_config_free(c); return 0;'
    token 'return wsfwd_token_check_room(NULL, "r", 1) != WSFWD_ERR_INVALID;'
    deflate 'return wsfwd_config_set_deflate(NULL, NULL, 0) != WSFWD_ERR_INVALID || wsfwd_conn_deflate(NULL, NULL, 0);'
)
[[ $(find "$prefix/include/wsfwd" -name '*.h' | wc -l) == $((${#headers[@]} / 2)) ]] \
    || fail "include/wsfwd/ holds headers this test does not cover"
for ((i = 0; i < ${#headers[@]}; i += 2)); do
    h=${headers[i]}
    printf '#include <wsfwd/%s.h>\n#include <string.h>\nint main(void)\n{\n    %s\n}\n' \
        "$h" "${headers[i + 1]}" > "only_$h.c"
    # shellcheck disable=SC2046 # word splitting of the flags is intended
    "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "only_$h" "only_$h.c" \
        $(pkg-config --cflags --libs wsfwd) || fail "a program including only wsfwd/$h.h"
    LD_LIBRARY_PATH=$prefix/$libdir "./only_$h" || fail "only_$h failed"
    echo "ok wsfwd/$h.h alone"
done
unset PKG_CONFIG_PATH

step "install test passed"
