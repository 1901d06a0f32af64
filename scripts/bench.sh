#!/usr/bin/env bash
# Benchmarks: builds the release docketd and docket-load, then runs the scenarios against a
# docketd of their own (free ports, temp data) and prints a table; numbers, never pass/fail.
#
#   scripts/bench.sh                     every scenario (about 25 minutes)
#   scripts/bench.sh --quick             a smoke run (short phases, 10,000-event backlog, 2,000
#                                        devices, 600 in the test image, fleets of 10 and 50
#                                        sites, 10 sites back from 5 minutes offline)
#   scripts/bench.sh --scenario backlog  one scenario (seed, x10, x100, flat-out, flat-out-10, pi,
#                                        broker-hop, browser, connections, connections-vm,
#                                        reconnect-storm, backlog, restart, fleet; or a,b)
#   scripts/bench.sh --scenario fleet    head office with 10, 100 and 1,000 sites at the case
#                                        study's load, and 100 sites back from an hour offline
#                                        (--fleet-sites 10,100,1000 --catchup-sites 100
#                                        --catchup-minutes 60; --fleet-partitions 16: head
#                                        office's schema partitioned by site; --fleet-poll-ms
#                                        1000: the sites' uplink poll_interval_ms)
#   scripts/bench.sh --scenario pi       x100 and flat-out against a docketd on a Raspberry Pi 4's
#                                        CPU (cgroup v1 quotas) with an SD card's fsync (FUSE,
#                                        docket-slowfs); needs root, else "not available"; see
#                                        docs/benchmarks.md, "The pi profile"
#   scripts/bench.sh --pi-fsync-ms 5     milliseconds each fsync takes in pi (default 5)
#   scripts/bench.sh --duration 60       seconds of measured load per scenario (default 30)
#   scripts/bench.sh --connections 2000  devices in the connections scenario (default 10,000)
#   scripts/bench.sh --vm-connections N  devices in connections-vm (default 10,000)
#   scripts/bench.sh --keep-alive S      the connected devices' MQTT keep-alive (default 15 s,
#                                        as the box's pages; connections-vm: 60 s, see
#                                        docs/benchmarks.md)
#   scripts/bench.sh --json out.json     also write the results (with the machine) as JSON
#   scripts/bench.sh --update-docs       put this run's results into docs/benchmarks.md
#   scripts/bench.sh --debug             use the dev build (CI: one build profile) instead
#
# Installs what it needs when missing (scripts/prereqs.sh: PostgreSQL for backlog and fleet,
# Mosquitto for broker-hop and connections, Chromium and playwright-core for browser) and raises
# the open-file limit for the connections scenario (docketd holds 1 descriptor per connection)
# and fleet (about 12 per site). Where that
# limit cannot be raised far enough, connections-vm runs the same scenario inside the box's test
# image under QEMU (built here with scripts/build-test-image.sh --load; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=all
duration=30
backlog=100000
restart_events=1000000
connections=10000
vm_connections=10000
keep_alive=15
hop_messages=50000
pi_fsync_ms=5
fleet_sites=10,100,1000
catchup_sites=100
catchup_minutes=60
fleet_partitions=0
fleet_poll=()
json=""
profile=release
update_docs=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) duration=8; backlog=10000; restart_events=20000; hop_messages=10000; connections=2000; vm_connections=600
            fleet_sites=10,50; catchup_sites=10; catchup_minutes=5 ;;
        --fleet-sites) fleet_sites=$2; shift ;;
        --catchup-sites) catchup_sites=$2; shift ;;
        --catchup-minutes) catchup_minutes=$2; shift ;;
        --fleet-partitions) fleet_partitions=$2; shift ;;
        --fleet-poll-ms) fleet_poll=(--fleet-poll-ms "$2"); shift ;;
        --connections) connections=$2; shift ;;
        --vm-connections) vm_connections=$2; shift ;;
        --keep-alive) keep_alive=$2; shift ;;
        --restart-events) restart_events=$2; shift ;;
        --scenario) scenario=$2; shift ;;
        --duration) duration=$2; shift ;;
        --json) json=$2; shift ;;
        --backlog-events) backlog=$2; shift ;;
        --debug) profile=debug ;;
        --update-docs) update_docs=1 ;;
        --pi-fsync-ms) pi_fsync_ms=$2; shift ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

. scripts/prereqs.sh
docket_prereqs >/dev/null
docket_browser_deps
# 10,000 connections: docketd, Mosquitto and docket-load hold 1 descriptor each.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "bench: building docketd and docket-load ($profile)"
build=(cargo build --locked --workspace --bins)
[[ $profile == release ]] && build+=(--release)
# The dev build: the same targets as scripts/test.sh builds, so CI reuses them (--bins alone
# unifies dependency features differently and rebuilds a good part of the tree).
[[ $profile == debug ]] && build=(cargo build --locked --workspace --all-targets)
"${build[@]}"
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir="$PWD/$target_dir"
export DOCKETD_BIN="$target_dir/$profile/docketd"
vm_image="$target_dir/bench-image"
if [[ $scenario == all || ,$scenario, == *,connections-vm,* ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        command -v qemu-system-x86_64 >/dev/null && command -v mtype >/dev/null || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                --allow-downgrades qemu-system-x86 mtools
        }
        echo "bench: building the test image with docket-load for connections-vm ($vm_image)"
        image_start=$(date +%s)
        flag=()
        [[ $profile == debug ]] && flag=(--debug)
        scripts/build-test-image.sh "${flag[@]}" --docketd "$DOCKETD_BIN" \
            --load "$target_dir/$profile/docket-load" --out "$vm_image" > "$vm_image.log" 2>&1 \
            || { tail -20 "$vm_image.log" >&2; exit 1; }
        echo "bench: the test image took $(( $(date +%s) - image_start )) s"
    else
        echo "bench: connections-vm needs root to build the test image; it will say not available"
        rm -rf "$vm_image"
    fi
fi
md=$(mktemp)
trap 'rm -f "$md"' EXIT
args=(--scenario "$scenario" --duration "$duration" --backlog-events "$backlog"
    --restart-events "$restart_events" --connections "$connections" --hop-messages "$hop_messages"
    --vm-image "$vm_image" --vm-connections "$vm_connections" --keep-alive "$keep_alive"
    --pi-fsync-ms "$pi_fsync_ms" --fleet-sites "$fleet_sites" --catchup-sites "$catchup_sites"
    --catchup-minutes "$catchup_minutes" --fleet-partitions "$fleet_partitions" "${fleet_poll[@]}"
    --markdown "$md")
[[ -n $json ]] && args+=(--json "$json")
echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
"$target_dir/$profile/docket-load" "${args[@]}"
if [[ $update_docs -eq 1 ]]; then
    [[ $profile == release ]] || { echo "bench: --update-docs takes release numbers only" >&2; exit 2; }
    python3 - "$md" docs/benchmarks.md <<'PY'
import sys
block = open(sys.argv[1]).read()
path = sys.argv[2]
doc = open(path).read()
begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
a, b = doc.index(begin) + len(begin), doc.index(end)
open(path, "w").write(doc[:a] + "\n" + block + doc[b:])
PY
    echo "bench: docs/benchmarks.md updated"
fi
