#!/usr/bin/env bash
# Offline gates for firmware/ (what goes on the box), run by scripts/test.sh:
#   - `systemd-analyze verify` of every unit against a staged root holding the files the units
#     name (the release or dev docketd, the first-boot script, a rauc stand-in), with any warning
#     treated as a failure (verify exits 0 on parse warnings);
#   - `systemd-analyze security --offline=true --threshold=…` of every unit: docketd.service must
#     stay at or below exposure 2.0 (it scores 1.6), the others at or below 2.0 too;
#   - the first-boot script makes an identity once and leaves an existing one alone;
#   - docketd-recover, run when docketd hits its start limit, reboots at most once an hour (and
#     at once only for the boots of a slot where docketd never gets READY): scripts/check-recover.sh;
#   - the box's config validates with this docketd (`docketd run` refuses a bad one at start).
# Needs systemd-analyze (Debian's systemd) and openssl; installs them when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

docketd=${DOCKETD_BIN:-target/debug/docketd}
[[ -x $docketd ]] || { echo "check-firmware: no docketd at $docketd (build first or set DOCKETD_BIN)" >&2; exit 1; }
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v openssl >/dev/null || missing+=(openssl)
if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
units=(docketd.service docketd-recover.service docket-firstboot.service docket-mark-good.service
    docket-data.service var-lib-docket.mount)
# The staged box: systemd's own units (for the targets the ours reference) and ours.
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/usr/bin" \
    "$root/usr/libexec/docket" "$root/etc/docket" "$root/etc/rauc" "$root/data/docket" \
    "$root/var/lib/docket"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
for u in "${units[@]}"; do cp "firmware/systemd/$u" "$root/etc/systemd/system/"; done
cp "$docketd" "$root/usr/bin/docketd"
cp firmware/bin/docket-firstboot firmware/bin/docketd-recover "$root/usr/libexec/docket/"
printf '#!/bin/sh\nexit 0\n' > "$root/usr/bin/rauc"
cp "$(command -v systemd-tmpfiles)" "$root/usr/bin/systemd-tmpfiles"
chmod +x "$root/usr/bin/rauc"
cp firmware/config/docketd.toml "$root/etc/docket/"
cp firmware/rauc/docket-qemu-x86/system.conf "$root/etc/rauc/"
cp firmware/rauc/docket-qemu-x86/bootloader-backend "$root/usr/libexec/docket/rauc-bootloader-backend"

fail=0
echo "== systemd-analyze verify"
out=$(systemd-analyze verify --root="$root" "${units[@]}" 2>&1) || fail=1
if [[ -n $out ]]; then echo "$out"; fail=1; fi
[[ $fail -eq 0 ]] && echo "ok: ${units[*]}"

echo "== systemd-analyze security --offline=true"
for u in "${units[@]}"; do
    [[ $u == *.service ]] || continue
    # The overall exposure level, 0.0–10.0; --threshold takes it times ten.
    if line=$(systemd-analyze security --offline=true --root="$root" --threshold=20 "$u" 2>&1 | tail -1); then
        echo "ok: $line"
    else
        echo "FAIL (threshold 2.0): $line"
        fail=1
    fi
done

echo "== first boot makes the identity once"
data=$(mktemp -d)
sh firmware/bin/docket-firstboot "$data" >/dev/null
for f in box-id box.key box.pub; do [[ -s $data/identity/$f ]] || { echo "FAIL: no $f"; fail=1; }; done
[[ $(stat -c %a "$data/identity/box.key") == 600 ]] || { echo "FAIL: box.key is not 0600"; fail=1; }
openssl pkey -in "$data/identity/box.key" -pubout | cmp -s - "$data/identity/box.pub" \
    || { echo "FAIL: box.pub is not box.key's public key"; fail=1; }
before=$(sha256sum "$data/identity/box.key")
sh firmware/bin/docket-firstboot "$data" >/dev/null
[[ $(sha256sum "$data/identity/box.key") == "$before" ]] || { echo "FAIL: a second boot replaced the identity"; fail=1; }
rm -rf "$data"
[[ $fail -eq 0 ]] && echo "ok: identity made once, kept after"

bash scripts/check-recover.sh || fail=1

echo "== the box's config validates"
cfg_dir=$(mktemp -d)
# The box's config with a writable data dir and free ports: `docketd run` validates it at start.
sed -e "s#/var/lib/docket#$cfg_dir/data#" -e 's#0.0.0.0:80"#127.0.0.1:0"#' \
    -e 's#0.0.0.0:1884#127.0.0.1:0#' -e 's#0.0.0.0:1885#127.0.0.1:0#' \
    -e 's#0.0.0.0:443"#127.0.0.1:0"#' -e 's#0.0.0.0:8883#127.0.0.1:0#' -e 's#0.0.0.0:8884#127.0.0.1:0#' \
    firmware/config/docketd.toml > "$cfg_dir/docketd.toml"
if "$docketd" run --config "$cfg_dir/docketd.toml" > "$cfg_dir/log" 2>&1 & pid=$!; then
    ok=0
    for _ in $(seq 1 100); do
        grep -q "docketd ready" "$cfg_dir/log" && { ok=1; break; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [[ $ok -eq 1 ]]; then echo "ok: firmware/config/docketd.toml"; else
        echo "FAIL: docketd did not start with firmware/config/docketd.toml:"; cat "$cfg_dir/log"; fail=1; fi
fi
rm -rf "$cfg_dir"

[[ $fail -eq 0 ]] || { echo "check-firmware: FAILED" >&2; exit 1; }
echo "check-firmware: all gates passed"
