"""The check stage: run every variant in its runtime and compare it with the original.

In: a run directory with ``model/`` (``rundir.ModelArtifact``) and the
variants convert listed in ``variants/index.json`` (``rundir.VariantIndex``);
each variant declares its kind and reference. The test set is rebuilt from
the model manifest (same files, same hashes, same split), and its pixels
become model inputs through ``model.io.pixels``.

Out: ``<run>/check/`` written atomically by ``rundir.CheckArtifact``:
results.json (edgekit.check/2, records every predictions file), junit.xml
and the predictions. Re-running replaces the whole directory.

Validation (``metrics.compare``) produces a report per variant; thresholds
come from the variant's declared kind (``metrics.DEFAULT_THRESHOLDS``),
overridden by the config; ``metrics.judge_all`` gives every variant a
verdict (pass / fail / inconclusive, Holm-corrected McNemar across the
checked variants). ``run`` returns a ``CheckResult``: ``ok`` unless a variant
failed (exit 1); an inconclusive variant is never a pass, but only a failure
fails the stage.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit import artifacts, quiet, stage
from edgekit.errors import ArtifactError, ConfigError, ModelFileError
from edgekit.progress import bar
from edgekit.rundir import CheckArtifact, ModelArtifact, RunDir, VariantArtifact, VariantIndex, VariantStatus
from edgekit.runtime import backends as bk
from edgekit.runtime import metrics
from edgekit.train.predict import predict as keras_predict

# Batch-1 latency: timed runs after warm-up runs that pay for lazy
# allocation and cache misses. As many runs as the spread asks for: at least
# MIN_LATENCY_RUNS (a p95 over 30 samples rests on 2 of them), then stop once
# the mean is known to LATENCY_REL_SE (its standard error over the mean; 2.5%
# is a 95% interval of about +-5%), after LATENCY_BUDGET_SECONDS of timed
# runs, or at ``latency_runs`` (the cap). A steady LiteRT file stops at 30
# runs; a noisy one runs longer. results.json says how many ran.
DEFAULT_LATENCY_RUNS = 200
DEFAULT_WARMUP_RUNS = 10
LATENCY_BUDGET_SECONDS = 2.0
MIN_LATENCY_RUNS = 30
LATENCY_REL_SE = 0.025
# Predictions of LiteRT files go to a worker process (edgekit.runtime.workers)
# only when there is enough work to pay for its start (about a second).
PARALLEL_MIN_IMAGES = 1000
# A slow LiteRT file (int16x8) goes to the worker in this many slices of the
# test set, so whichever process is free first takes the next one.
SLOW_PARTS = 16
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
    jobs: int = stage.DEFAULT_JOBS                    # processes for predictions (2: LiteRT beside the rest)

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
        stage.check_jobs(self.jobs)

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
    judgement: metrics.Judgement
    size_bytes: int
    zipped_bytes: int
    latency_ms: dict[str, float]
    throughput_ips: float
    file: str
    variant_manifest_sha256: str = ""
    reference: str | None = None

    @property
    def verdict(self) -> metrics.Verdict:
        return self.judgement.verdict

    @property
    def reasons(self) -> list[str]:
        """The decided failures (empty unless the verdict is fail)."""
        return self.judgement.reasons

    @property
    def passed(self) -> bool:
        return self.verdict is metrics.Verdict.PASS

    @property
    def failed(self) -> bool:
        return self.verdict is metrics.Verdict.FAIL

    @property
    def inconclusive(self) -> bool:
        return self.verdict is metrics.Verdict.INCONCLUSIVE

    def to_json(self) -> dict[str, Any]:
        d = self.comparison.to_json()
        d.update(id=self.id, format=self.format, backend=self.backend, kind=self.kind.value,
                 reference=self.reference, thresholds=self.thresholds.to_json(), passed=self.passed,
                 size_bytes=self.size_bytes, zipped_bytes=self.zipped_bytes, latency_ms=self.latency_ms,
                 throughput_ips=self.throughput_ips, throughput_batch=THROUGHPUT_BATCH, file=self.file,
                 variant_manifest_sha256=self.variant_manifest_sha256,
                 predictions=CheckArtifact.prediction_file(self.id))
        d.update(self.judgement.to_json())      # verdict, reasons, inconclusive_reasons, images_to_decide, ...
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
        """Every variant passed (an inconclusive one did not)."""
        return all(v.passed for v in self.variants)

    @property
    def ok(self) -> bool:
        """No variant failed: exit code 0 (inconclusive variants are reported, not failed)."""
        return not self.failed

    @property
    def failed(self) -> list[VariantCheck]:
        return [v for v in self.variants if v.failed]

    @property
    def inconclusive(self) -> list[VariantCheck]:
        return [v for v in self.variants if v.inconclusive]

    @property
    def verdict(self) -> metrics.Verdict:
        return metrics.combine([v.verdict for v in self.variants])

    def failure(self) -> str | None:
        if self.ok:
            return None
        return failure_line(len(self.failed), len(self.variants), [v.id for v in self.failed],
                            self.out_dir / "junit.xml")


def failure_line(failed: int, total: int, ids: list[str], junit: Path) -> str:
    return (f"{failed} of {total} variants failed their thresholds: {', '.join(ids)} "
            f"(see {junit})")


# --------------------------------------------------------------- timing

def measure_latency(predict: Callable[[np.ndarray], Any], x1: np.ndarray, runs: int, warmup: int,
                    budget_s: float = LATENCY_BUDGET_SECONDS,
                    clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """p50/p95/mean milliseconds of ``predict(x1)`` (one image) after
    ``warmup`` untimed calls, over as many timed calls as the spread needs
    (see LATENCY_REL_SE; never more than ``runs``), timed by ``clock``."""
    for _ in range(warmup):
        predict(x1)
    times: list[float] = []
    least = min(runs, MIN_LATENCY_RUNS)
    while len(times) < runs:
        t0 = clock()
        predict(x1)
        times.append(clock() - t0)
        if len(times) >= least and (sum(times) > budget_s or _settled(times)):
            break
    ms = np.asarray(times) * 1000.0
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "mean": float(ms.mean()), "runs": len(times)}


def _settled(times: list[float]) -> bool:
    """The mean of ``times`` is known to LATENCY_REL_SE."""
    t = np.asarray(times)
    return float(t.std(ddof=1)) / math.sqrt(len(t)) <= LATENCY_REL_SE * float(t.mean())


def _throughput(predict: Callable[[np.ndarray], Any], batch: np.ndarray) -> float:
    """Images per second of one ``predict(batch)``, after an untimed call
    that pays for one-time setup (delegate weight packing, allocation)."""
    predict(batch)
    _, secs = _timed(lambda: predict(batch))
    return len(batch) / secs


def _predict_all(original: Callable[[], np.ndarray], variants: list[VariantArtifact], opened: dict,
                 x: np.ndarray, jobs: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The original's probabilities on ``x`` and every variant's, by id. With
    ``jobs`` > 1 and enough images, the LiteRT files run in a worker process
    (the slowest first, cut into SLOW_PARTS slices of the test set) while this
    one runs the original and the others; then this one takes, from the
    back of the queue, every task the worker has not started (the worker
    is handed one at a time), before waiting for the one it has."""
    litert = bk.BackendName.LITERT.value
    offload = ([v for v in variants if opened[v.id].name == litert]
               if jobs > 1 and len(x) >= PARALLEL_MIN_IMAGES else [])
    offload.sort(key=lambda v: -_litert_cost(v))
    here = [v for v in variants if v not in offload]
    out: dict[str, np.ndarray] = {}
    progress = bar(total=len(variants), desc="check", unit="variant")
    with contextlib.ExitStack() as stack:
        slices = {v.id: _slices(len(x), SLOW_PARTS if _litert_cost(v) > 1 else 1) for v in offload}
        if offload:
            from edgekit.runtime.workers import LiteRTWorker

            worker = stack.enter_context(LiteRTWorker(x, [((v.id, a, b), v.path, a, b) for v in offload
                                                          for a, b in slices[v.id]]))
        probs = original()
        for v in here:
            out[v.id] = opened[v.id].predict(x)
            progress.update()
        if offload:
            parts: dict[tuple, np.ndarray] = {}

            def put(key, got):
                vid, a, b = key
                parts[key] = got if got is not None else opened[vid].predict(x[a:b])
                if all((vid, *s) in parts for s in slices[vid]):
                    out[vid] = np.concatenate([parts[(vid, *s)] for s in slices[vid]])
                    progress.update()

            while (task := worker.claim()) is not None:   # what the worker has not started
                put(task[0], None)
            for key, got in worker.finish().items():
                put(key, got)
            while (task := worker.claim()) is not None:   # left by a worker that died
                put(task[0], None)
    progress.close()
    return probs, {v.id: out[v.id] for v in variants}


def _slices(n: int, parts: int) -> list[tuple[int, int]]:
    """[start, end) of ``parts`` near-equal slices of ``n`` images."""
    edges = np.linspace(0, n, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _litert_cost(v: VariantArtifact) -> int:
    """Rough order of a LiteRT file's prediction time: int16 activations run
    LiteRT's single-threaded reference kernels (about 50x int8 here)."""
    ops = (v.manifest.get("recipe") or {}).get("tflite", {}).get("ops", []) or []
    return 50 if any("INT16" in str(o) for o in ops) else 1


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ------------------------------------------------------------------ run

def _variants(config: CheckConfig, model: ModelArtifact) -> list[VariantArtifact]:
    """The variants to check, from variants/index.json, read and validated."""
    run = RunDir(config.run_dir)
    if not run.variant_index.is_file() and not run.variants_dir.is_dir():
        raise ArtifactError(run.variants_dir, f"no variants to check; run `edgekit convert --run "
                                              f"{config.run_dir}` first")
    index = VariantIndex.read(run)
    if config.variants is None:
        if not index.ok_ids:
            raise ArtifactError(run.variant_index, f"no variants to check; run `edgekit convert --run "
                                                   f"{config.run_dir}` first")
        return index.variants(model)
    unknown = [i for i in config.variants if i not in index.entries]
    if unknown:
        raise ConfigError("--variants", f"no variant {unknown[0]!r} in {run.variant_index}; "
                                        f"found: {', '.join(index.entries) or '(none)'}")
    ids = list(dict.fromkeys(config.variants))
    # a variant whose recipe cannot apply to this model (skipped by convert, with the
    # reason; the report lists it) is left out, unless nothing else is left to check
    kept = [i for i in ids if index.entries[i].status is not VariantStatus.SKIPPED]
    return index.variants(model, kept or ids)


def run(config: CheckConfig) -> CheckResult:
    """Check the run's variants against its original model; write ``check/``."""
    started = time.perf_counter()
    run_dir = config.run_dir
    if not run_dir.is_dir():
        raise ArtifactError(run_dir, "run directory not found")
    rd = RunDir(run_dir)
    model_artifact = ModelArtifact.read(rd)
    io = model_artifact.io
    variants = _variants(config, model_artifact)
    # Open every variant before any slow work: a bad --backend, a corrupt or
    # mismatched model file fails in seconds, before the test set is loaded.
    class_names = list(io.class_names)
    wrong = [v.id for v in variants if not bk.can_run(config.backend, v.format)]
    if wrong:
        raise ConfigError("--backend", f"{config.backend.value} cannot run {', '.join(wrong)}; choose those "
                                       "variants out with --variants, or use --backend auto")
    chosen = {v.id: bk.resolve(config.backend, v.format) for v in variants}
    opened = {v.id: bk.open_backend(chosen[v.id], v.path, class_names=class_names, image_shape=io.image_shape,
                                    pixels=io.pixels)
              for v in variants}

    ds = model_artifact.dataset()
    if list(ds.class_names) != class_names:
        raise ArtifactError(model_artifact.path, "dataset rebuilt from the manifest does not match its class_names")
    images, y = ds.x_test, np.asarray(ds.y_test, np.int64)
    if config.limit is not None:
        images, y = images[:config.limit], y[:config.limit]
    x = io.pixels.apply(images)
    if tuple(x.shape[1:]) != io.image_shape:
        raise ArtifactError(model_artifact.path, f"dataset images {list(x.shape[1:])} do not match io's "
                                                 f"{list(io.image_shape)}")

    model = model_artifact.load_keras()
    warm = x[:THROUGHPUT_BATCH]
    quiet.call(keras_predict, model, warm, THROUGHPUT_BATCH)   # untimed: traces the predict function
    original, predictions = _predict_all(lambda: keras_predict(model, x, THROUGHPUT_BATCH), variants, opened, x,
                                         config.jobs)
    for v in variants:
        bad = int(np.sum(~np.isfinite(predictions[v.id]).all(axis=1)))
        if bad:
            raise ModelFileError(v.path, f"{opened[v.id].name} returned NaN or infinite probabilities for {bad} of "
                                         f"{len(x)} test images: the model file is broken")
    # Speed, after every prediction, one model at a time and alone on the machine's cores.
    original_info = {"backend": "keras", "accuracy": float(np.mean(original.argmax(1) == y)),
                     "latency_ms": measure_latency(model.predict_on_batch, x[:1], config.latency_runs,
                                                   config.warmup_runs),
                     "throughput_ips": _throughput(lambda b: keras_predict(model, b, THROUGHPUT_BATCH), warm),
                     "throughput_batch": len(warm),
                     "predictions": CheckArtifact.prediction_file(CheckArtifact.ORIGINAL)}

    measured = []
    overrides = config.overrides
    for v in variants:
        backend = opened[v.id]
        ips = _throughput(backend.predict, warm)
        latency = measure_latency(backend.predict, x[:1], config.latency_runs, config.warmup_runs)
        report = metrics.compare(y, original, predictions[v.id])
        thresholds = metrics.DEFAULT_THRESHOLDS[v.kind].override(overrides)
        measured.append((v, backend.name, report, thresholds, latency, ips))
    predictions = {CheckArtifact.ORIGINAL: original, **predictions}

    # one family: Holm's correction over every checked variant's McNemar test
    judgements = metrics.judge_all({v.id: r for v, _, r, _, _, _ in measured},
                                   {v.id: t for v, _, _, t, _, _ in measured})
    checks = []
    for v, backend_name, report, thresholds, latency, ips in measured:
        zipped = v.manifest.get("zipped_bytes")
        checks.append(VariantCheck(
            id=v.id, format=v.format, backend=backend_name, kind=v.kind, comparison=report,
            thresholds=thresholds, judgement=judgements[v.id],
            size_bytes=artifacts.tree_size(v.path),   # on disk; its sha256 was checked above
            zipped_bytes=zipped if isinstance(zipped, int) and not isinstance(zipped, bool) and zipped > 0
            else artifacts.zipped_size(v.path),
            latency_ms=latency, throughput_ips=ips, file=rd.relative(v.path),
            variant_manifest_sha256=v.sha256, reference=v.reference,
        ))

    result = CheckResult(out_dir=rd.check_dir, test_count=int(len(x)), original=original_info,
                         variants=checks, seconds=time.perf_counter() - started)
    results = results_json(result, config, model_artifact.sha256)
    with artifacts.atomic_dir(result.out_dir, overwrite=True) as tmp:
        CheckArtifact.write(tmp, results, predictions, y, junit_xml(result))
    return result


def is_current(run_dir: Path) -> bool:
    """check/ exists, was made from the current model and variant manifests,
    and every predictions file it records exists."""
    rd = RunDir(Path(run_dir))
    try:
        checked = CheckArtifact.read(rd)
        model = ModelArtifact.read(rd)
        if checked.results["model_manifest"].get("sha256") != model.sha256:
            return False
        for vid, entry in checked.results["variants"].items():
            mpath = rd.variant_manifest(vid)
            if not mpath.is_file() or entry.get("variant_manifest_sha256") != artifacts.sha256_file(mpath):
                return False
        return all(checked.predictions_path(name).is_file() for name in checked.results["predictions"])
    except (ArtifactError, OSError, AttributeError, TypeError):
        return False


def recorded_failure(run_dir: Path) -> str | None:
    """The failure line of the check recorded in ``run_dir`` (None when it
    passed, had only inconclusive variants, or cannot be read)."""
    rd = RunDir(Path(run_dir))
    try:
        res = CheckArtifact.read(rd).results
    except ArtifactError:
        return None
    failed = res.get("failed") or []
    if not failed:
        return None
    return failure_line(len(failed), len(res["variants"]), list(failed), rd.junit)


# --------------------------------------------------------------- output

def results_json(result: CheckResult, config: CheckConfig, model_manifest_sha: str) -> dict[str, Any]:
    """results.json without its schema and predictions map (CheckArtifact.write adds those)."""
    return {
        "config": {"variants": list(config.variants) if config.variants else "all",
                   "backend": config.backend.value, "limit": config.limit,
                   "latency_runs": config.latency_runs, "warmup_runs": config.warmup_runs,
                   "jobs": config.jobs},
        "thresholds": {"overrides": config.overrides.to_json(),
                       "defaults": {k.value: t.to_json() for k, t in metrics.DEFAULT_THRESHOLDS.items()},
                       "absolute_min_psnr_db": metrics.ABSOLUTE_MIN_PSNR,
                       "confidence": metrics.CONFIDENCE,
                       "multiple_comparisons": "holm"},
        "model_manifest": {"path": "../model/manifest.json", "sha256": model_manifest_sha},
        "test_count": result.test_count,
        "original": result.original,
        "variants": {v.id: v.to_json() for v in result.variants},
        "verdict": result.verdict.value if result.variants else metrics.Verdict.PASS.value,
        "passed": result.passed,
        "failed": [v.id for v in result.failed],
        "inconclusive": [v.id for v in result.inconclusive],
        "seconds": result.seconds,
        "versions": artifacts.library_versions(),
    }


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Text XML 1.0 can hold: control characters (which ElementTree would
    write unescaped, making the file unparseable) become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", text)


def junit_xml(result: CheckResult) -> bytes:
    """JUnit XML for CI: one testcase per variant. A failing variant gets a
    ``<failure type="threshold">`` whose text lists every reason; an
    inconclusive one a ``<failure type="inconclusive">`` whose message says
    so and how many test images would decide it (never a silent pass; the
    exit code still treats it as not failed). ElementTree escapes all text."""
    bad = [v for v in result.variants if not v.passed]
    suite = ET.Element("testsuite", name="edgekit.check", tests=str(len(result.variants)),
                       failures=str(len(bad)), errors="0", skipped="0", time=f"{result.seconds:.3f}")
    for v in result.variants:
        case = ET.SubElement(suite, "testcase", classname=f"edgekit.check.{v.backend}", name=_xml_text(v.id),
                             time=f"{v.comparison.count / v.throughput_ips:.3f}")
        c = v.comparison
        psnr = "inf" if math.isinf(c.psnr_db) else f"{c.psnr_db:.1f}"
        lo, hi = c.agreement_ci
        ET.SubElement(case, "system-out").text = (
            f"verdict={v.verdict.value} backend={v.backend} kind={v.kind.value} agreement={c.agreement:.6f} "
            f"agreement_ci=[{lo:.6f},{hi:.6f}] accuracy={c.accuracy:.6f} "
            f"accuracy_change={c.accuracy_change:+.3f}pp mcnemar_p={c.mcnemar_p:.4g} "
            f"mcnemar_p_holm={v.judgement.mcnemar_p_holm:.4g} psnr_db={psnr} "
            f"max_abs_diff={c.max_abs_diff:.3g} size_bytes={v.size_bytes}")
        if v.failed:
            ET.SubElement(case, "failure", message=_xml_text(v.reasons[0]),
                          type="threshold").text = _xml_text("\n".join(v.reasons))
        elif v.inconclusive:
            ET.SubElement(case, "failure", message=_xml_text(f"inconclusive: {inconclusive_summary(v)}"),
                          type="inconclusive").text = _xml_text("\n".join(v.judgement.inconclusive_reasons))
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"


def inconclusive_summary(v: VariantCheck) -> str:
    """"needs about N test images to decide" (or why no size would)."""
    n = v.judgement.images_to_decide
    if n is None:
        return "no test-set size decides it at the observed rates"
    return f"needs about {metrics.about(n)} test images to decide (checked {v.comparison.count:,})"
