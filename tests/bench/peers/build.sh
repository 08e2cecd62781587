#!/usr/bin/env bash
# Builds the peers of the benchmark (issue 5) into build/peers/ (or $WSFWD_PEERS_DIR), from
# Debian's and npm's packages only; none of their code is in the project. Installs nothing:
# it checks for the packages and says which are missing (`bash .ci/run` installs them).
#
#   tutorial-go   the tutorial's server (../shared/seed), gorilla/websocket   (tutorial-go/)
#   hub-go        gorilla's chat-hub design with rooms                         (hub-go/)
#   node-ws       a Node ws 8 broadcast server, ws from npm (npm ci)           (node-ws/)
#   lws           a libwebsockets server, refcounted queue per connection      (lws/)
#
# Then prints each peer's versions (also written to build/peers/versions.txt) and the command
# that starts each one (commands.sh). Exit status 1 when a package is missing or a build fails.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${WSFWD_PEERS_DIR:-$root/build/peers}
gorilla=/usr/share/gocode/src/github.com/gorilla/websocket

missing=()
command -v go >/dev/null || missing+=(golang-go)
[[ -f $gorilla/conn.go ]] || missing+=(golang-github-gorilla-websocket-dev)
command -v gcc >/dev/null || missing+=(build-essential)
command -v pkg-config >/dev/null || missing+=(pkg-config)
pkg-config --exists libwebsockets 2>/dev/null || missing+=(libwebsockets-dev)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]} > 0)); then
    echo "peers: missing Debian packages: ${missing[*]}" >&2
    echo "  install them with:  sudo apt-get install -y ${missing[*]}   (or: bash .ci/run)" >&2
    echo "  golang-go and golang-github-gorilla-websocket-dev build tutorial-go and hub-go," >&2
    echo "  libwebsockets-dev builds lws, nodejs and npm install ws for node-ws" >&2
    exit 1
fi

mkdir -p "$out/node-ws"

# Go, offline: GOPATH mode over Debian's /usr/share/gocode (no module download).
export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE=$out/.gocache GOTOOLCHAIN=local
for p in tutorial-go hub-go; do
    echo "peers: building $p"
    (cd "$here/$p" && go build -trimpath -o "$out/$p" .)
done

echo "peers: building lws"
# shellcheck disable=SC2046
gcc -std=c11 -O2 -Wall -Wextra -D_DEFAULT_SOURCE -o "$out/lws-server" "$here/lws/server.c" \
    $(pkg-config --cflags --libs libwebsockets)

echo "peers: installing node-ws (npm ci)"
cp "$here/node-ws/server.js" "$here/node-ws/package.json" "$here/node-ws/package-lock.json" \
    "$out/node-ws/"
(cd "$out/node-ws" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
{
    printf 'tutorial-go\t%s, gorilla/websocket %s (golang-github-gorilla-websocket-dev)\n' \
        "$(go version | cut -d' ' -f3)" "$(pkgver golang-github-gorilla-websocket-dev)"
    printf 'hub-go\t%s, gorilla/websocket %s (golang-github-gorilla-websocket-dev)\n' \
        "$(go version | cut -d' ' -f3)" "$(pkgver golang-github-gorilla-websocket-dev)"
    printf 'node-ws\tnode %s, ws %s (npm)\n' "$(node --version)" \
        "$(node -p "require('$out/node-ws/node_modules/ws/package.json').version")"
    printf 'lws\tlibwebsockets %s (libwebsockets-dev %s), gcc %s\n' \
        "$(pkg-config --modversion libwebsockets | sed "s/-$//")" "$(pkgver libwebsockets-dev)" \
        "$(gcc -dumpfullversion)"
} >"$out/versions.txt"

echo
echo "peers: versions"
sed 's/^/  /' "$out/versions.txt"
echo
echo "peers: commands ({port} to replace)"
bash "$here/commands.sh" | sed 's/^/  /'
