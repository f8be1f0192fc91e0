"""What the report reads: a checked run (``edgekit.rundir.CheckedRun``: check
results, model, variants, predictions, the checked test images), the model's
training plots and the environment the check recorded."""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from edgekit import artifacts
from edgekit.figures import PNG_MAGIC
from edgekit.errors import ArtifactError
from edgekit.rundir import CheckedRun, RunDir, VariantArtifact, VariantIndex, VariantStatus



@dataclasses.dataclass
class ReportData:
    """Everything the report shows, already loaded (tests build one by hand)."""

    run_name: str
    class_names: list[str]
    results: dict                                   # check/results.json
    variants: dict[str, VariantArtifact | None]     # id -> its manifest (None when its directory is gone)
    labels: np.ndarray                              # int, N test labels
    images: np.ndarray                              # uint8, N x H x W (x C) test images
    original_probs: np.ndarray                      # float, N x C
    variant_probs: dict[str, np.ndarray]
    plots: dict[str, bytes] = dataclasses.field(default_factory=dict)   # training plot name -> PNG
    model_info: dict = dataclasses.field(default_factory=dict)          # model manifest "model"/"metrics"/"files"
    inputs: dict = dataclasses.field(default_factory=dict)              # input file -> sha256 (for is_current)
    fingerprint: dict = dataclasses.field(default_factory=dict)
    not_converted: list = dataclasses.field(default_factory=list)       # [{"id", "status", "reason"}]: skipped or failed


def training_plots(checked: CheckedRun) -> dict[str, bytes]:
    """The PNGs the model manifest lists under ``plots`` (a missing or non-PNG one is left out)."""
    plots: dict[str, bytes] = {}
    for name, rel in sorted((checked.model.manifest.get("plots") or {}).items()):
        if not isinstance(rel, str) or not rel.endswith(".png"):
            continue
        p = artifacts.resolve_inside(checked.model.dir, rel, f"plot {name!r}")
        try:
            data = p.read_bytes()
        except OSError:
            continue  # a missing plot leaves a gap in the report, not a failed report
        if data.startswith(PNG_MAGIC):
            plots[str(name)] = data
    return plots


def fingerprint(results: dict) -> dict[str, str]:
    """The versions the check recorded; the CPU of this machine when it recorded none."""
    versions = results.get("versions") if isinstance(results.get("versions"), dict) else {}
    out = {str(k): str(v) for k, v in versions.items()}
    if "cpu" not in out:  # the check did not record it: say whose CPU this is
        out["cpu (machine that wrote this report)"] = artifacts.cpu_description()
    return out


def not_converted(run: RunDir) -> list[dict]:
    """The variants convert skipped (a recipe that cannot apply to this model) or
    failed, with the reason, from variants/index.json (none if it cannot be read)."""
    try:
        index = VariantIndex.read(run)
    except ArtifactError:
        return []
    return [{"id": vid, "status": e.status.value, "reason": e.reason or ""}
            for vid, e in sorted(index.entries.items()) if e.status is not VariantStatus.OK]


def from_checked_run(checked: CheckedRun) -> ReportData:
    manifest = checked.model.manifest
    return ReportData(
        run_name=checked.run.root.resolve().name, class_names=checked.class_names, results=checked.results,
        variants=dict(checked.variants), labels=checked.labels, images=checked.images,
        original_probs=checked.original_probs, variant_probs=checked.variant_probs,
        plots=training_plots(checked), model_info={k: manifest.get(k) for k in ("model", "metrics", "files")},
        inputs=checked.input_hashes(), fingerprint=fingerprint(checked.results),
        not_converted=not_converted(checked.run))


def load(run_dir: "RunDir | str | os.PathLike") -> ReportData:
    """Everything the report shows, from a checked run directory."""
    return from_checked_run(CheckedRun.load(run_dir))
