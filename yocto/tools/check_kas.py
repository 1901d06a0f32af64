"""Offline check of the kas files (run by scripts/check-yocto.sh inside its venv).

`kas dump` clones every layer before it prints anything, so it cannot run without network. This
uses kas's own loader instead (kas.includehandler.IncludeHandler, under a kas Context): the same
code `kas dump` and `kas build` start with, which reads each file, validates it against the JSON
schema shipped in the kas package (kas/schema-kas.json), follows the includes and merges them.
On top of the schema it checks what the schema cannot know:
  - every remote layer repository is pinned: url, branch and a 40-hex commit;
  - the machine is one the image and bundle recipes support, distro is `docket`;
  - the local layer directory exists and its LAYERSERIES_COMPAT names the pinned
    openembedded-core branch.
Usage: python check_kas.py REPO_ROOT KASFILE...
       python check_kas.py --self-test   (a misspelt key and an unpinned layer are caught)
"""
import argparse
import json
import os
import tempfile
import re
import sys
from pathlib import Path

from kas.context import create_global_context
from kas.includehandler import IncludeHandler
from kas.kasusererror import KasUserError

MACHINES = {"raspberrypi4-64", "raspberrypi5"}


def check(root: Path, kasfile: Path) -> list[str]:
    errors = []
    try:
        config, missing = IncludeHandler([str(kasfile)], use_lock=False).get_config()
    except KasUserError as e:
        return [f"{kasfile}: {e}"]
    if missing:
        errors.append(f"{kasfile}: includes from repos not available offline: {missing}")
    if config.get("machine") not in MACHINES:
        errors.append(f"{kasfile}: machine {config.get('machine')!r} not one of {sorted(MACHINES)}")
    if config.get("distro") != "docket":
        errors.append(f"{kasfile}: distro is {config.get('distro')!r}, expected 'docket'")
    repos = config.get("repos", {})
    core_branch = None
    for name, repo in repos.items():
        repo = repo or {}
        if "url" not in repo and "path" not in repo:
            # The repository holding the kas file: its layers must exist here.
            for layer in (repo.get("layers") or {}):
                conf = root / layer / "conf/layer.conf"
                if not conf.is_file():
                    errors.append(f"{kasfile}: local layer {layer}: {conf} missing")
            continue
        for key in ("url", "branch", "commit"):
            if not repo.get(key):
                errors.append(f"{kasfile}: repo {name} has no {key} (every layer must be pinned)")
        if repo.get("commit") and not re.fullmatch(r"[0-9a-f]{40}", str(repo["commit"])):
            errors.append(f"{kasfile}: repo {name} commit {repo['commit']!r} is not a full SHA-1")
        if name == "openembedded-core":
            core_branch = repo.get("branch")
    if "bitbake" not in repos:
        errors.append(f"{kasfile}: no bitbake repository")
    if core_branch is None:
        errors.append(f"{kasfile}: no openembedded-core repository")
    else:
        layer_conf = (root / "yocto/meta-docket/conf/layer.conf").read_text()
        m = re.search(r'^LAYERSERIES_COMPAT_docket\s*=\s*"([^"]*)"', layer_conf, re.M)
        series = m.group(1).split() if m else []
        if core_branch not in series:
            errors.append(
                f"{kasfile}: openembedded-core branch {core_branch!r} not in meta-docket's "
                f"LAYERSERIES_COMPAT ({series})"
            )
    return errors


def self_test() -> int:
    """The checks must catch a key the schema does not know and a layer without a commit."""
    import subprocess
    import tempfile

    good = {
        "header": {"version": 18},
        "machine": "raspberrypi4-64",
        "distro": "docket",
        "repos": {
            "bitbake": {"url": "https://git.openembedded.org/bitbake", "branch": "2.18",
                        "commit": "0" * 40, "layers": {".": "disabled"}},
            "openembedded-core": {"url": "https://git.openembedded.org/openembedded-core",
                                  "branch": "wrynose", "commit": "1" * 40,
                                  "layers": {"meta": None}},
        },
    }
    bad_key = dict(good, machne="raspberrypi4-64")
    unpinned = {**good, "repos": {**good["repos"], "meta-x": {"url": "https://example.invalid/x"}}}
    cases = {"valid file": (good, True), "misspelt key": (bad_key, False),
             "unpinned layer": (unpinned, False)}
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        conf = root / "yocto/meta-docket/conf"
        conf.mkdir(parents=True)
        conf.joinpath("layer.conf").write_text('LAYERSERIES_COMPAT_docket = "wrynose"\n')
        for name, (cfg, want_ok) in cases.items():
            f = root / "t.json"
            f.write_text(json.dumps(cfg))
            ok = not check(root, f)
            failed += ok != want_ok
            verdict = "as expected" if ok == want_ok else "WRONG"
            print(f"kas self-test: {name}: {'accepted' if ok else 'rejected'} ({verdict})")
    return 1 if failed else 0


def main() -> int:
    os.environ.setdefault("KAS_WORK_DIR", tempfile.mkdtemp(prefix="kas-work-"))
    create_global_context(argparse.Namespace(no_color=True))
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = Path(sys.argv[1]).resolve()
    files = [Path(f).resolve() for f in sys.argv[2:]]
    if not files:
        print("usage: check_kas.py REPO_ROOT KASFILE...", file=sys.stderr)
        return 2
    failed = False
    for f in files:
        errors = check(root, f)
        for e in errors:
            print(f"kas: FAIL: {e}", file=sys.stderr)
        if errors:
            failed = True
        else:
            print(f"kas: {f.relative_to(root)}: schema ok, includes resolved, layers pinned")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
