SUMMARY = "RAUC update bundle for the Docket appliance"
DESCRIPTION = "Signed RAUC bundle (verity format) carrying docket-image's ext4 root filesystem \
               for the inactive slot (rootfs.0 or rootfs.1). Same approach as \
               meta-rauc-raspberrypi's update-bundle: the kernel is inside the rootfs slot and \
               U-Boot's boot script picks the slot."
# Placeholder (.invalid) until the project has a public home.
HOMEPAGE = "https://docket.invalid/"
BUGTRACKER = "https://docket.invalid/issues"
SECTION = "base"
LICENSE = "MIT"
CVE_PRODUCT = ""

# The bundle is made from docket-image's deploy output; it fetches nothing itself.
SRC_URI = ""

COMPATIBLE_MACHINE = "^(raspberrypi4-64|raspberrypi5)$"

inherit bundle

# Must equal [system] compatible= in the box's system.conf (firmware/rauc/<compatible>/).
RAUC_BUNDLE_COMPATIBLE:raspberrypi4-64 = "docket-rpi4"
RAUC_BUNDLE_COMPATIBLE:raspberrypi5 = "docket-rpi5"
RAUC_BUNDLE_VERSION = "${PV}"
RAUC_BUNDLE_DESCRIPTION = "Docket appliance ${PV}"
RAUC_BUNDLE_FORMAT = "verity"

RAUC_BUNDLE_SLOTS = "rootfs"
RAUC_SLOT_rootfs = "docket-image"
RAUC_SLOT_rootfs[fstype] = "ext4"

# The Docket repository holding this layer (four levels up from this file's directory).
DOCKET_REPO_DIR := "${@os.path.normpath(os.path.join(d.getVar('THISDIR'), '..', '..', '..', '..'))}"
# Signed with DOCKET_RAUC_KEY and DOCKET_RAUC_CERT: the DEVELOPMENT keys from
# firmware/rauc/dev-keys unless the build sets them, which a release build (DOCKET_RELEASE = "1",
# yocto/kas/docket-release.yml) must: the distro's docket_rauc_keys class refuses the development
# ones. Assigned, not ?=: meta-rauc-raspberrypi's layer.conf sets RAUC_KEY_FILE, RAUC_CERT_FILE
# and RAUC_KEYRING_FILE to its demo keys first.
RAUC_KEY_FILE = "${DOCKET_RAUC_KEY}"
RAUC_CERT_FILE = "${DOCKET_RAUC_CERT}"
RAUC_KEYRING_FILE = "${DOCKET_RAUC_KEYRING}"

# A bundle is built for one machine and never for the host.
BBCLASSEXTEND = ""
