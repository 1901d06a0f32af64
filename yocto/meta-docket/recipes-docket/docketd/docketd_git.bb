SUMMARY = "docketd: the Docket restaurant order appliance daemon"
DESCRIPTION = "Offline-first order daemon for a restaurant LAN: embedded MQTT broker (rumqttd), \
               SQLite event store, order engine, HTTP pages and health endpoint, uplink to head \
               office. The tablet, kitchen, expo and admin pages are embedded in the binary at \
               build time (appliance/docketd/build.rs reads the committed appliance/web/dist), so \
               there is no separate web-assets package and no Node.js in the build."
# Placeholder (.invalid) until the project has a public home.
HOMEPAGE = "https://docket.invalid/"
BUGTRACKER = "https://docket.invalid/issues"
SECTION = "net"
# The workspace's `license = "Apache-2.0"` line in Cargo.toml (scripts/check-yocto.sh checks the md5).
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://Cargo.toml;beginline=8;endline=8;md5=2507bd5f0713f05419cd2f22fa06fe62"
CVE_PRODUCT = "docketd"

# rusqlite's bundled SQLite and ring are compiled for the target by the cc crate (the cargo
# class sets the cross compiler); nothing else is needed at build time.
PV = "0.1.0+git"

# The Docket repository holding this layer (four levels up from this file's directory).
DOCKET_REPO_DIR := "${@os.path.normpath(os.path.join(d.getVar('THISDIR'), '..', '..', '..', '..'))}"
# docketd builds from the commit the kas files pass in DOCKET_SRCREV (the checkout's
# `git rev-parse HEAD`, see yocto/README.md): exactly the commit the layer itself comes from, on
# any branch. Unset, the fetcher stops with "Please set a valid SRCREV".
SRC_URI = "git://${DOCKET_REPO_DIR};protocol=file;nobranch=1"
SRCREV = "${DOCKET_SRCREV}"

# The crate list, generated from Cargo.lock by scripts/yocto-crates.py (scripts/check-yocto.sh
# fails when it is stale). `bitbake -c update_crates docketd` writes the same entries.
require ${BPN}-crates.inc

inherit cargo cargo-update-recipe-crates systemd useradd

# The workspace root holds Cargo.lock; build only the daemon's package and binary.
# --ignore-rust-version: the workspace declares rust-version 1.95 (the toolchain CI pins) and
# wrynose ships Rust 1.94.1, with which docketd was checked to compile (`cargo +1.94.1 check`).
CARGO_BUILD_FLAGS:append = " -p docket-appliance --bin docketd --ignore-rust-version"

# The units and the default config come from the same commit as the binary (firmware/, shared
# with the x86 test image that scripts/boot-test.sh boots under QEMU).
do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    for unit in ${SYSTEMD_SERVICE:${PN}}; do
        install -m 0644 ${S}/firmware/systemd/$unit ${D}${systemd_system_unitdir}/$unit
    done
    install -d ${D}${sysconfdir}/docket
    install -m 0644 ${S}/firmware/config/docketd.toml ${D}${sysconfdir}/docket/docketd.toml
    # /data/docket (owned by docket) and /data/rauc, made at boot on the data partition;
    # /data/docket is bind-mounted at /var/lib/docket (var-lib-docket.mount), docketd's
    # StateDirectory, whose mount point the read-only root file system must hold.
    install -d ${D}${localstatedir}/lib/docket
    install -d ${D}${nonarch_libdir}/tmpfiles.d
    install -m 0644 ${S}/firmware/tmpfiles.d/docket.conf ${D}${nonarch_libdir}/tmpfiles.d/docket.conf
    if [ -d ${S}/firmware/bin ]; then
        install -d ${D}${libexecdir}/docket
        for tool in ${S}/firmware/bin/*; do
            install -m 0755 $tool ${D}${libexecdir}/docket/
        done
    fi
}

FILES:${PN} += "${systemd_system_unitdir} ${libexecdir}/docket ${nonarch_libdir}/tmpfiles.d \
                ${localstatedir}/lib/docket"
CONFFILES:${PN} = "${sysconfdir}/docket/docketd.toml"
# The first-boot unit makes the box identity with openssl; the mark-good unit calls rauc.
# docketd-recover.service (docketd.service's OnFailure=, no [Install]) runs the shell script
# firmware/bin/docketd-recover, installed to ${libexecdir}/docket with the other helpers.
RDEPENDS:${PN} += "openssl-bin rauc"

USERADD_PACKAGES = "${PN}"
# A fixed system user owns /var/lib/docket, docketd.service's StateDirectory on the data partition.
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/docket --no-create-home --shell /sbin/nologin docket"

SYSTEMD_PACKAGES = "${PN}"
SYSTEMD_SERVICE:${PN} = "docketd.service docketd-recover.service docket-firstboot.service docket-mark-good.service docket-data.service var-lib-docket.mount"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

# A daemon for the box only: no native or SDK variant.
BBCLASSEXTEND = ""
