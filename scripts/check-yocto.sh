#!/usr/bin/env bash
# Offline gates for the Yocto layer and the RAUC update setup (no network, no bitbake):
#   1. the recipe's crate list (docketd-crates.inc) is in sync with Cargo.lock;
#   2. oelint-adv on every recipe, bbappend and conf file of yocto/meta-docket (only the rule
#      that pings homepages over the network is suppressed), and the license checksum;
#   3. the kas files against kas's own JSON schema, includes resolved, every layer pinned; a
#      release build (yocto/kas/docket-release.yml) refuses the development RAUC keys
#      (yocto/tools/check_release.py, both outcomes from its fixtures);
#   4. RAUC round trip with the development keys: a bundle is signed, verified and extracted
#      intact; a tampered payload, a tampered signature and a bundle signed by another CA are
#      rejected; every system.conf loads in rauc;
#   5. partition layouts (firmware/genimage/*.cfg, the wks) match RAUC's slots in system.conf;
#   6. the units and config the docketd recipe installs exist in firmware/.
# Installs what it needs (Debian: rauc, squashfs-tools, e2fsprogs, openssl, python3-venv; PyPI:
# pinned oelint-adv, kas and jsonschema in target/yocto-tools/venv). Idempotent; quick when
# installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OELINT_VERSION=9.11.2
KAS_VERSION=5.5
JSONSCHEMA_VERSION=4.26.0
VENV="$ROOT/target/yocto-tools/venv"
STAMP="$VENV/.docket-pins"
PINS="oelint-adv==$OELINT_VERSION kas==$KAS_VERSION jsonschema==$JSONSCHEMA_VERSION"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { echo "check-yocto: FAIL: $*" >&2; exit 1; }

step "prerequisites"
missing=()
command -v rauc >/dev/null || missing+=(rauc)
command -v mksquashfs >/dev/null || missing+=(squashfs-tools)
command -v mke2fs >/dev/null || missing+=(e2fsprogs)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive nice -n 19 ionice -c3 apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq --no-install-recommends "${missing[@]}"
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || fail "python3 >= 3.11 is needed (tomllib)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$PINS" ]; then
    rm -rf "$VENV"
    nice -n 19 ionice -c3 python3 -m venv "$VENV"
    # shellcheck disable=SC2086 # PINS is a list of requirement specifiers
    nice -n 19 ionice -c3 "$VENV/bin/pip" install -q --disable-pip-version-check $PINS
    echo "$PINS" >"$STAMP"
fi
echo "$("$VENV/bin/oelint-adv" --version), $("$VENV/bin/kas" --version 2>&1 | head -1), $(rauc --version)"

step "crate list in sync with Cargo.lock"
python3 scripts/yocto-crates.py --check

step "oelint-adv (suppressed: oelint.vars.homepageping, it needs the network)"
mapfile -t recipes < <(find yocto/meta-docket -name '*.bb' -o -name '*.bbappend' -o -name '*.conf' | sort)
"$VENV/bin/oelint-adv" --quiet --relpaths --mode all --release wrynose --extra-layer rauc \
    --constantmods "+yocto/tools/oelint-known-vars.json" \
    --suppress oelint.vars.homepageping \
    "${recipes[@]}" || fail "oelint-adv findings above"
echo "oelint-adv: ${#recipes[@]} files clean"

step "docketd LIC_FILES_CHKSUM matches Cargo.toml"
python3 - <<'EOF'
import hashlib, re, sys
bb = open("yocto/meta-docket/recipes-docket/docketd/docketd_git.bb").read()
m = re.search(r'LIC_FILES_CHKSUM = "file://([^;]+);beginline=(\d+);endline=(\d+);md5=([0-9a-f]{32})"', bb)
if not m:
    sys.exit("docketd_git.bb: no LIC_FILES_CHKSUM with beginline/endline/md5")
path, begin, end, md5 = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
lines = open(path, "rb").read().splitlines(True)[begin - 1:end]
got = hashlib.md5(b"".join(lines)).hexdigest()
if got != md5:
    sys.exit(f"{path} lines {begin}-{end} md5 {got} != {md5} in the recipe: {b''.join(lines)!r}")
if b"license" not in b"".join(lines):
    sys.exit(f"{path} lines {begin}-{end} are not the license line: {b''.join(lines)!r}")
print(f"{path}:{begin}-{end} {b''.join(lines).decode().strip()} md5 ok")
EOF

step "kas files: schema, includes, pinned layers (offline)"
mkdir -p "$tmp/kas"
export KAS_WORK_DIR="$tmp/kas"
"$VENV/bin/python" yocto/tools/check_kas.py --self-test 2>/dev/null
"$VENV/bin/python" yocto/tools/check_kas.py "$ROOT" yocto/kas/docket-rpi*.yml

step "release builds refuse the DEVELOPMENT RAUC keys (offline)"
"$VENV/bin/python" yocto/tools/check_release.py --self-test "$ROOT"

step "RAUC: sign, verify, extract; tampered and foreign bundles rejected"
KEYS=firmware/rauc/dev-keys
# A small ext4 root filesystem as the slot image (random content so squashfs cannot shrink it
# below RAUC's minimum), made without root or loop devices.
mkdir -p "$tmp/content" "$tmp/bundle"
head -c 262144 /dev/urandom >"$tmp/content/payload"
echo "docket check-yocto" >"$tmp/content/hello"
mke2fs -q -t ext4 -d "$tmp/content" "$tmp/bundle/rootfs.ext4" 8M >/dev/null
sed -e 's/@COMPATIBLE@/docket-qemu-x86/' -e 's/@VERSION@/0.0.0-check/' \
    firmware/rauc/manifest.raucm.in >"$tmp/bundle/manifest.raucm"
rauc bundle --cert "$KEYS/development-1.cert.pem" --key "$KEYS/development-1.key.pem" \
    --keyring "$KEYS/ca.cert.pem" "$tmp/bundle" "$tmp/good.raucb" >"$tmp/log" 2>&1 \
    || { cat "$tmp/log"; fail "rauc bundle"; }
# Each system.conf must load in rauc and accept the bundle's signature with its keyring.
for conf in firmware/rauc/docket-*/system.conf; do
    d="$tmp/conf-$(basename "$(dirname "$conf")")"
    mkdir -p "$d"
    cp "$conf" "$KEYS/ca.cert.pem" "$d/"
    rauc --conf="$d/system.conf" info "$tmp/good.raucb" >"$tmp/log" 2>&1 \
        || { cat "$tmp/log"; fail "$conf: rauc info of a good bundle failed"; }
    echo "ok: $conf loads, signed bundle verifies"
done
C="$tmp/conf-docket-qemu-x86/system.conf"
rauc --conf="$C" extract "$tmp/good.raucb" "$tmp/out" >"$tmp/log" 2>&1 \
    || { cat "$tmp/log"; fail "rauc extract of a good bundle"; }
cmp "$tmp/bundle/rootfs.ext4" "$tmp/out/rootfs.ext4" || fail "extracted rootfs differs from the original"
grep -q '^compatible=docket-qemu-x86$' "$tmp/out/manifest.raucm" || fail "extracted manifest lacks the compatible"
echo "ok: extracted payload identical (verity hash tree checked)"

size=$(stat -c %s "$tmp/good.raucb")
expect_rejected() { # NAME COMMAND...
    local name=$1
    shift
    if "$@" >"$tmp/log" 2>&1; then
        cat "$tmp/log"
        fail "$name: rauc accepted it"
    fi
    echo "ok: $name rejected: $(grep -v '^rauc-Message' "$tmp/log" | tail -1)"
}
# One byte of the squashfs payload flipped: the signature still verifies (it covers the manifest
# and the verity root hash), the verity check of the data refuses it.
cp "$tmp/good.raucb" "$tmp/payload.raucb"
printf '\xa5' | dd of="$tmp/payload.raucb" bs=1 seek=$((size / 4)) conv=notrunc status=none
rm -rf "$tmp/out2"
expect_rejected "tampered payload" rauc --conf="$C" extract "$tmp/payload.raucb" "$tmp/out2"
# One byte of the appended CMS signature changed.
cp "$tmp/good.raucb" "$tmp/sig.raucb"
printf '\x00' | dd of="$tmp/sig.raucb" bs=1 seek=$((size - 200)) conv=notrunc status=none
expect_rejected "tampered signature" rauc --conf="$C" info "$tmp/sig.raucb"
# A well-formed bundle signed by a key from another CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=foreign test CA" -keyout "$tmp/foreign.key.pem" -out "$tmp/foreign.cert.pem" 2>/dev/null
rauc bundle --cert "$tmp/foreign.cert.pem" --key "$tmp/foreign.key.pem" \
    "$tmp/bundle" "$tmp/foreign.raucb" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "foreign bundle"; }
expect_rejected "bundle signed by another CA" rauc --conf="$C" info "$tmp/foreign.raucb"

step "partition layouts match RAUC's slots"
python3 yocto/tools/check_layout.py --self-test
python3 yocto/tools/check_layout.py "$ROOT"

step "the files the docketd recipe installs exist in firmware/"
# shellcheck disable=SC2016 # ${PN} is BitBake syntax here, not the shell's
units=$(sed -n 's/^SYSTEMD_SERVICE:${PN} = "\(.*\)"$/\1/p' yocto/meta-docket/recipes-docket/docketd/docketd_git.bb)
[ -n "$units" ] || fail "no SYSTEMD_SERVICE:\${PN} in docketd_git.bb"
for f in $units; do
    [ -f "firmware/systemd/$f" ] || fail "docketd_git.bb installs firmware/systemd/$f, which does not exist"
done
[ -f firmware/config/docketd.toml ] || fail "docketd_git.bb installs firmware/config/docketd.toml, which does not exist"
echo "ok: firmware/systemd/{${units// /,}} and firmware/config/docketd.toml"

printf '\ncheck-yocto: OK\n'
