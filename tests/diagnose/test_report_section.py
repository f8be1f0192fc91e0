"""The report's "Where the error comes from" section on real variants: the
session's ``diag_run`` (real conversions; tflite-conv2-damaged has conv2's
kernel ruined) with check results written by hand, so the verdicts are
chosen: tflite-conv2-damaged fails, tflite-fp32 and coreml-conv2-2bit are the
recommendations, coreml-fp32 passes and is recommended nowhere. The report
runs the real diagnose for the first three, reuses a current
diagnose/<id>.json instead of measuring again, and measures again when asked
for more images than the file holds."""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil

import numpy as np
import pytest
from support.diagnose import BAD_LAYER

from edgekit import artifacts
from edgekit.rundir import CheckArtifact, ModelArtifact, RunDir
from edgekit.runtime import diagnose, report

N = 200
LIMIT = 40
SIZES = {"coreml-conv2-2bit": 500_000, "coreml-fp32": 1_000_000, "tflite-conv2-damaged": 1_000_000,
         "tflite-fp32": 1_000_000}


def _one_hot(pred, k):
    p = np.full((len(pred), k), 0.01 / (k - 1))
    p[np.arange(len(pred)), pred] = 0.99
    return p


@pytest.fixture(scope="module")
def checked(diag_run, tmp_path_factory):
    """A copy of diag_run (without its diagnose/) with a hand-written check/."""
    run = RunDir(tmp_path_factory.mktemp("report-section") / "run")
    shutil.copytree(diag_run, run.root, ignore=shutil.ignore_patterns("diagnose"))
    model = ModelArtifact.read(run)
    labels = np.asarray(model.dataset().y_test[:N])
    k = model.io.num_classes
    original = _one_hot(labels, k)
    bad = labels.copy()
    bad[:30] = (bad[:30] + 1) % k
    entry = {"agreement": 1.0, "accuracy": 1.0, "accuracy_change": 0.0, "discordant_b": 0, "discordant_c": 0,
             "flipped": [], "identical_outputs": True, "latency_ms": {"p50": 0.5, "p95": 0.7}}
    variants = {vid: {**entry, "backend": "litert" if vid.startswith("tflite") else "mil-reference",
                      "size_bytes": size, "passed": True, "verdict": "pass", "reasons": []}
                for vid, size in SIZES.items()}
    variants["tflite-conv2-damaged"].update(
        agreement=1 - 30 / N, accuracy=1 - 30 / N, accuracy_change=-100 * 30 / N, discordant_b=30,
        flipped=list(range(30)), identical_outputs=False, passed=False, verdict="fail",
        reasons=["top-1 agreement 85.00% < 99.50%"])
    results = {"test_count": N, "model_manifest": {"sha256": model.sha256},
               "original": {"accuracy": 1.0, "latency_ms": {"p50": 0.9, "p95": 1.0}},
               "versions": {"tensorflow": "test"}, "variants": variants}
    probs = {vid: original for vid in SIZES}
    probs["tflite-conv2-damaged"] = _one_hot(bad, k)
    with artifacts.atomic_dir(run.check_dir) as tmp:
        CheckArtifact.write(tmp, results, {"original": original, **probs}, labels, b"<testsuites/>")
    return run


def _report(run: RunDir, limit: int) -> tuple[dict, list[str]]:
    """report.json and the status lines of one report stage run."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # 200 images cannot show 99.5% agreement; 90% they can
        report.run(report.ReportConfig(run_dir=run.root, target_agreement=0.9, diagnose_limit=limit))
    return json.loads(run.report_json.read_text()), out.getvalue().splitlines()


@pytest.fixture(scope="module")
def first_report(checked):
    return _report(checked, LIMIT)


def test_the_section_names_the_failing_variant_s_first_jump(checked, first_report):
    j, lines = first_report
    assert {k: v["id"] for k, v in j["recommendation"].items()} == {"ios": "coreml-conv2-2bit",
                                                                     "android": "tflite-fp32"}
    diag = {d["variant"]: d for d in j["diagnoses"]}
    assert list(diag) == ["coreml-conv2-2bit", "tflite-conv2-damaged", "tflite-fp32"]    # the table's order
    failing = diag["tflite-conv2-damaged"]
    assert failing["why"] == ["check failed"] and failing["first_jump"] == BAD_LAYER
    assert failing["images"] == LIMIT and failing["backend"] == "litert" and not failing["reused"]
    assert diag["tflite-fp32"]["first_jump"] is None          # float32: no layer jumps
    html = checked.report_html.read_text()
    div = html[html.index('id="diagnose-tflite-conv2-damaged"'):]
    div = div[:div.index("</div>")]
    assert re.search(rf'First jump: <b class="first-jump">{BAD_LAYER} \(-?[\d.]+ dB\)</b>', div)
    assert f"<tr><td class=\"l\">{BAD_LAYER}</td>" in div and 'src="data:image/png;base64,' in div
    md = checked.report_md.read_text()
    assert f"First jump: {BAD_LAYER} \\(" in md and "(diagnose_tflite-conv2-damaged.png)" in md
    assert (checked.report_dir / "diagnose_tflite-conv2-damaged.png").read_bytes().startswith(report.PNG_MAGIC)
    # one status line per diagnosed variant, in order
    status = [ln for ln in lines if ln.startswith("[report] diagnose ")]
    assert len(status) == 3
    assert status[1].startswith(f"[report] diagnose tflite-conv2-damaged (check failed): first jump {BAD_LAYER},")
    assert status[1].endswith("-> diagnose/tflite-conv2-damaged.json")


def test_a_passing_variant_nobody_recommends_is_not_diagnosed(checked, first_report):
    j, lines = first_report
    assert "coreml-fp32" not in {d["variant"] for d in j["diagnoses"]}
    assert not checked.diagnose_json("coreml-fp32").exists()
    assert 'id="diagnose-coreml-fp32"' not in checked.report_html.read_text()
    assert not any("coreml-fp32" in ln for ln in lines)


def test_a_current_diagnosis_is_reused_until_more_images_are_asked(checked, first_report):
    files = {vid: checked.diagnose_json(vid) for vid in ("coreml-conv2-2bit", "tflite-conv2-damaged", "tflite-fp32")}
    before = {vid: (p.read_bytes(), p.stat().st_mtime_ns) for vid, p in files.items()}
    assert diagnose.is_current(checked.root)
    # asking for fewer images than the files hold: every one is read, none measured again
    j, lines = _report(checked, LIMIT // 2)
    assert {vid: (p.read_bytes(), p.stat().st_mtime_ns) for vid, p in files.items()} == before
    assert all(d["reused"] and d["images"] == LIMIT for d in j["diagnoses"])
    assert [ln.rsplit("; ", 1)[1] for ln in lines if ln.startswith("[report] diagnose ")] == \
        [f"reused diagnose/{vid}.json" for vid in files]
    # more images than the files hold: measured again, and written
    j, _ = _report(checked, LIMIT + 10)
    assert all(not d["reused"] and d["images"] == LIMIT + 10 for d in j["diagnoses"])
    assert all(json.loads(p.read_text())["images"] == LIMIT + 10 for p in files.values())
    assert {d["variant"]: d["first_jump"] for d in j["diagnoses"]}["tflite-conv2-damaged"] == BAD_LAYER


def test_a_damaged_or_chartless_diagnosis_is_measured_again_not_shown(checked, first_report):
    config = diagnose.DiagnoseConfig(run_dir=checked.root, variant="tflite-fp32", limit=LIMIT)
    path = checked.diagnose_json("tflite-fp32")
    chart = checked.diagnose_dir / "tflite-fp32.png"
    saved, png = path.read_bytes(), chart.read_bytes()
    assert diagnose.reusable(config) is not None
    try:
        for damage in ({"rows": [{"layer": 3}]}, {"first_jump": "no-such-layer"}, {"seconds": "fast"}):
            artifacts.write_json(path, {**json.loads(saved), **damage})
            assert diagnose.reusable(config) is None, damage
        path.write_bytes(saved)
        chart.unlink()
        assert diagnose.reusable(config) is None
    finally:
        path.write_bytes(saved)
        chart.write_bytes(png)
    assert diagnose.reusable(config) is not None
