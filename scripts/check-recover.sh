#!/usr/bin/env bash
# firmware/bin/docketd-recover, what docketd-recover.service runs when docketd.service hits its
# start limit, against a temp dir: a fake /proc (boot_id, uptime), a fake `systemctl` on PATH that
# answers `show` from a file and logs every other call. Checks the rules of docs/updates.md:
#   - the first failure reboots, a second one within the hour starts docketd again instead, and
#     one an hour later (by uptime, or by the record) reboots again;
#   - neither a record from the future nor the wall clock makes it reboot, however often it runs;
#   - a docketd that never gets READY reboots at once three boots in a row (a bad update rolls
#     back), then not; `--confirmed` (docket-mark-good) gives the next run its three again;
#   - it acts on what systemd 252 (Debian 12) really shows at the start limit: failed/failed with
#     the last run's Result (exit-code, ...), not start-limit-hit;
#   - it does nothing when systemd is restarting docketd anyway (systemd >= 254 starts OnFailure=
#     units between automatic restarts), and never reboots when it cannot record the reboot;
#   - a systemctl that cannot be reached or answers nothing is an error (priority 3, exit 1),
#     never a silent "nothing to do".
# Needs only sh and coreutils; run by scripts/check-firmware.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
script=$PWD/firmware/bin/docketd-recover
[[ -f $script ]] || { echo "check-recover: FAIL: no $script" >&2; exit 1; }

t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/bin" "$t/proc/sys/kernel/random"
cat > "$t/bin/systemctl" <<'EOF'
#!/bin/sh
if [ "$1" = show ]; then
    [ -f "$FAKE/show-fails" ] && { echo "Failed to connect to bus: $(cat "$FAKE/show-fails")" >&2; exit 1; }
    cat "$FAKE/show"; exit 0
fi
echo "$*" >> "$FAKE/calls"
EOF
chmod +x "$t/bin/systemctl"
export FAKE=$t PATH="$t/bin:$PATH" DOCKET_RECOVER_PROC=$t/proc DOCKET_RECOVER_BACKOFF=0
export DOCKET_RECOVER_DIR=$t/data/docket-recover
record=$DOCKET_RECOVER_DIR/last-reboot

fail=0
failed() { echo "FAIL: $*"; echo "  output: $out"; fail=1; }

# A boot: its id and its uptime in seconds.
boot() {
    echo "$1" > "$t/proc/sys/kernel/random/boot_id"
    echo "$2.42 17.00" > "$t/proc/uptime"
}
# docketd as systemctl shows it; READY_AT is 0 when it never got READY in this boot.
docketd() { # ACTIVE SUB RESULT READY_AT
    printf 'ActiveState=%s\nSubState=%s\nResult=%s\nActiveEnterTimestampMonotonic=%s\n' \
        "$1" "$2" "$3" "$4" > "$t/show"
}
# The start limit as systemd 252 shows it after automatic restarts: failed/failed, and the Result
# of the last run, not start-limit-hit (seen on the booted test image).
gave_up() { docketd failed failed exit-code "${1:-5000000}"; }
run() {
    : > "$t/calls"
    out=$(sh "$script" "$@" 2>&1) || failed "docketd-recover $* exited non-zero"
}
# A run that must fail loudly: exit status not 0 and a line at journal priority error (<3>).
run_fails() {
    : > "$t/calls"
    if out=$(sh "$script" "$@" 2>&1); then failed "docketd-recover $* exited 0"; fi
    [[ $out == *'<3>docketd-recover: '* ]] || failed "docketd-recover $* logged no error (<3>)"
}
calls() { tr '\n' ';' < "$t/calls"; }
expect_reboot() {
    [[ $(calls) == 'start --no-block --job-mode=replace-irreversibly reboot.target;' ]] \
        || failed "$1: expected a reboot, systemctl got: $(calls)"
}
expect_restart() {
    [[ $(calls) == 'reset-failed docketd.service;start --no-block docketd.service;' ]] \
        || failed "$1: expected reset-failed then start, systemctl got: $(calls)"
}
expect_nothing() { [[ -z $(calls) ]] || failed "$1: expected no systemctl call, got: $(calls)"; }
field() { sed -n "s/^$1=//p" "$record"; }

b1=11111111-1111-1111-1111-111111111111
b2=22222222-2222-2222-2222-222222222222
b3=33333333-3333-3333-3333-333333333333

echo "== docketd-recover: at most one reboot an hour"
boot "$b1" 200; gave_up; run
expect_reboot "first failure"
[[ $(field boot_id) == "$b1" && $(field uptime) == 200 && $(field quick) == 0 ]] \
    || failed "record after the first reboot: $(cat "$record")"
[[ $(stat -c %a "$record") == 600 ]] || failed "the record is not 0600"
boot "$b2" 300; run
expect_restart "second failure, 300 s into the next boot"
[[ $(field boot_id) == "$b1" ]] || failed "a failure without reboot changed the record"
boot "$b2" 3599; run
expect_restart "an hour of uptime but one second"
boot "$b2" 3600; run
expect_reboot "an hour of uptime after the last reboot"
# The same boot (a reboot that did not happen): the record's uptime counts.
boot "$b2" 5000; printf 'boot_id=%s\nuptime=1500\nquick=0\n' "$b2" > "$record"; run
expect_restart "recorded 3500 s ago in this boot"
printf 'boot_id=%s\nuptime=1400\nquick=0\n' "$b2" > "$record"; run
expect_reboot "recorded 3600 s ago in this boot"
echo "ok: first failure reboots, then not within the hour, then again after it"

echo "== docketd-recover: no reboot storm from the clock or a record from the future"
boot "$b2" 600
printf 'boot_id=%s\nuptime=999999\nquick=0\nwall_clock=2099-01-01T00:00:00Z\n' "$b2" > "$record"
for i in 1 2 3 4 5 6 7 8 9 10; do
    run
    expect_restart "record from the future, failure $i"
done
# An earlier boot recorded by a wall clock a year behind: only this boot's uptime counts.
boot "$b3" 900
printf 'boot_id=%s\nuptime=10\nquick=0\nwall_clock=2025-01-01T00:00:00Z\n' "$b2" > "$record"
run
expect_restart "a reboot a year ago by the wall clock, 900 s of uptime"
echo "ok: ten failures with a record from the future, and an old wall clock: no reboot"

echo "== docketd-recover: a docketd that never gets READY (a bad update rolls back)"
printf 'boot_id=%s\nuptime=10\nquick=0\n' "$b1" > "$record"
n=0
for b in "$b2" "$b3" "$b1"; do
    n=$((n + 1))
    boot "$b" 40; gave_up 0; run
    expect_reboot "boot $n without READY"
    [[ $(field quick) == "$n" ]] || failed "boot $n without READY: record $(cat "$record")"
done
boot "$b2" 40; run
expect_restart "a fourth boot in a row without READY"
run --confirmed
[[ $(field quick) == 0 && $(field boot_id) == "$b1" ]] \
    || failed "--confirmed: record $(cat "$record")"
[[ ! -s $t/calls ]] || failed "--confirmed called systemctl"
boot "$b3" 40; run
expect_reboot "without READY, after a confirmed slot"
# READY in this boot: a crash after READY is the hourly rule's, whatever the run.
printf 'boot_id=%s\nuptime=10\nquick=1\n' "$b2" > "$record"
gave_up 7000000; run
expect_restart "READY in this boot, 40 s after a reboot"
echo "ok: three boots without READY reboot at once, a fourth not; --confirmed starts a new run"

echo "== docketd-recover: when not to act"
rm -f "$record"
docketd failed failed-before-auto-restart exit-code 5000000; run
expect_nothing "docketd failed before an automatic restart (systemd >= 254)"
docketd activating auto-restart exit-code 5000000; run
expect_nothing "docketd restarting by itself"
docketd active running success 5000000; run
expect_nothing "docketd running"
[[ ! -e $record ]] || failed "a run with nothing to do wrote a record"
docketd failed failed start-limit-hit 0; run
expect_reboot "failed/failed with Result=start-limit-hit"
rm -f "$record"
gave_up
DOCKET_RECOVER_DIR=/dev/null/docket-recover run
expect_restart "the record cannot be written"
rm -rf "$DOCKET_RECOVER_DIR"; run --confirmed
[[ ! -e $DOCKET_RECOVER_DIR ]] || failed "--confirmed made a record where none was"
mkdir -p "$DOCKET_RECOVER_DIR"; echo 'garbage' > "$record"; boot "$b1" 100; run
expect_reboot "an unreadable record"
echo "ok: nothing while systemd restarts it; no reboot it cannot record"

echo "== docketd-recover: systemctl unreachable or saying nothing is an error, never silence"
rm -f "$record"
echo "Permission denied" > "$t/show-fails"; run_fails
expect_nothing "systemctl show failed"
rm -f "$t/show-fails"
: > "$t/show"; run_fails
expect_nothing "systemctl show answered nothing"
printf 'ActiveState=\nSubState=\nResult=\nActiveEnterTimestampMonotonic=\n' > "$t/show"; run_fails
expect_nothing "systemctl show answered empty values"
[[ ! -e $record ]] || failed "an unreadable state wrote a record"
echo "ok: an unreadable docketd state is logged as an error and exits non-zero"

[[ $fail -eq 0 ]] || { echo "check-recover: FAILED" >&2; exit 1; }
echo "check-recover: all passed"
