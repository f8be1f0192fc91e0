"""`edgekit run` end to end on a real tiny run: every artifact, the printed
recommendation, exit codes, and resuming by hash (reuse, rerun on changed
input or tampered artifacts, downstream reruns)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit import artifacts
from edgekit.apps import cli, pipeline
from edgekit.runtime import golden, report

from support.pipeline import PIPELINE_ARGS, PIPELINE_VARIANTS


def _run(capsys, run_dir, *extra):
    rc = cli.main(["run", "--run", str(run_dir), *PIPELINE_ARGS, *extra])
    out = capsys.readouterr().out
    return rc, out


def test_first_run_writes_every_artifact_and_prints_the_recommendation(pipeline_run):
    run_dir, rc, out = pipeline_run
    results = json.loads((run_dir / "check" / "results.json").read_text())
    failed = [v for v, e in results["variants"].items() if e["verdict"] == "fail"]
    assert rc == (1 if failed else 0), out  # inconclusive variants do not fail the run
    assert all(e["passed"] == (e["verdict"] == "pass") for e in results["variants"].values())
    assert sorted(results["variants"]) == sorted(PIPELINE_VARIANTS.split(","))
    for rel in ("model/manifest.json", "report/report.html", "report/report.md", "report/report.json",
                "golden/golden.json", "pipeline.json"):
        assert (run_dir / rel).is_file(), rel
    rj = json.loads((run_dir / "report" / "report.json").read_text())
    assert f"report: {run_dir / 'report' / 'report.html'}" in out
    for line in rj["recommendation_text"]:
        assert line in out
    assert "stages: ran train, convert, check, report, golden; reused none" in out
    # a first run says so for every stage (it used to claim "an earlier stage reran")
    for stage in pipeline.ORDER:
        assert f"[{stage}] running (no earlier result)" in out


def test_report_on_the_real_run_matches_check_results(pipeline_run):
    run_dir, _, _ = pipeline_run
    results = json.loads((run_dir / "check" / "results.json").read_text())
    rj = json.loads((run_dir / "report" / "report.json").read_text())
    rows = {r["id"]: r for r in rj["variants"]}
    for vid, e in results["variants"].items():
        assert rows[vid]["agreement"] == e["agreement"] and rows[vid]["passed"] == e["passed"]
        assert rows[vid]["size_bytes"] == e["size_bytes"]
    assert rows["coreml-pal4"]["backend"] == "mil-reference"
    for key, fmt in (("ios", "coreml"), ("android", "tflite")):
        # the policy (tests/report/test_policy.py): check passed, no significant drop, lower bound >= 99.5%
        ok = [r for r in rows.values() if r["format"] == fmt and r["passed"] and r["agreement_ci"][0] >= 0.995
              and not (r["discordant_b"] > r["discordant_c"] and r["mcnemar_p_holm"] < 0.05)]
        want = min(ok, key=lambda r: (r["size_bytes"], -r["agreement"], r["id"]))["id"] if ok else None
        rec = rj["recommendation"][key]
        assert rec["id"] == want
        smaller = [r["id"] for r in rows.values() if r["format"] == fmt and (want is None or r["size_bytes"] < rows[want]["size_bytes"])]
        assert sorted(w["id"] for w in rec["why_not"]) == sorted(smaller)
    html = (run_dir / "report" / "report.html").read_text()
    # three charts, a confusion matrix per recommended variant (400 test images can show no 99.5% lower
    # bound, so this run recommends none), the gallery and the training plots
    assert html.count("data:image/png;base64,") >= (3 + len(rj["confusion_matrices"]) + len(rj["gallery"])
                                                     + len(rj["training_plots"]))
    assert rj["training_plots"], "the model's training plots are inlined"
    # the gallery is the check's flips, shown with the real test labels
    flips = {(v, i) for v, e in results["variants"].items() for i in e["flipped"]}
    assert all((g["variant"], g["index"]) in flips for g in rj["gallery"])
    assert len(rj["gallery"]) == min(sum(min(len(e["flipped"]), 8) for e in results["variants"].values()), 64)
    assert report.is_current(run_dir)


def test_second_run_reuses_everything_and_keeps_the_exit_code(pipeline_run, capsys):
    run_dir, rc1, _ = pipeline_run
    before = artifacts.sha256_file(run_dir / "check" / "results.json")
    rc, out = _run(capsys, run_dir)
    assert rc == rc1
    assert "stages: ran none; reused train, convert, check, report, golden" in out
    for stage in pipeline.ORDER:
        assert f"[{stage}] reused (inputs and artifacts unchanged)" in out
    assert artifacts.sha256_file(run_dir / "check" / "results.json") == before


def test_changed_threshold_reruns_check_and_downstream_only(pipeline_run, capsys, tmp_path):
    run_dir, _, _ = pipeline_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    model_sha = artifacts.sha256_file(copy / "model" / "manifest.json")
    # agreement 100% is impossible for int8 and pal4 here: the check fails, the report is still written
    rc, out = _run(capsys, copy, "--min-agreement", "1.0")
    assert "[check] running (its inputs changed: min_agreement)" in out
    assert "stages: ran check, report, golden; reused train, convert" in out
    assert rc == 1
    assert artifacts.sha256_file(copy / "model" / "manifest.json") == model_sha
    rj = json.loads((copy / "report" / "report.json").read_text())
    failing = {r["id"] for r in rj["variants"] if not r["passed"]}
    assert failing and all(r["agreement"] < 1.0 for r in rj["variants"] if r["id"] in failing)
    assert golden.is_current(copy) and report.is_current(copy)


def test_the_report_diagnoses_on_its_own_and_diagnose_limit_0_turns_it_off(pipeline_run, capsys, tmp_path):
    run_dir, _, out = pipeline_run
    first = json.loads((run_dir / "report" / "report.json").read_text())
    measured = [d for d in first["diagnoses"] if d["error"] is None]
    assert measured and all(d["images"] == report.DEFAULT_DIAGNOSE_LIMIT for d in measured)
    assert all(f"[report] diagnose {d['variant']} (" in out for d in first["diagnoses"])
    assert all((run_dir / d["file"]).is_file() for d in measured)
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    _, out = _run(capsys, copy, "--diagnose-limit", "0")
    assert "[report] running (its inputs changed: diagnose_limit)" in out
    assert "reused train, convert, check" in out and "[report] diagnose" not in out
    assert json.loads((copy / "report" / "report.json").read_text())["diagnoses"] is None


def test_tampered_artifacts_are_not_reused(pipeline_run, tmp_path):
    run_dir, _, _ = pipeline_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    state = json.loads((copy / "pipeline.json").read_text())["stages"]
    inputs = {s: state[s]["inputs"] for s in state}
    for stage in pipeline.ORDER:
        assert pipeline.reusable(stage, copy, inputs[stage], state) == (True, "inputs and artifacts unchanged")
    # a variant file changed behind the manifest's back
    with open(copy / "variants" / "tflite-int8" / "model.tflite", "ab") as f:
        f.write(b"\0")
    ok, why = pipeline.reusable("convert", copy, inputs["convert"], state)
    assert not ok and "no longer match" in why
    # check results edited by hand
    results = copy / "check" / "results.json"
    data = json.loads(results.read_text())
    first = next(iter(data["variants"].values()))
    first["passed"] = not first["passed"]
    results.write_text(json.dumps(data))
    ok, why = pipeline.reusable("check", copy, inputs["check"], state)
    assert not ok and "changed" in why
    assert not report.is_current(copy) and not golden.is_current(copy)
    # a record made with other inputs
    ok, why = pipeline.reusable("train", copy, {**inputs["train"], "config": {**inputs["train"]["config"], "epochs": 2}}, state)
    assert (ok, why) == (False, "its inputs changed: epochs")


def test_bad_input_is_exit_2_and_writes_nothing(tmp_path, capsys):
    rc = cli.main(["run", "--run", str(tmp_path / "r"), "--epochs", "0"])
    assert rc == 2
    assert "--epochs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert cli.main(["run", "--run", str(tmp_path / "r"), "--golden-count", "0"]) == 2
    assert cli.main(["run", "--run", str(tmp_path / "r"), "--no-such-flag"]) == 2


def test_golden_kit_passes_on_litert_outputs_and_catches_wrong_ones(pipeline_run):
    from edgekit.runtime import backends

    run_dir, _, _ = pipeline_run
    kit_dir = run_dir / "golden"
    kit = golden.load(kit_dir)
    results = json.loads((run_dir / "check" / "results.json").read_text())
    assert kit["count"] == 100 and len({s["test_index"] for s in kit["samples"]}) == 100
    flipped = {i for e in results["variants"].values() for i in e["flipped"]}
    in_kit = {s["test_index"] for s in kit["samples"]}
    assert min(len(flipped), 50) == len(flipped & in_kit)
    labels = [s["label"] for s in kit["samples"]]
    assert len(set(labels)) == 10
    # what an app does: decode the PNGs and run the shipped file in its runtime
    x = golden.load_inputs(kit_dir, kit)
    assert np.array_equal(x, np.load(kit_dir / "inputs.npy", allow_pickle=False))
    for vid, backend in (("tflite-fp32", "litert"), ("tflite-int8", "litert"), ("coreml-pal4", "mil-reference")):
        b = backends.open_backend(backend, run_dir / kit["variants"][vid]["file"], class_names=kit["model"]["class_names"],
                                  image_shape=(28, 28, 1))
        probs = b.predict(x[..., None].astype(np.float32) / np.float32(255))
        assert golden.verify(kit, vid, probs) == [], vid
    # the kit can fail: two classes swapped, one probability off by twice the tolerance
    orig = np.load(kit_dir / "original.npy", allow_pickle=False)
    assert golden.verify(kit, "tflite-fp32", orig[:, [1, 0, *range(2, 10)]])
    expected = np.load(kit_dir / "expected" / "tflite-int8.npy", allow_pickle=False).astype(np.float64)
    assert golden.verify(kit, "tflite-int8", expected) == []
    tol = kit["variants"]["tflite-int8"]["tolerance"]["max_abs_prob_diff"]
    expected[3, 7] += 2 * tol
    (failure,) = golden.verify(kit, "tflite-int8", expected)
    assert failure.startswith("sample 0003") and "max abs probability difference" in failure


def test_an_edited_recipe_file_reruns_convert(pipeline_run, tmp_path):
    """The recipes' content is one of convert's recorded inputs: editing a recipe
    file (same flags, same --recipes folder) is a reason to convert again."""
    import json as _json

    from edgekit.convert import recipe as recipes
    from edgekit.convert.config import ConvertConfig

    run_dir, _, _ = pipeline_run
    rdir = tmp_path / "recipes"
    rdir.mkdir()
    for vid in PIPELINE_VARIANTS.split(","):
        (rdir / f"{vid}.json").write_text(recipes.recipe_files()[vid].read_text())
    config = ConvertConfig(run_dir, tuple(PIPELINE_VARIANTS.split(",")), recipe_dir=rdir)
    before = {"config": pipeline.config_inputs(config), "upstream": {}}
    state = {"convert": {"inputs": before, "outputs": {}}}
    assert pipeline.reusable("convert", run_dir, before, state)[1] != "its inputs changed: recipes"
    data = _json.loads((rdir / "coreml-pal4.json").read_text())
    data["coreml"]["compression"]["nbits"] = 6
    (rdir / "coreml-pal4.json").write_text(_json.dumps(data))
    after = {"config": pipeline.config_inputs(config), "upstream": {}}
    assert pipeline.reusable("convert", run_dir, after, state) == (False, "its inputs changed: recipes")


def test_many_changed_upstream_artifacts_are_counted_not_listed():
    paths = [f"variants/v{i}/variant.json" for i in range(16)]
    said = pipeline._summarised(paths)
    assert len(said) == 4 and said[-1] == "13 more artifacts of earlier stages"
    assert pipeline._summarised(paths[:2]) == [f"{p} (from an earlier stage)" for p in paths[:2]]
