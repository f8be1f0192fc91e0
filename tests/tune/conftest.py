"""Fixtures of the tune tests.

``tune_base``: one checked run per session, from the shared ``tiny_run``
model: tflite-fp32 and coreml-fp32 converted and checked on 200 test images
by the real stages. Tests copy it (tune writes variants and tune/).
"""
from __future__ import annotations

import shutil

import pytest
from support.runs import copy_model


@pytest.fixture(scope="session")
def tune_base(tiny_run, tmp_path_factory):
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run as convert
    from edgekit.runtime import check

    run_dir = copy_model(tiny_run, tmp_path_factory.mktemp("tune-base") / "run")
    result = convert(ConvertConfig(run_dir=run_dir, variants=("tflite-fp32", "coreml-fp32")))
    assert result.ok, [v.reason for v in result.failed]
    check.run(check.CheckConfig(run_dir=run_dir, limit=200, latency_runs=2, warmup_runs=0))
    return run_dir


@pytest.fixture
def tune_run(tune_base, tmp_path):
    return shutil.copytree(tune_base, tmp_path / "run")
