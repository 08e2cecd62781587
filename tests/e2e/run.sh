#!/usr/bin/env bash
# End-to-end tests of the wsfwd binary with clients nobody here wrote:
#   1. Python websockets (Debian python3-websockets)         test_python.py
#      and room tokens and limits, with tokens minted by Python's standard library:
#                                                             test_auth.py
#      and flow control (floods paced to the slowest healthy reader, --slow-timeout,
#      a calm room beside a flooded one, /echo without reading, bounded memory):
#                                                             test_flow.py
#      and permessage-deflate (compressing and plain clients in one room, a bomb, fragments
#      with pings, bad RSV1 and data; needs a wsfwd built with zlib):  test_deflate.py
#      and GET /metrics (values after known traffic, promtool check metrics, a Prometheus
#      server of its own scraping wsfwd; needs Debian's prometheus):  test_metrics.py
#      and built-in TLS (wss:// with a test CA made by openssl, stalled handshakes, plain HTTP
#      to the TLS port, SIGHUP certificate swap; needs a wsfwd built with OpenSSL): test_tls.py
#      and 3,000 connections in 300 rooms at once:            test_many.py
#   2. Node ws (npm, package-lock.json)                       test_node.mjs
#   3. headless Chromium (Debian chromium) + playwright-core  test_browser.mjs
#      (and the demo page over https:// and wss:// when wsfwd has OpenSSL)
#   1-3, 5, 6 and 7 run twice: on poll (the default), then with --io epoll (suites named
#      NAME-epoll; WSFWD_E2E_ARGS, which harness.py and lib.mjs append to every wsfwd command
#      line)
#   4. the Python tests again with wsfwd under valgrind memcheck (any error or leak: exit 99)
#      (those of test_python.py, test_auth.py, test_flow.py, test_deflate.py, test_tls.py
#      and test_service.py marked for it), on poll; test_python.py and test_many.py also with
#      --io epoll
#   5. wsfwd --redis: nodes on one redis-server, and two behind nginx     test_cluster.py
#      (on poll, then with --io epoll)
#      (then its fault tests again with wsfwd under valgrind)
#   6. service conventions: sd_notify readiness (NOTIFY_SOCKET), --log-format json, and
#      docs/wsfwd.service through systemd-analyze verify and security  test_service.py
#   7. behind nginx terminating TLS (docs/deployment.md's configuration as written) with
#      --trust-proxy, over wss:// with a certificate made by openssl:  test_proxy.py
#      (then its --trust-proxy tests again with wsfwd under valgrind)
#
#   bash tests/e2e/run.sh PATH/TO/wsfwd
#
# Registered with ctest as the test `e2e` (label e2e). Prints one summary line
# "e2e: N passed, N failed" (counting the tests of every suite) and exits non-zero on any
# failure. With CI=true a missing dependency is a failure; otherwise that suite is skipped with
# the command that installs it. Every suite runs under a time bound.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if (($# != 1)) || [[ ! -x $1 ]]; then
    echo "usage: bash tests/e2e/run.sh PATH/TO/wsfwd" >&2
    exit 2
fi
wsfwd=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
CI=${CI:-false}
PYTHON=/usr/bin/python3
CHROMIUM=${WSFWD_E2E_CHROMIUM:-/usr/bin/chromium}
export WSFWD_E2E_CHROMIUM=$CHROMIUM
logs=$(mktemp -d "${TMPDIR:-/tmp}/wsfwd-e2e.XXXXXX")
trap 'rm -rf "$logs"' EXIT

passed=0 failed=0 skipped=0
declare -a lines=()

note() { lines+=("$(printf '  %-19s %s' "$1" "$2")"); }

# missing SUITE WHAT INSTALL: a failure under CI, a skip otherwise.
missing() {
    if [[ $CI == true ]]; then
        echo "ERROR: $1: $2 is missing (install: $3)" >&2
        failed=$((failed + 1))
        note "$1" "FAIL: $2 missing"
    else
        echo "SKIP $1: $2 is missing; install it with: $3" >&2
        skipped=$((skipped + 1))
        note "$1" "SKIP: $2 missing"
    fi
}

# built LIB: whether this wsfwd has the optional part LIB needs (its --help names the ones it
# lacks: "[not in this build: no LIB]").
help_text=$("$wsfwd" --help)
built() { ! grep -q "not in this build: no $1\]" <<<"$help_text"; }

# suite NAME SECONDS COMMAND...: run with a bound, add up its "N passed, N failed" line.
suite() {
    local name=$1 bound=$2
    shift 2
    local log=$logs/$name.log start=$SECONDS rc=0
    echo
    echo "== e2e suite $name: $*"
    timeout --kill-after=15 "$bound" "$@" 2>&1 | tee "$log" || rc=$?
    local last p=0 f=0
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 || true)
    if [[ -n $last ]]; then
        p=$(sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\1/' <<<"$last")
        f=$(sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$last")
    fi
    if ((rc != 0 && f == 0)); then
        f=1 # exited badly (a crash, or the time bound) without saying which test failed
        ((rc == 124 || rc == 137)) && echo "ERROR: suite $name passed its bound of ${bound}s" >&2
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    note "$name" "$p passed, $f failed ($((SECONDS - start))s, exit $rc)"
}

start_all=$SECONDS

# 2 and 3 need node and the npm packages of package-lock.json.
node_ok=false
if ! command -v node >/dev/null; then
    missing node "node" "apt-get install -y nodejs"
elif [[ -d $here/node_modules/ws && -d $here/node_modules/playwright-core ]]; then
    node_ok=true
elif ! command -v npm >/dev/null; then
    missing node "npm" "apt-get install -y npm"
else
    echo "== npm ci in tests/e2e"
    if (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm ci --no-audit --no-fund); then
        node_ok=true
    else
        missing node "the npm packages (npm ci failed)" "cd tests/e2e && npm ci"
    fi
fi

# 1-3 (and test_many.py) on the backend WSFWD_E2E_ARGS picks: frontends SUFFIX, where SUFFIX
# names the suites of that pass ("" for poll, the default; "-epoll").
frontends() {
    local sfx=$1
    # 1. Python websockets.
    if "$PYTHON" -c 'import websockets' 2>/dev/null; then
        suite python$sfx 240 "$PYTHON" "$here/test_python.py" "$wsfwd"
        suite auth$sfx 120 "$PYTHON" "$here/test_auth.py" "$wsfwd"
        suite flow$sfx 150 "$PYTHON" "$here/test_flow.py" "$wsfwd"
        suite many$sfx 120 "$PYTHON" "$here/test_many.py" "$wsfwd"
        if ! built zlib; then
            missing deflate$sfx "a wsfwd built with zlib" "apt-get install -y zlib1g-dev; rebuild"
        else
            suite deflate$sfx 180 "$PYTHON" "$here/test_deflate.py" "$wsfwd"
        fi
        if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
            missing metrics$sfx "promtool and prometheus" "apt-get install -y prometheus"
        else
            suite metrics$sfx 120 "$PYTHON" "$here/test_metrics.py" "$wsfwd"
        fi
        if ! built openssl; then
            missing tls$sfx "a wsfwd built with OpenSSL" "apt-get install -y libssl-dev; rebuild"
        elif ! command -v openssl >/dev/null; then
            missing tls$sfx "the openssl command" "apt-get install -y openssl"
        else
            suite tls$sfx 150 "$PYTHON" "$here/test_tls.py" "$wsfwd"
        fi
    else
        missing python$sfx "python3-websockets for $PYTHON" "apt-get install -y python3-websockets"
    fi

    if $node_ok; then
        suite node$sfx 150 node "$here/test_node.mjs" "$wsfwd"
        if [[ -x $CHROMIUM ]]; then
            suite browser$sfx 150 node "$here/test_browser.mjs" "$wsfwd" "${WSFWD_E2E_SCREENSHOT:-}"
        else
            missing browser$sfx "chromium ($CHROMIUM)" "apt-get install -y chromium"
        fi
    fi
}

frontends ""
if ! built epoll; then
    missing epoll "epoll (the second backend, Linux only)" "run the tests on Linux"
else
    WSFWD_E2E_ARGS="--io epoll" frontends -epoll
fi

# 4. The Python tests again, wsfwd under valgrind memcheck; time bounds stretched.
if ! command -v valgrind >/dev/null; then
    missing valgrind "valgrind" "apt-get install -y valgrind"
elif ! "$PYTHON" -c 'import websockets' 2>/dev/null; then
    missing valgrind "python3-websockets for $PYTHON" "apt-get install -y python3-websockets"
else
    WSFWD_E2E_SLOW=${WSFWD_E2E_SLOW:-10} suite valgrind 400 "$PYTHON" "$here/test_python.py" \
        "$wsfwd" --valgrind
    WSFWD_E2E_SLOW=${WSFWD_E2E_SLOW:-10} suite valgrind-auth 300 "$PYTHON" \
        "$here/test_auth.py" "$wsfwd" --valgrind
    WSFWD_E2E_SLOW=${WSFWD_E2E_SLOW:-10} suite valgrind-flow 180 "$PYTHON" \
        "$here/test_flow.py" "$wsfwd" --valgrind
    if built zlib; then
        WSFWD_E2E_SLOW=${WSFWD_E2E_SLOW:-10} suite valgrind-deflate 300 "$PYTHON" \
            "$here/test_deflate.py" "$wsfwd" --valgrind
    fi
    if built openssl && command -v openssl >/dev/null; then
        WSFWD_E2E_SLOW=${WSFWD_E2E_SLOW:-10} suite valgrind-tls 300 "$PYTHON" \
            "$here/test_tls.py" "$wsfwd" --valgrind
    fi
    WSFWD_E2E_SLOW=${WSFWD_E2E_SLOW:-10} suite valgrind-service 200 "$PYTHON" \
        "$here/test_service.py" "$wsfwd" --valgrind
    if built epoll; then # the epoll backend under memcheck too
        WSFWD_E2E_SLOW=${WSFWD_E2E_SLOW:-10} WSFWD_E2E_ARGS="--io epoll" suite valgrind-epoll \
            400 "$PYTHON" "$here/test_python.py" "$wsfwd" --valgrind
        WSFWD_E2E_SLOW=${WSFWD_E2E_SLOW:-10} WSFWD_E2E_ARGS="--io epoll" \
            suite valgrind-many-epoll 120 "$PYTHON" "$here/test_many.py" "$wsfwd" --valgrind
    fi
fi

# 5. Several nodes on one Redis (and behind nginx): needs a wsfwd built with hiredis,
#    redis-server and nginx (the tests start their own, on loopback).
if ! "$PYTHON" -c 'import websockets' 2>/dev/null; then
    missing cluster "python3-websockets for $PYTHON" "apt-get install -y python3-websockets"
elif ! built hiredis; then
    missing cluster "a wsfwd built with hiredis" \
        "apt-get install -y libhiredis-dev, then configure with -DWSFWD_REDIS=ON"
elif ! command -v redis-server >/dev/null; then
    missing cluster "redis-server" "apt-get install -y redis-server"
elif ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    missing cluster "nginx" "apt-get install -y nginx"
else
    suite cluster 300 "$PYTHON" "$here/test_cluster.py" "$wsfwd"
    if built epoll; then
        WSFWD_E2E_ARGS="--io epoll" suite cluster-epoll 300 "$PYTHON" "$here/test_cluster.py" \
            "$wsfwd"
    fi
    if command -v valgrind >/dev/null; then # the fault paths once more under memcheck
        suite cluster-vg 400 "$PYTHON" "$here/test_cluster.py" "$wsfwd" --valgrind \
            -k three_nodes -k isolated -k redis_restart -k unreachable -k killed
    else
        missing cluster-vg "valgrind" "apt-get install -y valgrind"
    fi
fi

# 6. The service conventions: needs systemd-analyze (Debian systemd) for the unit file.
if ! "$PYTHON" -c 'import websockets' 2>/dev/null; then
    missing service "python3-websockets for $PYTHON" "apt-get install -y python3-websockets"
elif ! command -v systemd-analyze >/dev/null; then
    missing service "systemd-analyze" "apt-get install -y systemd"
else
    suite service 120 "$PYTHON" "$here/test_service.py" "$wsfwd"
    if built epoll; then
        WSFWD_E2E_ARGS="--io epoll" suite service-epoll 120 "$PYTHON" "$here/test_service.py" \
            "$wsfwd"
    fi
fi

# 7. Behind nginx with TLS: needs nginx and openssl (the test starts its own nginx, on loopback).
if ! "$PYTHON" -c 'import websockets' 2>/dev/null; then
    missing proxy "python3-websockets for $PYTHON" "apt-get install -y python3-websockets"
elif ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    missing proxy "nginx" "apt-get install -y nginx"
elif ! command -v openssl >/dev/null; then
    missing proxy "openssl" "apt-get install -y openssl"
else
    suite proxy 120 "$PYTHON" "$here/test_proxy.py" "$wsfwd"
    if built epoll; then
        WSFWD_E2E_ARGS="--io epoll" suite proxy-epoll 120 "$PYTHON" "$here/test_proxy.py" \
            "$wsfwd"
    fi
    if command -v valgrind >/dev/null; then # the --trust-proxy paths once more under memcheck
        WSFWD_E2E_SLOW=${WSFWD_E2E_SLOW:-10} suite valgrind-proxy 200 "$PYTHON" \
            "$here/test_proxy.py" "$wsfwd" --valgrind
    else
        missing valgrind-proxy "valgrind" "apt-get install -y valgrind"
    fi
fi

echo
echo "== e2e summary ($((SECONDS - start_all))s)"
printf '%s\n' "${lines[@]}"
if ((skipped > 0)); then
    echo "e2e: $passed passed, $failed failed, $skipped skipped"
else
    echo "e2e: $passed passed, $failed failed"
fi
((failed == 0 && passed > 0))
