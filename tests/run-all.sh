#!/usr/bin/env bash
# Every test and check of wsfwd, as CI runs it (.ci/run installs the packages, then runs this).
#
#   bash tests/run-all.sh            all phases
#   bash tests/run-all.sh gcc fuzz   only the phases named
#
# Phases, each in its own build directory under build/ (git-ignored):
#   gcc       gcc, -Werror, Release: ctest labels unit, install, symbols, abi, example (abi:
#             abidiff against tests/abi/libwsfwd.abi, needs abigail-tools)
#   clang     clang, -Werror: ctest label unit (clang's warnings), and label format: every C
#             file as .clang-format says (tests/format/check.sh; --fix reformats)
#   sanitize  clang, ASan + UBSan, Debug: ctest label unit; any sanitizer report fails
#   fuzz      clang, libFuzzer: ctest label fuzz, each target WSFWD_FUZZ_SECONDS (default 60)
#   coverage  gcc --coverage: ctest label unit, then gcovr line coverage of lib/, which must
#             reach WSFWD_COVERAGE_MIN percent (default 90)
#   bench     the gcc build's ctest label bench (none registered is a failure, as in every phase)
#   peers     peers_smoke: builds the benchmark's peers (tests/bench/peers/build.sh) and checks
#             each one's fan-out with a Python client (tests/bench/peers/smoke.py)
#   e2e       the gcc build's ctest label e2e: tests/e2e/run.sh on the wsfwd binary (Python
#             websockets, Node ws, headless Chromium, valgrind)
#
# Environment: JOBS (default: nproc), WSFWD_FUZZ_SECONDS, WSFWD_COVERAGE_MIN.
# With CI=true a missing tool fails its phase; otherwise the phase is skipped with the
# command that installs the tool. Exit status: 0 only if no phase failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FUZZ_SECONDS=${WSFWD_FUZZ_SECONDS:-60}
COVERAGE_MIN=${WSFWD_COVERAGE_MIN:-90}
CI=${CI:-false}
ALL_PHASES=(gcc clang sanitize fuzz coverage bench peers e2e)

log_dir=$root/build/logs
mkdir -p "$log_dir"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# --- dependencies ----------------------------------------------------------------------------

missing_pkgs=()
need_cmd() { # need_cmd COMMAND DEBIAN_PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing_pkgs+=("$2")
}
need_cmocka() {
    pkg-config --exists cmocka 2>/dev/null || missing_pkgs+=(libcmocka-dev)
}
need_clang_runtime() { # need_clang_runtime SANITIZERS: can clang link a program with them?
    local dir
    dir=$(mktemp -d)
    if [[ $1 == *fuzzer* ]]; then
        printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$dir/t.c"
    else
        printf 'int main(void) { return 0; }\n' >"$dir/t.c"
    fi
    clang -fsanitize="$1" "$dir/t.c" -o "$dir/t" >/dev/null 2>&1 || missing_pkgs+=(libclang-rt-14-dev)
    rm -rf "$dir"
}
# After the need_* calls of a phase: 0 if all is there, 1 (fail, under CI) or 77 (skip).
check_deps() {
    ((${#missing_pkgs[@]} == 0)) && return 0
    local pkgs
    pkgs=$(printf '%s\n' "${missing_pkgs[@]}" | sort -u | tr '\n' ' ')
    missing_pkgs=()
    if [[ $CI == true ]]; then
        echo "ERROR: missing dependencies (Debian packages: $pkgs)" >&2
        return 1
    fi
    echo "missing dependencies; install them with:  sudo apt-get install -y $pkgs" >&2
    echo "(or run: bash .ci/run)" >&2
    return 77
}

# --- helpers ---------------------------------------------------------------------------------

configure() { # configure DIR CMAKE_ARGS...
    local dir=$1
    shift
    cmake -S "$root" -B "$root/build/$dir" "$@"
    cmake --build "$root/build/$dir" -j "$JOBS"
}

run_ctest() { # run_ctest DIR LABEL_REGEX [CTEST_ARGS...]; the output is also logged
    local dir=$1 labels=$2
    shift 2
    (cd "$root/build/$dir" &&
        ctest --output-on-failure --no-tests=error --timeout 900 -j "$JOBS" -L "$labels" "$@") 2>&1 |
        tee "$log_dir/ctest-$current_phase.log"
}

count_tests() { # count_tests DIR LABEL_REGEX
    (cd "$root/build/$1" && ctest -N -L "$2") | sed -n 's/^Total Tests: //p'
}

# --- phases ----------------------------------------------------------------------------------

# wsfwd --redis needs hiredis: under CI=true the build must have it (WSFWD_REDIS=ON), else AUTO.
need_hiredis() {
    [[ $CI == true ]] || return 0
    pkg-config --exists hiredis 2>/dev/null || missing_pkgs+=(libhiredis-dev)
}
redis_opt() { [[ $CI == true ]] && echo -DWSFWD_REDIS=ON || echo -DWSFWD_REDIS=AUTO; }
# permessage-deflate in wsfwd needs zlib: the same rule (WSFWD_DEFLATE=ON under CI=true).
need_zlib() {
    [[ $CI == true ]] || return 0
    pkg-config --exists zlib 2>/dev/null || missing_pkgs+=(zlib1g-dev)
}
deflate_opt() { [[ $CI == true ]] && echo -DWSFWD_DEFLATE=ON || echo -DWSFWD_DEFLATE=AUTO; }
# wsfwd --listen-tls needs OpenSSL: the same rule (WSFWD_TLS=ON under CI=true).
need_openssl() {
    [[ $CI == true ]] || return 0
    pkg-config --exists openssl 2>/dev/null || missing_pkgs+=(libssl-dev)
}
tls_opt() { [[ $CI == true ]] && echo -DWSFWD_TLS=ON || echo -DWSFWD_TLS=AUTO; }

phase_gcc() {
    need_cmd cmake cmake
    need_cmd gcc build-essential
    need_cmd pkg-config pkg-config
    need_cmd nm binutils
    need_cmd objdump binutils
    need_cmd readelf binutils
    need_cmocka
    need_hiredis
    need_zlib
    need_openssl
    # Without abidw the abi test skips itself; under CI it must run.
    if [[ $CI == true ]]; then
        need_cmd abidw abigail-tools
        need_cmd abidiff abigail-tools
    fi
    check_deps || return
    configure gcc -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release -DWSFWD_WERROR=ON "$(redis_opt)" \
        "$(deflate_opt)" "$(tls_opt)"
    run_ctest gcc 'unit|install|symbols|abi|example'
}

phase_clang() {
    need_cmd cmake cmake
    need_cmd clang clang
    need_cmd clang-format clang-format
    need_cmd pkg-config pkg-config
    need_cmocka
    need_zlib
    need_openssl
    check_deps || return
    configure clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DWSFWD_WERROR=ON \
        -DWSFWD_BUILD_BENCH=OFF "$(deflate_opt)" "$(tls_opt)"
    run_ctest clang 'unit|format'
}

phase_sanitize() {
    need_cmd cmake cmake
    need_cmd clang clang
    need_cmd pkg-config pkg-config
    need_cmocka
    command -v clang >/dev/null && need_clang_runtime address,undefined
    need_zlib
    need_openssl
    check_deps || return
    configure sanitize -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DWSFWD_SANITIZE=ON \
        -DWSFWD_BUILD_BENCH=OFF "$(deflate_opt)" "$(tls_opt)"
    # Reports go to files too, so a report from a test that still exits 0 fails the phase.
    local reports=$root/build/sanitize/sanitizer-reports
    rm -rf "$reports"
    mkdir -p "$reports"
    local common=halt_on_error=1:print_stacktrace=1:log_path=$reports/report
    export ASAN_OPTIONS=$common:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1
    export UBSAN_OPTIONS=$common
    export LSAN_OPTIONS=print_suppressions=0
    local rc=0
    run_ctest sanitize unit || rc=$?
    if compgen -G "$reports/report*" >/dev/null; then
        echo "sanitizer reports:" >&2
        cat "$reports"/report* >&2
        return 1
    fi
    return $rc
}

phase_fuzz() {
    need_cmd cmake cmake
    need_cmd clang clang
    command -v clang >/dev/null && need_clang_runtime fuzzer,address,undefined
    check_deps || return
    configure fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DWSFWD_BUILD_FUZZ=ON -DWSFWD_BUILD_TESTS=OFF -DWSFWD_BUILD_BENCH=OFF \
        -DWSFWD_FUZZ_SECONDS="$FUZZ_SECONDS"
    if [[ $(count_tests fuzz fuzz) -eq 0 ]]; then
        echo "ERROR: no fuzz tests registered" >&2
        return 1
    fi
    run_ctest fuzz fuzz
    # A fuzz target listed in CMakeLists.txt without its source is a failure too.
    if [[ -s $root/build/fuzz/fuzz-missing.txt ]]; then
        echo "ERROR: fuzz targets without a source:" >&2
        cat "$root/build/fuzz/fuzz-missing.txt" >&2
        return 1
    fi
}

phase_coverage() {
    need_cmd cmake cmake
    need_cmd gcc build-essential
    need_cmd gcov build-essential
    need_cmd gcovr gcovr
    need_cmd pkg-config pkg-config
    need_cmocka
    need_zlib
    need_openssl
    check_deps || return
    configure coverage -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DWSFWD_COVERAGE=ON \
        -DWSFWD_BUILD_BENCH=OFF "$(deflate_opt)" "$(tls_opt)"
    find "$root/build/coverage" -name '*.gcda' -delete
    run_ctest coverage unit
    say "line coverage of lib/ (minimum $COVERAGE_MIN%)"
    echo "gcovr -r . --filter lib/ --object-directory build/coverage --print-summary" \
        "--fail-under-line $COVERAGE_MIN build/coverage"
    gcovr -r . --filter 'lib/' --object-directory build/coverage --print-summary \
        --fail-under-line "$COVERAGE_MIN" build/coverage
}

phase_bench() {
    need_cmd cmake cmake
    check_deps || return
    if [[ ! -f $root/build/gcc/CTestTestfile.cmake ]]; then
        configure gcc -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release -DWSFWD_WERROR=ON \
            "$(redis_opt)" "$(deflate_opt)" "$(tls_opt)"
    else
        cmake --build "$root/build/gcc" -j "$JOBS"
    fi
    run_ctest gcc bench -j 1
}

phase_peers() {
    need_cmd go golang-go
    [[ -f /usr/share/gocode/src/github.com/gorilla/websocket/conn.go ]] ||
        missing_pkgs+=(golang-github-gorilla-websocket-dev)
    need_cmd gcc build-essential
    need_cmd pkg-config pkg-config
    command -v pkg-config >/dev/null && { pkg-config --exists libwebsockets || missing_pkgs+=(libwebsockets-dev); }
    need_cmd node nodejs
    need_cmd npm npm
    /usr/bin/python3 -c 'import websockets' 2>/dev/null || missing_pkgs+=(python3-websockets)
    check_deps || return
    bash tests/bench/peers/build.sh
    timeout 300 /usr/bin/python3 tests/bench/peers/smoke.py 2>&1 | tee "$log_dir/peers-smoke.log"
}

phase_e2e() {
    need_cmd cmake cmake
    need_cmd gcc build-essential
    need_cmocka
    need_hiredis
    need_zlib
    need_openssl
    check_deps || return
    if [[ ! -f $root/build/gcc/CTestTestfile.cmake ]]; then
        configure gcc -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release -DWSFWD_WERROR=ON \
            "$(redis_opt)" "$(deflate_opt)" "$(tls_opt)"
    else
        cmake --build "$root/build/gcc" -j "$JOBS"
    fi
    # run.sh itself fails under CI=true when python3-websockets, node, the npm packages,
    # chromium or valgrind is missing.
    run_ctest gcc e2e -j 1
}

# --- main ------------------------------------------------------------------------------------

phases=("$@")
((${#phases[@]} > 0)) || phases=("${ALL_PHASES[@]}")
for p in "${phases[@]}"; do
    if ! declare -F "phase_$p" >/dev/null; then
        echo "unknown phase '$p'; phases: ${ALL_PHASES[*]}" >&2
        exit 2
    fi
done

declare -A result took note
start_all=$SECONDS
for p in "${phases[@]}"; do
    say "phase $p"
    start=$SECONDS
    current_phase=$p
    rm -f "$log_dir/ctest-$p.log"
    set +e
    (
        set -euo pipefail
        "phase_$p"
    )
    rc=$?
    set -e
    took[$p]=$((SECONDS - start))
    case $rc in
    0) result[$p]=PASS ;;
    77) [[ $CI == true ]] && result[$p]=FAIL || result[$p]=SKIP ;; # never a skip under CI
    *) result[$p]=FAIL ;;
    esac
    note[$p]=""
    if [[ -f $log_dir/ctest-$p.log && ${result[$p]} != SKIP ]]; then
        note[$p]=$(grep -E 'tests passed|No tests were found' "$log_dir/ctest-$p.log" | tail -1 || true)
    fi
done

say "summary ($((SECONDS - start_all))s, $JOBS jobs)"
failed=0 skipped=0
for p in "${phases[@]}"; do
    printf '  %-9s %-4s %5ss  %s\n' "$p" "${result[$p]}" "${took[$p]}" "${note[$p]}"
    [[ ${result[$p]} == FAIL ]] && failed=$((failed + 1))
    [[ ${result[$p]} == SKIP ]] && skipped=$((skipped + 1))
done
if ((failed > 0)); then
    echo "FAILED: $failed phase(s)"
    exit 1
fi
if ((skipped > 0)); then
    echo "passed, but $skipped phase(s) skipped for missing tools: not verified"
else
    echo "all phases passed"
fi
