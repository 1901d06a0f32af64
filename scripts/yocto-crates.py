#!/usr/bin/env python3
"""Writes yocto/meta-docket/recipes-docket/docketd/docketd-crates.inc from Cargo.lock.

The output is what oe-core's cargo-update-recipe-crates class writes (`bitbake -c update_crates
docketd`): one `crate://crates.io/NAME/VERSION` SRC_URI entry per crates.io package in
Cargo.lock, and its `SRC_URI[NAME-VERSION.sha256sum]` from the lock's checksum. This script does
the same without a Yocto build tree, so CI can check the committed list.

  scripts/yocto-crates.py           rewrite the .inc
  scripts/yocto-crates.py --check   exit 1 (and show a diff) when the .inc is out of date
"""
import argparse
import difflib
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "Cargo.lock"
INC = ROOT / "yocto/meta-docket/recipes-docket/docketd/docketd-crates.inc"


def render(lock_path: Path) -> str:
    with lock_path.open("rb") as f:
        lock = tomllib.load(f)
    packages = lock.get("package")
    if not packages:
        raise SystemExit(f"{lock_path}: no [[package]] entries")
    crates = [p for p in packages if "crates.io" in p.get("source", "")]
    others = [p for p in packages if "source" in p and "crates.io" not in p["source"]]
    if others:
        # git or other registries would need their own SRC_URI entries (and a SRCREV each).
        names = ", ".join(f"{p['name']} {p['version']} ({p['source']})" for p in others)
        raise SystemExit(f"{lock_path}: non-crates.io sources are not handled: {names}")
    out = [
        "# Generated from Cargo.lock by scripts/yocto-crates.py; do not edit.",
        "# The same entries as `bitbake -c update_crates docketd` (cargo-update-recipe-crates) writes.",
        "# scripts/check-yocto.sh fails when it is out of date with Cargo.lock.",
        "",
        "# from Cargo.lock",
        'SRC_URI += "\\',
    ]
    sums = []
    for c in crates:
        if "checksum" not in c:
            raise SystemExit(f"{lock_path}: {c['name']} {c['version']} has no checksum")
        out.append(f"    crate://crates.io/{c['name']}/{c['version']} \\")
        sums.append(f'SRC_URI[{c["name"]}-{c["version"]}.sha256sum] = "{c["checksum"]}"')
    out.append('"')
    out.extend(sums)
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the .inc is out of date")
    ap.add_argument("--lock", type=Path, default=LOCK, help="Cargo.lock to read")
    ap.add_argument("--inc", type=Path, default=INC, help=".inc file to write or check")
    args = ap.parse_args()
    want = render(args.lock)
    if args.check:
        have = args.inc.read_text() if args.inc.exists() else ""
        if have != want:
            sys.stdout.writelines(
                difflib.unified_diff(
                    have.splitlines(True), want.splitlines(True), str(args.inc), "from Cargo.lock"
                )
            )
            print(
                f"\n{args.inc.relative_to(ROOT) if args.inc.is_relative_to(ROOT) else args.inc} "
                "is out of date with Cargo.lock: run scripts/yocto-crates.py",
                file=sys.stderr,
            )
            return 1
        print(f"crate list in sync with Cargo.lock ({want.count('crate://')} crates)")
        return 0
    args.inc.write_text(want)
    print(f"wrote {args.inc} ({want.count('crate://')} crates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
