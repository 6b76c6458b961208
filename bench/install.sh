#!/usr/bin/env bash
# Installs what the benchmark drives and measures against, idempotently: wrk and redis-server
# (Debian), and a venv in bench/.venv with FastMCP and matplotlib (bench/requirements.txt). A stamp records which
# requirements the venv was built from, so an edited requirements.txt rebuilds it.
set -euo pipefail

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() {
    echo "bench/install: $*" >&2
    exit 1
}

# The load generator, and the store behind the proxy-token row.
for tool in wrk:wrk redis-server:redis-server; do
    command="${tool%%:*}" package="${tool#*:}"
    command -v "$command" >/dev/null && continue
    command -v apt-get >/dev/null || die "$command is missing and there is no apt-get; install $package by hand"
    [[ "$(id -u)" == 0 ]] || die "$command is missing; install it as root: apt-get install -y $package"
    echo "bench/install: installing $package"
    # A fresh machine may have no package lists yet.
    apt-get install -y "$package" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$package" >/dev/null; }
    command -v "$command" >/dev/null || die "$package did not install"
done

venv="$bench/.venv"
stamp="$venv/.toolgate-bench-stamp"
want="$(sha256sum "$bench/requirements.txt" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "bench/install: bench/.venv is up to date"
else
    command -v python3 >/dev/null || die "python3 is missing; FastMCP needs Python 3.10 or newer"
    echo "bench/install: building bench/.venv from bench/requirements.txt"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$bench/requirements.txt"
    "$venv/bin/python" -c 'import fastmcp, matplotlib' || die "the venv does not import fastmcp and matplotlib"
    echo "$want" >"$stamp"
fi
