# With the docket distro, the box's RAUC system.conf and keyring come from firmware/rauc in the
# Docket repository, one directory per compatible (docket-rpi4, docket-rpi5);
# scripts/check-yocto.sh checks their slots against the partition layout.
# The Docket repository holding this layer (four levels up from this file's directory).
DOCKET_REPO_DIR:docket := "${@os.path.normpath(os.path.join(d.getVar('THISDIR'), '..', '..', '..', '..'))}"
DOCKET_RAUC_COMPATIBLE:docket:raspberrypi4-64 = "docket-rpi4"
DOCKET_RAUC_COMPATIBLE:docket:raspberrypi5 = "docket-rpi5"
# The keyring the box verifies bundles against is the file DOCKET_RAUC_KEYRING: the DEVELOPMENT CA
# unless the build sets it, which a release build must (classes-global/docket_rauc_keys.bbclass).
# Its directory goes first in FILESPATH and its name into RAUC_KEYRING_FILE (meta-rauc-raspberrypi's
# layer.conf would otherwise point at its demo CA); installed as ca.cert.pem, the name every
# system.conf gives.
FILESEXTRAPATHS:prepend:docket := "${DOCKET_REPO_DIR}/firmware/rauc/${DOCKET_RAUC_COMPATIBLE}:${@os.path.dirname(d.getVar('DOCKET_RAUC_KEYRING') or '')}:"
RAUC_KEYRING_FILE:docket = "${@os.path.basename(d.getVar('DOCKET_RAUC_KEYRING') or '')}"

do_install:append:docket() {
    if [ "${RAUC_KEYRING_FILE}" != ca.cert.pem ]; then
        mv ${D}${nonarch_libdir}/rauc/${RAUC_KEYRING_FILE} ${D}${nonarch_libdir}/rauc/ca.cert.pem
    fi
}
