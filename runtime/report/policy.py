"""What the report decides: one row per variant, the Pareto front (size vs
accuracy), the recommendation per platform and its words, the flipped-sample
gallery, and how numbers are written in the table."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from edgekit.errors import ConfigError
from edgekit.runtime import metrics
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
TABLE_COLUMNS = ["variant", "format", "recipe", "size", "vs fp32", "zipped", "bits / weight", "compressed",
                 "accuracy", "change", "McNemar p", "agreement [95% CI]", "PSNR", "max |Δp|", "latency p50 / p95",
                 "backend", "result"]
LEFT_COLUMNS = frozenset({"variant", "format", "recipe", "backend", "result"})  # text, not numbers


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
            parts.append(_compression_words(comp))
        layers = c.get("layers")
        if isinstance(layers, dict) and layers:   # edgekit tune's per-layer plan
            parts.append("per layer " + ", ".join(
                f"{name} {_compression_words(v) if isinstance(v, dict) else 'float16'}" for name, v in layers.items()))
    if "tflite" in recipe and isinstance(recipe["tflite"], dict):
        t = recipe["tflite"]
        opts = t.get("optimizations") or []
        types = t.get("supported_types") or []
        layers = t.get("layers")
        if isinstance(layers, dict) and layers:   # edgekit tune's per-layer weights on a float32 conversion
            parts.append("per-layer weights " + ", ".join(
                f"{name} {s.get('weights', '?') if isinstance(s, dict) else 'float'}" for name, s in layers.items()))
        else:
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


def _compression_words(comp: dict) -> str:
    bits = comp.get("nbits") or comp.get("dtype") or comp.get("target_sparsity") or ""
    return f"{comp.get('method', '')} {bits}".strip()


def _format_of(vid: str, entry: dict, variant: VariantArtifact | None) -> str:
    if variant is not None:
        return variant.format
    fmt = entry.get("format")
    if isinstance(fmt, str) and fmt in FORMAT_PLATFORMS:
        return fmt
    # the variant's directory is gone and the check did not record its format
    return "coreml" if vid.startswith("coreml") else "tflite"


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _interval(v: Any) -> tuple[float, float] | None:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(num(x) is not None for x in v) and v[0] <= v[1]:
        return float(v[0]), float(v[1])
    return None


def _agreement_ci(e: dict, count: int | None) -> tuple[float, float] | None:
    """The check's 95% agreement interval; for a check that recorded none, the
    Wilson interval of its flips over its images (metrics.wilson_interval)."""
    ci = _interval(e.get("agreement_ci"))
    flipped = e.get("flipped")
    if ci is None and count and isinstance(flipped, list) and len(flipped) <= count:
        ci = metrics.wilson_interval(count - len(flipped), count)
    return ci


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
        audit = (variant.manifest.get("weights") if variant is not None else None) or {}
        audit = audit if isinstance(audit, dict) else {}
        count = _count(e.get("count")) or _count(check_results.get("test_count"))
        b, c = _count(e.get("discordant_b")), _count(e.get("discordant_c"))
        p_raw = num(e.get("mcnemar_p"))
        if p_raw is None and b is not None and c is not None:
            p_raw = metrics.mcnemar_exact_p(b, c)   # a check that recorded the counts but not the test
        rows.append({
            "id": vid, "format": fmt,
            "platform": variant.platform if variant is not None else FORMAT_PLATFORMS.get(fmt, "?"),
            "recipe": recipe_summary(recipe), "description": str(recipe.get("description", "")),
            "backend": backend, "backend_label": BACKEND_LABELS.get(backend, backend),
            "size_bytes": size, "ratio_to_fp32": (size / ref_size) if size and ref_size else None,
            "zipped_bytes": num(e.get("zipped_bytes")),
            "accuracy": num(e.get("accuracy")), "accuracy_change": num(e.get("accuracy_change")),
            "mcnemar_p": p_raw, "mcnemar_p_holm": num(e.get("mcnemar_p_holm")),
            "holm_family": e.get("holm_family") if isinstance(e.get("holm_family"), int) else None,
            "discordant_b": b, "discordant_c": c,
            "agreement": num(e.get("agreement")),
            "agreement_ci": _agreement_ci(e, count), "accuracy_change_ci": _interval(e.get("accuracy_change_ci")),
            "bits_per_weight": num(audit.get("bits_per_weight")), "compressed_share": num(audit.get("compressed_share")),
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


# ------------------------------------------------------------------ recommendation

# "Keeps the original's answers" means the same as for a quantized variant's
# check (metrics.QUANTIZED_MIN_AGREEMENT): the 95% lower bound of top-1
# agreement must clear 99.5%, i.e. the test set shows that at most 1 image in
# 200 changes class. Stricter targets are a flag away; a looser one should be
# a deliberate choice, not the default.
DEFAULT_TARGET_AGREEMENT = 0.995


@dataclasses.dataclass(frozen=True)
class Policy:
    """How the report picks a variant per platform.

    A variant qualifies when its check passed, its accuracy did not drop
    significantly (exact McNemar p, Holm-adjusted across the checked variants,
    not below ``significance``), the 95% lower bound of its agreement is at least
    ``target_agreement``, and, when set, the 95% interval of its accuracy change
    stays above ``-max_accuracy_drop`` points and its file is at most
    ``max_size_kb``. Without a size cap the smallest qualifying variant wins; with
    one, the most faithful (highest agreement) qualifying variant within it.
    """

    target_agreement: float = DEFAULT_TARGET_AGREEMENT
    max_size_kb: float | None = None
    max_accuracy_drop: float | None = None      # percentage points
    significance: float = metrics.SIGNIFICANCE

    def __post_init__(self):
        t = self.target_agreement
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0.0 < t <= 1.0:
            raise ConfigError("--target-agreement", f"must be a fraction in (0, 1] (0.995 means 99.5%), got {t!r}")
        s = self.max_size_kb
        if s is not None and (isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s <= 0):
            raise ConfigError("--max-size", f"must be a positive number of KB, got {s!r}")
        d = self.max_accuracy_drop
        if d is not None and (isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d)
                              or not 0.0 <= d <= 100.0):
            raise ConfigError("--max-accuracy-drop", f"must be a number of percentage points in [0, 100], got {d!r}")
        a = self.significance
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 < a <= 0.5:
            raise ConfigError("--significance", f"must be in (0, 0.5], got {a!r}")

    def rule(self) -> str:
        """The rule in words (report.json ``recommendation.<platform>.rule``)."""
        pick = ("the smallest variant" if self.max_size_kb is None
                else f"the most faithful variant (highest agreement) of at most {self.max_size_kb:g} KB")
        extra = "" if self.max_accuracy_drop is None else \
            f", whose 95% accuracy-change interval stays above -{self.max_accuracy_drop:g} points"
        return (f"{pick} whose check passed, with no significant accuracy drop (exact McNemar, Holm-corrected "
                f"across the checked variants, p >= {self.significance:g}) and a 95% agreement lower bound of at "
                f"least {pct(self.target_agreement)}{extra}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _reasons(r: dict, policy: Policy) -> list[tuple[str, str]]:
    """Every condition of ``policy`` that row ``r`` misses, as (tag, words); empty: it qualifies."""
    out: list[tuple[str, str]] = []
    if r["verdict"] == "inconclusive":
        need = r.get("images_to_decide")
        more = f"; about {need:,} test images would decide it" if isinstance(need, int) else ""
        out.append(("check inconclusive", f"its check is inconclusive{more}"))
    elif r["verdict"] != "pass":
        out.append(("check failed", "its check failed: " + "; ".join(r["reasons"] or ["failed"])))
    change = r["accuracy_change"]
    dropped = (r["discordant_b"] > r["discordant_c"]) if r["discordant_b"] is not None and \
        r["discordant_c"] is not None else (change is not None and change < 0)
    p_raw, p_holm = r["mcnemar_p"], r["mcnemar_p_holm"]
    p = p_holm if p_holm is not None else p_raw
    if dropped and p is None:
        out.append(("no McNemar test", f"its accuracy dropped {-(change or 0.0):.2f} points and the check recorded "
                                       f"no McNemar test of that drop"))
    elif dropped and p < policy.significance:
        holm = f", Holm-adjusted over {r['holm_family']} variants {p_value(p_holm)}" \
            if p_holm is not None and (r["holm_family"] or 1) > 1 else ""
        out.append(("significant drop", f"its accuracy drop of {-(change or 0.0):.2f} points is significant "
                                        f"(McNemar p {p_value(p_raw)}{holm} < {policy.significance:g})"))
    lo = r["agreement_ci"][0] if r["agreement_ci"] else None
    if lo is None or lo < policy.target_agreement:
        shown = "unknown" if lo is None else pct(lo)
        out.append(("agreement", f"its agreement {pct(r['agreement'])} has a 95% lower bound of {shown}, below "
                                 f"the {pct(policy.target_agreement)} target"))
    if policy.max_accuracy_drop is not None:
        ci = r["accuracy_change_ci"]
        if ci is None or ci[0] < -policy.max_accuracy_drop:
            low = "unknown" if ci is None else f"{ci[0]:+.2f}"
            out.append(("drop cap", f"its accuracy change may be as low as {low} points (95% interval), beyond "
                                    f"the {policy.max_accuracy_drop:g}-point cap"))
    if not r["size_bytes"]:
        out.append(("no size", "its file size was not recorded"))
    elif policy.max_size_kb is not None and r["size_bytes"] > policy.max_size_kb * 1024:
        out.append(("size cap", f"its {fmt_bytes(r['size_bytes'])} is over the {policy.max_size_kb:g} KB cap"))
    return out


@dataclasses.dataclass(frozen=True)
class Decision:
    """The recommendation for one platform: the chosen row (None when nothing
    qualifies), the rule, every smaller variant passed over with why, and,
    when nothing qualifies, the closest variant."""

    platform: str
    chosen: dict | None
    rule: str
    why_not: list[dict]              # {"id", "size_bytes", "tags", "reasons"} in size order
    closest: dict | None             # {"id", "tags", "reasons"} when chosen is None
    considered: int                  # variants of this platform's format

    def to_json(self) -> dict[str, Any]:
        return {"id": None if self.chosen is None else self.chosen["id"], "rule": self.rule,
                "why_not": self.why_not, "closest": self.closest, "considered": self.considered}


def decide(rows: list[dict], policy: Policy | None = None) -> dict[str, Decision]:
    """Per platform, the variant ``policy`` picks, and why each smaller one was passed over."""
    policy = policy or Policy()
    out: dict[str, Decision] = {}
    for key, (_title, fmt) in PLATFORMS.items():
        mine = [r for r in rows if r["format"] == fmt]
        missed = {r["id"]: _reasons(r, policy) for r in mine}
        ok = [r for r in mine if not missed[r["id"]]]
        if policy.max_size_kb is None:
            ok.sort(key=lambda r: (r["size_bytes"], -(r["agreement"] or 0.0), r["id"]))
        else:
            ok.sort(key=lambda r: (-(r["agreement"] or 0.0), r["size_bytes"], r["id"]))
        chosen = ok[0] if ok else None
        why_not = []
        for r in sorted(mine, key=lambda r: (r["size_bytes"] or math.inf, r["id"])):
            if chosen is not None and (r is chosen or (r["size_bytes"] or math.inf) > chosen["size_bytes"]):
                continue
            reasons = list(missed[r["id"]])
            if not reasons:   # qualifies, and was beaten by the chosen one
                reasons = [("less faithful", f"it qualifies, but {chosen['id']} agrees more "
                                             f"({pct(chosen['agreement'])} against {pct(r['agreement'])})")
                           if (r["agreement"] or 0.0) < (chosen["agreement"] or 0.0) else
                           ("tie", f"it qualifies, but {chosen['id']} is as small and agrees at least as much")]
            why_not.append({"id": r["id"], "size_bytes": r["size_bytes"],
                            "tags": [t for t, _ in reasons], "reasons": [w for _, w in reasons]})
        closest = None
        if chosen is None and mine:
            # fewest conditions missed; over the size cap only: the nearest to it; else the most faithful
            def distance(r: dict) -> tuple:
                size_only = [t for t, _ in missed[r["id"]]] == ["size cap"]
                return (len(missed[r["id"]]), r["size_bytes"] if size_only else 0,
                        -((r["agreement_ci"] or (0.0, 0.0))[0]), r["size_bytes"] or math.inf, r["id"])

            near = min(mine, key=distance)
            closest = {"id": near["id"], "tags": [t for t, _ in missed[near["id"]]],
                       "reasons": [w for _, w in missed[near["id"]]]}
        out[key] = Decision(platform=key, chosen=chosen, rule=policy.rule(), why_not=why_not, closest=closest,
                            considered=len(mine))
    return out


def recommend(rows: list[dict], policy: Policy | None = None) -> dict[str, dict | None]:
    """Per platform, the row ``policy`` picks (``decide``), or None."""
    return {key: d.chosen for key, d in decide(rows, policy).items()}


def recommendation_lines(rows: list[dict], decisions: dict[str, Decision]) -> list[str]:
    """The recommendation in plain words: one line per platform, then one line
    naming the smaller variants passed over (their reasons are in the report)."""
    lines = []
    for key, (title, fmt) in PLATFORMS.items():
        d = decisions[key]
        r = d.chosen
        if not d.considered:
            lines.append(f"{title}: no {fmt} variant was checked in this run.")
            continue
        if r is None:
            near = d.closest
            lines.append(f"{title}: NONE of the {d.considered} {fmt} variants qualifies (the rule: {d.rule}); "
                         f"the closest is {near['id']}, which misses: {'; '.join(near['reasons'])}. Do not ship a "
                         f"compressed {fmt} model from this run without reviewing the table.")
        else:
            ratio = f", {r['ratio_to_fp32']:.2f}x of float32" if r["ratio_to_fp32"] else ""
            lo = r["agreement_ci"][0] if r["agreement_ci"] else None
            holm = (f", Holm-adjusted {p_value(r['mcnemar_p_holm'])}"
                    if r["mcnemar_p_holm"] is not None and (r["holm_family"] or 1) > 1 else "")
            line = (f"{title}: {r['id']} — {fmt_bytes(r['size_bytes'])}{ratio}, accuracy {pct(r['accuracy'])} "
                    f"({pp(r['accuracy_change'])}, McNemar p {p_value(r['mcnemar_p'])}{holm}), "
                    f"agreement {pct(r['agreement'])} (95% lower bound {pct(lo)}), measured on {r['backend_label']}.")
            if r["backend"] == "mil-reference":
                line += " Confirm on a device with the golden kit (golden/) before shipping."
            lines.append(line)
        if d.why_not:
            lines.append(f"  {'smaller ' if r is not None else ''}passed over: " + ", ".join(
                f"{w['id']} ({', '.join(w['tags'])})" for w in d.why_not))
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
            i = int(idx)   # in range: report._validate checked every flipped index first
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


def mcnemar_cell(r: dict) -> str:
    """The exact McNemar p, and its Holm-adjusted value when a family was corrected."""
    holm = r.get("mcnemar_p_holm")
    if holm is not None and (r.get("holm_family") or 1) > 1:
        return f"{p_value(r['mcnemar_p'])} (Holm {p_value(holm)})"
    return p_value(r["mcnemar_p"])


def agreement_cell(r: dict) -> str:
    ci = r.get("agreement_ci")
    return pct(r["agreement"]) + ("" if ci is None else f" [{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]")


def table_cells(r: dict) -> list[str]:
    """The row's cells, one per ``TABLE_COLUMNS`` entry."""
    lat = "—" if r["latency_p50_ms"] is None else f"{r['latency_p50_ms']:.3f} / {g(r['latency_p95_ms'], '.3f')} ms"
    result = verdict_text(r)
    bits = r.get("bits_per_weight")
    share = r.get("compressed_share")
    return [r["id"], r["format"], r["recipe"], fmt_bytes(r["size_bytes"]),
            "—" if r["ratio_to_fp32"] is None else f"{r['ratio_to_fp32']:.2f}x",
            fmt_bytes(r["zipped_bytes"]), "—" if bits is None else f"{bits:.2f}",
            "—" if share is None else f"{100 * share:.1f}%",
            pct(r["accuracy"]), pp(r["accuracy_change"]), mcnemar_cell(r),
            agreement_cell(r), psnr(r), g(r["max_abs_diff"]), lat, r["backend"], result]
