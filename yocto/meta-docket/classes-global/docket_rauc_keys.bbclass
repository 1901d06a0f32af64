# docket_rauc_keys: the RAUC keys of a Docket build, and a release build's refusal of the
# DEVELOPMENT ones. A global class: the docket distro INHERITs it (conf/distro/docket.conf).
#
#   DOCKET_RAUC_KEYRING  the CA certificate(s) boxes trust: rauc-conf installs it as
#                        /usr/lib/rauc/ca.cert.pem (system.conf: [keyring] path=ca.cert.pem)
#   DOCKET_RAUC_KEY      the key docket-bundle signs with: a file, or a pkcs11: URI (an HSM)
#   DOCKET_RAUC_CERT     its certificate: a file, or a pkcs11: URI
#
# Unset, they are the DEVELOPMENT keys committed in firmware/rauc/dev-keys, whose private keys
# are public: a box trusting that CA installs a bundle anyone can sign. A release build sets
# DOCKET_RELEASE = "1" (yocto/kas/docket-release.yml does) and then stops, once the configuration
# is parsed and again as each build starts, while any of them holds a key or certificate from
# dev-keys (lib/docket_release.py; yocto/tools/check_release.py tests it offline). Set them in
# local.conf or pass them through the environment (kas env:); RAUC_KEYRING_FILE, RAUC_KEY_FILE
# and RAUC_CERT_FILE are assigned from them by meta-docket, so setting those has no effect.

DOCKET_RELEASE ??= "0"
DOCKET_RELEASE[doc] = "1 for a release build: the build refuses the DEVELOPMENT RAUC keys."
# meta-docket: the BBPATH entry holding lib/docket_release.py; the repository is around it.
DOCKET_LAYERDIR ??= "${@os.path.dirname(os.path.dirname(bb.utils.which(d.getVar('BBPATH'), 'lib/docket_release.py')))}"
DOCKET_REPO_DIR ??= "${@os.path.normpath(os.path.join(d.getVar('DOCKET_LAYERDIR'), '..', '..'))}"
DOCKET_DEV_KEYS = "${DOCKET_REPO_DIR}/firmware/rauc/dev-keys"
DOCKET_RAUC_KEYRING ?= "${DOCKET_DEV_KEYS}/ca.cert.pem"
DOCKET_RAUC_KEY ?= "${DOCKET_DEV_KEYS}/development-1.key.pem"
DOCKET_RAUC_CERT ?= "${DOCKET_DEV_KEYS}/development-1.cert.pem"

def docket_rauc_key_problems(d):
    import sys
    lib = os.path.join(d.getVar("DOCKET_LAYERDIR"), "lib")
    if lib not in sys.path:
        sys.path.insert(0, lib)
    import docket_release
    files = {v: d.getVar(v) for v in ("DOCKET_RAUC_KEYRING", "DOCKET_RAUC_KEY", "DOCKET_RAUC_CERT")}
    return docket_release.problems(d.getVar("DOCKET_RELEASE"), files, d.getVar("DOCKET_DEV_KEYS"))

# When the configuration is parsed, and again as each build starts (a key file replaced since).
addhandler docket_check_rauc_keys
docket_check_rauc_keys[eventmask] = "bb.event.ConfigParsed bb.event.BuildStarted"
docket_check_rauc_keys[doc] = "Stops a release build (DOCKET_RELEASE = 1) that has the development RAUC keys"
python docket_check_rauc_keys() {
    problems = docket_rauc_key_problems(e.data)
    if problems:
        bb.fatal("\n".join(problems))
}
