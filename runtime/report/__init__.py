"""The report stage: the size/accuracy trade-off report of a checked run.

In: a checked run, read as ``edgekit.rundir.CheckedRun`` (check results and
predictions, the model manifest with its training plots and dataset, each
variant's manifest with its declared format, platform and reference).

Out: ``<run>/report/`` written atomically:

- ``report.html``: one self-contained page (inline CSS, inline base64 PNGs,
  no scripts, no external URL, every string escaped): the variant table,
  the recommendation per platform, size-vs-accuracy with the Pareto front,
  agreement and latency charts, the confusion matrix of each recommended
  variant, "Where the error comes from" (per layer, for each variant that
  failed its check or is inconclusive and each recommended one: the first
  jump, the worst local layer, the per-layer table and chart), a gallery of
  flipped samples, the training plots and the environment fingerprint;
- ``report.md``: the same table, recommendation and per-layer section as Markdown;
- ``report.json`` (schema ``edgekit.report/2``): rows, the recommendation
  per platform (chosen id, the rule, ``why_not`` for every smaller variant,
  the closest variant when none qualifies), Pareto front, and the sha256 of
  every input (``is_current``);
- ``*.png``: the charts, also as files.

Also ``<run>/diagnose/<id>.json`` and ``<id>.png`` for each diagnosed
variant that had no current one (``diagnoses``: a current one is reused).

The recommendation for a platform (iOS / Core ML, Android / TFLite) follows
``policy.Policy``: the smallest variant of that format whose check passed,
whose accuracy did not drop significantly (exact McNemar, Holm-corrected)
and whose 95% agreement lower bound meets the target (99.5% by default);
``--max-size`` makes it the most faithful variant within a size, and
``--max-accuracy-drop`` caps the change interval. Every smaller variant gets
the reason it was passed over; when none qualifies the report says so and
names the closest. A Core ML result measured by ``mil-reference`` is
labelled as edgekit's numpy interpreter, never as the Core ML runtime.

Modules: ``loader`` (what is read), ``policy`` (rows, front, recommendation,
gallery), ``diagnoses`` (which variants get a per-layer diagnosis, reused or
run), ``charts`` (PNGs), ``render`` (HTML from a Jinja2 template, Markdown).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit import artifacts, rundir
from edgekit.errors import ArtifactError, ConfigError
from edgekit.rundir import REPORT_SCHEMA, CheckArtifact, RunDir
from edgekit.runtime.report import charts as _charts
from edgekit.runtime.report import diagnoses, render
from edgekit.runtime.report.loader import PNG_MAGIC, ReportData, load
from edgekit.runtime.report.policy import (BACKEND_LABELS, DEFAULT_TARGET_AGREEMENT, PLATFORMS, TABLE_COLUMNS,
                                           Decision, Policy, build_gallery, decide, num, pareto_front,
                                           recipe_summary, recommend, recommendation_lines, rows_from, table_cells)

SCHEMA = REPORT_SCHEMA
DEFAULT_GALLERY_PER_VARIANT = 8
DEFAULT_GALLERY_TOTAL = 64
DEFAULT_DIAGNOSE_LIMIT = diagnoses.DEFAULT_LIMIT
# build's way to diagnose: variant id -> why, to one Diagnosed per variant
Diagnoser = Callable[[dict[str, tuple[str, ...]]], list[diagnoses.Diagnosed]]

__all__ = ["BACKEND_LABELS", "DEFAULT_DIAGNOSE_LIMIT", "DEFAULT_GALLERY_PER_VARIANT", "DEFAULT_GALLERY_TOTAL",
           "DEFAULT_TARGET_AGREEMENT", "Decision", "Diagnoser", "PLATFORMS", "PNG_MAGIC", "Policy", "ReportConfig",
           "ReportData", "ReportResult", "SCHEMA", "TABLE_COLUMNS", "build", "build_gallery", "decide", "is_current",
           "load", "pareto_front", "recipe_summary", "recommend", "recommendation_lines", "rows_from", "run",
           "table_cells", "write"]


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """run_dir: the checked run; gallery_per_variant / gallery_total cap the
    flipped-sample gallery; diagnose_limit: test images per variant for the
    per-layer section (0: no section, nothing diagnosed); target_agreement
    (fraction), max_size_kb and max_accuracy_drop (points) are the
    recommendation policy (``Policy``), validated here."""

    run_dir: Path
    gallery_per_variant: int = DEFAULT_GALLERY_PER_VARIANT
    gallery_total: int = DEFAULT_GALLERY_TOTAL
    diagnose_limit: int = DEFAULT_DIAGNOSE_LIMIT
    target_agreement: float = DEFAULT_TARGET_AGREEMENT
    max_size_kb: float | None = None
    max_accuracy_drop: float | None = None

    def __post_init__(self):
        if not isinstance(self.run_dir, (str, os.PathLike)) or not str(self.run_dir):
            raise ConfigError("--run", "a run directory is required")
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        for name in ("gallery_per_variant", "gallery_total", "diagnose_limit"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10_000:
                raise ConfigError(f"--{name.replace('_', '-')}", f"must be an integer in [0, 10000], got {v!r}")
        self.policy  # validates the policy's values (one ConfigError naming the flag)

    @property
    def policy(self) -> Policy:
        return Policy(target_agreement=self.target_agreement, max_size_kb=self.max_size_kb,
                      max_accuracy_drop=self.max_accuracy_drop)


@dataclasses.dataclass(frozen=True)
class ReportResult:
    directory: Path
    html: Path
    markdown: Path
    json: Path
    recommendation: dict           # platform -> variant id or None
    summary: str                   # the recommendation as plain text lines

    @property
    def ok(self) -> bool:
        """A written report is a success, whatever it recommends (no passing variant is news, not a failure)."""
        return True

    def failure(self) -> str | None:
        return None


# the artifacts' places inside a run, for error lines about data that came without its run dir
_IN_RUN = RunDir(Path())


def _validate(data: ReportData) -> None:
    k = len(data.class_names)
    if data.original_probs.shape != (len(data.labels), k):
        raise ArtifactError(_IN_RUN.check_dir / CheckArtifact.prediction_file(CheckArtifact.ORIGINAL),
                            f"shape {data.original_probs.shape} does not match "
                            f"{len(data.labels)} test images x {k} classes")
    if len(data.images) != len(data.labels):
        raise ArtifactError(_IN_RUN.model_manifest, f"{len(data.images)} test images for {len(data.labels)} labels")
    for vid, e in data.results["variants"].items():
        bad = [i for i in e.get("flipped") or []
               if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(data.labels)]
        if bad:
            raise ArtifactError(_IN_RUN.check_results, f"variant {vid!r} lists flipped index {bad[0]!r}, outside the "
                                f"{len(data.labels)} test samples")


def build(data: ReportData, gallery_per_variant: int = DEFAULT_GALLERY_PER_VARIANT,
          gallery_total: int = DEFAULT_GALLERY_TOTAL, policy: Policy | None = None,
          diagnoser: Diagnoser | None = None) -> dict[str, Any]:
    """Compute every part of the report: {"html", "markdown", "json", "charts": {name: png}, "rec",
    "decisions", "lines"}; ``policy`` picks the recommendation (default ``Policy()``);
    ``diagnoser`` is given the variants to diagnose (``diagnoses.targets``) and returns their
    diagnoses (None: no per-layer section)."""
    _validate(data)
    policy = policy or Policy()
    k = len(data.class_names)
    rows = rows_from(data.results, data.variants)
    front = pareto_front(rows)
    for r in rows:
        r["pareto"] = r["id"] in front
    decisions = decide(rows, policy)
    rec = {key: d.chosen for key, d in decisions.items()}
    lines = recommendation_lines(rows, decisions)
    orig = data.results.get("original") or {}
    o_lat = orig.get("latency_ms") if isinstance(orig.get("latency_ms"), dict) else {}
    charts = {
        "size_accuracy.png": _charts.size_accuracy(rows, front, num(orig.get("accuracy"))),
        "agreement.png": _charts.agreement(rows, policy.target_agreement),
        "latency.png": _charts.latency(rows, num(o_lat.get("p50"))),
    }
    cms, cm_json = {}, {}
    for key, r in rec.items():
        if r is None:
            continue
        cm = _charts.confusion(data.labels, data.variant_probs[r["id"]].argmax(axis=1), k)
        png = _charts.confusion_chart(cm, data.class_names, f"{r['id']} (rows: true class)")
        cms[key] = (r["id"], png)
        charts[f"confusion_{key}.png"] = png
        cm_json[key] = {"variant": r["id"], "matrix": cm.tolist()}
    gallery = build_gallery(data.results, data.class_names, data.labels, data.original_probs, data.variant_probs,
                            rows, gallery_per_variant, gallery_total)
    gallery_pngs = [_charts.sample_png(data.images[g["index"]]) for g in gallery]
    diagnosed = None if diagnoser is None else diagnoser(diagnoses.targets(rows, decisions))
    md_charts = list(charts)   # report.md shows each diagnose chart in its own section
    charts.update({f"diagnose_{d.variant}.png": d.chart for d in diagnosed or [] if d.chart})
    report_json = {
        "schema": SCHEMA, "run": data.run_name,
        "inputs": data.inputs,
        "test_count": int(len(data.labels)),
        "original": {"accuracy": num(orig.get("accuracy")), "latency_ms": {k2: num(v) for k2, v in o_lat.items()}},
        "variants": rows,
        "pareto_front": front,
        "policy": policy.to_json(),
        "recommendation": {key: d.to_json() for key, d in decisions.items()},
        "recommendation_text": lines,
        "confusion_matrices": cm_json,
        "gallery": gallery,
        "diagnoses": None if diagnosed is None else [diagnoses.to_json(d) for d in diagnosed],
        "charts": sorted(charts),
        "training_plots": sorted(data.plots),
        "not_converted": data.not_converted,
        "fingerprint": data.fingerprint,
    }
    return {"html": render.html(data, rows, decisions, front, charts, cms, gallery, gallery_pngs, diagnosed),
            "markdown": render.markdown(data, rows, decisions, front, md_charts, diagnosed),
            "json": report_json, "charts": charts, "rec": rec, "decisions": decisions, "lines": lines}


def write(built: dict[str, Any], out_dir: "str | os.PathLike") -> Path:
    """Write a built report into ``out_dir`` atomically (replacing an old report);
    its files are named as ``RunDir`` names them in ``<run>/report/``."""
    out_dir = Path(out_dir)
    names = RunDir(out_dir.parent)
    with artifacts.atomic_dir(out_dir, overwrite=True) as tmp:
        for name, png in built["charts"].items():
            (tmp / name).write_bytes(png)
        (tmp / names.report_html.name).write_text(built["html"], encoding="utf-8")
        (tmp / names.report_md.name).write_text(built["markdown"], encoding="utf-8")
        artifacts.write_json(tmp / names.report_json.name, built["json"])
    return out_dir


def run(config: ReportConfig) -> ReportResult:
    """Load a checked run, diagnose the variants the section needs (printing a
    status line for each), and write ``<run>/report/``."""
    run_dir = RunDir(config.run_dir)
    data = load(run_dir)
    artifacts.check_can_create(run_dir.root)   # an unwritable run is refused before anything is diagnosed
    diagnoser = (functools.partial(diagnoses.run_all, run_dir, limit=config.diagnose_limit)
                 if config.diagnose_limit else None)
    built = build(data, config.gallery_per_variant, config.gallery_total, config.policy, diagnoser)
    write(built, run_dir.report_dir)
    return ReportResult(directory=run_dir.report_dir, html=run_dir.report_html, markdown=run_dir.report_md,
                        json=run_dir.report_json,
                        recommendation={k: (None if r is None else r["id"]) for k, r in built["rec"].items()},
                        summary="\n".join(built["lines"]))


def is_current(run_dir: "RunDir | str | os.PathLike") -> bool:
    """True if ``<run>/report/`` is complete and built from the run's current check, predictions and model."""
    run = RunDir.of(run_dir)
    return run.report_html.is_file() and rundir.recorded_inputs_current(run.report_json, REPORT_SCHEMA, run)
