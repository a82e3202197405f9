#!/usr/bin/env bash
# The performance suite in one command: installs the reference systems
# when missing (DuckDB from PyPI, PostgreSQL from Debian), builds QuiverDB
# in release mode and runs examples/bench.rs, which prints markdown.
#
#   benches/run.sh                       # TPC-H SF 1, every workload
#   benches/run.sh --sf 1 --scale 0.1,3  # plus the scale run
#   benches/run.sh --sf 0.1 --runs 3     # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if ! python3 -c "import duckdb" 2>/dev/null; then
    echo "installing the DuckDB reference: pip install duckdb"
    python3 -m pip install -q --disable-pip-version-check duckdb
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing the PostgreSQL reference: apt-get install postgresql"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi

cargo build --release --bin quiver --example bench
exec target/release/examples/bench "$@"
