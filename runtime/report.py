"""The size/accuracy trade-off report of a run.

In: ``<run>/check/results.json`` (edgekit.check/1) with
``check/predictions/<id>.npz`` and ``original.npz``, each variant's
``variants/<id>/variant.json``, ``model/manifest.json`` (class names, the
training plots, and the dataset, re-read to show flipped test images).

Out: ``<run>/report/`` written atomically:

- ``report.html``: one self-contained page (inline CSS, inline base64 PNGs,
  no scripts, no external URL, every string escaped): the variant table,
  the recommendation per platform, size-vs-accuracy with the Pareto front,
  agreement and latency charts, the confusion matrix of each recommended
  variant, a gallery of flipped samples, the training plots and the
  environment fingerprint;
- ``report.md``: the same table and recommendation as Markdown;
- ``report.json`` (schema ``edgekit.report/1``): rows, recommendation,
  Pareto front, and the sha256 of every input (so ``edgekit run`` knows
  when the report is stale);
- ``*.png``: the charts, also as files.

The recommendation for a platform (iOS / Core ML, Android / TFLite) is the
smallest variant of that format whose check passed; when none passed the
report says so plainly. A Core ML result measured by ``mil-reference`` is
labelled as edgekit's numpy interpreter, never as the Core ML runtime.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import artifacts
from edgekit.errors import ArtifactError, ConfigError

SCHEMA = "edgekit.report/1"
CHECK_SCHEMA = "edgekit.check/1"
MODEL_SCHEMA = "edgekit.model/1"
VARIANT_SCHEMA = "edgekit.variant/1"

PLATFORMS = {  # platform key -> (title, variant format)
    "ios": ("iOS / Core ML", "coreml"),
    "android": ("Android / TFLite", "tflite"),
}
BACKEND_LABELS = {
    "litert": "LiteRT interpreter",
    "coreml": "Core ML runtime (macOS)",
    # Never call this "Core ML": it is edgekit's own interpreter of the saved program.
    "mil-reference": "mil-reference (edgekit's numpy interpreter of the ML Program, not the Core ML runtime)",
}
DEFAULT_GALLERY_PER_VARIANT = 8
DEFAULT_GALLERY_TOTAL = 64
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """run: the run directory; gallery_per_variant / gallery_total cap the flipped-sample gallery."""

    run: str
    gallery_per_variant: int = DEFAULT_GALLERY_PER_VARIANT
    gallery_total: int = DEFAULT_GALLERY_TOTAL

    def __post_init__(self):
        if not isinstance(self.run, (str, os.PathLike)) or not str(self.run):
            raise ConfigError("--run", "a run directory is required")
        for name in ("gallery_per_variant", "gallery_total"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10_000:
                raise ConfigError(f"--{name.replace('_', '-')}", f"must be an integer in [0, 10000], got {v!r}")


@dataclasses.dataclass
class ReportData:
    """Everything the renderer needs, already loaded (tests build one by hand)."""

    run_name: str
    class_names: list[str]
    results: dict                       # check/results.json
    variants: dict[str, dict]           # id -> variant.json (may be {} when missing)
    labels: np.ndarray                  # int, N test labels
    images: np.ndarray                  # uint8, N x H x W test images
    original_probs: np.ndarray          # float, N x C
    variant_probs: dict[str, np.ndarray]
    plots: dict[str, bytes] = dataclasses.field(default_factory=dict)   # training plot name -> PNG
    model_info: dict = dataclasses.field(default_factory=dict)          # model manifest "model"/"metrics"/"files"
    inputs: dict = dataclasses.field(default_factory=dict)              # input file -> sha256 (for resume)
    fingerprint: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ReportResult:
    directory: Path
    html: Path
    markdown: Path
    json: Path
    recommendation: dict           # platform -> row dict or None
    summary: str                   # the recommendation as plain text lines


# ------------------------------------------------------------------ loading

def _load_npz_probs(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "probabilities" not in z.files:
                raise ArtifactError(path, f"has no 'probabilities' array (has {sorted(z.files)})")
            probs = np.asarray(z["probabilities"], np.float64)
    except FileNotFoundError:
        raise ArtifactError(path, "predictions file not found; rerun `edgekit check`") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ArtifactError(path, f"not a readable .npz predictions file ({e})") from None
    if probs.ndim != 2 or not np.all(np.isfinite(probs)):
        raise ArtifactError(path, f"probabilities must be a finite N x C array, got shape {probs.shape}")
    return probs


def input_hashes(run: Path) -> dict[str, str]:
    """sha256 of every file the report is computed from (relative path -> hash)."""
    run = Path(run)
    files = [run / "check" / "results.json", run / "model" / "manifest.json"]
    pred = run / "check" / "predictions"
    if pred.is_dir():
        files += sorted(pred.glob("*.npz"))
    out = {}
    for f in files:
        if f.is_file():
            out[f.relative_to(run).as_posix()] = artifacts.sha256_file(f)
    return out


@dataclasses.dataclass
class CheckedRun:
    """A checked run as later stages (report, golden kit) need it, loaded and cross-checked."""

    run: Path
    results: dict                       # check/results.json
    manifest: dict                      # model/manifest.json
    class_names: list[str]
    variants: dict[str, dict]           # id -> variant.json ({} when missing)
    labels: np.ndarray                  # int64 labels of the checked test images
    images: np.ndarray                  # uint8 N x H x W, the checked test images
    original_probs: np.ndarray
    variant_probs: dict[str, np.ndarray]


def load_checked_run(run: str | os.PathLike) -> CheckedRun:
    """Read check/results.json, the predictions, each variant.json, the model
    manifest and the checked test images (rebuilt from the manifest's dataset,
    first ``test_count`` images when the check used --limit)."""
    run = Path(run)
    if not run.is_dir():
        raise ArtifactError(run, "run directory not found")
    check_dir = run / "check"
    results = artifacts.read_manifest(check_dir / "results.json", CHECK_SCHEMA, {"variants": dict})
    model_dir = run / "model"
    manifest = artifacts.read_manifest(model_dir / "manifest.json", MODEL_SCHEMA, {"dataset": dict})
    class_names = manifest["dataset"].get("class_names")
    if not isinstance(class_names, list) or not class_names or not all(isinstance(c, str) for c in class_names):
        raise ArtifactError(model_dir / "manifest.json", "dataset.class_names must be a non-empty list of strings")

    variants: dict[str, dict] = {}
    for vid, entry in results["variants"].items():
        if not isinstance(entry, dict):
            raise ArtifactError(check_dir / "results.json", f"variant {vid!r} entry is not an object")
        path = artifacts.resolve_inside(run, f"variants/{vid}/variant.json", "variant manifest")
        variants[vid] = artifacts.read_manifest(path, VARIANT_SCHEMA) if path.is_file() else {}

    pred_dir = check_dir / "predictions"
    original = _load_npz_probs(pred_dir / "original.npz")
    variant_probs = {}
    for vid in results["variants"]:
        p = _load_npz_probs(artifacts.resolve_inside(pred_dir, f"{vid}.npz", "predictions"))
        if p.shape != original.shape:
            raise ArtifactError(pred_dir / f"{vid}.npz", f"shape {p.shape} differs from the original's {original.shape}")
        variant_probs[vid] = p
    if original.shape[1] != len(class_names):
        raise ArtifactError(pred_dir / "original.npz", f"{original.shape[1]} classes but the model has {len(class_names)}")

    from edgekit.train.data import load_from_manifest

    ds = load_from_manifest(manifest, model_dir)
    n = original.shape[0]
    if n > len(ds.y_test):
        raise ArtifactError(pred_dir / "original.npz", f"{n} predictions but the model's test split has only "
                            f"{len(ds.y_test)} images; rerun `edgekit check`")
    labels = np.asarray(ds.y_test[:n], np.int64)
    try:
        with np.load(pred_dir / "original.npz", allow_pickle=False) as z:
            if "labels" in z.files and not np.array_equal(np.asarray(z["labels"]), labels):
                raise ArtifactError(pred_dir / "original.npz", "labels differ from the model's test split; rerun `edgekit check`")
    except (OSError, ValueError) as e:
        raise ArtifactError(pred_dir / "original.npz", f"cannot read labels ({e})") from None
    images = np.asarray(ds.x_test[:n])
    images = images.reshape(n, images.shape[1], images.shape[2])
    return CheckedRun(run=run, results=results, manifest=manifest, class_names=class_names, variants=variants,
                      labels=labels, images=images, original_probs=original, variant_probs=variant_probs)


def load(run: str | os.PathLike) -> ReportData:
    """Everything the report shows, from a checked run directory."""
    from edgekit.artifacts import cpu_description

    c = load_checked_run(run)
    model_dir = c.run / "model"
    plots: dict[str, bytes] = {}
    for name, rel in sorted((c.manifest.get("plots") or {}).items()):
        if not isinstance(rel, str) or not rel.endswith(".png"):
            continue
        p = artifacts.resolve_inside(model_dir, rel, f"plot {name!r}")
        try:
            data = p.read_bytes()
        except OSError:
            continue  # a missing plot leaves a gap in the report, not a failed report
        if data.startswith(PNG_MAGIC):
            plots[str(name)] = data

    versions = c.results.get("versions") if isinstance(c.results.get("versions"), dict) else {}
    fingerprint = {str(k): str(v) for k, v in versions.items()}
    if "cpu" not in fingerprint:  # the check did not record it: say whose CPU this is
        fingerprint["cpu (machine that wrote this report)"] = cpu_description()
    return ReportData(
        run_name=c.run.resolve().name, class_names=c.class_names, results=c.results, variants=c.variants,
        labels=c.labels, images=c.images, original_probs=c.original_probs, variant_probs=c.variant_probs,
        plots=plots, model_info={k: c.manifest.get(k) for k in ("model", "metrics", "files")},
        inputs=input_hashes(c.run), fingerprint=fingerprint,
    )


# ------------------------------------------------------------------ rows

def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _platform_of(vid: str, variant: dict) -> str:
    fmt = variant.get("format") or ("coreml" if vid.startswith("coreml") else "tflite" if vid.startswith("tflite") else "?")
    return {"coreml": "ios", "tflite": "android"}.get(fmt, variant.get("platform", "?"))


def recipe_summary(recipe: dict) -> str:
    """A few words on what a recipe does (the full description goes below the table)."""
    if not isinstance(recipe, dict):
        return ""
    parts = []
    if "coreml" in recipe and isinstance(recipe["coreml"], dict):
        c = recipe["coreml"]
        parts.append(str(c.get("compute_precision", "")))
        comp = c.get("compression")
        if isinstance(comp, dict):
            bits = comp.get("nbits") or comp.get("dtype") or comp.get("target_sparsity") or ""
            parts.append(f"{comp.get('method', '')} {bits}".strip())
    if "tflite" in recipe and isinstance(recipe["tflite"], dict):
        t = recipe["tflite"]
        opts = t.get("optimizations") or []
        types = t.get("supported_types") or []
        parts.append(" ".join(str(x).lower() for x in opts) or "no optimization")
        if types:
            parts.append("types " + ",".join(map(str, types)))
        if t.get("representative"):
            parts.append("calibrated")
        if t.get("inference_input_type"):
            parts.append(f"I/O {t['inference_input_type']}")
    if isinstance(recipe.get("finetune"), dict):
        parts.append(str(recipe["finetune"].get("method", "fine-tuned")))
    return ", ".join(p for p in parts if p)


def build_rows(data: ReportData) -> list[dict]:
    """One row per variant, ordered by platform then size."""
    return rows_from(data.results, data.variants)


def rows_from(check_results: dict, variant_manifests: dict[str, dict]) -> list[dict]:
    """Rows from check/results.json and the variants' manifests (id -> variant.json)."""
    results = check_results["variants"]
    sizes = {vid: _num(e.get("size_bytes")) for vid, e in results.items()}
    rows = []
    for vid, e in results.items():
        variant = variant_manifests.get(vid) or {}
        fmt = variant.get("format") or ("coreml" if vid.startswith("coreml") else "tflite")
        fp32 = sizes.get(f"{fmt}-fp32")
        size = sizes[vid]
        lat = e.get("latency_ms") if isinstance(e.get("latency_ms"), dict) else {}
        backend = str(e.get("backend", "?"))
        recipe = variant.get("recipe") or {}
        rows.append({
            "id": vid, "format": fmt, "platform": _platform_of(vid, variant),
            "recipe": recipe_summary(recipe), "description": str(recipe.get("description", "")),
            "backend": backend, "backend_label": BACKEND_LABELS.get(backend, backend),
            "size_bytes": size, "ratio_to_fp32": (size / fp32) if size and fp32 else None,
            "zipped_bytes": _num(e.get("zipped_bytes")),
            "accuracy": _num(e.get("accuracy")), "accuracy_change": _num(e.get("accuracy_change")),
            "mcnemar_p": _num(e.get("mcnemar_p")), "agreement": _num(e.get("agreement")),
            "psnr_db": _num(e.get("psnr_db")), "identical_outputs": bool(e.get("identical_outputs")) or e.get("max_abs_diff") == 0,
            "max_abs_diff": _num(e.get("max_abs_diff")),
            "latency_p50_ms": _num(lat.get("p50")), "latency_p95_ms": _num(lat.get("p95")),
            "throughput_ips": _num(e.get("throughput_ips")),
            "flipped_count": len(e.get("flipped") or []),
            "passed": bool(e.get("passed")), "reasons": [str(r) for r in e.get("reasons") or []],
        })
    rows.sort(key=lambda r: (r["platform"] != "ios", r["size_bytes"] or math.inf, r["id"]))
    return rows


def pareto_front(rows: list[dict]) -> list[str]:
    """Ids not dominated in (smaller size, higher accuracy): no other variant is
    at most as large and at least as accurate, and strictly better in one."""
    pts = [(r["id"], r["size_bytes"], r["accuracy"]) for r in rows if r["size_bytes"] and r["accuracy"] is not None]
    front = []
    for vid, s, a in pts:
        dominated = any((s2 <= s and a2 >= a) and (s2 < s or a2 > a) for v2, s2, a2 in pts if v2 != vid)
        if not dominated:
            front.append(vid)
    return sorted(front, key=lambda v: next(s for i, s, _ in pts if i == v))


def recommend(rows: list[dict]) -> dict[str, dict | None]:
    """Per platform, the smallest passing variant (ties: the more accurate)."""
    out: dict[str, dict | None] = {}
    for key, (_title, fmt) in PLATFORMS.items():
        ok = [r for r in rows if r["format"] == fmt and r["passed"] and r["size_bytes"]]
        ok.sort(key=lambda r: (r["size_bytes"], -(r["accuracy"] or 0.0), r["id"]))
        out[key] = ok[0] if ok else None
    return out


def recommendation_lines(rows: list[dict], rec: dict[str, dict | None]) -> list[str]:
    """The recommendation in plain words, one line per platform."""
    lines = []
    for key, (title, fmt) in PLATFORMS.items():
        mine = [r for r in rows if r["format"] == fmt]
        r = rec[key]
        if not mine:
            lines.append(f"{title}: no {fmt} variant was checked in this run.")
        elif r is None:
            lines.append(f"{title}: NONE of the {len(mine)} {fmt} variants passes the thresholds; do not ship a "
                         f"compressed {fmt} model from this run without reviewing the failures below.")
        else:
            ratio = f", {r['ratio_to_fp32']:.2f}x of float32" if r["ratio_to_fp32"] else ""
            line = (f"{title}: {r['id']} — {_fmt_bytes(r['size_bytes'])}{ratio}, accuracy {_pct(r['accuracy'])} "
                    f"({_pp(r['accuracy_change'])}), agreement {_pct(r['agreement'])}, measured on {r['backend_label']}.")
            if r["backend"] == "mil-reference":
                line += " Confirm on a device with the golden kit (golden/) before shipping."
            lines.append(line)
    return lines


# ------------------------------------------------------------------ formatting

def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.2f} MB"


def _pct(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{100 * v:.{digits}f}%"


def _pp(v: float | None) -> str:
    return "—" if v is None else f"{v:+.2f} pp"


def _p(v: float | None) -> str:
    return "—" if v is None else (f"{v:.3f}" if v >= 0.001 else f"{v:.1e}")


def _psnr(r: dict) -> str:
    if r["psnr_db"] is None:
        return "identical" if r["identical_outputs"] else "—"
    return f"{r['psnr_db']:.1f} dB"


def _g(v: float | None, fmt: str = ".3g") -> str:
    return "—" if v is None else format(v, fmt)


TABLE_COLUMNS = ["variant", "format", "recipe", "size", "vs fp32", "zipped", "accuracy", "change", "McNemar p",
                 "agreement", "PSNR", "max |Δp|", "latency p50 / p95", "backend", "result"]


def table_cells(r: dict) -> list[str]:
    lat = "—" if r["latency_p50_ms"] is None else f"{r['latency_p50_ms']:.3f} / {_g(r['latency_p95_ms'], '.3f')} ms"
    result = "pass" if r["passed"] else "FAIL: " + "; ".join(r["reasons"] or ["failed"])
    return [r["id"], r["format"], r["recipe"], _fmt_bytes(r["size_bytes"]),
            "—" if r["ratio_to_fp32"] is None else f"{r['ratio_to_fp32']:.2f}x",
            _fmt_bytes(r["zipped_bytes"]), _pct(r["accuracy"]), _pp(r["accuracy_change"]), _p(r["mcnemar_p"]),
            _pct(r["agreement"]), _psnr(r), _g(r["max_abs_diff"]), lat, r["backend"], result]


# ------------------------------------------------------------------ charts

def _mpl_text(s: str, limit: int = 24) -> str:
    """A label safe for matplotlib: no mathtext ($), bounded length."""
    s = str(s).replace("$", r"\$")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


COLORS = {"ios": "#1f77b4", "android": "#2ca02c"}


def chart_size_accuracy(rows: list[dict], front: list[str], original_acc: float | None) -> bytes:
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    for r in rows:
        if not r["size_bytes"] or r["accuracy"] is None:
            continue
        c = COLORS.get(r["platform"], "#777777")
        ax.scatter(r["size_bytes"] / 1024, 100 * r["accuracy"], s=60, color=c if r["passed"] else "white",
                   edgecolors=c, marker="o" if r["passed"] else "X", linewidths=1.5, zorder=3)
        ax.annotate(_mpl_text(r["id"]), (r["size_bytes"] / 1024, 100 * r["accuracy"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    pts = sorted((r["size_bytes"] / 1024, 100 * r["accuracy"]) for r in rows if r["id"] in front)
    if pts:
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="#d62728", lw=1.2, zorder=2,
                label="Pareto front (smaller and more accurate)")
    if original_acc is not None:
        ax.axhline(100 * original_acc, color="#555555", ls="--", lw=1, label="original model")
    ax.scatter([], [], color=COLORS["ios"], label="Core ML (iOS)")
    ax.scatter([], [], color=COLORS["android"], label="TFLite (Android)")
    ax.scatter([], [], color="white", edgecolors="k", marker="X", label="failed thresholds")
    ax.set_xscale("log")
    ax.set_xlabel("file size (KB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Size vs accuracy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def chart_agreement(rows: list[dict]) -> bytes:
    rs = [r for r in rows if r["agreement"] is not None]
    fig = _figure(8, 0.35 * max(len(rs), 2) + 1.2)
    ax = fig.add_subplot()
    y = np.arange(len(rs))
    ax.barh(y, [100 * r["agreement"] for r in rs], color=[COLORS.get(r["platform"], "#777") if r["passed"] else "#d62728" for r in rs])
    ax.set_yticks(y, [_mpl_text(r["id"], 30) for r in rs], fontsize=8)
    lo = min([100 * r["agreement"] for r in rs] + [99.0])
    ax.set_xlim(max(0.0, lo - 0.5), 100.05)
    for yi, r in zip(y, rs):
        ax.text(100 * r["agreement"], yi, f" {100 * r['agreement']:.2f}%", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("top-1 agreement with the original (%); red = failed thresholds")
    ax.set_title("Agreement with the original model")
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def chart_latency(rows: list[dict], original_ms: float | None) -> bytes:
    rs = [r for r in rows if r["latency_p50_ms"] is not None]
    fig = _figure(8, 0.35 * max(len(rs), 2) + 1.2)
    ax = fig.add_subplot()
    y = np.arange(len(rs))
    p50 = np.array([r["latency_p50_ms"] for r in rs])
    p95 = np.array([r["latency_p95_ms"] if r["latency_p95_ms"] is not None else r["latency_p50_ms"] for r in rs])
    ax.barh(y, p50, xerr=[np.zeros_like(p50), np.maximum(p95 - p50, 0)], capsize=3,
            color=[COLORS.get(r["platform"], "#777") for r in rs])
    ax.set_yticks(y, [_mpl_text(f"{r['id']} [{r['backend']}]", 40) for r in rs], fontsize=8)
    if original_ms is not None:
        ax.axvline(original_ms, color="#555555", ls="--", lw=1, label=f"original (TensorFlow) {original_ms:.3f} ms")
        ax.legend(fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("batch-1 latency, ms (bar p50, whisker p95) on this machine's CPU")
    ax.set_title("Latency" + (" (mil-reference is a numpy interpreter: not a device speed)"
                              if any(r["backend"] == "mil-reference" for r in rs) else ""))
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def confusion(labels: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def chart_confusion(cm: np.ndarray, class_names: list[str], title: str) -> bytes:
    k = cm.shape[0]
    fig = _figure(1.0 + 0.5 * k, 0.8 + 0.5 * k)
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues")
    names = [_mpl_text(c, 12) for c in class_names]
    ax.set_xticks(range(k), names, rotation=90 if k > 10 or max(map(len, names)) > 3 else 0, fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    thr = cm.max() / 2 if cm.size else 0
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > thr else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(_mpl_text(title, 60))
    return _png(fig)


def sample_png(image: np.ndarray, scale: int = 3) -> bytes:
    from PIL import Image

    img = Image.fromarray(np.asarray(image, np.uint8), mode="L")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ gallery

def build_gallery(data: ReportData, rows: list[dict], per_variant: int, total: int) -> list[dict]:
    """Flipped samples (variant's top-1 differs from the original's), a few
    per variant, failing variants first."""
    orig_pred = data.original_probs.argmax(axis=1)
    out: list[dict] = []
    for r in sorted(rows, key=lambda r: (r["passed"], r["id"])):
        flipped = data.results["variants"][r["id"]].get("flipped") or []
        vpred = data.variant_probs[r["id"]].argmax(axis=1)
        for idx in flipped[:per_variant]:
            if len(out) >= total:
                return out
            i = int(idx)
            if not 0 <= i < len(data.labels):
                raise ArtifactError("check/results.json", f"variant {r['id']!r} lists flipped index {i}, outside the "
                                    f"{len(data.labels)} test samples")
            out.append({"variant": r["id"], "index": i,
                        "true": data.class_names[int(data.labels[i])],
                        "original": data.class_names[int(orig_pred[i])],
                        "variant_label": data.class_names[int(vpred[i])],
                        "variant_confidence": float(data.variant_probs[r["id"]][i].max()),
                        "original_confidence": float(data.original_probs[i].max())})
    return out


# ------------------------------------------------------------------ rendering

CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:1.6em;margin-bottom:0.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
th{background:#f2f2f2}td.l,th.l{text-align:left}tr.fail td{background:#fff1f0}tr.rec td{background:#eefbea;font-weight:600}
.reco{border:2px solid #2ca02c;background:#f6fff3;padding:8px 14px;margin:10px 0}.reco.none{border-color:#d62728;background:#fff5f5}
.note{color:#555;font-size:12.5px}img.chart{max-width:100%;border:1px solid #eee;margin:6px 0}
.gallery{display:flex;flex-wrap:wrap;gap:10px}figure.flip{margin:0;border:1px solid #ddd;padding:6px;width:150px;font-size:12px}
figure.flip img{image-rendering:pixelated;width:84px;height:84px;display:block;margin:0 auto 4px}
.plots img{max-width:48%;margin:4px;border:1px solid #eee}code{background:#f4f4f4;padding:0 3px}
"""


def _backends(rows: list[dict]) -> list[str]:
    """The backends this report's numbers came from (only those are explained)."""
    return sorted({r["backend"] for r in rows})


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _img(png: bytes, alt: str, cls: str = "chart") -> str:
    return f'<img class="{cls}" alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def render_html(data: ReportData, rows, rec, lines, front, charts, cms, gallery, gallery_pngs) -> str:
    orig = data.results.get("original") or {}
    o_lat = orig.get("latency_ms") if isinstance(orig.get("latency_ms"), dict) else {}
    rec_ids = {r["id"] for r in rec.values() if r}
    o_p50 = _num(o_lat.get("p50"))
    o_p50_text = "—" if o_p50 is None else f"{o_p50:.3f} ms"
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>edgekit report: {_e(data.run_name)}</title>",
         '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; style-src \'unsafe-inline\'">',
         f"<style>{CSS}</style></head><body>",
         f"<h1>edgekit report: {_e(data.run_name)}</h1>",
         f'<p class="note">{len(rows)} variants checked on {_e(data.results.get("test_count", len(data.labels)))} test images. '
         f'Original model accuracy {_e(_pct(_num(orig.get("accuracy"))))}.</p>',
         "<h2>Recommendation</h2>"]
    for (key, (title, _fmt)), line in zip(PLATFORMS.items(), lines):
        h.append(f'<div class="reco{"" if rec[key] else " none"}" id="reco-{key}"><b>{_e(title)}</b>: '
                 f'{_e(line.split(": ", 1)[1])}</div>')
    h.append('<p class="note">The smallest variant of each format whose check passed (agreement, accuracy drop, '
             'PSNR thresholds per variant kind). Sizes are on-disk bytes; "zipped" is what an app download costs.</p>')

    h.append('<h2>Variants</h2><table id="variants"><thead><tr>')
    h += [f'<th class="{"l" if i < 3 or c in ("backend", "result") else ""}">{_e(c)}</th>' for i, c in enumerate(TABLE_COLUMNS)]
    h.append("</tr></thead><tbody>")
    h.append('<tr><td class="l">original (Keras)</td><td class="l">keras</td><td class="l">float32</td>'
             f'<td>{_e(_fmt_bytes(_num((((data.model_info.get("files") or {}).get("keras") or {}).get("size_bytes")))))}</td>'
             f'<td></td><td></td><td>{_e(_pct(_num(orig.get("accuracy"))))}</td><td></td><td></td><td>100.00%</td><td></td><td></td>'
             f'<td>{_e(o_p50_text)}</td>'
             '<td class="l">TensorFlow</td><td class="l">reference</td></tr>')
    for r in rows:
        cls = "rec" if r["id"] in rec_ids else ("" if r["passed"] else "fail")
        cells = table_cells(r)
        tds = [f'<td class="{"l" if i < 3 or i >= 13 else ""}"' + (f' title="{_e(r["backend_label"])}"' if i == 13 else "")
               + f">{_e(c)}</td>" for i, c in enumerate(cells)]
        h.append(f'<tr class="{cls}" id="row-{_e(r["id"])}">' + "".join(tds) + "</tr>")
    h.append("</tbody></table>")
    h.append('<p class="note">change: accuracy change in percentage points vs the original, with the exact McNemar '
             "p-value of that change (small p: the change is real, not noise). agreement: share of test images with "
             "the same top-1 class as the original. PSNR: of the output probabilities (peak 1). Backends: "
             + "; ".join(f"<code>{_e(b)}</code> = {_e(BACKEND_LABELS.get(b, b))}" for b in _backends(rows)) + ".</p>")
    h.append("<details><summary>Recipes</summary><ul>")
    h += [f"<li><code>{_e(r['id'])}</code>: {_e(r['description'])}</li>" for r in rows if r["description"]]
    h.append("</ul></details>")

    h.append("<h2>Size vs accuracy</h2>")
    h.append(_img(charts["size_accuracy.png"], "size vs accuracy chart with the Pareto front"))
    h.append(f'<p class="note">Pareto front: {_e(", ".join(front) or "—")}</p>')
    h.append("<h2>Agreement</h2>" + _img(charts["agreement.png"], "top-1 agreement per variant"))
    h.append("<h2>Latency</h2>" + _img(charts["latency.png"], "batch-1 latency per variant"))
    h.append('<p class="note">Latency is measured on the machine that ran the check, one image at a time; '
             "mil-reference numbers are a Python interpreter's, not a phone's.</p>")

    h.append("<h2>Confusion matrix of the recommended variant</h2>")
    if not cms:
        h.append('<p class="reco none">No variant passed, so there is no recommended variant to show.</p>')
    for key, (vid, png) in cms.items():
        h.append(f"<h3>{_e(PLATFORMS[key][0])}: {_e(vid)}</h3>" + _img(png, f"confusion matrix of {vid}"))

    h.append("<h2>Flipped samples</h2>")
    total_flips = sum(r["flipped_count"] for r in rows)
    h.append(f'<p class="note">Test images where a variant\'s top-1 differs from the original\'s: {total_flips} in all, '
             f"{len(gallery)} shown (failing variants first).</p>")
    h.append('<div class="gallery">')
    for g, png in zip(gallery, gallery_pngs):
        h.append('<figure class="flip">' + _img(png, f"test image {g['index']}", cls="sample")
                 + f'<figcaption><b>{_e(g["variant"])}</b> #{g["index"]}<br>true: <span class="true">{_e(g["true"])}</span>'
                 f'<br>original: <span class="orig">{_e(g["original"])}</span> ({g["original_confidence"]:.2f})'
                 f'<br>variant: <span class="var">{_e(g["variant_label"])}</span> ({g["variant_confidence"]:.2f})</figcaption></figure>')
    h.append("</div>")
    if not gallery:
        h.append('<p class="note">No flipped samples: every variant agrees with the original on every test image.</p>')

    h.append("<h2>Training</h2>")
    metrics = data.model_info.get("metrics") or {}
    model = data.model_info.get("model") or {}
    h.append(f'<p class="note">model {_e(model.get("name", "?"))}, {_e(model.get("params", "?"))} parameters; '
             f'test accuracy {_e(_pct(_num(metrics.get("test_accuracy"))))}, epochs {_e(metrics.get("epochs_run", "?"))}, '
             f'training time {_e(_g(_num(metrics.get("train_seconds")), ".1f"))} s.</p>')
    h.append('<div class="plots">' + "".join(_img(png, f"training plot {name}", cls="plot") for name, png in data.plots.items())
             + "</div>")
    if not data.plots:
        h.append('<p class="note">The model manifest lists no training plots.</p>')

    h.append("<h2>Environment</h2><table id=\"environment\">")
    h += [f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>' for k, v in sorted(data.fingerprint.items())]
    h.append("</table>")
    h.append('<p class="note">Versions as recorded by the check stage (the numbers above were measured with them).</p>')
    h.append("</body></html>")
    return "\n".join(h)


def _md(s: Any) -> str:
    """Markdown-safe: HTML-escaped (Markdown passes raw HTML through) and no table-breaking pipes."""
    return html.escape(str(s), quote=True).replace("|", "\\|").replace("\n", " ")


def render_markdown(data: ReportData, rows, lines, front, chart_files, cms) -> str:
    orig = data.results.get("original") or {}
    md = [f"# edgekit report: {_md(data.run_name)}", "",
          f"{len(rows)} variants checked on {_md(data.results.get('test_count', len(data.labels)))} test images; "
          f"original accuracy {_pct(_num(orig.get('accuracy')))}.", "", "## Recommendation", ""]
    md += [f"- {_md(line)}" for line in lines]
    md += ["", "## Variants", "", "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    md += ["| " + " | ".join(_md(c) for c in table_cells(r)) + " |" for r in rows]
    md += ["", "Backends: " + "; ".join(f"`{_md(b)}` = {_md(BACKEND_LABELS.get(b, b))}" for b in _backends(rows)) + ".", "",
           f"Pareto front (size vs accuracy): {_md(', '.join(front) or '—')}", "", "## Charts", ""]
    md += [f"![{_md(name)}]({name})" for name in chart_files]
    md += ["", "## Environment", ""] + [f"- {_md(k)}: {_md(v)}" for k, v in sorted(data.fingerprint.items())]
    return "\n".join(md) + "\n"


def build(data: ReportData, gallery_per_variant: int = DEFAULT_GALLERY_PER_VARIANT,
          gallery_total: int = DEFAULT_GALLERY_TOTAL) -> dict[str, Any]:
    """Compute every part of the report. Returns {"html", "markdown", "json", "charts": {name: png}}."""
    k = len(data.class_names)
    if data.original_probs.shape != (len(data.labels), k):
        raise ArtifactError("check/predictions/original.npz", f"shape {data.original_probs.shape} does not match "
                            f"{len(data.labels)} test images x {k} classes")
    if len(data.images) != len(data.labels):
        raise ArtifactError("model/manifest.json", f"{len(data.images)} test images for {len(data.labels)} labels")
    for vid, e in data.results["variants"].items():
        bad = [i for i in e.get("flipped") or [] if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(data.labels)]
        if bad:
            raise ArtifactError("check/results.json", f"variant {vid!r} lists flipped index {bad[0]!r}, outside the "
                                f"{len(data.labels)} test samples")
    rows = build_rows(data)
    front = pareto_front(rows)
    for r in rows:
        r["pareto"] = r["id"] in front
    rec = recommend(rows)
    lines = recommendation_lines(rows, rec)
    orig = data.results.get("original") or {}
    o_lat = orig.get("latency_ms") if isinstance(orig.get("latency_ms"), dict) else {}
    charts = {
        "size_accuracy.png": chart_size_accuracy(rows, front, _num(orig.get("accuracy"))),
        "agreement.png": chart_agreement(rows),
        "latency.png": chart_latency(rows, _num(o_lat.get("p50"))),
    }
    cms = {}
    cm_json = {}
    for key, r in rec.items():
        if r is None:
            continue
        cm = confusion(data.labels, data.variant_probs[r["id"]].argmax(axis=1), k)
        png = chart_confusion(cm, data.class_names, f"{r['id']} (rows: true class)")
        cms[key] = (r["id"], png)
        charts[f"confusion_{key}.png"] = png
        cm_json[key] = {"variant": r["id"], "matrix": cm.tolist()}
    gallery = build_gallery(data, rows, gallery_per_variant, gallery_total)
    gallery_pngs = [sample_png(data.images[g["index"]]) for g in gallery]
    html_text = render_html(data, rows, rec, lines, front, charts, cms, gallery, gallery_pngs)
    md_text = render_markdown(data, rows, lines, front, list(charts), cms)
    report_json = {
        "schema": SCHEMA, "run": data.run_name,
        "inputs": data.inputs,
        "test_count": int(len(data.labels)),
        "original": {"accuracy": _num(orig.get("accuracy")), "latency_ms": {k2: _num(v) for k2, v in o_lat.items()}},
        "variants": rows,
        "pareto_front": front,
        "recommendation": {key: (None if r is None else r["id"]) for key, r in rec.items()},
        "recommendation_text": lines,
        "confusion_matrices": cm_json,
        "gallery": gallery,
        "charts": sorted(charts),
        "training_plots": sorted(data.plots),
        "fingerprint": data.fingerprint,
    }
    return {"html": html_text, "markdown": md_text, "json": report_json, "charts": charts, "rec": rec, "lines": lines}


def write(built: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write a built report into ``out_dir`` atomically (replacing an old report)."""
    out_dir = Path(out_dir)
    with artifacts.atomic_dir(out_dir, overwrite=True) as tmp:
        for name, png in built["charts"].items():
            (tmp / name).write_bytes(png)
        (tmp / "report.html").write_text(built["html"], encoding="utf-8")
        (tmp / "report.md").write_text(built["markdown"], encoding="utf-8")
        artifacts.write_json(tmp / "report.json", built["json"])
    return out_dir


def run(config: ReportConfig) -> ReportResult:
    """Load a run's check results and write ``<run>/report/``."""
    run_dir = Path(config.run)
    data = load(run_dir)
    built = build(data, config.gallery_per_variant, config.gallery_total)
    out = write(built, run_dir / "report")
    return ReportResult(directory=out, html=out / "report.html", markdown=out / "report.md", json=out / "report.json",
                        recommendation={k: (None if r is None else r["id"]) for k, r in built["rec"].items()},
                        summary="\n".join(built["lines"]))


def recorded_inputs_current(run: str | os.PathLike, manifest: Path, schema: str) -> bool:
    """True if ``manifest`` (a derived artifact recording ``inputs``: relative
    path -> sha256) was built from exactly the run's current check results,
    predictions and model manifest."""
    if not manifest.is_file():
        return False
    try:
        old = artifacts.read_manifest(manifest, schema, {"inputs": dict})
    except ArtifactError:
        return False
    return bool(old["inputs"]) and old["inputs"] == input_hashes(run)


def is_current(run: str | os.PathLike) -> bool:
    """True if ``<run>/report/`` is complete and built from the current inputs."""
    run = Path(run)
    return (run / "report" / "report.html").is_file() and recorded_inputs_current(run, run / "report" / "report.json", SCHEMA)
