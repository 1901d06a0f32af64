#!/usr/bin/env bash
# The x86-64 test image of the box: Debian (debootstrap) with docketd, the firmware units, the
# default config and the box's partition layout (firmware/genimage/test-image.cfg: boot, rootfs
# A, rootfs B, data). No loop devices, no mounts: the root file system is made with
# `mke2fs -d`, the disk with genimage. The kernel and initrd are left beside the image for
# QEMU's direct kernel boot (scripts/boot-test.sh).
#
#   scripts/build-test-image.sh            the release docketd (built if missing)
#   scripts/build-test-image.sh --debug    the dev build (CI: one build profile)
#   scripts/build-test-image.sh --docketd PATH --out DIR
#   scripts/build-test-image.sh --release NAME   /etc/docket/release (default: the git commit)
#   scripts/build-test-image.sh --load PATH      also docket-load, for the benchmark inside the
#                                               box (docket-load --scenario connections-vm)
#
# Output (default target/test-image/): docket-test.img, vmlinuz, initrd.img, build.txt.
# The debootstrap root file system is cached (a tarball keyed by suite, mirror and package
# list) in $DOCKET_IMAGE_CACHE (default ~/.cache/docket); a cached build takes seconds.
# Needs root (debootstrap chroots; files in the image must belong to root).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
docketd=""
out=target/test-image
release=""
load=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --debug) profile=debug ;;
        --docketd) docketd=$2; shift ;;
        --out) out=$2; shift ;;
        --release) release=$2; shift ;;
        --load) load=$2; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$(id -u)" -ne 0 ]; then
    echo "build-test-image: needs root (debootstrap, and root-owned files in the image)" >&2
    exit 1
fi

suite=${DOCKET_IMAGE_SUITE:-bookworm}
mirror=${DOCKET_IMAGE_MIRROR:-http://deb.debian.org/debian}
# What the box's root file system holds besides docketd: systemd as init, a small kernel for
# virtual machines, openssl for the first-boot identity, RAUC (and the D-Bus it is a service
# on) for A/B updates.
packages=systemd,systemd-sysv,udev,kmod,linux-image-cloud-amd64,openssl,iproute2,ca-certificates,procps,dbus,rauc,rauc-service
cache=${DOCKET_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/docket}

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v genimage >/dev/null || need+=(genimage)
command -v mcopy >/dev/null || need+=(mtools)
command -v mkdosfs >/dev/null || need+=(dosfstools)
command -v mke2fs >/dev/null || need+=(e2fsprogs)
command -v systemd-sysusers >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ -z "$docketd" ]; then
    if [ "$profile" = release ]; then
        cargo build --release --locked -p docket-appliance --bin docketd
    else
        cargo build --locked -p docket-appliance --bin docketd
    fi
    docketd=target/$profile/docketd
fi
[ -x "$docketd" ] || { echo "no docketd at $docketd" >&2; exit 1; }

# 1. The cached debootstrap root file system.
key=$(printf '%s\n' "$suite" "$mirror" "$packages" | sha256sum | cut -c1-16)
base="$cache/debootstrap-$suite-$key.tar"
if [ ! -f "$base" ]; then
    echo "debootstrap $suite ($packages) into the cache: $base"
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.debootstrap.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    debootstrap --variant=minbase --include="$packages" "$suite" "$tmp/root" "$mirror" \
        > "$tmp/log" 2>&1 || { tail -30 "$tmp/log" >&2; exit 1; }
    rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
    tar -C "$tmp/root" --numeric-owner -cf "$base.part" .
    mv "$base.part" "$base"
    rm -rf "$tmp"
    trap - EXIT
else
    echo "debootstrap root file system from the cache: $base"
fi

# 2. Stage: the base, then the box's files.
mkdir -p "$out"
stage="$out/stage"
rm -rf "$stage" "$out/genimage-tmp" "$out/root-empty"
mkdir -p "$stage/root"
tar -C "$stage/root" --numeric-owner -xf "$base"
r="$stage/root"

install -D -m 0755 "$docketd" "$r/usr/bin/docketd"
install -D -m 0644 firmware/config/docketd.toml "$r/etc/docket/docketd.toml"
install -D -m 0755 firmware/bin/docket-firstboot "$r/usr/libexec/docket/docket-firstboot"
install -D -m 0755 firmware/bin/docketd-recover "$r/usr/libexec/docket/docketd-recover"
[ -n "$release" ] || release="test-image $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "$release" > "$r/etc/docket/release"
units=()
for u in firmware/systemd/*.service firmware/systemd/*.mount tests/image/*.service; do
    install -D -m 0644 "$u" "$r/lib/systemd/system/$(basename "$u")"
    grep -q '^\[Install\]' "$u" && units+=("$(basename "$u")")
done
systemctl --root="$r" enable "${units[@]}" >/dev/null 2>&1
install -D -m 0644 tests/image/docketd.service.d/plain-text.conf \
    "$r/etc/systemd/system/docketd.service.d/plain-text.conf"
# docketd's StateDirectory: the mount point of the data partition's docket/ (var-lib-docket.mount).
mkdir -p "$r/var/lib/docket"
install -D -m 0755 tests/image/docket-test-report "$r/usr/libexec/docket/docket-test-report"
install -D -m 0755 tests/image/docket-test-update "$r/usr/libexec/docket/docket-test-update"
install -D -m 0755 tests/image/docket-test-bench "$r/usr/libexec/docket/docket-test-bench"
if [ -n "$load" ]; then
    install -D -m 0755 "$load" "$r/usr/libexec/docket/docket-load"
fi
# RAUC: the slots, the keyring (DEVELOPMENT CA), and the backend that keeps the boot order on
# the boot partition (/boot/docket-boot.env) for the harness's "bootloader" to read.
install -D -m 0644 firmware/rauc/docket-qemu-x86/system.conf "$r/etc/rauc/system.conf"
install -D -m 0644 firmware/rauc/dev-keys/ca.cert.pem "$r/etc/rauc/ca.cert.pem"
install -D -m 0755 firmware/rauc/docket-qemu-x86/bootloader-backend \
    "$r/usr/libexec/docket/rauc-bootloader-backend"
install -D -m 0644 firmware/sysusers.d/docket.conf "$r/usr/lib/sysusers.d/docket.conf"
install -D -m 0644 firmware/tmpfiles.d/docket.conf "$r/usr/lib/tmpfiles.d/docket.conf"
# The root file system is read-only on the box: users exist before the first boot.
systemd-sysusers --root="$r"
grep -q '^docket:' "$r/etc/passwd" || { echo "the docket user was not created" >&2; exit 1; }

# The root (slot A /dev/vda2 or slot B /dev/vda3, from the kernel command line) stays read-only
# as mounted; writable /data; the boot partition at /boot (RAUC's boot order); /tmp, /var/tmp in
# memory (PrivateTmp needs them writable).
cat > "$r/etc/fstab" <<'EOF'
/dev/vda1  /boot     vfat   noatime,sync,fmask=0133,dmask=0022  0 0
/dev/vda4  /data     ext4   defaults,noatime,commit=5    0 2
tmpfs      /tmp      tmpfs  mode=1777,nosuid,nodev       0 0
tmpfs      /var/tmp  tmpfs  mode=1777,nosuid,nodev       0 0
EOF
mkdir -p "$r/data"
echo docket-test > "$r/etc/hostname"
# Empty: systemd makes a transient one on the read-only root.
: > "$r/etc/machine-id"
# DHCP on the virtual NIC (QEMU's user network), so network-online.target is reached.
mkdir -p "$r/etc/systemd/network" "$r/etc/systemd/system/sockets.target.wants" \
    "$r/etc/systemd/system/network-online.target.wants"
cat > "$r/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF
ln -sf /lib/systemd/system/systemd-networkd.service "$r/etc/systemd/system/multi-user.target.wants/"
ln -sf /lib/systemd/system/systemd-networkd.socket "$r/etc/systemd/system/sockets.target.wants/"
ln -sf /lib/systemd/system/systemd-networkd-wait-online.service \
    "$r/etc/systemd/system/network-online.target.wants/"
# Nothing asks for a password on the console of a test image.
ln -sf /dev/null "$r/etc/systemd/system/serial-getty@ttyS0.service"
ln -sf /dev/null "$r/etc/systemd/system/getty@tty1.service"
# No logins on the box: logind (pulled in by D-Bus, which RAUC needs) would fail on the read-only
# /var/lib (its StateDirectory) and list as a failed unit.
ln -sf /dev/null "$r/etc/systemd/system/systemd-logind.service"

kernel=$(basename "$r"/boot/vmlinuz-*)
cp "$r"/boot/vmlinuz-* "$out/vmlinuz"
cp "$r"/boot/initrd.img-* "$out/initrd.img"

# 3. rootfs.ext4 from the staged tree (sized to it, with room for a bigger docketd).
kib=$(du -sk "$r" | cut -f1)
size_mib=$(( (kib * 13 / 10) / 1024 + 64 ))
rm -f "$stage/rootfs.ext4"
mke2fs -q -t ext4 -L rootfs -d "$r" "$stage/rootfs.ext4" "${size_mib}M"

# 4. The disk: genimage with the box's layout; boot and data start empty (the data partition
# gets its site bundle from `docket image configure`, its identity at first boot).
mkdir -p "$out/root-empty/data"
cp "$out/vmlinuz" "$out/initrd.img" "$stage/"
# RAUC's boot order as U-Boot's boot script starts it: A first, three tries each.
printf 'BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n' > "$stage/docket-boot.env"
genimage --config firmware/genimage/test-image.cfg \
    --rootpath "$out/root-empty" --inputpath "$stage" --outputpath "$out" \
    --tmppath "$out/genimage-tmp" > "$out/genimage.log" 2>&1 \
    || { cat "$out/genimage.log" >&2; exit 1; }
rm -rf "$out/genimage-tmp" "$out/root-empty" "$out/boot.vfat" "$out/data.ext4" "$r" \
    "$stage/vmlinuz" "$stage/initrd.img" "$stage/docket-boot.env"

{
    echo "built:    $(date -u +%FT%TZ)"
    echo "suite:    $suite ($mirror)"
    echo "kernel:   $kernel"
    echo "docketd:  $docketd ($profile) $(sha256sum "$docketd" | cut -c1-16)"
    echo "rootfs:   ${size_mib} MiB ($stage/rootfs.ext4, what an update bundle carries)"
    echo "release:  $release"
    [ -z "$load" ] || echo "load:     $load $(sha256sum "$load" | cut -c1-16)"
} > "$out/build.txt"
cat "$out/build.txt"
ls -lhs "$out/docket-test.img"
