#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz and libFuzzer) of docket-core (appliance/core/fuzz:
# envelope, commands) and of docketd's MQTT connection layer (appliance/docketd/fuzz:
# connection) in bounded runs: each target starts from its committed corpus and stops after N seconds. Fails on
# any panic, broken invariant, timeout or out-of-memory, and prints the input that caused it.
#
#   scripts/fuzz.sh                         every target, 30 s each
#   scripts/fuzz.sh --seconds 600 commands  one target (envelope, commands, connection), ten minutes
#   scripts/fuzz.sh --grow                  add what the run finds to the committed corpus
#                                           (then run --cmin before committing it)
#   scripts/fuzz.sh --cmin                  minimise the committed corpus; no fuzzing (keeps
#                                           a small set of inputs that covers every edge: hit
#                                           counts are ignored, or it keeps thousands)
#   scripts/fuzz.sh --asan                  with AddressSanitizer: 10-20x fewer executions, and
#                                           docket-core has no unsafe code, so off by default
#   scripts/fuzz.sh --jobs 1                targets one after another (default: one per core)
#
# New inputs a run finds go to a temp dir and are dropped, unless --grow. Crash inputs and each
# target's last log go to its fuzz dir's artifacts/TARGET/ (not committed). Reproduce one:
#   target/fuzz/<host>/release/TARGET appliance/core/fuzz/artifacts/TARGET/crash-…
# and keep it for the regression by copying it into that fuzz dir's corpus/TARGET/.
#
# Installs the pinned cargo-fuzz when missing. Builds with the repo's pinned stable toolchain
# (rust-toolchain.toml) and RUSTC_BOOTSTRAP=1, since cargo-fuzz passes nightly-only flags, into
# target/fuzz/, which both fuzz crates share (docket-core and the common dependencies are
# built once), apart from the workspace's own builds. Each fuzz crate's Cargo.lock must pin
# the versions the workspace's Cargo.lock pins (what ships is what is fuzzed): checked first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export RUSTC_BOOTSTRAP=1
export RUST_BACKTRACE=1

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(envelope commands connection)

# The fuzz crate a target belongs to.
fuzz_dir() {
    case $1 in
        connection) echo appliance/docketd/fuzz ;;
        *) echo appliance/core/fuzz ;;
    esac
}

seconds=30
grow=0
cmin=0
sanitizer=none
jobs=$(nproc 2>/dev/null || echo 1)
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift ;;
        --grow) grow=1 ;;
        --cmin) cmin=1 ;;
        --asan) sanitizer=address ;;
        --jobs) jobs=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *)
            if [[ " ${ALL_TARGETS[*]} " != *" $1 "* ]]; then
                echo "unknown target $1 (targets: ${ALL_TARGETS[*]})" >&2
                exit 2
            fi
            targets+=("$1")
            ;;
    esac
    shift
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "--seconds takes a positive number" >&2; exit 2; }
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "--jobs takes a positive number" >&2; exit 2; }

if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --quiet
fi

host=$(rustc -vV | sed -n 's/^host: //p')
TARGET_DIR="$PWD/target/fuzz"

# Every package a fuzz crate's lock shares with the workspace's lock, at the same version.
for dir in $(for t in "${ALL_TARGETS[@]}"; do fuzz_dir "$t"; done | sort -u); do
    python3 - "$dir/Cargo.lock" <<'PY' || exit 1
import sys, tomllib
def pins(path):
    with open(path, "rb") as f:
        return {(p["name"], p["version"]) for p in tomllib.load(f)["package"]}
root, fuzz = pins("Cargo.lock"), pins(sys.argv[1])
root_names = {n for n, _ in root}
off = sorted(f"{n} {v}" for n, v in fuzz - root if n in root_names)
if off:
    print(f"fuzz: {sys.argv[1]} pins versions the workspace's Cargo.lock does not: {', '.join(off)}\n"
          f"fuzz: refresh it: cp Cargo.lock {sys.argv[1]} && (cd {sys.argv[1].rsplit('/', 1)[0]} && cargo metadata --format-version 1 >/dev/null)",
          file=sys.stderr)
    sys.exit(1)
PY
done
fuzz_cargo() {
    # From the crate's directory, cargo-fuzz finds its fuzz crate in ./fuzz.
    local dir=$1
    shift
    (cd "$dir/.." && cargo fuzz "$@")
}

if [[ $cmin -eq 1 ]]; then
    for t in "${targets[@]}"; do
        FUZZ_DIR=$(fuzz_dir "$t")
        mkdir -p "$TARGET_DIR"
        before=$(find "$FUZZ_DIR/corpus/$t" -type f | wc -l)
        fuzz_cargo "$FUZZ_DIR" cmin --sanitizer "$sanitizer" --target "$host" \
            --target-dir "$TARGET_DIR" "$t" -- -set_cover_merge=1 -use_counters=0 \
            >"$TARGET_DIR/cmin-$t.log" 2>&1 \
            || { tail -n 30 "$TARGET_DIR/cmin-$t.log" >&2; exit 1; }
        echo "fuzz: $t: corpus minimised from $before to $(find "$FUZZ_DIR/corpus/$t" -type f | wc -l) files ($(cat "$FUZZ_DIR/corpus/$t"/* | wc -c) bytes)"
    done
    exit 0
fi

start=$(date +%s)
echo "fuzz: building ${targets[*]} (sanitizer: $sanitizer; cargo-fuzz $CARGO_FUZZ_VERSION, $(rustc --version))"
built=()
for t in "${targets[@]}"; do
    FUZZ_DIR=$(fuzz_dir "$t")
    [[ " ${built[*]} " == *" $FUZZ_DIR "* ]] && continue
    CARGO_TERM_QUIET=true fuzz_cargo "$FUZZ_DIR" build --sanitizer "$sanitizer" --target "$host" \
        --target-dir "$TARGET_DIR"
    built+=("$FUZZ_DIR")
done
echo "fuzz: built in $(( $(date +%s) - start )) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Runs one target for $seconds; its libFuzzer output goes to artifacts/TARGET/last-run.log.
fuzz_one() {
    local t=$1
    local FUZZ_DIR
    FUZZ_DIR=$(fuzz_dir "$t")
    local out="$FUZZ_DIR/artifacts/$t"
    local corpus=("$FUZZ_DIR/corpus/$t")
    mkdir -p "$out"
    if [[ $grow -eq 0 ]]; then
        # The first corpus dir is where libFuzzer writes what it finds: keep the committed one
        # read-only.
        mkdir -p "$scratch/$t"
        corpus=("$scratch/$t" "${corpus[@]}")
    fi
    "$TARGET_DIR/$host/release/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/" \
        "${corpus[@]}" >"$out/last-run.log" 2>&1
}

# A `-print_final_stats=1` figure from a libFuzzer log.
final_stat() {
    sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}

# One line per target from its log; on failure, the input and the panic with its stack.
report() {
    local t=$1 status=$2
    local FUZZ_DIR
    FUZZ_DIR=$(fuzz_dir "$t")
    local log="$FUZZ_DIR/artifacts/$t/last-run.log"
    local done_line
    done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 || true)
    local cov ft corp
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$done_line")
    printf 'fuzz: %s: %s execs (%s/s), cov %s, ft %s, corpus %s (%s new%s)\n' "$t" \
        "$(final_stat "$log" number_of_executed_units)" "$(final_stat "$log" average_exec_per_sec)" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "$(final_stat "$log" new_units_added)" \
        "$([[ $grow -eq 1 ]] && echo ", kept in $FUZZ_DIR/corpus/$t" || echo ", dropped")"
    if [[ $status -ne 0 ]]; then
        local input
        input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        echo "fuzz: $t FAILED (libFuzzer exit $status); log: $log" >&2
        grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED|RELOAD)' "$log" | tail -n 60 >&2
        echo "fuzz: $t: crashing input: ${input:-none written, see the log}" >&2
        if [[ -n $input && -f $input ]]; then
            echo "fuzz: $t: input hex: $(od -An -v -tx1 "$input" | tr -d ' \n' | head -c 2000)" >&2
        fi
    fi
}

echo "fuzz: ${targets[*]} for $seconds s each, $jobs at a time"
failed=()
pids=()
names=()
drain() {
    local i status
    for i in "${!pids[@]}"; do
        status=0
        wait "${pids[$i]}" || status=$?
        report "${names[$i]}" "$status"
        [[ $status -eq 0 ]] || failed+=("${names[$i]}")
    done
    pids=()
    names=()
}
for t in "${targets[@]}"; do
    fuzz_one "$t" &
    pids+=($!)
    names+=("$t")
    [[ ${#pids[@]} -lt $jobs ]] || drain
done
drain
echo "fuzz: took $(( $(date +%s) - start )) s"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: no crash in ${targets[*]}"
