"""Checks that the partition layouts match RAUC's slots (run by scripts/check-yocto.sh).

The contract (docs/updates.md): MBR, four primary partitions, in order
  1 boot (vfat, 64 MiB)  2 rootfs-a (ext4)  3 rootfs-b (ext4, same size as A)  4 data (ext4)
and RAUC's rootfs.0 = partition 2 (bootname A), rootfs.1 = partition 3 (bootname B).

Checked here:
  - firmware/genimage/*.cfg (x86 test image, genimage's libconfuse syntax) against
    firmware/rauc/docket-qemu-x86/system.conf (/dev/vdaN);
  - yocto/meta-docket/wic/docket-rpi.wks.in (wic kickstart) and its fstab against
    firmware/rauc/docket-rpi4/ and docket-rpi5/system.conf (/dev/mmcblk0pN).
Usage: python3 check_layout.py REPO_ROOT
       python3 check_layout.py --self-test   (fixtures: the checker catches broken layouts)
"""
import configparser
import re
import sys
from pathlib import Path

NAMES = ["boot", "rootfs-a", "rootfs-b", "data"]
FSTYPES = ["vfat", "ext4", "ext4", "ext4"]
SLOTS = {"rootfs.0": (2, "A"), "rootfs.1": (3, "B")}


class LayoutError(Exception):
    pass


# ---- genimage (libconfuse) ------------------------------------------------------------------

TOKEN = re.compile(
    r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/|"(?:[^"\\]|\\.)*"|[{}=;,()]|[^\s{}=;,()"#]+', re.S
)


def tokenize(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise LayoutError(f"cannot tokenize genimage config near: {text[pos:pos + 30]!r}")
        tok = m.group(0)
        pos = m.end()
        if tok.isspace() or tok.startswith(("#", "//", "/*")):
            continue
        out.append(tok)
    return out


def parse_block(toks: list[str], i: int) -> tuple[dict, int]:
    """Parses `key = value` and `section [title] { ... }` up to the matching `}`."""
    node = {"props": {}, "children": []}
    while i < len(toks):
        t = toks[i]
        if t == "}":
            return node, i + 1
        if t in (";", ","):
            i += 1
            continue
        if i + 1 < len(toks) and toks[i + 1] == "=":
            value = toks[i + 2] if i + 2 < len(toks) else ""
            if value == "{":
                # A list: `files = { "a", "b" }`.
                end = toks.index("}", i + 3) if "}" in toks[i + 3:] else len(toks)
                node["props"][t] = [v.strip('"') for v in toks[i + 3:end] if v != ","]
                i = end + 1
                continue
            node["props"][t] = value.strip('"')
            i += 3
            continue
        title = None
        j = i + 1
        if j < len(toks) and toks[j] != "{":
            title = toks[j].strip('"')
            j += 1
        if j >= len(toks) or toks[j] != "{":
            raise LayoutError(f"genimage config: expected '{{' after {t!r}")
        child, i = parse_block(toks, j + 1)
        child["kind"], child["title"] = t, title
        node["children"].append(child)
    return node, i


def size_bytes(s: str | None) -> int | None:
    if not s:
        return None
    m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)i?[bB]?", s.strip())
    if not m:
        raise LayoutError(f"unreadable size {s!r}")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
    return int(m.group(1)) * mult


def check_genimage(cfg: Path) -> list[tuple[str, str, int | None]]:
    root, _ = parse_block(tokenize(cfg.read_text()), 0)
    images = {c["title"]: c for c in root["children"] if c["kind"] == "image"}
    disks = [c for c in images.values() if any(k["kind"] == "hdimage" for k in c["children"])]
    if len(disks) != 1:
        raise LayoutError(f"{cfg}: expected one image with an hdimage section, found {len(disks)}")
    disk = disks[0]
    hd = next(k for k in disk["children"] if k["kind"] == "hdimage")
    ptype = hd["props"].get("partition-table-type", "mbr")
    if hd["props"].get("gpt", "false").lower() in ("true", "yes") or ptype != "mbr":
        raise LayoutError(f"{cfg}: partition table is {ptype!r}, the layout needs mbr")
    parts = [
        p for p in disk["children"]
        if p["kind"] == "partition"
        and p["props"].get("in-partition-table", "true").lower() not in ("false", "no")
    ]
    found = []
    for p in parts:
        img = images.get(p["props"].get("image", ""))
        fstype = None
        if img:
            kinds = [k["kind"] for k in img["children"]]
            fstype = "vfat" if "vfat" in kinds else "ext4" if "ext4" in kinds else None
        size = size_bytes(p["props"].get("size")) or (size_bytes(img["props"].get("size")) if img else None)
        found.append((p["title"], fstype, size))
    return found


# ---- wic ------------------------------------------------------------------------------------

def check_wks(wks: Path) -> list[tuple[str, str, int | None]]:
    found = []
    for line in wks.read_text().splitlines():
        line = line.strip()
        if not line.startswith("part "):
            if line.startswith("bootloader") and "--ptable" in line and "msdos" not in line:
                raise LayoutError(f"{wks}: partition table is not msdos (MBR)")
            continue
        opts = dict(re.findall(r"--([\w-]+)[= ]([^\s-][^\s]*)", line))
        size = opts.get("fixed-size")
        size_val = size_bytes(size) if size and "${" not in size else size
        found.append((opts.get("label"), opts.get("fstype"), size_val))
    return found


# ---- shared ---------------------------------------------------------------------------------

def check_parts(src: str, found: list[tuple[str, str, object]]) -> list[str]:
    errors = []
    names = [f[0] for f in found]
    if names != NAMES:
        return [f"{src}: partitions {names}, expected {NAMES} in that order (4 primary, MBR)"]
    for (name, fstype, _), want in zip(found, FSTYPES):
        if fstype is not None and fstype != want:
            errors.append(f"{src}: partition {name} is {fstype}, expected {want}")
    if found[1][2] != found[2][2]:
        errors.append(f"{src}: rootfs-a size {found[1][2]} != rootfs-b size {found[2][2]}")
    if found[0][2] not in (None, 64 << 20):
        errors.append(f"{src}: boot is {found[0][2]} bytes, expected 64 MiB")
    return errors


def check_system_conf(conf: Path, device_prefix: str, compatible: str) -> list[str]:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(conf)
    errors = []
    if cp.get("system", "compatible", fallback=None) != compatible:
        errors.append(f"{conf}: compatible is not {compatible}")
    slots = [s for s in cp.sections() if s.startswith("slot.")]
    if sorted(slots) != sorted(f"slot.{k}" for k in SLOTS):
        errors.append(f"{conf}: slots {slots}, expected {sorted('slot.' + k for k in SLOTS)}")
    for slot, (partno, bootname) in SLOTS.items():
        sec = f"slot.{slot}"
        if not cp.has_section(sec):
            continue
        dev = cp.get(sec, "device", fallback=None)
        if dev != f"{device_prefix}{partno}":
            errors.append(f"{conf}: {slot} device {dev}, expected {device_prefix}{partno} ({NAMES[partno - 1]})")
        if cp.get(sec, "bootname", fallback=None) != bootname:
            errors.append(f"{conf}: {slot} bootname is not {bootname}")
        if cp.get(sec, "type", fallback=None) != "ext4":
            errors.append(f"{conf}: {slot} type is not ext4")
    return errors


def self_test() -> int:
    """The checker must pass the contract's layout and catch each way of breaking it."""
    import tempfile

    good = (Path(__file__).parent / "testdata/layout-good.cfg").read_text()
    swapped = (
        good.replace("partition rootfs-a", "partition X")
        .replace("partition rootfs-b", "partition rootfs-a")
        .replace("partition X", "partition rootfs-b")
    )
    resized = good.replace(
        "partition rootfs-b {\n", "partition rootfs-b {\n        size = 100M\n"
    )
    cases = {
        "contract layout": (good, True),
        "slots swapped": (swapped, False),
        "gpt table": (good.replace('"mbr"', '"gpt"'), False),
        "rootfs-b another size": (resized, False),
        "data missing": (good[: good.index("    partition data")] + "}\n", False),
        "boot not vfat": (good.replace('vfat { label = "boot" }', 'ext4 { label = "boot" }'), False),
    }
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, (text, want_ok) in cases.items():
            cfg = Path(tmp) / "t.cfg"
            cfg.write_text(text)
            try:
                ok = not check_parts(name, check_genimage(cfg))
            except LayoutError:
                ok = False
            failed += ok != want_ok
            verdict = "as expected" if ok == want_ok else "WRONG"
            print(f"layout self-test: {name}: {'accepted' if ok else 'rejected'} ({verdict})")
    return 1 if failed else 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = Path(sys.argv[1]).resolve()
    errors = []
    rauc = root / "firmware/rauc"
    cfgs = sorted((root / "firmware/genimage").glob("*.cfg"))
    if not cfgs:
        errors.append("firmware/genimage/*.cfg: no genimage config to check")
    for cfg in cfgs:
        try:
            errors += check_parts(str(cfg.relative_to(root)), check_genimage(cfg))
        except LayoutError as e:
            errors.append(str(e))
    errors += check_system_conf(rauc / "docket-qemu-x86/system.conf", "/dev/vda", "docket-qemu-x86")
    wks = root / "yocto/meta-docket/wic/docket-rpi.wks.in"
    try:
        errors += check_parts(str(wks.relative_to(root)), check_wks(wks))
    except LayoutError as e:
        errors.append(str(e))
    for c in ("docket-rpi4", "docket-rpi5"):
        errors += check_system_conf(rauc / c / "system.conf", "/dev/mmcblk0p", c)
    fstab = (root / "yocto/meta-docket/recipes-core/base-files/files/fstab").read_text()
    if not re.search(r"^/dev/mmcblk0p4\s+/data\s+ext4\s", fstab, re.M):
        errors.append("yocto fstab: /dev/mmcblk0p4 is not mounted at /data as ext4")
    for e in errors:
        print(f"layout: FAIL: {e}", file=sys.stderr)
    if not errors:
        print(f"layout: {len(cfgs)} genimage config(s) and the wks match RAUC's slots "
              "(boot, rootfs-a = rootfs.0/A, rootfs-b = rootfs.1/B, data)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
