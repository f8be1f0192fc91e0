"""The report's "Where the error comes from" section: which variants it
diagnoses, and each diagnosis as table cells.

In: the report's rows and decisions (``policy``) pick the variants: each
whose check verdict is fail or inconclusive, and each platform's recommended
one. ``run_all`` gets their per-layer error from ``edgekit.runtime.diagnose``:
a current ``<run>/diagnose/<id>.json`` (``diagnose.reusable``: the staleness
rules of diagnose's ``is_current``, measured on at least as many images) is
read, not recomputed; any other is measured and written there atomically by
``diagnose.run``. Out: one ``Diagnosed`` per variant, and a status line per
variant through ``say``. A variant that cannot be diagnosed (no layer map,
its directory gone) gets the reason instead; the report is still written.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.rundir import ModelArtifact, RunDir
from edgekit.runtime import diagnose
from edgekit.runtime.diagnose import DiagnoseResult, Error, snr_text
from edgekit.runtime.report.policy import PLATFORMS, Decision

# Test images per variant the report diagnoses on its own (diagnose's default
# is 500): the report does it on every run, for several variants, and the
# cost grows with images x layers x model size. On the default run (5
# variants) 200 adds 3-5 s to the report stage inside `edgekit run`
# (500: 6 s, 1,000: 8-16 s) and gives every layer's SNR within 0.5 dB of
# 500 images' (the softmax output within 1.7 dB, once 4.8), with the same
# first jump and lowest local layer (bench/README.md, "Report: where the
# error comes from").
DEFAULT_LIMIT = 200
# ... of 28x28x1 inputs. The cost is per input value, so larger images get
# fewer: the limit's 200 x 784 values, never fewer than MIN_IMAGES. A 96x96
# RGB photo model (72 layers, 14 variants failing or inconclusive on its 180
# test images) took 241 s at 180 images a variant, 35 s at 16, with the same
# first-jump layer; `edgekit diagnose --limit N` measures one variant on more.
VALUES_PER_LIMIT_IMAGE = 28 * 28
MIN_IMAGES = 16


def images_for(limit: int, image_shape: tuple[int, ...]) -> int:
    """Test images per variant: ``limit`` images' worth of 28x28x1 input values."""
    per_image = math.prod(image_shape)
    return max(min(limit, MIN_IMAGES), min(limit, limit * VALUES_PER_LIMIT_IMAGE // per_image))


@dataclasses.dataclass(frozen=True)
class Diagnosed:
    """One variant of the section: ``why`` it was diagnosed; ``result`` (a
    ``diagnose.DiagnoseResult``) and its chart, or ``error`` when it could not be."""

    variant: str
    why: tuple[str, ...]
    result: DiagnoseResult | None = None
    chart: bytes | None = None
    reused: bool = False
    error: str | None = None


def targets(rows: list[dict], decisions: dict[str, Decision]) -> dict[str, tuple[str, ...]]:
    """Variant id -> why it is diagnosed, in the variant table's order: its
    check failed or is inconclusive, or it is a platform's recommendation."""
    why: dict[str, list[str]] = {}
    recommended = {d.chosen["id"]: key for key, d in decisions.items() if d.chosen}
    for r in rows:
        if r["verdict"] in ("fail", "inconclusive"):
            why.setdefault(r["id"], []).append("check failed" if r["verdict"] == "fail" else "check inconclusive")
        if r["id"] in recommended:
            why.setdefault(r["id"], []).append(f"recommended for {PLATFORMS[recommended[r['id']]][0]}")
    return {vid: tuple(reasons) for vid, reasons in why.items()}


def status_line(d: Diagnosed, run: RunDir, seconds: float) -> str:
    """What the report prints for one diagnosed variant."""
    head = f"[report] diagnose {d.variant} ({', '.join(d.why)}): "
    if d.result is None:
        return head + f"not diagnosed: {d.error}"
    r = d.result
    found = f"first jump {r.first_jump or 'none'}, lowest local SNR {r.worst_local or 'none'}"
    done = (f"reused {run.relative(r.path)}" if d.reused
            else f"{r.images} images in {seconds:.1f} s -> {run.relative(r.path)}")
    return head + f"{found}; {done}"


def run_all(run: RunDir, wanted: dict[str, tuple[str, ...]], limit: int,
            say: Callable[[str], None] = print) -> list[Diagnosed]:
    """Diagnose each of ``wanted`` on the first ``images_for(limit, ...)`` test
    images (see the module docstring)."""
    out: list[Diagnosed] = []
    if not wanted:
        return out
    model = ModelArtifact.read(run)
    source = None    # the model and test images, loaded once for every variant measured
    limit = images_for(limit, model.io.image_shape)
    for vid, why in wanted.items():
        t0 = time.perf_counter()
        try:
            config = diagnose.DiagnoseConfig(run_dir=run.root, variant=vid, limit=limit)
            result = diagnose.reusable(config)
            reused = result is not None
            if result is None:
                source = source or diagnose.Source.load(model)
                result = diagnose.run(config, source)
            d = Diagnosed(vid, why, result, Path(result.chart).read_bytes(), reused)
        except (EdgekitError, OSError) as e:
            d = Diagnosed(vid, why, error=str(e))
        say(status_line(d, run, time.perf_counter() - t0))
        out.append(d)
    return out


def _cos(e: Error | None) -> str:
    return "—" if e is None else f"{e.cosine:.5f}"


def table(d: Diagnosed) -> list[dict[str, str]]:
    """The compact per-layer table of a diagnosis: layer, class, accumulated
    and local SNR dB and cosine, and a note (first jump, lowest local SNR,
    fused into another layer's op, no op)."""
    r = d.result
    out = []
    for row in r.rows:
        notes = [n for n, hit in (("first jump", row.layer == r.first_jump),
                                  ("lowest local SNR", row.layer == r.worst_local)) if hit]
        if row.status != "op":
            notes.append(row.note or ("fused into " + str(row.into) if row.into else "no op"))
        out.append({"layer": row.layer, "class": row.cls,
                    "acc_snr": snr_text(row.accumulated, "—"), "acc_cos": _cos(row.accumulated),
                    "loc_snr": snr_text(row.local, "—"), "loc_cos": _cos(row.local), "note": "; ".join(notes)})
    return out


# the diagnose files' places inside a run, for report.json
_IN_RUN = RunDir(Path())


def to_json(d: Diagnosed) -> dict:
    """The section's record of one variant in report.json."""
    r = d.result
    return {"variant": d.variant, "why": list(d.why), "error": d.error, "reused": d.reused,
            "file": None if r is None else _IN_RUN.diagnose_json(d.variant).as_posix(),
            "first_jump": None if r is None else r.first_jump,
            "worst_local": None if r is None else r.worst_local,
            "images": None if r is None else r.images, "backend": None if r is None else r.backend}
