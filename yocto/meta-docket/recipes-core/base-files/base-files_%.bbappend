# With the docket distro: the Docket fstab (read-only root, the data partition p4 at /data).
FILESEXTRAPATHS:prepend:docket := "${THISDIR}/files:"
dirs755:append:docket = " /data"
