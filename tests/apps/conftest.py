"""A real tiny pipeline run shared by the apps tests (pipeline, golden kit on
real outputs, iOS contract, what a person sees): `edgekit run` on 1,500 MNIST
training images, one epoch, 400 test images, four variants that cover every
backend and kind (fp32 and int8 TFLite on LiteRT, fp32 and 4-bit palettized
Core ML on mil-reference).

It runs as a person runs it, in a fresh process (``python -m edgekit``), so
its output is everything TensorFlow, absl, coremltools and LiteRT would print
at start-up and first use, not only what Python's ``sys.stdout`` sees."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support.pipeline import PIPELINE_ARGS


@pytest.fixture(scope="session")
def pipeline_process(tmp_path_factory):
    """(run_dir, CompletedProcess) of a first `edgekit run` on a fresh directory."""
    root = tmp_path_factory.mktemp("pipeline")
    run_dir = root / "run"
    env = {**os.environ, "EDGEKIT_PROGRESS": "0"}
    env.pop("EDGEKIT_VERBOSE", None)
    proc = subprocess.run([sys.executable, "-m", "edgekit", "run", "--run", str(run_dir), *PIPELINE_ARGS],
                          capture_output=True, text=True, env=env, cwd=root, timeout=900)
    return run_dir, proc


@pytest.fixture(scope="session")
def pipeline_run(pipeline_process):
    """(run_dir, exit_code, stdout) of that run."""
    run_dir, proc = pipeline_process
    return run_dir, proc.returncode, proc.stdout
