"""Helpers of the reliability tests: tree snapshots, run copies, manifest
edits and a way to make permission errors real when the tests run as root."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

NOBODY = 65534


def snapshot(root: Path) -> dict:
    """{relative path: what it is} for everything under ``root``: files by
    size, sha256 and mtime (ns), symlinks by target, directories by name
    (a directory's own mtime is left out: creating and removing a temporary
    entry changes it without changing what the directory holds)."""
    out = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    while block := f.read(1 << 20):
                        h.update(block)
                out[rel] = ("file", st.st_size, h.hexdigest(), st.st_mtime_ns)
    return out


def diff(before: dict, after: dict) -> list[str]:
    lines = [f"removed {k}" for k in sorted(before.keys() - after.keys())]
    lines += [f"added {k}" for k in sorted(after.keys() - before.keys())]
    lines += [f"changed {k}: {before[k]} -> {after[k]}" for k in sorted(before.keys() & after.keys())
              if before[k] != after[k]]
    return lines


def open_up(root: Path) -> None:
    """Make a tree readable (and traversable) by everyone, so a case can drop
    to an unprivileged user and still read what it should."""
    for p in [Path(root), *Path(root).rglob("*")]:
        if p.is_symlink():
            continue
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def copy_run(src: Path, dst: Path, parts=("model", "variants", "check")) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for part in parts:
        if (src / part).exists():
            shutil.copytree(src / part, dst / part, symlinks=True)
    open_up(dst)
    return dst


def edit_json(path: Path, change) -> None:
    """Load JSON, let ``change(data)`` edit it in place (or return new data), write it back."""
    data = json.loads(path.read_text())
    new = change(data)
    path.write_text(json.dumps(data if new is None else new, indent=2))


def sha256(path: Path) -> str:
    from edgekit import artifacts

    return artifacts.sha256_tree(path)


def rehash_keras(run: Path) -> None:
    """After replacing model/model.keras, record its new sha256 so the damage,
    not the hash check, is what the stage meets."""
    digest = sha256(run / "model" / "model.keras")
    edit_json(run / "model" / "manifest.json", lambda m: m["files"]["keras"].__setitem__("sha256", digest))


def rehash_variant(vdir: Path) -> None:
    """Record the current sha256 of a variant's model file in its variant.json."""
    man = json.loads((vdir / "variant.json").read_text())
    digest = sha256(vdir / man["file"]["path"])
    edit_json(vdir / "variant.json", lambda m: m["file"].__setitem__("sha256", digest))


@contextlib.contextmanager
def as_nobody():
    """Run the block with effective uid/gid ``nobody`` when we are root (root
    ignores file permissions, so a read-only directory would not stop it).
    Not root: permissions already apply; nothing to do."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
