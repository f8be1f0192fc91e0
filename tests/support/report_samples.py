"""Hand-built check results for the report tests (see make_report_data)."""
from __future__ import annotations

import numpy as np

from edgekit.rundir import Kind, RunDir, VariantArtifact
from edgekit.runtime.report import ReportData

HOSTILE_NAMES = ["<script>alert(1)</script>", 'say "hi" it\'s', "../../etc/passwd", "a|b & <i>c</i>", "$x^2$",
                 "five", "six", "seven", "eight", "nine"]


def _one_hot(pred, k, conf=0.9):
    p = np.full((len(pred), k), (1 - conf) / (k - 1))
    p[np.arange(len(pred)), pred] = conf
    return p


def make_report_data(class_names=tuple(str(i) for i in range(10)), n=200, coreml_all_fail=False, seed=0):
    """Variants (id: size, flips, passed):
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
    probs, variants = {}, {}
    for vid, (size, flips, passed, backend) in specs.items():
        p, flipped = variant(np.array(flips, dtype=int))
        if not flips:
            p = original.copy()
        probs[vid] = p
        acc = float(np.mean(p.argmax(1) == labels))
        results["variants"][vid] = {
            "backend": backend, "agreement": 1 - len(flips) / n, "accuracy": acc,
            "accuracy_change": 100 * (acc - results["original"]["accuracy"]), "mcnemar_p": 1.0 if not flips else 0.01,
            "max_abs_diff": float(np.abs(p - original).max()), "mean_abs_diff": float(np.abs(p - original).mean()),
            "psnr_db": None if not flips else 35.0, "snr_db": None, "identical_outputs": not flips,
            "per_class_accuracy_change": [0.0] * k, "flipped": flipped, "size_bytes": size,
            "zipped_bytes": int(size * 0.9), "latency_ms": {"p50": 0.5, "p95": 0.7}, "throughput_ips": 2000.0,
            "thresholds": {}, "passed": passed, "reasons": [] if passed else [f"top-1 agreement {100 - 100 * len(flips) / n:.2f}% < 99.50%"],
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


