"""SIGKILL in the middle of writing: `edgekit convert` and `edgekit train` run
as subprocesses (``python -m edgekit``) and are killed once their temporary
``.edgekit-tmp-*`` directory holds files. Then: every earlier complete
artifact is byte-for-byte intact, the half-written one is not taken for an
artifact (check does not see it, convert does not refuse over it), and the
same command run again completes and sweeps the temporary directory away.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.trees import copy_run, diff, snapshot

from edgekit import artifacts
from edgekit.apps import cli

POLL_TIMEOUT = 300


def _start(argv, cwd):
    env = {**os.environ, "EDGEKIT_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-m", "edgekit", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _kill_when(proc, ready, what):
    """Poll until ``ready()`` is truthy, then SIGKILL; fails if the process ends first."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while time.monotonic() < deadline:
        found = ready()
        if found:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return found
        if proc.poll() is not None:
            raise AssertionError(f"process ended (exit {proc.returncode}) before {what}:\n"
                                 f"{proc.stdout.read().decode()[-3000:]}")
        time.sleep(0.02)
    proc.kill()
    proc.wait(30)
    raise AssertionError(f"timed out waiting for {what}")


def _tmp_with_files(parent: Path, name: str):
    def ready():
        for t in parent.glob(f"{artifacts.TMP_PREFIX}{name}-*"):
            if any(p.is_file() for p in t.rglob("*")):
                return t
        return None
    return ready


def test_sigkill_convert_leaves_complete_variants_and_reruns(rel_base, tmp_path):
    run = copy_run(rel_base, tmp_path / "run", ("model", "variants"))
    before = snapshot(run)
    # coreml-fp16 converts last and writes Model.mlpackage in its temp dir
    proc = _start(["convert", "--run", str(run), "--variants", "coreml-fp16"], tmp_path)
    tmp = _kill_when(proc, _tmp_with_files(run / "variants", "coreml-fp16"), "a half-written variant")
    assert proc.returncode == -signal.SIGKILL
    assert tmp.exists(), "the killed writer's temporary directory should still be there"
    after = {k: v for k, v in snapshot(run).items() if artifacts.TMP_PREFIX not in k}
    assert after == before, "\n".join(diff(before, after))
    assert not (run / "variants" / "coreml-fp16").exists()

    # check sees only the complete variants
    code = cli.main(["check", "--run", str(run), "--limit", "50", "--latency-runs", "2"])
    assert code in (0, 1)
    results = json.loads((run / "check" / "results.json").read_text())
    assert sorted(results["variants"]) == ["coreml-fp32", "tflite-dynamic-int8", "tflite-fp32"]

    # rerun: completes, no temp left, the variant is whole (its hash is what variant.json says)
    code = cli.main(["convert", "--run", str(run), "--variants", "coreml-fp16"])
    assert code == 0
    assert not list((run / "variants").glob(".edgekit-*"))
    man = json.loads((run / "variants" / "coreml-fp16" / "variant.json").read_text())
    assert artifacts.sha256_tree(run / "variants" / "coreml-fp16" / man["file"]["path"]) == man["file"]["sha256"]


def test_sigkill_train_keeps_the_previous_model_and_reruns(rel_base, tmp_path):
    run = copy_run(rel_base, tmp_path / "run", ("model",))
    before = snapshot(run)
    argv = ["train", "--run", str(run), "--overwrite", "--epochs", "1", "--train-limit", "300",
            "--test-limit", "100", "--val-size", "50"]
    proc = _start(argv, tmp_path)

    def writing_model():  # killed while the model files are being written, after training
        for t in run.glob(f"{artifacts.TMP_PREFIX}model-*"):
            if (t / "model.keras").exists() or (t / "saved_model").exists():
                return t
        return None

    _kill_when(proc, writing_model, "model files in the temporary directory")
    after = {k: v for k, v in snapshot(run).items() if artifacts.TMP_PREFIX not in k}
    assert after == before, "\n".join(diff(before, after))
    # the next stage reads the old, complete model (the temp dir is not a model)
    from edgekit.rundir import ModelArtifact

    manifest = ModelArtifact.read(run).manifest
    assert manifest["files"]["keras"]["sha256"] == artifacts.sha256_file(run / "model" / "model.keras")

    assert cli.main(argv) == 0
    assert not list(run.glob(".edgekit-*"))
    new = json.loads((run / "model" / "manifest.json").read_text())
    assert new["dataset"]["split"]["train"] == 300
    assert new["files"]["keras"]["sha256"] == artifacts.sha256_file(run / "model" / "model.keras")
