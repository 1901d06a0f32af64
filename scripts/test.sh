#!/usr/bin/env bash
# The whole test suite: format, lints, unit, property and end-to-end tests against the real
# docketd process. Installs what it needs; starts its own servers on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "prerequisites"
# The end-to-end tests signal the daemon with kill(1) (procps); everything else is Rust.
missing=()
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || missing+=(procps)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "test.sh: cargo is missing: install Rust (rustup) first" >&2; exit 1; }
cargo --version
rustc --version

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "tests"
# Integration tests find the daemon here; each test starts its own on free ports.
export DOCKETD_BIN="$PWD/target/debug/docketd"
cargo test --workspace --locked -- --test-threads="${DOCKET_TEST_THREADS:-4}"
