# With the docket distro, the box's RAUC system.conf and keyring come from firmware/rauc in the
# Docket repository, one directory per compatible (docket-rpi4, docket-rpi5);
# scripts/check-yocto.sh checks their slots against the partition layout.
# The Docket repository holding this layer (four levels up from this file's directory).
DOCKET_REPO_DIR:docket := "${@os.path.normpath(os.path.join(d.getVar('THISDIR'), '..', '..', '..', '..'))}"
DOCKET_RAUC_COMPATIBLE:docket:raspberrypi4-64 = "docket-rpi4"
DOCKET_RAUC_COMPATIBLE:docket:raspberrypi5 = "docket-rpi5"
FILESEXTRAPATHS:prepend:docket := "${DOCKET_REPO_DIR}/firmware/rauc/${DOCKET_RAUC_COMPATIBLE}:${DOCKET_REPO_DIR}/firmware/rauc/dev-keys:"
# The keyring the box verifies bundles against: the DEVELOPMENT CA unless a production build
# overrides it (meta-rauc-raspberrypi's layer.conf would otherwise point at its demo CA).
RAUC_KEYRING_FILE:docket = "ca.cert.pem"
