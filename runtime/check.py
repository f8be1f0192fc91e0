"""The check stage: run every variant in its runtime and compare it with the original.

In: a run directory with ``model/manifest.json`` (schema ``edgekit.model/1``)
and ``variants/<id>/variant.json`` (schema ``edgekit.variant/1``); variants
are found by reading those manifests, never by file name. The test set is
rebuilt from the model manifest (same files, same hashes, same split).

Out: ``<run>/check/`` written atomically:
  results.json              schema ``edgekit.check/1`` (see docs/ARTIFACTS.md)
  junit.xml                 one testcase per variant, failures carry the reasons
  predictions/original.npz  ``probabilities`` (N x C float32), ``labels``
  predictions/<id>.npz      ``probabilities`` of each variant
Re-running replaces the whole directory (results always match one run).

Validation (``metrics.compare``) produces a report per variant; the gate
(``metrics.gate``) applies thresholds chosen by what the variant changes
(``metrics.Kind``, read from its recipe) and overridden by the config; every
failure reason is collected. ``run`` returns a ``CheckResult``; the CLI exits
1 when any variant failed.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit import artifacts
from edgekit.errors import ArtifactError, ConfigError, ModelFileError
from edgekit.progress import bar
from edgekit.runtime import backends as bk
from edgekit.runtime import metrics

SCHEMA = "edgekit.check/1"
MODEL_SCHEMA = "edgekit.model/1"
VARIANT_SCHEMA = "edgekit.variant/1"
# Batch-1 latency: enough timed runs for a stable p95 (the 95th percentile of
# 200 samples rests on 10 of them), after warm-up runs that pay for lazy
# allocation and cache misses.
DEFAULT_LATENCY_RUNS = 200
DEFAULT_WARMUP_RUNS = 20
# A slow backend (the numpy mil-reference interpreter, ~20 ms an image) stops
# after this many seconds of timed runs, but never before MIN_LATENCY_RUNS
# (a p95 over 50 samples still rests on 3 of them); results say how many ran.
LATENCY_BUDGET_SECONDS = 2.0
MIN_LATENCY_RUNS = 50
# The "large batch" for throughput, and the chunk every backend predicts in.
THROUGHPUT_BATCH = bk.DEFAULT_CHUNK


@dataclasses.dataclass(frozen=True)
class CheckConfig:
    """How to run the check stage. Threshold fields left ``None`` use each
    variant kind's defaults (``metrics.DEFAULT_THRESHOLDS``)."""

    run_dir: Path
    variants: tuple[str, ...] | None = None          # None: every variant in the run
    backend: bk.BackendName = bk.BackendName.AUTO
    min_agreement: float | None = None
    max_accuracy_drop: float | None = None
    min_psnr_db: float | None = None
    max_abs_diff: float | None = None
    limit: int | None = None                          # first N test images only
    latency_runs: int = DEFAULT_LATENCY_RUNS
    warmup_runs: int = DEFAULT_WARMUP_RUNS

    def __post_init__(self):
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        try:
            object.__setattr__(self, "backend", bk.BackendName(self.backend))
        except ValueError:
            raise ConfigError("--backend", f"unknown backend {self.backend!r}; choose one of "
                              f"{', '.join(b.value for b in bk.BackendName)}") from None
        if self.variants is not None:
            ids = tuple(self.variants)
            if not ids or any(not isinstance(v, str) or not v for v in ids):
                raise ConfigError("--variants", "give 'all' or a comma-separated list of variant ids")
            object.__setattr__(self, "variants", ids)
        self.overrides  # validates the thresholds
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError("--limit", f"must be a positive number of test images, got {self.limit!r}")
        if not isinstance(self.latency_runs, int) or self.latency_runs < 1:
            raise ConfigError("--latency-runs", f"must be >= 1, got {self.latency_runs!r}")
        if not isinstance(self.warmup_runs, int) or self.warmup_runs < 0:
            raise ConfigError("--warmup-runs", f"must be >= 0, got {self.warmup_runs!r}")

    @property
    def overrides(self) -> metrics.Thresholds:
        """The thresholds given explicitly; they replace the defaults for every variant."""
        return metrics.Thresholds(min_agreement=self.min_agreement, max_accuracy_drop=self.max_accuracy_drop,
                                  min_psnr_db=self.min_psnr_db, max_abs_diff=self.max_abs_diff)


@dataclasses.dataclass(frozen=True)
class VariantCheck:
    id: str
    format: str
    backend: str
    kind: metrics.Kind
    comparison: metrics.Comparison
    thresholds: metrics.Thresholds
    reasons: list[str]
    size_bytes: int
    zipped_bytes: int
    latency_ms: dict[str, float]
    throughput_ips: float
    file: str
    variant_manifest_sha256: str = ""

    @property
    def passed(self) -> bool:
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        d = self.comparison.to_json()
        d.update(id=self.id, format=self.format, backend=self.backend, kind=self.kind.value,
                 thresholds=self.thresholds.to_json(), reasons=list(self.reasons), passed=self.passed,
                 size_bytes=self.size_bytes, zipped_bytes=self.zipped_bytes, latency_ms=self.latency_ms,
                 throughput_ips=self.throughput_ips, throughput_batch=THROUGHPUT_BATCH, file=self.file,
                 variant_manifest_sha256=self.variant_manifest_sha256,
                 predictions=f"predictions/{self.id}.npz")
        return d


@dataclasses.dataclass(frozen=True)
class CheckResult:
    out_dir: Path
    test_count: int
    original: dict[str, Any]
    variants: list[VariantCheck]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.variants)

    @property
    def failed(self) -> list[VariantCheck]:
        return [v for v in self.variants if not v.passed]


# ------------------------------------------------------------ discovery

@dataclasses.dataclass(frozen=True)
class Variant:
    id: str
    dir: Path
    manifest: dict
    format: str
    path: Path
    kind: metrics.Kind


def discover_variants(run_dir: Path, model_manifest_path: Path) -> list[Variant]:
    """Every ``variants/<id>/variant.json`` of the run, validated. A variant
    directory without a manifest, a manifest of another kind, an id that
    differs from its directory, a model file that is missing or changed, or
    a variant converted from another model is an ArtifactError."""
    root = run_dir / "variants"
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if not dirs:
        raise ArtifactError(root, "no variants to check; run `edgekit convert --run "
                                  f"{run_dir}` first")
    model_sha = artifacts.sha256_file(model_manifest_path)
    found = []
    for d in dirs:
        mpath = d / "variant.json"
        if not mpath.is_file():
            raise ArtifactError(d, "variant directory has no variant.json (an interrupted or foreign "
                                   "conversion?); rerun edgekit convert or remove it")
        man = artifacts.read_manifest(mpath, VARIANT_SCHEMA, {"id": str, "format": str, "file": dict, "recipe": dict})
        if man["id"] != d.name:
            raise ArtifactError(mpath, f"id {man['id']!r} does not match its directory {d.name!r}")
        if man["format"] not in ("tflite", "coreml"):
            raise ArtifactError(mpath, f"unknown format {man['format']!r} (expected tflite or coreml)")
        source = man.get("source_model")
        if isinstance(source, dict) and source.get("sha256") not in (None, model_sha):
            raise ArtifactError(mpath, "converted from another model (source_model sha256 differs from "
                                       "model/manifest.json); rerun edgekit convert")
        rec = man["file"]
        path = artifacts.resolve_inside(d, rec.get("path"), "variant model file")
        if not path.exists():
            raise ArtifactError(path, "model file named by variant.json is missing")
        if "sha256" in rec and artifacts.sha256_tree(path) != rec["sha256"]:
            raise ArtifactError(path, "sha256 differs from variant.json: the model file was changed or "
                                      "replaced after conversion")
        try:
            kind = variant_kind(man)
        except (AttributeError, TypeError, ValueError) as e:
            raise ArtifactError(mpath, f"recipe section is malformed ({e})") from None
        found.append(Variant(man["id"], d, man, man["format"], path, kind))
    return found


def variant_kind(manifest: dict) -> metrics.Kind:
    """What a variant changes, read from its recipe (data, not its id)."""
    recipe = manifest.get("recipe") or {}
    finetune = recipe.get("finetune") or {}
    if isinstance(finetune, dict) and finetune.get("method") in ("prune", "cluster"):
        return metrics.Kind.LOW_BIT   # sparse / few-centroid weights, retrained
    if manifest["format"] == "tflite":
        t = recipe.get("tflite") or {}
        if "float16" in (t.get("supported_types") or []):
            return metrics.Kind.FLOAT16
        if not t.get("optimizations"):
            return metrics.Kind.FLOAT32
        return metrics.Kind.QUANTIZED
    c = recipe.get("coreml") or {}
    comp = c.get("compression")
    if not comp:
        return metrics.Kind.FLOAT16 if c.get("compute_precision") == "float16" else metrics.Kind.FLOAT32
    if comp.get("method") == "linear" or (comp.get("method") == "palettize" and int(comp.get("nbits", 0)) >= 6):
        return metrics.Kind.QUANTIZED
    return metrics.Kind.LOW_BIT


def _io_of(manifest: dict, where: Path) -> tuple[list[str], tuple[int, ...]]:
    """Class names and image shape (H, W, C) the model manifest declares."""
    ds = manifest["dataset"]
    names, shape = ds.get("class_names"), ds.get("image_shape")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ArtifactError(where, "dataset.class_names should be a non-empty list of strings")
    if not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ArtifactError(where, "dataset.image_shape should be [H, W, C] positive integers")
    return names, tuple(shape)


# --------------------------------------------------------------- timing

def measure_latency(predict: Callable[[np.ndarray], Any], x1: np.ndarray, runs: int, warmup: int,
                    budget_s: float = LATENCY_BUDGET_SECONDS) -> dict[str, float]:
    """p50/p95/mean milliseconds of ``predict(x1)`` (one image) over up to
    ``runs`` timed calls after ``warmup`` untimed ones; stops early once the
    timed calls took ``budget_s`` and at least MIN_LATENCY_RUNS (or ``runs``) ran."""
    for _ in range(warmup):
        predict(x1)
    times = []
    spent = 0.0
    while len(times) < runs and not (spent > budget_s and len(times) >= min(runs, MIN_LATENCY_RUNS)):
        t0 = time.perf_counter()
        predict(x1)
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    ms = np.asarray(times) * 1000.0
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "mean": float(ms.mean()), "runs": len(times)}


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ------------------------------------------------------------------ run

def run(config: CheckConfig) -> CheckResult:
    """Check the run's variants against its original model; write ``check/``."""
    from edgekit.train import data as tdata
    from edgekit.train import models as tmodels

    started = time.perf_counter()
    run_dir = config.run_dir
    if not run_dir.is_dir():
        raise ArtifactError(run_dir, "run directory not found")
    model_dir = run_dir / "model"
    manifest_path = model_dir / "manifest.json"
    manifest = artifacts.read_manifest(manifest_path, MODEL_SCHEMA, {"dataset": dict, "files": dict})
    variants = discover_variants(run_dir, manifest_path)
    if config.variants is not None:
        known = {v.id: v for v in variants}
        unknown = [i for i in config.variants if i not in known]
        if unknown:
            raise ConfigError("--variants", f"no variant {unknown[0]!r} in {run_dir / 'variants'}; "
                                            f"found: {', '.join(known)}")
        variants = [known[i] for i in dict.fromkeys(config.variants)]
    # Open every variant before any slow work: a bad --backend, a corrupt or
    # mismatched model file fails in seconds, before the test set is loaded.
    class_names, image_shape = _io_of(manifest, manifest_path)
    wrong = [v.id for v in variants if not bk.can_run(config.backend, v.format)]
    if wrong:
        raise ConfigError("--backend", f"{config.backend.value} cannot run {', '.join(wrong)}; choose those "
                                       "variants out with --variants, or use --backend auto")
    chosen = {v.id: bk.resolve(config.backend, v.format) for v in variants}
    opened = {v.id: bk.open_backend(chosen[v.id], v.path, class_names=class_names, image_shape=image_shape)
              for v in variants}

    ds = tdata.load_from_manifest(manifest, model_dir)
    if list(ds.class_names) != class_names or tuple(ds.image_shape) != image_shape:
        raise ArtifactError(manifest_path, "dataset rebuilt from the manifest does not match its class_names/image_shape")
    x = tdata.to_float(ds.x_test)
    y = np.asarray(ds.y_test, np.int64)
    if config.limit is not None:
        x, y = x[:config.limit], y[:config.limit]

    model = tmodels.load_model(model_dir, manifest)
    warm = x[:THROUGHPUT_BATCH]
    model.predict(warm, batch_size=THROUGHPUT_BATCH, verbose=0)   # untimed: traces the predict function
    original, secs = _timed(lambda: np.asarray(model.predict(x, batch_size=THROUGHPUT_BATCH, verbose=0), np.float32))
    original_latency = measure_latency(model.predict_on_batch, x[:1], config.latency_runs, config.warmup_runs)
    original_info = {"backend": "keras", "accuracy": float(np.mean(original.argmax(1) == y)),
                     "latency_ms": original_latency, "throughput_ips": len(x) / secs,
                     "throughput_batch": THROUGHPUT_BATCH, "predictions": "predictions/original.npz"}

    checks: list[VariantCheck] = []
    predictions: dict[str, np.ndarray] = {}
    overrides = config.overrides
    for v in bar(variants, desc="check", unit="variant"):
        backend = opened[v.id]
        backend.predict(warm)   # untimed: one-time setup (delegate weight packing, allocation)
        probs, secs = _timed(lambda: backend.predict(x))
        latency = measure_latency(backend.predict, x[:1], config.latency_runs, config.warmup_runs)
        bad = int(np.sum(~np.isfinite(probs).all(axis=1)))
        if bad:
            raise ModelFileError(v.path, f"{backend.name} returned NaN or infinite probabilities for {bad} of "
                                         f"{len(x)} test images: the model file is broken")
        report = metrics.compare(y, original, probs)
        thresholds = metrics.DEFAULT_THRESHOLDS[v.kind].override(overrides)
        rec = v.manifest["file"]
        zipped = v.manifest.get("zipped_bytes")
        checks.append(VariantCheck(
            id=v.id, format=v.format, backend=backend.name, kind=v.kind, comparison=report,
            thresholds=thresholds, reasons=metrics.gate(report, thresholds),
            size_bytes=artifacts.tree_size(v.path),   # on disk; its sha256 was checked above
            zipped_bytes=zipped if isinstance(zipped, int) and not isinstance(zipped, bool) and zipped > 0
            else artifacts.zipped_size(v.path),
            latency_ms=latency, throughput_ips=len(x) / secs,
            file=f"variants/{v.id}/{rec['path']}",
            variant_manifest_sha256=artifacts.sha256_file(v.dir / "variant.json"),
        ))
        predictions[v.id] = probs

    result = CheckResult(out_dir=run_dir / "check", test_count=int(len(x)), original=original_info,
                         variants=checks, seconds=time.perf_counter() - started)
    _write(result, config, original, y, predictions, manifest_path)
    return result


# --------------------------------------------------------------- output

def results_json(result: CheckResult, config: CheckConfig, model_manifest_sha: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "config": {"variants": list(config.variants) if config.variants else "all",
                   "backend": config.backend.value, "limit": config.limit,
                   "latency_runs": config.latency_runs, "warmup_runs": config.warmup_runs},
        "thresholds": {"overrides": config.overrides.to_json(),
                       "defaults": {k.value: t.to_json() for k, t in metrics.DEFAULT_THRESHOLDS.items()},
                       "absolute_min_psnr_db": metrics.ABSOLUTE_MIN_PSNR},
        "model_manifest": {"path": "../model/manifest.json", "sha256": model_manifest_sha},
        "test_count": result.test_count,
        "original": result.original,
        "variants": {v.id: v.to_json() for v in result.variants},
        "passed": result.passed,
        "failed": [v.id for v in result.failed],
        "seconds": result.seconds,
        "versions": artifacts.library_versions(),
    }


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Text XML 1.0 can hold: control characters (which ElementTree would
    write unescaped, making the file unparseable) become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", text)


def junit_xml(result: CheckResult) -> bytes:
    """JUnit XML for CI: one testcase per variant; a failing variant gets a
    ``<failure>`` whose text lists every reason. ElementTree escapes all text."""
    suite = ET.Element("testsuite", name="edgekit.check", tests=str(len(result.variants)),
                       failures=str(len(result.failed)), errors="0", skipped="0", time=f"{result.seconds:.3f}")
    for v in result.variants:
        case = ET.SubElement(suite, "testcase", classname=f"edgekit.check.{v.backend}", name=_xml_text(v.id),
                             time=f"{v.comparison.count / v.throughput_ips:.3f}")
        c = v.comparison
        psnr = "inf" if math.isinf(c.psnr_db) else f"{c.psnr_db:.1f}"
        ET.SubElement(case, "system-out").text = (
            f"backend={v.backend} kind={v.kind.value} agreement={c.agreement:.6f} accuracy={c.accuracy:.6f} "
            f"accuracy_change={c.accuracy_change:+.3f}pp mcnemar_p={c.mcnemar_p:.4g} psnr_db={psnr} "
            f"max_abs_diff={c.max_abs_diff:.3g} size_bytes={v.size_bytes}")
        if v.reasons:
            ET.SubElement(case, "failure", message=_xml_text(v.reasons[0]),
                          type="threshold").text = _xml_text("\n".join(v.reasons))
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"


def _write(result: CheckResult, config: CheckConfig, original: np.ndarray, labels: np.ndarray,
           predictions: dict[str, np.ndarray], manifest_path: Path) -> None:
    sha = artifacts.sha256_file(manifest_path)
    with artifacts.atomic_dir(result.out_dir, overwrite=True) as tmp:
        pred_dir = tmp / "predictions"
        pred_dir.mkdir()
        np.savez(pred_dir / "original.npz", probabilities=original.astype(np.float32), labels=labels)
        for vid, probs in predictions.items():
            np.savez(pred_dir / f"{vid}.npz", probabilities=probs.astype(np.float32))
        artifacts.write_json(tmp / "results.json", results_json(result, config, sha))
        artifacts.write_bytes_atomic(tmp / "junit.xml", junit_xml(result))


def load_predictions(check_dir: str | os.PathLike, name: str) -> np.ndarray:
    """``probabilities`` of ``predictions/<name>.npz`` (no pickle)."""
    path = artifacts.resolve_inside(check_dir, f"predictions/{name}.npz", "predictions")
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z["probabilities"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ArtifactError(path, f"cannot read predictions: {e}") from None
