#!/usr/bin/env bash
# Cross-builds docketd for the Raspberry Pi's CPU (aarch64-unknown-linux-gnu, debug profile) with
# Debian's gcc-aarch64-linux-gnu, then smoke-tests the aarch64 binary under qemu-aarch64-static:
# `--version` prints, `docketd run` with a temp data dir on free loopback ports answers
# `/healthz` 200 within a deadline, and SIGTERM stops it with exit status 0.
#
# Installs what it needs (Debian packages, the rustup target); idempotent. Heavy steps run under
# `nice -n 19 ionice -c3`. Its own target dir (target/aarch64) keeps it apart from other builds;
# the linker is set here through the environment, never by a committed .cargo/config.
#
#   scripts/cross-smoke.sh            build + smoke test
#   DOCKET_CROSS_DEADLINE=180 ...     seconds to wait for /healthz (default 120: qemu-user is slow)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

TARGET=aarch64-unknown-linux-gnu
TARGET_DIR="$PWD/target/aarch64"
DEADLINE="${DOCKET_CROSS_DEADLINE:-120}"
SYSROOT=/usr/aarch64-linux-gnu
heavy() { nice -n 19 ionice -c3 "$@"; }
step() { printf '\n== %s\n' "$*"; }
die() { echo "cross-smoke: FAIL: $*" >&2; exit 1; }

step "prerequisites"
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || missing+=(libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
command -v curl >/dev/null || missing+=(curl ca-certificates)
command -v python3 >/dev/null || missing+=(python3)
command -v file >/dev/null || missing+=(file)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive heavy apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}"
fi
command -v rustup >/dev/null || die "rustup is needed to add the $TARGET target"
# rust-toolchain.toml picks the toolchain; add the target to that one.
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

step "cross build: docketd for $TARGET (debug) into $TARGET_DIR"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# The C parts (SQLite bundled by rusqlite, ring's assembly) go through the cc crate.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
build_start=$(date +%s)
# No debug info: the smoke runs the binary, nobody steps through it, and writing and linking
# the DWARF of every crate is a good part of this build's minutes in CI. Dependencies
# unoptimised too (the workspace's dev profile builds them at opt-level 1): measured on 2 cores,
# the build takes 123 s instead of 271 s, and the smoke's docketd is still ready in seconds
# under qemu-user. The box itself runs the release build (the Yocto recipe).
CARGO_PROFILE_DEV_DEBUG=0 heavy cargo build --locked -p docket-appliance --bin docketd \
    --target "$TARGET" --target-dir "$TARGET_DIR" --config 'profile.dev.package."*".opt-level=0'
build_secs=$(( $(date +%s) - build_start ))
BIN="$TARGET_DIR/$TARGET/debug/docketd"
file -L "$BIN" | grep -q 'ARM aarch64' || die "$BIN is not an aarch64 ELF: $(file -L "$BIN")"
echo "built $BIN in ${build_secs}s"

QEMU=(qemu-aarch64-static -L "$SYSROOT")

step "smoke: --version under qemu-aarch64-static"
version=$("${QEMU[@]}" "$BIN" --version) || die "--version failed"
expected="docketd $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
[ "$version" = "$expected" ] || die "--version printed '$version', expected '$expected'"
echo "$version"

step "smoke: docketd run under qemu-aarch64-static, /healthz, SIGTERM"
tmp=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
# Three distinct free loopback ports (the kernel can hand out the same one twice in a row).
read -r p_mqtt p_mqtt5 p_http < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)
cat >"$tmp/docketd.toml" <<EOF
data_dir = "$tmp/data"
site_id = "cross-smoke"
[mqtt]
listen = "127.0.0.1:$p_mqtt"
listen_v5 = "127.0.0.1:$p_mqtt5"
[http]
listen = "127.0.0.1:$p_http"
[tls]
https_listen = "127.0.0.1:0"
mqtt_listen = "127.0.0.1:0"
mqtt_listen_v5 = "127.0.0.1:0"
EOF
env -u NOTIFY_SOCKET RUST_LOG=info,rumqttd=warn "${QEMU[@]}" "$BIN" run --config "$tmp/docketd.toml" \
    >"$tmp/docketd.log" 2>&1 &
pid=$!
start=$(date +%s.%N)
code=000
while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" && rc=0 || rc=$?
        pid=""
        cat "$tmp/docketd.log" >&2
        die "docketd exited early (status $rc) before /healthz answered"
    fi
    code=$(curl -s -o "$tmp/healthz.json" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$p_http/healthz" || true)
    [ "$code" = 200 ] && break
    if [ "$(date +%s)" -ge "$(( ${start%.*} + DEADLINE ))" ]; then
        cat "$tmp/docketd.log" >&2
        die "/healthz did not answer 200 within ${DEADLINE}s (last status $code)"
    fi
    sleep 0.2
done
ready=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
grep -q '"status":"ok"' "$tmp/healthz.json" || die "/healthz body: $(cat "$tmp/healthz.json")"
echo "/healthz 200 after ${ready}s: $(head -c 200 "$tmp/healthz.json")"

kill -TERM "$pid"
stop_deadline=$(( $(date +%s) + 30 ))
while kill -0 "$pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$stop_deadline" ] || { cat "$tmp/docketd.log" >&2; die "docketd still running 30s after SIGTERM"; }
    sleep 0.1
done
wait "$pid" && rc=0 || rc=$?
pid=""
[ "$rc" -eq 0 ] || { cat "$tmp/docketd.log" >&2; die "docketd exited with status $rc after SIGTERM, expected 0"; }
echo "SIGTERM: exit status 0"
printf '\ncross-smoke: OK (build %ss, ready %ss)\n' "$build_secs" "$ready"
