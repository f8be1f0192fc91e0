"""Directory trees in tests: snapshots to prove nothing changed, run copies,
JSON edits, re-recording hashes after deliberate damage, and dropping root
privileges so a permission error is real."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

NOBODY = 65534


def snapshot(root: Path) -> dict | None:
    """{relative path: what it is} for everything under ``root`` (None when
    ``root`` does not exist): files by size, sha256 and mtime (ns), symlinks
    by target, directories by name (a directory's own mtime is left out:
    creating and removing a temporary entry changes it without changing what
    the directory holds)."""
    root = Path(root)
    if not root.exists() and not root.is_symlink():
        return None
    out = {}
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


def diff(before: dict | None, after: dict | None) -> list[str]:
    """What changed between two snapshots, a line per path."""
    if before is None or after is None:
        return [] if before == after else [f"{'created' if before is None else 'removed'} the directory itself"]
    lines = [f"removed {k}" for k in sorted(before.keys() - after.keys())]
    lines += [f"added {k}" for k in sorted(after.keys() - before.keys())]
    lines += [f"changed {k}: {before[k]} -> {after[k]}" for k in sorted(before.keys() & after.keys())
              if before[k] != after[k]]
    return lines


def assert_unchanged(before: dict | None, root: Path) -> None:
    changes = diff(before, snapshot(root))
    assert not changes, f"{root} changed:\n" + "\n".join(changes)


def open_up(root: Path) -> None:
    """Make a tree readable (and traversable) by everyone, so a case can drop
    to an unprivileged user and still read what it should."""
    for p in [Path(root), *Path(root).rglob("*")]:
        if p.is_symlink():
            continue
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def copy_run(src: Path, dst: Path, parts=("model", "variants", "check")) -> Path:
    """A world-readable copy of ``parts`` of a run (symlinks kept as links)."""
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


def rehash_keras(run: Path) -> None:
    """After replacing model/model.keras, record its new sha256 so the damage,
    not the hash check, is what the stage meets."""
    from edgekit import artifacts
    from edgekit.rundir import RunDir

    rd = RunDir(run)
    keras = json.loads(rd.model_manifest.read_text())["files"]["keras"]
    keras["sha256"] = artifacts.sha256_tree(rd.model_dir / keras["path"])
    edit_json(rd.model_manifest, lambda m: m["files"].__setitem__("keras", keras))


def rehash_variant(vdir: Path) -> None:
    """Re-record variant.json's file record (sha256 and size) after a test
    damaged the model file on purpose, so the damage reaches the runtime
    rather than the hash check."""
    from edgekit import artifacts

    manifest = Path(vdir) / "variant.json"
    man = json.loads(manifest.read_text())
    man["file"] = artifacts.file_record(Path(vdir) / man["file"]["path"], vdir)
    artifacts.write_json(manifest, man)


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
