#!/usr/bin/env bash
# The whole test suite: format, lints, unit, property and end-to-end tests against the real
# docketd process, the pages' unit tests, and the pages in headless Chromium. Installs what it
# needs (Debian packages, the pinned npm packages); starts its own servers on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "prerequisites"
# The end-to-end tests signal the daemon with kill(1) (procps); the pages are built and tested
# with Node.js (>= 20) and npm; the browser tests drive Debian's Chromium.
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMIUM
missing=()
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || missing+=(procps)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x "$CHROMIUM" ] || missing+=(chromium)
# The uplink tests start their own PostgreSQL and Redis servers (free ports, temp dirs).
if [ -z "${DOCKET_PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    missing+=(postgresql)
fi
command -v redis-server >/dev/null || missing+=(redis-server)
command -v setpriv >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "test.sh: Node.js >= 20 is needed for the pages (found $(node --version))" >&2
    exit 1
fi
echo "node $(node --version), npm $(npm --version), $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
command -v cargo >/dev/null || { echo "test.sh: cargo is missing: install Rust (rustup) first" >&2; exit 1; }
cargo --version
rustc --version

step "format"
cargo fmt --all -- --check

step "pages: unit tests, and the embedded bundle is up to date"
scripts/build-web.sh --check --test

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "tests"
# Integration tests find the daemon here; each test starts its own on free ports.
export DOCKETD_BIN="$PWD/target/debug/docketd"
cargo test --workspace --locked -- --test-threads="${DOCKET_TEST_THREADS:-4}"

step "pages in headless Chromium"
cd tests/browser
if ! cmp -s package-lock.json node_modules/.docket-installed-lock 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.docket-installed-lock
fi
export DOCKET_ARTIFACTS="${DOCKET_ARTIFACTS:-$PWD/../../target/browser-artifacts}"
browser_status=0
node --test --test-concurrency=1 ./*.test.mjs || browser_status=$?
# Printed on failure too: that is when the screenshots and daemon logs are wanted.
echo "screenshots and daemon logs: $(realpath -m "$DOCKET_ARTIFACTS")"
exit "$browser_status"
