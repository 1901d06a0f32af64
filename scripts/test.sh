#!/usr/bin/env bash
# The whole test suite: format, lints, unit, property and end-to-end tests against the real
# docketd process, the pages' unit tests, and the pages in headless Chromium. Installs what it
# needs (Debian packages, the pinned npm packages); starts its own servers on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

# Each step's time, printed at the end (also after a failure): where CI's minutes go.
timings=()
step_name=""
step_start=$(date +%s)
suite_start=$step_start
step_done() {
    local now
    now=$(date +%s)
    [ -z "$step_name" ] || timings+=("$(printf '%6d s  %s' $((now - step_start)) "$step_name")")
    step_start=$now
}
step() {
    step_done
    step_name="$*"
    printf '\n== %s\n' "$*"
}
step_times() {
    step_done
    step_name=""
    printf '\n== time per step\n'
    printf '%s\n' "${timings[@]}"
    printf '%6d s  in all\n' $(( $(date +%s) - suite_start ))
}
trap step_times EXIT

step "prerequisites"
. scripts/prereqs.sh
docket_prereqs

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

step "relay tests on a 3-node Redis Cluster and a partitioned PostgreSQL"
# The same relay tests again, head office being a Redis Cluster of three real redis-server
# processes (tests/src/redis_cluster.rs) and a partitioned PostgreSQL: every key and every
# statement must hold there too. uplink is the Redis relay; faults, inbound and hq_menus the
# PostgreSQL side; fleet_view the fleet view reading both. About a minute on 2 cores once built.
DOCKET_TEST_REDIS=cluster DOCKET_TEST_POSTGRES=partitioned \
    cargo test -p docket-tests --locked --test uplink --test faults --test inbound --test hq_menus --test fleet_view \
    -- --test-threads="${DOCKET_TEST_THREADS:-4}"

step "firmware: systemd units (verify, security score), first boot, the box's config"
DOCKETD_BIN="$PWD/target/debug/docketd" scripts/check-firmware.sh

step "yocto layer, crate list, RAUC bundles, partition layout (offline)"
scripts/check-yocto.sh

step "aarch64 cross build of docketd, smoke test under qemu-aarch64-static"
scripts/cross-smoke.sh

step "the box's test image under QEMU: boot under systemd, doctor, pairing, orders, power cuts"
DOCKET_ARTIFACTS="${DOCKET_ARTIFACTS:-$PWD/target/browser-artifacts}" scripts/boot-test.sh --debug --cuts "${DOCKET_POWER_CUTS:-3}"

step "fuzzing (bounded): envelope and body decoding, decisions and exactly-once"
# A short run on the committed corpus; scripts/fuzz.sh --seconds 600 for a longer one.
scripts/fuzz.sh --seconds "${DOCKET_FUZZ_SECONDS:-20}"

step "pages in headless Chromium"
docket_browser_deps
cd tests/browser
export DOCKET_ARTIFACTS="${DOCKET_ARTIFACTS:-$PWD/../../target/browser-artifacts}"
browser_status=0
node --test --test-concurrency=1 ./*.test.mjs || browser_status=$?
# Printed on failure too: that is when the screenshots and daemon logs are wanted.
echo "screenshots and daemon logs: $(realpath -m "$DOCKET_ARTIFACTS")"
exit "$browser_status"
