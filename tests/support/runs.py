"""Tiny runs: a trained ``model/`` made by the real train stage, copies of it,
and variants written by hand (model bytes plus the variant.json convert would
write for that recipe)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

# The shared tiny run: the cnn trained for one epoch on 3,000 MNIST training
# images (seed 0) and evaluated on 1,000 test images.
TINY = dict(epochs=1, train_limit=3000, test_limit=1000, seed=0)


def train_tiny_run(run_dir: Path, model: str = "cnn", **overrides) -> Path:
    """Train ``model`` into ``run_dir/model`` with ``TINY`` (and ``overrides``)."""
    from edgekit.train import TrainConfig, run

    result = run(TrainConfig(run_dir=Path(run_dir), model=model, **{**TINY, **overrides}))
    assert result.ok, result.failure()
    return Path(run_dir)


def copy_model(src_run: Path, dst_run: Path) -> Path:
    """A run dir holding a copy of ``src_run``'s model/ only, so work there never touches shared runs."""
    from edgekit.rundir import RunDir

    dst_run = Path(dst_run)
    dst_run.mkdir(parents=True, exist_ok=True)
    shutil.copytree(RunDir(src_run).model_dir, RunDir(dst_run).model_dir)
    return dst_run


def write_tflite_variant(run_dir: Path, recipe_id: str, content: bytes) -> Path:
    """variants/<id>/ with ``content`` as model.tflite and the variant.json the
    convert stage writes for the shipped recipe of that id (its kind and
    reference as the recipe declares them); returns the variant dir."""
    from edgekit import artifacts
    from edgekit.convert.recipe import builtin_dir
    from edgekit.rundir import RunDir, VariantArtifact

    rd = RunDir(run_dir)
    recipe = json.loads((builtin_dir() / f"{recipe_id}.json").read_text())
    vdir = rd.variant_dir(recipe_id)
    vdir.mkdir(parents=True)
    (vdir / "model.tflite").write_bytes(content)
    VariantArtifact.write(vdir, {
        "id": recipe_id, "format": "tflite", "platform": "android",
        "kind": recipe["kind"], "reference": recipe["reference"], "recipe": recipe,
        "source_model": {"manifest": "../../model/manifest.json", "sha256": artifacts.sha256_file(rd.model_manifest)},
        "file": artifacts.file_record(vdir / "model.tflite", vdir),
        "zipped_bytes": artifacts.zipped_size(vdir / "model.tflite"),
    })
    return vdir


def index_variants(run_dir: Path) -> Path:
    """variants/index.json listing every variants/<id>/variant.json there (as
    convert would after converting them), for runs whose variants were written
    by hand; returns the index path."""
    from edgekit import artifacts
    from edgekit.rundir import IndexEntry, RunDir, VariantArtifact, VariantIndex, VariantStatus

    rd = RunDir(run_dir)
    rd.variants_dir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for d in sorted(p for p in rd.variants_dir.iterdir() if p.is_dir()):
        v = VariantArtifact.read(rd, d.name)
        entries[v.id] = IndexEntry(id=v.id, format=v.format, kind=v.kind, reference=v.reference,
                                   status=VariantStatus.OK)
    return VariantIndex(rd, source_sha256=artifacts.sha256_file(rd.model_manifest), entries=entries).write()
