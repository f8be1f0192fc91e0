"""The shared artifact plumbing: atomic directories and files, manifests."""
from __future__ import annotations

import os
import stat

import pytest

from edgekit import artifacts
from edgekit.errors import ArtifactError, OutputError


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_artifacts_get_umask_permissions_not_tempfile_ones(tmp_path):
    old = os.umask(0o022)
    try:
        artifacts._umask.cache_clear()
        with artifacts.atomic_dir(tmp_path / "model") as d:
            artifacts.write_json(d / "manifest.json", {"schema": "x/1"})
        assert _mode(tmp_path / "model") == 0o755
        assert _mode(tmp_path / "model" / "manifest.json") == 0o644
    finally:
        os.umask(old)
        artifacts._umask.cache_clear()


def test_failed_block_leaves_nothing_and_keeps_the_old_artifact(tmp_path):
    target = tmp_path / "check"
    with artifacts.atomic_dir(target) as d:
        (d / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with artifacts.atomic_dir(target, overwrite=True) as d:
            (d / "a.txt").write_text("new")
            raise RuntimeError("stage failed")
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["check"]


def test_existing_target_is_refused_without_overwrite(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(OutputError, match="already exists"):
        with artifacts.atomic_dir(tmp_path / "model"):
            pass


def test_manifest_schema_and_types_are_checked(tmp_path):
    p = tmp_path / "manifest.json"
    artifacts.write_json(p, {"schema": "edgekit.model/2", "n": 1})
    with pytest.raises(ArtifactError, match="not supported"):
        artifacts.read_manifest(p, "edgekit.model/1")
    artifacts.write_json(p, {"schema": "edgekit.model/1", "n": "1"})
    with pytest.raises(ArtifactError, match="'n' should be int"):
        artifacts.read_manifest(p, "edgekit.model/1", {"n": int})
    p.write_text('{"schema": "edgekit.model/1", "n": NaN}')
    with pytest.raises(ArtifactError, match="not valid JSON"):
        artifacts.read_manifest(p, "edgekit.model/1")


def test_resolve_inside_refuses_escapes(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "secret").write_text("x")
    (tmp_path / "run" / "link").symlink_to(tmp_path / "secret")
    for rel in ("../secret", "/etc/passwd", "link"):
        with pytest.raises(ArtifactError):
            artifacts.resolve_inside(tmp_path / "run", rel)
