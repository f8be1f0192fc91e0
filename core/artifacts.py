"""Artifacts on disk: manifests, hashes and atomic writes, shared by every stage.

A stage writes one directory (``model/``, ``variants/<id>/``, ``check/``,
``report/``, ``golden/``) with a JSON manifest that says what it is
(``schema``), what went in (paths and sha256), the resolved config, library
versions, and what came out. The next stage reads that manifest, never a
file-name pattern. See docs/ARTIFACTS.md for each schema.

Writes are atomic: ``atomic_dir(target)`` yields a temporary directory beside
the target and renames it into place only when the block finishes without an
error, so an interrupted or failed stage leaves the previous state (or
nothing) behind, never half a directory.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping

from edgekit.errors import ArtifactError, OutputError

# Manifests larger than this are not manifests; refuse before parsing.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
TMP_PREFIX = ".edgekit-tmp-"
TRASH_PREFIX = ".edgekit-old-"


# --------------------------------------------------------------------- hashes

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(path: str | os.PathLike) -> str:
    """sha256 over a file, or over a directory's relative paths and contents
    (sorted), so a SavedModel or an .mlpackage has one stable hash."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(p.relative_to(path).as_posix().encode() + b"\0")
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def tree_size(path: str | os.PathLike) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def zipped_size(path: str | os.PathLike) -> int:
    """Size after deflate at the default level: what an app download costs,
    and the size that matters for pruned and clustered weights."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    with tempfile.TemporaryFile() as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for p in files:
                arc = p.name if p == path else p.relative_to(path.parent).as_posix()
                info = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, p.read_bytes())
        tmp.seek(0, os.SEEK_END)
        return tmp.tell()


# ---------------------------------------------------------------- JSON I/O

def _jsonable(obj: Any) -> Any:
    """numpy scalars/arrays, Paths, enums and dataclasses to plain JSON."""
    import dataclasses
    import enum

    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Stable JSON: sorted keys, 2-space indent, NaN/inf refused (they are not
    JSON and a browser or Swift's JSONDecoder would choke on them)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_jsonable, allow_nan=False) + "\n"


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


@functools.cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        try:
            # mkstemp makes 0600; an artifact gets what open() would give it
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    except OSError as e:
        raise OutputError(path, f"cannot write: {e.strerror or e}") from None


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, dumps(obj))


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Parse a JSON file handed in by a user or an earlier stage: size-capped,
    and any failure is one ArtifactError naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ArtifactError(path, f"{what} not found") from None
    except OSError as e:
        raise ArtifactError(path, f"cannot read {what}: {e.strerror or e}") from None
    if size > MAX_MANIFEST_BYTES:
        raise ArtifactError(path, f"{what} is {size} bytes, more than the {MAX_MANIFEST_BYTES} a manifest may be")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(path, f"{what} is not UTF-8 text") from None
    except OSError as e:
        raise ArtifactError(path, f"cannot read {what}: {e.strerror or e}") from None

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def finite_float(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):  # 1e999 parses to inf: as foreign to JSON as Infinity
            raise ValueError(f"number {literal[:40]} is out of range")
        return value

    try:
        return json.loads(text, parse_constant=no_constants, parse_float=finite_float)
    except (ValueError, RecursionError) as e:
        raise ArtifactError(path, f"{what} is not valid JSON ({e})") from None


def read_manifest(path: str | os.PathLike, schema: str, required: Mapping[str, type | tuple] = {}) -> dict:
    """Read a manifest and check its ``schema`` string and top-level keys.

    ``schema`` is e.g. ``edgekit.model/2``: another name or major version
    is refused with the version found, so an old run is never half-understood.
    """
    path = Path(path)
    data = read_json(path, "manifest")
    if not isinstance(data, dict):
        raise ArtifactError(path, "manifest is not a JSON object")
    found = data.get("schema")
    if found != schema:
        if isinstance(found, str) and found.split("/")[0] == schema.split("/")[0]:
            raise ArtifactError(path, f"manifest schema {found!r} is not supported by this edgekit (it reads {schema!r}); rerun the stage that wrote it")
        raise ArtifactError(path, f"not an edgekit manifest of kind {schema!r} (schema: {found!r})")
    for key, typ in required.items():
        if key not in data:
            raise ArtifactError(path, f"manifest is missing key {key!r}")
        if not isinstance(data[key], typ) or (typ in (int, float) and isinstance(data[key], bool)):
            names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            raise ArtifactError(path, f"manifest key {key!r} should be {names}, got {type(data[key]).__name__}")
        if isinstance(data[key], float) and not math.isfinite(data[key]):
            raise ArtifactError(path, f"manifest key {key!r} is not a finite number")
    return data


def file_record(path: str | os.PathLike, base: str | os.PathLike) -> dict:
    """{"path": relative, "sha256", "size_bytes"} for a produced file or directory."""
    path, base = Path(path), Path(base)
    return {"path": path.relative_to(base).as_posix(), "sha256": sha256_tree(path), "size_bytes": tree_size(path)}


def resolve_inside(base: str | os.PathLike, relative: str, what: str = "file") -> Path:
    """Join a manifest's relative path to its directory, refusing absolute
    paths, '..' and symlinks that lead outside the run directory."""
    base = Path(base).resolve()
    if not isinstance(relative, str) or not relative or "\0" in relative or Path(relative).is_absolute():
        raise ArtifactError(base, f"{what} path {relative!r} must be relative to {base}")
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise ArtifactError(base / relative, f"{what} leads outside {base}")
    return target


# ------------------------------------------------------------ atomic dirs

def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and check we can write in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(path, "exists and is not a directory") from None
    except OSError as e:
        raise OutputError(path, f"cannot create directory: {e.strerror or e}") from None
    if not _writable(path):
        raise OutputError(path, "directory is not writable")
    return path


def _writable(path: Path) -> bool:
    # effective ids: what the kernel checks when we write (differs from the real ids under setuid/seteuid)
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK | os.X_OK, effective_ids=True)
    return os.access(path, os.W_OK | os.X_OK)


def check_can_create(path: str | os.PathLike) -> Path:
    """Refuse, without creating anything, a ``path`` that is not a directory
    or whose nearest existing ancestor cannot be written."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputError(probe, "exists and is not a directory")
    if not _writable(probe):
        raise OutputError(probe, "directory is not writable")
    return path


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory in a temporary sibling and rename it to ``target``.

    If ``target`` exists and ``overwrite`` is false, raise OutputError before
    anything is written. On any exception (including KeyboardInterrupt) the
    temporary directory is removed and ``target`` is left as it was. A
    process killed outright leaves only a ``.edgekit-tmp-*`` sibling, which
    no reader takes for an artifact and the next write sweeps away.
    """
    target = Path(target)
    check_can_create(target.parent)
    missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    parent = check_writable_dir(target.parent)
    if target.exists() and not overwrite:
        raise OutputError(target, "already exists (pass --overwrite to replace it)")
    try:
        yield from _build(target, parent)
    except BaseException:
        # a failed write leaves no trace: remove the (empty) parents made for it
        for p in missing:
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


def _build(target: Path, parent: Path) -> Iterator[Path]:
    sweep_stale_tmp(parent, target.name)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=parent))
        # mkdtemp makes 0700; the artifact directory gets what mkdir would give it
        tmp.chmod(0o777 & ~_umask())
    except OSError as e:
        raise OutputError(parent, f"cannot write: {e.strerror or e}") from None
    try:
        yield tmp
        old = None
        if target.exists():
            old = parent / f"{TRASH_PREFIX}{target.name}-{os.getpid()}"
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)) or e.errno is not None:
            raise OutputError(getattr(e, "filename", None) or target, f"cannot write: {e.strerror or e}") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sweep_stale_tmp(parent: Path, name: str) -> None:
    """Remove temporaries left by an earlier, killed writer of ``name``.
    (Two edgekit processes writing the same artifact at once is not supported.)"""
    for p in parent.glob(f"{TMP_PREFIX}{name}-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in parent.glob(f"{TRASH_PREFIX}{name}-*"):
        shutil.rmtree(p, ignore_errors=True)


# -------------------------------------------------------------- versions

def cpu_description() -> str:
    """CPU model and logical core count, e.g. 'Intel(R) Xeon(R) ... (2 logical cores)'."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if not model and sys.platform == "darwin":
        try:
            model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                   text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    return f"{model} ({os.cpu_count()} logical cores, {platform.machine()})"


def library_versions() -> dict[str, str]:
    """Versions of everything that can change a number edgekit reports."""
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("edgekit", "tensorflow", "tf-keras", "tensorflow-model-optimization",
                 "coremltools", "ai-edge-litert", "numpy", "scikit-learn", "matplotlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
