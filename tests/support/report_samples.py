"""Hand-built check results for the report tests (see make_report_data), and
hand-built report rows from discordant counts for the recommendation policy
(policy_rows)."""
from __future__ import annotations

import numpy as np

from edgekit.rundir import Kind, RunDir, VariantArtifact
from edgekit.runtime import metrics
from edgekit.runtime.report import ReportData

HOSTILE_NAMES = ["<script>alert(1)</script>", 'say "hi" it\'s', "../../etc/passwd", "a|b & <i>c</i>", "$x^2$",
                 "five", "six", "seven", "eight", "nine"]


def _one_hot(pred, k, conf=0.9):
    p = np.full((len(pred), k), (1 - conf) / (k - 1))
    p[np.arange(len(pred)), pred] = conf
    return p


def make_report_data(class_names=tuple(str(i) for i in range(10)), n=2000, coreml_all_fail=False, seed=0):
    """Variants (id: size, flips, passed); every flip turns a right answer wrong,
    so a variant with f flips has McNemar b = f, c = 0; the statistics
    (intervals, exact McNemar, Holm over the non-fp32 variants) are computed
    with edgekit.runtime.metrics from the probabilities, as check does:
    tflite-fp32 1000 KB identical pass; tflite-dynamic-int8 260 KB 1 flip pass;
    tflite-int8 250 KB 2 flips pass; tflite-pal-bad 120 KB 30 flips FAIL;
    coreml-fp32 1000 KB (mil-reference) pass; coreml-w8 270 KB pass; coreml-pal4 150 KB pass;
    coreml-pal2 80 KB 40 flips FAIL."""
    rng = np.random.default_rng(seed)
    k = len(class_names)
    labels = rng.integers(0, k, n)
    orig_pred = labels.copy()
    orig_pred[:10] = (labels[:10] + 1) % k          # original wrong on the first 10
    original = _one_hot(orig_pred, k)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)

    def variant(flip_idx):
        pred = orig_pred.copy()
        pred[flip_idx] = (pred[flip_idx] + 3) % k
        return _one_hot(pred, k, 0.85), list(map(int, flip_idx))

    specs = {
        "tflite-fp32": (1000 * 1024, [], True, "litert"),
        "tflite-dynamic-int8": (260 * 1024, [50], True, "litert"),
        "tflite-int8": (250 * 1024, [60, 61], True, "litert"),
        "tflite-pal-bad": (120 * 1024, list(range(100, 130)), False, "litert"),
        "coreml-fp32": (1000 * 1024, [], True, "mil-reference"),
        "coreml-w8": (270 * 1024, [70], True, "mil-reference"),
        "coreml-pal4": (150 * 1024, [80, 81], not coreml_all_fail, "mil-reference"),
        "coreml-pal2": (80 * 1024, list(range(140, 180)), False, "mil-reference"),
    }
    if coreml_all_fail:
        specs["coreml-fp32"] = (*specs["coreml-fp32"][:2], False, "mil-reference")
        specs["coreml-w8"] = (*specs["coreml-w8"][:2], False, "mil-reference")
    results = {"schema": "edgekit.check/1", "test_count": n, "variants": {},
               "original": {"accuracy": float(np.mean(orig_pred == labels)), "latency_ms": {"p50": 0.8, "p95": 1.1}},
               "versions": {"tensorflow": "2.21.0", "coremltools": "9.0", "cpu": "test CPU"}}
    probs, variants, comparisons = {}, {}, {}
    for vid, (size, flips, passed, backend) in specs.items():
        p, flipped = variant(np.array(flips, dtype=int))
        if not flips:
            p = original.copy()
        probs[vid] = p
        comparisons[vid] = metrics.compare(labels, original, p)
    holm = metrics.holm({vid: c.mcnemar_p for vid, c in comparisons.items() if not vid.endswith("-fp32")})
    for vid, (size, flips, passed, backend) in specs.items():
        p, c = probs[vid], comparisons[vid]
        results["variants"][vid] = {
            **c.to_json(), "psnr_db": None if not flips else 35.0, "snr_db": None,
            "backend": backend, "size_bytes": size,
            "zipped_bytes": int(size * 0.9), "latency_ms": {"p50": 0.5, "p95": 0.7}, "throughput_ips": 2000.0,
            "thresholds": {}, "passed": passed, "verdict": "pass" if passed else "fail",
            "reasons": [] if passed else [f"top-1 agreement {100 * c.agreement:.2f}% < 99.50%"],
            "inconclusive_reasons": [], "images_to_decide": None,
            "mcnemar_p_holm": holm.get(vid, c.mcnemar_p), "holm_family": len(holm) if vid in holm else 1,
        }
        fmt = vid.split("-")[0]
        reference = None if vid.endswith("-fp32") else f"{fmt}-fp32"
        kind = Kind.FLOAT32 if reference is None else Kind.QUANTIZED
        manifest = {"schema": "edgekit.variant/2", "id": vid, "format": fmt, "kind": kind.value,
                    "reference": reference, "recipe": {"id": vid, "description": f"recipe of {vid}", "finetune": None}}
        variants[vid] = VariantArtifact(run=RunDir("synthetic"), id=vid, format=fmt, kind=kind, reference=reference,
                                        manifest=manifest, sha256="0" * 64)
    return ReportData(run_name="synthetic", class_names=list(class_names), results=results, variants=variants,
                      labels=labels, images=images, original_probs=original, variant_probs=probs,
                      model_info={"model": {"name": "cnn", "params": 1234}, "metrics": {"test_accuracy": 0.95}},
                      inputs={"check/results.json": "0" * 64}, fingerprint=results["versions"])




def policy_rows(specs, n=10_000):
    """Report rows (the fields the recommendation policy reads) from discordant
    counts, with the check's statistics: ``specs`` maps id -> (format, size KB,
    b, c) or (format, size KB, b, c, verdict); b: original right, variant wrong;
    c: the opposite; every other image agrees. McNemar p-values are
    Holm-adjusted across all the rows, as check does across its variants."""
    comps = {}
    for vid, spec in specs.items():
        fmt, size_kb, b, c = spec[:4]
        comps[vid] = metrics.Comparison(
            count=n, agreement=1 - (b + c) / n, accuracy=0.99 + (c - b) / n, original_accuracy=0.99,
            accuracy_change=100 * (c - b) / n, discordant_b=b, discordant_c=c, mcnemar_p=metrics.mcnemar_exact_p(b, c),
            max_abs_diff=0.1, mean_abs_diff=0.001, psnr_db=40.0, snr_db=40.0, per_class_accuracy_change=[],
            flipped=list(range(b + c)))
    holm = metrics.holm({vid: c.mcnemar_p for vid, c in comps.items()})
    rows = []
    for vid, spec in specs.items():
        fmt, size_kb = spec[0], spec[1]
        verdict = spec[4] if len(spec) > 4 else "pass"
        c = comps[vid]
        rows.append({
            "id": vid, "format": fmt, "platform": "ios" if fmt == "coreml" else "android",
            "size_bytes": size_kb * 1024, "ratio_to_fp32": None, "backend": "litert", "backend_label": "LiteRT",
            "accuracy": c.accuracy, "accuracy_change": c.accuracy_change, "mcnemar_p": c.mcnemar_p,
            "mcnemar_p_holm": holm[vid], "holm_family": len(holm), "discordant_b": c.discordant_b,
            "discordant_c": c.discordant_c, "agreement": c.agreement, "agreement_ci": tuple(c.agreement_ci),
            "accuracy_change_ci": tuple(c.accuracy_change_ci), "verdict": verdict, "passed": verdict == "pass",
            "reasons": [] if verdict != "fail" else ["failed its thresholds"], "inconclusive_reasons": [],
            "images_to_decide": 20_000 if verdict == "inconclusive" else None,
        })
    return rows
