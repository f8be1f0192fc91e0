"""``edgekit run --model PATH``: import instead of train, then every later stage; a second run reuses all."""
from __future__ import annotations

import json

from edgekit.apps.cli import main
from edgekit.rundir import ModelArtifact, RunDir


def _run(capsys, *argv):
    rc = main(["run", *argv])
    return rc, capsys.readouterr().out


def test_run_with_a_model_path_imports_then_runs_every_stage(user_models, photos, tmp_path, capsys):
    run = tmp_path / "my photos run"
    argv = ["--model", str(user_models["keras3"]), "--dataset", "folder", "--data-dir", str(photos),
            "--run", str(run), "--variants", "tflite-fp32", "--latency-runs", "3"]
    rc, out = _run(capsys, *argv)
    assert rc == 0, out
    assert "[import] running (no earlier result)" in out and "[train]" not in out
    assert "stages: ran import, convert, check, report, golden; reused none" in out
    assert ModelArtifact.read(run).manifest["source"]["format"] == "keras3"
    state = json.loads(RunDir(run).pipeline_json.read_text())["stages"]
    assert state["import"]["inputs"]["config"]["model"] == str(user_models["keras3"])
    assert RunDir(run).golden_json.is_file() and RunDir(run).report_html.is_file()
    rc, out = _run(capsys, *argv)
    assert rc == 0 and "stages: ran none; reused import, convert, check, report, golden" in out
