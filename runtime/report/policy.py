"""What the report decides: one row per variant, the Pareto front (size vs
accuracy), the recommendation per platform and its words, the flipped-sample
gallery, and how numbers are written in the table."""
from __future__ import annotations

import math
from typing import Any

from edgekit.errors import ArtifactError
from edgekit.rundir import PLATFORMS as FORMAT_PLATFORMS, VariantArtifact

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
TABLE_COLUMNS = ["variant", "format", "recipe", "size", "vs fp32", "zipped", "accuracy", "change", "McNemar p",
                 "agreement", "PSNR", "max |Δp|", "latency p50 / p95", "backend", "result"]


def num(v: Any) -> float | None:
    """A finite number, or None (JSON from a check may hold anything)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


# ------------------------------------------------------------------ rows

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


def _format_of(vid: str, entry: dict, variant: VariantArtifact | None) -> str:
    if variant is not None:
        return variant.format
    fmt = entry.get("format")
    if isinstance(fmt, str) and fmt in FORMAT_PLATFORMS:
        return fmt
    # the variant's directory is gone and the check did not record its format
    return "coreml" if vid.startswith("coreml") else "tflite"


def rows_from(check_results: dict, variants: dict[str, VariantArtifact | None]) -> list[dict]:
    """One row per checked variant, ordered by platform then size. A variant's
    size ratio is taken against its declared reference (``VariantArtifact.reference``;
    itself when it is a reference), unknown when its manifest is gone."""
    results = check_results["variants"]
    sizes = {vid: num(e.get("size_bytes")) for vid, e in results.items()}
    rows = []
    for vid, e in results.items():
        variant = variants.get(vid)
        fmt = _format_of(vid, e, variant)
        ref = None if variant is None else (vid if variant.reference is None else variant.reference)
        ref_size = sizes.get(ref) if ref is not None else None
        size = sizes[vid]
        lat = e.get("latency_ms") if isinstance(e.get("latency_ms"), dict) else {}
        backend = str(e.get("backend", "?"))
        recipe = (variant.manifest.get("recipe") if variant is not None else None) or {}
        rows.append({
            "id": vid, "format": fmt,
            "platform": variant.platform if variant is not None else FORMAT_PLATFORMS.get(fmt, "?"),
            "recipe": recipe_summary(recipe), "description": str(recipe.get("description", "")),
            "backend": backend, "backend_label": BACKEND_LABELS.get(backend, backend),
            "size_bytes": size, "ratio_to_fp32": (size / ref_size) if size and ref_size else None,
            "zipped_bytes": num(e.get("zipped_bytes")),
            "accuracy": num(e.get("accuracy")), "accuracy_change": num(e.get("accuracy_change")),
            "mcnemar_p": num(e.get("mcnemar_p")), "agreement": num(e.get("agreement")),
            "psnr_db": num(e.get("psnr_db")),
            "identical_outputs": bool(e.get("identical_outputs")) or e.get("max_abs_diff") == 0,
            "max_abs_diff": num(e.get("max_abs_diff")),
            "latency_p50_ms": num(lat.get("p50")), "latency_p95_ms": num(lat.get("p95")),
            "throughput_ips": num(e.get("throughput_ips")),
            "flipped_count": len(e.get("flipped") or []),
            "passed": bool(e.get("passed")), "reasons": [str(r) for r in e.get("reasons") or []],
            "verdict": str(e.get("verdict") or ("pass" if e.get("passed") else "fail")),
            "inconclusive_reasons": [str(r) for r in e.get("inconclusive_reasons") or []],
            "images_to_decide": e.get("images_to_decide"),
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
            line = (f"{title}: {r['id']} — {fmt_bytes(r['size_bytes'])}{ratio}, accuracy {pct(r['accuracy'])} "
                    f"({pp(r['accuracy_change'])}), agreement {pct(r['agreement'])}, measured on {r['backend_label']}.")
            if r["backend"] == "mil-reference":
                line += " Confirm on a device with the golden kit (golden/) before shipping."
            lines.append(line)
    return lines


def backends(rows: list[dict]) -> list[str]:
    """The backends this report's numbers came from (only those are explained)."""
    return sorted({r["backend"] for r in rows})


# ------------------------------------------------------------------ gallery

def build_gallery(results: dict, class_names: list[str], labels, original_probs, variant_probs,
                  rows: list[dict], per_variant: int, total: int) -> list[dict]:
    """Flipped samples (variant's top-1 differs from the original's), a few
    per variant, failing variants first."""
    orig_pred = original_probs.argmax(axis=1)
    out: list[dict] = []
    for r in sorted(rows, key=lambda r: (r["passed"], r["id"])):
        flipped = results["variants"][r["id"]].get("flipped") or []
        vpred = variant_probs[r["id"]].argmax(axis=1)
        for idx in flipped[:per_variant]:
            if len(out) >= total:
                return out
            i = int(idx)
            if not 0 <= i < len(labels):
                raise ArtifactError("check/results.json", f"variant {r['id']!r} lists flipped index {i}, outside the "
                                    f"{len(labels)} test samples")
            out.append({"variant": r["id"], "index": i,
                        "true": class_names[int(labels[i])],
                        "original": class_names[int(orig_pred[i])],
                        "variant_label": class_names[int(vpred[i])],
                        "variant_confidence": float(variant_probs[r["id"]][i].max()),
                        "original_confidence": float(original_probs[i].max())})
    return out


# ------------------------------------------------------------------ formatting

def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.2f} MB"


def pct(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{100 * v:.{digits}f}%"


def pp(v: float | None) -> str:
    return "—" if v is None else f"{v:+.2f} pp"


def p_value(v: float | None) -> str:
    return "—" if v is None else (f"{v:.3f}" if v >= 0.001 else f"{v:.1e}")


def psnr(r: dict) -> str:
    if r["psnr_db"] is None:
        return "identical" if r["identical_outputs"] else "—"
    return f"{r['psnr_db']:.1f} dB"


def g(v: float | None, fmt: str = ".3g") -> str:
    return "—" if v is None else format(v, fmt)


def verdict_text(r: dict) -> str:
    """pass, FAIL with its reasons, or INCONCLUSIVE with what would decide it (never shown as a pass)."""
    if r["verdict"] == "pass":
        return "pass"
    if r["verdict"] == "inconclusive":
        need = r.get("images_to_decide")
        more = f" (about {need:,} test images would decide)" if isinstance(need, int) else ""
        return "INCONCLUSIVE: " + "; ".join(r["inconclusive_reasons"] or ["undecided"]) + more
    return "FAIL: " + "; ".join(r["reasons"] or ["failed"])


def table_cells(r: dict) -> list[str]:
    lat = "—" if r["latency_p50_ms"] is None else f"{r['latency_p50_ms']:.3f} / {g(r['latency_p95_ms'], '.3f')} ms"
    result = verdict_text(r)
    return [r["id"], r["format"], r["recipe"], fmt_bytes(r["size_bytes"]),
            "—" if r["ratio_to_fp32"] is None else f"{r['ratio_to_fp32']:.2f}x",
            fmt_bytes(r["zipped_bytes"]), pct(r["accuracy"]), pp(r["accuracy_change"]), p_value(r["mcnemar_p"]),
            pct(r["agreement"]), psnr(r), g(r["max_abs_diff"]), lat, r["backend"], result]
