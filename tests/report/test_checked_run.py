"""report and golden on a checked run on disk (edgekit.rundir.CheckedRun):
the model is the session's tiny trained model, the variants' manifests and
check/ are written by hand through rundir's writers, so the test needs no
conversion or check. A variant's size ratio is taken against the reference
its manifest declares, whatever its id; the golden kit states the model's
pixel mapping per channel."""
from __future__ import annotations

import json

import numpy as np
import pytest
from support.runs import copy_model, write_tflite_variant

from edgekit import artifacts
from edgekit.rundir import CheckArtifact, ModelArtifact, RunDir
from edgekit.runtime import golden, report

N = 120


def _one_hot(pred, k, conf):
    p = np.full((len(pred), k), (1 - conf) / (k - 1))
    p[np.arange(len(pred)), pred] = conf
    return p


@pytest.fixture(scope="module")
def checked_run(tiny_run_factory, tmp_path_factory):
    run = RunDir(copy_model(tiny_run_factory("linear"), tmp_path_factory.mktemp("checked") / "run"))
    model = ModelArtifact.read(run)
    labels = np.asarray(model.dataset().y_test[:N])
    k = model.io.num_classes
    write_tflite_variant(run.root, "tflite-fp32", b"f" * 4000)
    # a custom recipe's id says nothing about its reference: its manifest does
    vdir = write_tflite_variant(run.root, "tflite-int8", b"q" * 1000)
    custom = run.variant_dir("my-small")
    vdir.rename(custom)
    man = json.loads((custom / "variant.json").read_text())
    artifacts.write_json(custom / "variant.json", {**man, "id": "my-small"})
    original = _one_hot(labels, k, 0.9)
    flipped = [3, 7]
    pred = labels.copy()
    pred[flipped] = (pred[flipped] + 1) % k
    small = _one_hot(pred, k, 0.8)
    entry = {"backend": "litert", "agreement": 1 - len(flipped) / N, "accuracy": float(np.mean(pred == labels)),
             "accuracy_change": -100 * len(flipped) / N, "passed": True, "reasons": [],
             "discordant_b": len(flipped), "discordant_c": 0,
             "latency_ms": {"p50": 0.5, "p95": 0.7}}
    results = {"test_count": N, "model_manifest": {"sha256": model.sha256},
               "original": {"accuracy": 1.0, "latency_ms": {"p50": 0.9, "p95": 1.0}},
               "versions": {"tensorflow": "test", "cpu": "test CPU"},
               "variants": {"tflite-fp32": {**entry, "agreement": 1.0, "accuracy": 1.0, "accuracy_change": 0.0,
                                            "flipped": [], "size_bytes": 4000, "identical_outputs": True},
                            "my-small": {**entry, "flipped": flipped, "size_bytes": 1000}}}
    with artifacts.atomic_dir(run.check_dir) as tmp:
        CheckArtifact.write(tmp, results, {"original": original, "tflite-fp32": original, "my-small": small},
                            labels, b"<testsuites/>")
    return run


def test_report_of_a_checked_run(checked_run):
    run = checked_run
    # 120 images cannot show 99.5% agreement (2 flips: 95% lower bound 94.1%); a 90% target they can
    result = report.run(report.ReportConfig(run_dir=run.root, target_agreement=0.9))
    assert result.ok and result.failure() is None
    j = json.loads(run.report_json.read_text())
    rows = {r["id"]: r for r in j["variants"]}
    assert rows["my-small"]["ratio_to_fp32"] == pytest.approx(0.25)     # declared reference tflite-fp32
    assert rows["tflite-fp32"]["ratio_to_fp32"] == pytest.approx(1.0)   # a reference: itself
    assert rows["my-small"]["platform"] == "android"
    assert {k: v["id"] for k, v in j["recommendation"].items()} == {"ios": None, "android": "my-small"}
    assert j["policy"]["target_agreement"] == 0.9
    # the recommended variant is diagnosed, or says why not: this hand-made run has no variants/index.json
    (d,) = j["diagnoses"]
    assert d["variant"] == "my-small" and d["file"] is None and "variants/index.json" in d["error"]
    assert "Not diagnosed: " in run.report_html.read_text()
    assert report.is_current(run.root)
    # the default target: nothing qualifies, and the report names the closest
    report.run(report.ReportConfig(run_dir=run.root))
    j = json.loads(run.report_json.read_text())
    assert j["recommendation"]["android"]["id"] is None
    assert j["recommendation"]["android"]["closest"]["id"] == "tflite-fp32"
    assert j["recommendation"]["android"]["closest"]["tags"] == ["agreement"]
    assert j["test_count"] == N and sorted(g["index"] for g in j["gallery"]) == [3, 7]
    assert "my\\-small" in run.report_md.read_text()
    assert report.is_current(run.root)
    # stale once a predictions file changes
    pred = run.check_dir / CheckArtifact.prediction_file("my-small")
    saved = pred.read_bytes()
    with np.load(pred) as z:
        np.savez(pred, probabilities=z["probabilities"][::-1])
    try:
        assert not report.is_current(run.root)
    finally:
        pred.write_bytes(saved)
    assert report.is_current(run.root)


def test_golden_kit_of_a_checked_run(checked_run):
    run = checked_run
    result = golden.run(golden.GoldenConfig(run_dir=run.root, count=20))
    assert result.ok and result.directory == run.golden_dir
    kit = golden.load(run.golden_dir)
    io = ModelArtifact.read(run).io
    spec = kit["model"]["input"]
    assert spec["pixels"] == io.pixels.to_json()
    assert (spec["height"], spec["width"], spec["channels"], spec["color"]) == (28, 28, 1, "grayscale")
    assert spec["scale"] == pytest.approx(1 / 255) and spec["mean"] == [0.0] and spec["std"] == pytest.approx([1.0])
    x = golden.load_inputs(run.golden_dir, kit)
    assert x.shape == (20, 28, 28) and x.dtype == np.uint8
    # the mapping as Swift applies it equals the model's own
    swift = (x.astype(np.float64) * spec["scale"] - spec["mean"][0]) / spec["std"][0]
    np.testing.assert_allclose(swift[..., None], io.pixels.apply(x), atol=1e-6)
    assert {s["test_index"] for s in kit["samples"][:2]} == {3, 7}
    v = kit["variants"]["my-small"]
    assert v["kind"] == "quantized" and v["tolerance"]["max_abs_prob_diff"] == golden.TOLERANCES["quantized"]
    assert v["file"] == "variants/my-small/model.tflite"
    assert kit["recommended"] == {"ios": None, "android": None}   # the default policy: 120 images show no 99.5%
    probs = np.load(run.golden_dir / "expected" / "my-small.npy")
    assert golden.verify(kit, "my-small", probs) == []
    assert golden.is_current(run.root)


def test_golden_kit_recommends_by_the_reports_policy(checked_run):
    """The kit's ``recommended`` follows --target-agreement (as the report's does):
    120 images cannot show 99.5%, they can show 90%."""
    from edgekit.runtime.report.policy import Policy, recommend, rows_from
    from edgekit.rundir import CheckedRun

    run = checked_run
    loose = Policy(target_agreement=0.9)
    c = CheckedRun.load(run.root)
    expected = {k: (None if r is None else r["id"]) for k, r in recommend(rows_from(c.results, c.variants), loose).items()}
    assert expected["android"] == "my-small"
    golden.run(golden.GoldenConfig(run_dir=run.root, count=20, policy=loose))
    assert golden.load(run.golden_dir)["recommended"] == expected
    golden.run(golden.GoldenConfig(run_dir=run.root, count=20))
    assert golden.load(run.golden_dir)["recommended"] == {"ios": None, "android": None}
