#!/usr/bin/env bash
# The command that starts each peer of the benchmark (issue 5) on a port, one line per peer:
#   NAME<TAB>COMMAND   with {port} to replace by the port; each listens on 127.0.0.1:{port},
# serves /ws (the global room) and /ws/<room>, and runs in the foreground until SIGTERM.
# The binaries are those tests/bench/peers/build.sh builds into build/peers/ (or
# $WSFWD_PEERS_DIR). Paths are absolute.
#
#   bash tests/bench/peers/commands.sh            all peers
#   bash tests/bench/peers/commands.sh hub-go     one
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
dir=${WSFWD_PEERS_DIR:-$root/build/peers}
node=$(command -v node || echo node)

lines=(
    "tutorial-go	$dir/tutorial-go -addr 127.0.0.1:{port}"
    "hub-go	$dir/hub-go -addr 127.0.0.1:{port}"
    "node-ws	$node $dir/node-ws/server.js --port {port}"
    "lws	$dir/lws-server --port {port}"
)
for l in "${lines[@]}"; do
    if (($# == 0)) || [[ " $* " == *" ${l%%	*} "* ]]; then
        printf '%s\n' "$l"
    fi
done
