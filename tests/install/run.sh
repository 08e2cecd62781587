#!/usr/bin/env bash
# ctest `install`: install the build into a fresh temporary prefix, then build and run
# consumer/main.c outside the source tree against it, twice:
#   (a) cc main.c $(pkg-config --cflags --libs wsfwd), run with LD_LIBRARY_PATH;
#   (b) a CMake project using find_package(wsfwd) and wsfwd::wsfwd (and wsfwd::wsfwd_static).
# Usage: run.sh BUILD_DIR LIBDIR VERSION SOURCE_DIR
# WSFWD_KEEP_INSTALL_TEST=1 keeps the temporary directory for inspection.
set -euo pipefail

build=$1 libdir=$2 version=$3 src=$4
major=${version%%.*}
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
for f in include/wsfwd.h \
    "$libdir/libwsfwd.so" "$libdir/libwsfwd.so.$major" "$libdir/libwsfwd.so.$version" \
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
LD_LIBRARY_PATH=$prefix/$libdir ldd ./consumer_pc | grep -F "$prefix/$libdir/libwsfwd.so.$major" \
    || fail "consumer_pc does not load libwsfwd.so.$major from the prefix"
LD_LIBRARY_PATH=$prefix/$libdir ./consumer_pc || fail "consumer_pc failed"
unset PKG_CONFIG_PATH

step "(b) find_package(wsfwd)"
cmake -S consumer -B consumer-build -DCMAKE_PREFIX_PATH="$prefix" \
    -DEXPECTED_VERSION="$version" -DCMAKE_BUILD_TYPE=Release
cmake --build consumer-build
ldd consumer-build/consumer | grep -F "$prefix/$libdir/libwsfwd.so.$major" \
    || fail "consumer does not load libwsfwd.so.$major from the prefix"
consumer-build/consumer || fail "consumer (wsfwd::wsfwd) failed"
if readelf -d consumer-build/consumer_static | grep -q 'NEEDED.*libwsfwd'; then
    fail "consumer_static depends on the shared library"
fi
consumer-build/consumer_static || fail "consumer_static (wsfwd::wsfwd_static) failed"

step "install test passed"
