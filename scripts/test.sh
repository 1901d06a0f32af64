#!/usr/bin/env bash
# The whole test suite: format, lints, unit, property and end-to-end tests against the real
# docketd process. Installs what it needs; starts its own servers on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
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
