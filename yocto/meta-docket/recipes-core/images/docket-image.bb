SUMMARY = "Docket appliance image for the Raspberry Pi 4 and 5"
DESCRIPTION = "Read-only root filesystem with docketd, RAUC and its A/B slots, and a writable \
               /data partition. SD card layout: wic/docket-rpi.wks.in (boot, rootfs-a, \
               rootfs-b, data)."
# Placeholder (.invalid) until the project has a public home.
HOMEPAGE = "https://docket.invalid/"
BUGTRACKER = "https://docket.invalid/issues"
SECTION = "base"
LICENSE = "MIT"
CVE_PRODUCT = ""

COMPATIBLE_MACHINE = "^(raspberrypi4-64|raspberrypi5)$"

inherit core-image

IMAGE_FEATURES += "read-only-rootfs"
IMAGE_INSTALL = "\
    packagegroup-core-boot \
    docketd \
    rauc \
    kernel-image \
    kernel-modules \
    u-boot-fw-utils \
    ${CORE_IMAGE_EXTRA_INSTALL} \
"
IMAGE_LINGUAS = ""

# The rootfs slots hold the kernel (/boot/Image in the slot U-Boot picks), so an update replaces
# kernel and userland together; the boot partition keeps only firmware, U-Boot and boot.scr.
RPI_EXTRA_IMAGE_BOOT_FILES:remove = "${KERNEL_IMAGETYPE}"

# ext4 for the RAUC bundle's rootfs slot image, wic for the SD card.
IMAGE_FSTYPES = "ext4 wic.bz2 wic.bmap"
WKS_FILE = "docket-rpi.wks.in"
# The fstab comes from base-files (recipes-core/base-files), not from wic.
WIC_CREATE_EXTRA_ARGS = "--no-fstab-update"
# Partition sizes: each rootfs slot (A and B the same) and /data.
DOCKET_ROOTFS_SIZE ?= "1024M"
DOCKET_DATA_SIZE ?= "1024M"
# An update must fit its slot: fail the build when the rootfs outgrows it (KiB).
IMAGE_ROOTFS_MAXSIZE = "1048576"
