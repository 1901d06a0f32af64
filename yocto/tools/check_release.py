"""Offline check that a release build refuses the DEVELOPMENT RAUC keys (scripts/check-yocto.sh).

A release build is a kas configuration whose local.conf sets DOCKET_RELEASE = "1"
(yocto/kas/docket-release.yml). Without bitbake, this works out the DOCKET_RAUC_KEYRING,
DOCKET_RAUC_KEY and DOCKET_RAUC_CERT the build would get, in bitbake's order: an `=` in the
local.conf kas writes wins over the environment kas passes through (its `env:`), which wins over
a `?=` there and over meta-docket's defaults (the development keys, set by the distro's class
classes-global/docket_rauc_keys.bbclass).
Then it asks the layer's own check, yocto/meta-docket/lib/docket_release.py, the one the docket
distro's docket_rauc_keys class calls with bb.fatal, and checks that the layer still wires it up:
the distro inherits the class, rauc-conf and docket-bundle take their keys from DOCKET_RAUC_*,
and the class's function, run against a stand-in for bitbake's datastore, refuses the
development CA.
Setting RAUC_KEYRING_FILE, RAUC_KEY_FILE or RAUC_CERT_FILE in local.conf is refused: the layer
assigns them itself, so they would have no effect.

Usage: python check_release.py REPO_ROOT KASFILE[:KASFILE...]...   (with the build's environment)
       python check_release.py --self-test REPO_ROOT   (tools/testdata: release-*.yml, site-ca)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kas.context import create_global_context
from kas.includehandler import IncludeHandler
from kas.kasusererror import KasUserError

KEY_VARS = ("DOCKET_RAUC_KEYRING", "DOCKET_RAUC_KEY", "DOCKET_RAUC_CERT")
VARS = ("DOCKET_RELEASE",) + KEY_VARS
# Assigned by meta-docket from the DOCKET_RAUC_* variables: setting them has no effect.
SHADOWED = {"RAUC_KEYRING_FILE": "DOCKET_RAUC_KEYRING", "RAUC_KEY_FILE": "DOCKET_RAUC_KEY",
            "RAUC_CERT_FILE": "DOCKET_RAUC_CERT"}
ASSIGN = re.compile(r'^\s*(?:export\s+)?([A-Za-z0-9_:${}-]+)\s*(\?\?=|\?=|:=|=)\s*"([^"]*)"\s*$')
LAYER = "yocto/meta-docket"
CLASS = f"{LAYER}/classes-global/docket_rauc_keys.bbclass"
DISTRO = f"{LAYER}/conf/distro/docket.conf"
RAUC_CONF = f"{LAYER}/recipes-core/rauc/rauc-conf.bbappend"
BUNDLE = f"{LAYER}/recipes-core/bundles/docket-bundle_0.1.0.bb"


def release_module(root: Path):
    sys.path.insert(0, str(root / LAYER / "lib"))
    import docket_release
    return docket_release


def class_defaults(root: Path) -> dict[str, str]:
    """The DOCKET_* defaults of the docket_rauc_keys class, expanded (DOCKET_REPO_DIR = root)."""
    raw = {"DOCKET_REPO_DIR": str(root), "DOCKET_LAYERDIR": str(root / LAYER)}
    for line in (root / CLASS).read_text().splitlines():
        m = ASSIGN.match(line)
        if m and m.group(1).startswith("DOCKET_") and m.group(1) not in raw:
            raw[m.group(1)] = m.group(3)
    return {var: expand(value, raw) for var, value in raw.items()}


def expand(value: str, known: dict[str, str]) -> str:
    for _ in range(5):
        value = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: known.get(m.group(1), m.group(0)), value)
    return value


def resolve(config: dict, environ: dict, root: Path) -> tuple[dict[str, str], list[str]]:
    """What bitbake would see for VARS, and assignments that would have no effect."""
    values: dict[str, str] = {}
    for var, default in (config.get("env") or {}).items():
        # kas: the environment wins over a default; `null` passes only what the environment has.
        value = environ.get(var, default)
        if var in VARS and value is not None:
            values[var] = value
    weak: dict[str, str] = {}
    errors = []
    for name, text in (config.get("local_conf_header") or {}).items():
        for line in (text or "").splitlines():
            m = ASSIGN.match(line)
            if not m:
                continue
            var, op, value = m.groups()
            base = var.split(":")[0]
            if base in SHADOWED:
                errors.append(f"local_conf_header {name}: {var} has no effect, meta-docket sets it "
                              f"from {SHADOWED[base]}: set that instead")
            if var not in VARS:
                continue
            if op in ("=", ":="):
                values[var] = value
            elif op == "?=":
                values.setdefault(var, value)
            else:
                weak.setdefault(var, value)
    defaults = class_defaults(root)
    known = {"DOCKET_REPO_DIR": str(root)}
    out = {var: expand(values.get(var, weak.get(var, defaults.get(var, ""))), known)
           for var in VARS}
    return out, errors


def load(kasfiles: list[Path]) -> dict:
    config, missing = IncludeHandler([str(f) for f in kasfiles], use_lock=False).get_config()
    if missing:
        raise KasUserError(f"includes from repos not available offline: {missing}")
    return config


def check(root: Path, kasfiles: list[Path], environ: dict) -> list[str]:
    """Everything that would stop (or should stop) this build, for the keys; [] when none."""
    try:
        config = load(kasfiles)
    except KasUserError as e:
        return [f"{':'.join(map(str, kasfiles))}: {e}"]
    values, errors = resolve(config, environ, root)
    files = {var: values[var] for var in KEY_VARS}
    dev = class_defaults(root)["DOCKET_DEV_KEYS"]
    return errors + release_module(root).problems(values["DOCKET_RELEASE"], files, dev)


class FakeData:
    """Just enough of bitbake's datastore for the class's docket_rauc_key_problems(d)."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def getVar(self, name: str):  # noqa: N802 (bitbake's name)
        return self.values.get(name)


def wiring(root: Path) -> list[str]:
    """The distro still inherits the check, and rauc-conf and docket-bundle use what it checks."""
    errors = []
    cls = (root / CLASS).read_text()
    m = re.search(r"^def docket_rauc_key_problems\(d\):\n(?:    .*\n|\n)+", cls, re.M)
    handler = re.search(r'^docket_check_rauc_keys\[eventmask\] = ".*bb\.event\.ConfigParsed',
                        cls, re.M)
    if not m or not handler or "bb.fatal" not in cls:
        return [f"{CLASS}: no docket_rauc_key_problems(d) called from a ConfigParsed handler"]
    scope: dict = {"os": os}  # what bitbake's python functions get without importing it
    release_module(root)
    exec(m.group(0), scope)  # noqa: S102 (our own class file, as bitbake would run it)
    dev = class_defaults(root)
    d = FakeData({"DOCKET_RELEASE": "1", **{v: dev[v] for v in ("DOCKET_LAYERDIR",
                  "DOCKET_DEV_KEYS", "DOCKET_RAUC_KEYRING")}, "DOCKET_RAUC_KEY": "pkcs11:x",
                  "DOCKET_RAUC_CERT": "pkcs11:x"})
    if not scope["docket_rauc_key_problems"](d):
        errors.append(f"{CLASS}: docket_rauc_key_problems accepts the development CA in a release")
    expect = {
        DISTRO: [r'^INHERIT \+= "docket_rauc_keys"'],
        RAUC_CONF: [r"^FILESEXTRAPATHS:prepend:docket := .*DOCKET_RAUC_KEYRING",
                    r"^RAUC_KEYRING_FILE:docket = .*DOCKET_RAUC_KEYRING"],
        BUNDLE: [r'^RAUC_KEY_FILE = "\$\{DOCKET_RAUC_KEY\}"',
                 r'^RAUC_CERT_FILE = "\$\{DOCKET_RAUC_CERT\}"'],
    }
    for path, patterns in expect.items():
        text = (root / path).read_text()
        for p in patterns:
            if not re.search(p, text, re.M):
                errors.append(f"{path}: no line matching {p!r}")
    return errors


def self_test(root: Path) -> int:
    """Both outcomes, from the real kas files and tools/testdata: the checker must tell them."""
    rpi4, release = root / "yocto/kas/docket-rpi4.yml", root / "yocto/kas/docket-release.yml"
    data = root / "yocto/tools/testdata"
    dev = root / "firmware/rauc/dev-keys"
    site = str(data / "site-ca.cert.pem")
    hsm = {"DOCKET_RAUC_KEY": "pkcs11:token=site;object=release-1",
           "DOCKET_RAUC_CERT": "pkcs11:token=site;object=release-1"}
    kas_cases = [
        ("a development build", [rpi4], {}, None),
        ("release, no keys given", [rpi4, release], {}, "DOCKET_RAUC_KEYRING"),
        ("release, site CA and an HSM key from the environment", [rpi4, release],
         {"DOCKET_RAUC_KEYRING": site, **hsm}, None),
        ("release, the development CA from the environment", [rpi4, release],
         {"DOCKET_RAUC_KEYRING": str(dev / "ca.cert.pem"), **hsm}, "DOCKET_RAUC_KEYRING"),
        ("release, site CA but the development signing key", [rpi4, release],
         {"DOCKET_RAUC_KEYRING": site, "DOCKET_RAUC_KEY": str(dev / "development-1.key.pem"),
          "DOCKET_RAUC_CERT": str(dev / "development-1.cert.pem")}, "DOCKET_RAUC_KEY"),
        ("release, the keyring a PKCS#11 URI (the box needs a file)", [rpi4, release],
         {"DOCKET_RAUC_KEYRING": hsm["DOCKET_RAUC_KEY"], **hsm}, "must be a file"),
        ("testdata/release-dev-ca.yml (its local.conf beats the environment)",
         [data / "release-dev-ca.yml"], {"DOCKET_RAUC_KEYRING": site, **hsm}, "DEVELOPMENT"),
        ("testdata/release-site-ca.yml", [data / "release-site-ca.yml"], {}, None),
        ("testdata/release-rauc-vars.yml (RAUC_KEYRING_FILE:docket, no effect)",
         [data / "release-rauc-vars.yml"], {"DOCKET_RAUC_KEYRING": site, **hsm}, "no effect"),
    ]
    failed = 0
    for name, files, env, want in kas_cases:
        errors = check(root, files, env)
        ok = (not errors) if want is None else any(want in e for e in errors)
        failed += not ok
        got = "refused: " + errors[0][:110] if errors else "accepted"
        print(f"release self-test: {name}: {got} ({'as expected' if ok else 'WRONG'})")

    # The comparison itself: formatting, bundles and new certificates for the published CA key.
    problems = release_module(root).problems
    with tempfile.TemporaryDirectory() as tmp:
        ca = (dev / "ca.cert.pem").read_text()
        body = "".join(ca.split("-----")[2].split())
        rewrapped = "-----BEGIN CERTIFICATE-----\r\n" + "\r\n".join(
            body[i:i + 76] for i in range(0, len(body), 76)) + "\r\n-----END CERTIFICATE-----\r\n"
        Path(tmp, "bundle.pem").write_text(Path(site).read_text() + rewrapped)
        files = [
            ("the development CA re-wrapped, after the site CA in one file", "bundle.pem", True),
            ("a file that does not exist", "missing.pem", True),
        ]
        if shutil.which("openssl"):
            # Anyone can make a new CA certificate with the published key: same public key.
            subprocess.run(["openssl", "req", "-x509", "-new", "-key", str(dev / "ca.key.pem"),
                            "-subj", "/CN=Innocent Site CA", "-days", "2", "-out",
                            str(Path(tmp, "reissued.pem"))], check=True, capture_output=True)
            files.append(("a new certificate for the published development CA key",
                          "reissued.pem", True))
        for name, f, want_refused in files:
            refused = bool(problems("1", {"DOCKET_RAUC_KEYRING": str(Path(tmp, f))}, str(dev)))
            failed += refused != want_refused
            verdict = "as expected" if refused == want_refused else "WRONG"
            print(f"release self-test: {name}: {'refused' if refused else 'accepted'} ({verdict})")
    errors = wiring(root)
    for e in errors:
        print(f"release self-test: FAIL: {e}")
    return 1 if failed or errors else 0


def main() -> int:
    os.environ.setdefault("KAS_WORK_DIR", tempfile.mkdtemp(prefix="kas-work-"))
    create_global_context(argparse.Namespace(no_color=True))
    if sys.argv[1:2] == ["--self-test"] and len(sys.argv) == 3:
        return self_test(Path(sys.argv[2]).resolve())
    if len(sys.argv) < 3:
        print(__doc__.split("Usage: ")[1], file=sys.stderr)
        return 2
    root = Path(sys.argv[1]).resolve()
    errors = wiring(root)
    for e in errors:
        print(f"release: FAIL: {e}", file=sys.stderr)
    failed = bool(errors)
    for arg in sys.argv[2:]:
        files = [Path(f).resolve() for f in arg.split(":")]
        errors = check(root, files, dict(os.environ))
        for e in errors:
            print(f"release: FAIL: {arg}: {e}", file=sys.stderr)
        failed |= bool(errors)
        if not errors:
            print(f"release: {arg}: no objection to its RAUC keys")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
