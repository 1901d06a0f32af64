#!/usr/bin/env bash
# The fault campaign, long version: 30 minutes of bad Wi-Fi for every device at x10 the case
# study's load, 100 kill -9 cycles under load, a box hung (SIGSTOP) for 20 s. After each, the
# oracle checks that nothing acknowledged was lost or doubled and every screen is exact.
# Writes the results into docs/reliability.md (between its chaos:begin/end markers).
# The short version of the same scenarios runs in scripts/test.sh (tests/tests/faults.rs).
#
#   scripts/chaos.sh                      everything (about 40 minutes)
#   scripts/chaos.sh --wifi-minutes 5     shorter bad Wi-Fi
#   scripts/chaos.sh --scenario kill      one scenario (wifi, kill, hang; or a,b)
#   scripts/chaos.sh --no-docs            do not touch docs/reliability.md
#   scripts/chaos.sh --debug              use the dev build instead of the release build
#   DOCKET_TEST_POSTGRES=partitioned scripts/chaos.sh --scenario kill
#                                         head office's schema partitioned by site (4 hash
#                                         partitions), as scripts/test.sh's second relay run
#
# Other arguments go to docket-chaos (see `docket-chaos --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
docs=1
args=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --debug) profile=debug ;;
        --no-docs) docs=0 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) args+=("$1") ;;
    esac
    shift
done

. scripts/prereqs.sh
docket_prereqs >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

build=(cargo build --locked --workspace --bins)
[[ $profile == release ]] && build+=(--release)
echo "chaos: building docketd and docket-chaos ($profile)"
"${build[@]}"
target_dir=${CARGO_TARGET_DIR:-target}
export DOCKETD_BIN="$PWD/$target_dir/$profile/docketd"
md=$(mktemp)
trap 'rm -f "$md"' EXIT
status=0
"$target_dir/$profile/docket-chaos" --markdown "$md" "${args[@]}" || status=$?
if [[ $docs -eq 1 && -s $md ]]; then
    python3 - "$md" docs/reliability.md "$(date -u '+%Y-%m-%d %H:%M')" <<'PY'
import sys
block = open(sys.argv[1]).read()
path, when = sys.argv[2], sys.argv[3]
doc = open(path).read()
begin, end = "<!-- chaos:begin -->", "<!-- chaos:end -->"
a, b = doc.index(begin) + len(begin), doc.index(end)
open(path, "w").write(doc[:a] + "\n" + block.replace("Run: ", f"Run of {when} UTC: ", 1) + doc[b:])
PY
    echo "chaos: docs/reliability.md updated"
fi
exit "$status"
