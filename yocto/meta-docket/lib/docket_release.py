"""A release build must not trust or sign with the DEVELOPMENT RAUC keys.

firmware/rauc/dev-keys holds a CA and a signing key whose private keys are committed, so public:
a box that trusts that CA installs a bundle anyone can sign. A release build (DOCKET_RELEASE =
"1", yocto/kas/docket-release.yml) names its own files in DOCKET_RAUC_KEYRING (the CA the boxes
trust), DOCKET_RAUC_KEY and DOCKET_RAUC_CERT (what signs the bundles); `problems` says what is
wrong with them.

One implementation for two callers: meta-docket's docket-rauc-keys class (bitbake imports it
from this layer's lib/ and stops the build with bb.fatal) and yocto/tools/check_release.py (the
offline check in CI). Plain Python, no bitbake and no openssl: it compares the DER of every PEM
block, and the public key of every certificate, with those of the files in dev-keys, so neither
re-wrapped PEM, nor the CA inside a bundle of certificates, nor a new certificate made with the
published CA key gets through.
"""
from __future__ import annotations

import base64
import binascii
import os
import re

PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
# DOCKET_RAUC_KEY and DOCKET_RAUC_CERT may name a key in an HSM (RAUC takes PKCS#11 URIs there);
# the keyring is installed on the box, so it is a file.
URI_OK = ("DOCKET_RAUC_KEY", "DOCKET_RAUC_CERT")
DOCS = "docs/updates.md, Keys"


def der_blobs(data: bytes) -> set[bytes]:
    """The DER of every PEM block in `data` (certificates and keys), or `data` if it has none."""
    blobs = set()
    for m in PEM.finditer(data):
        # Skip RFC 1421 headers (Proc-Type: ..., DEK-Info: ...) of encrypted keys.
        lines = [line.strip() for line in m.group(2).splitlines() if b":" not in line]
        try:
            blobs.add(base64.b64decode(b"".join(lines), validate=True))
        except (binascii.Error, ValueError):
            continue
    if not blobs and data.strip():
        blobs.add(data)
    return blobs


def _tlv(der: bytes, i: int) -> tuple[int, int, int]:
    """One DER element at `i`: its tag, where its content starts and where it ends."""
    tag, n = der[i], der[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(der[i:i + k], "big")
        i += k
    if i + n > len(der):
        raise ValueError("truncated DER")
    return tag, i, i + n


def public_key(der: bytes) -> bytes | None:
    """The subjectPublicKeyInfo of an X.509 certificate, None if `der` is not one."""
    try:
        tag, start, _ = _tlv(der, 0)  # Certificate
        if tag != 0x30:
            return None
        tag, i, end = _tlv(der, start)  # tbsCertificate
        fields = []
        while i < end:
            t, _, e = _tlv(der, i)
            fields.append((t, i, e))
            i = e
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
        t, s, e = fields[5]
        return der[s:e] if t == 0x30 else None
    except (IndexError, ValueError):
        return None


def development_material(dev_dir: str) -> tuple[set[bytes], set[bytes]]:
    """The DER blobs and certificate public keys of every *.pem in `dev_dir`."""
    blobs = set()
    for name in sorted(os.listdir(dev_dir)) if os.path.isdir(dev_dir) else []:
        if name.endswith(".pem"):
            with open(os.path.join(dev_dir, name), "rb") as f:
                blobs |= der_blobs(f.read())
    keys = {k for k in map(public_key, blobs) if k}
    return blobs, keys


def problems(release: str | None, files: dict[str, str | None], dev_dir: str) -> list[str]:
    """What stops a release build, one sentence each; [] when it may go on.

    `release` is DOCKET_RELEASE, `files` maps DOCKET_RAUC_KEYRING, DOCKET_RAUC_KEY and
    DOCKET_RAUC_CERT (those the caller uses) to their values, `dev_dir` is firmware/rauc/dev-keys.
    """
    if (release or "").strip() != "1":
        return []
    blobs, keys = development_material(dev_dir)
    if not blobs:
        # Fail closed: with nothing to compare against, the check would pass anything.
        return [f'DOCKET_RELEASE = "1" but {dev_dir} holds no development keys to compare '
                f"the release keys with (is DOCKET_REPO_DIR right?)"]
    out = []
    for var, value in files.items():
        value = (value or "").strip()
        need = (f'A release build (DOCKET_RELEASE = "1") needs {var} set to the site or '
                f"production one ({DOCS}).")
        if not value:
            out.append(f"{var} is empty. {need}")
            continue
        if value.startswith("pkcs11:"):
            if var not in URI_OK:
                out.append(f'{var} = "{value}": must be a file, the box installs it. {need}')
            continue
        if "${" in value:
            out.append(f'{var} = "{value}" refers to a variable that is not set. {need}')
            continue
        if not os.path.isfile(value):
            out.append(f'{var} = "{value}": no such file. {need}')
            continue
        with open(value, "rb") as f:
            mine = der_blobs(f.read())
        if mine & blobs or {k for k in map(public_key, mine) if k} & keys:
            out.append(
                f'{var} = "{value}" holds a DEVELOPMENT key or certificate from '
                f"firmware/rauc/dev-keys, whose private keys are committed and public: a box "
                f"that trusts it installs a bundle anyone can sign. {need}"
            )
    return out
