"""Fixtures of the reliability tests (issue 6).

``rel_base``: one run directory per session, built from the shared
``tiny_run`` model: ``model/`` copied, ``variants/`` with tflite-fp32,
tflite-dynamic-int8 and coreml-fp32 converted by the real convert stage, and
``check/`` written by the real check stage (200 test images, 2 latency runs).
Catalogue cases copy it and damage the copy.

``case_root``: an empty directory whose path contains spaces and non-ASCII
characters (every catalogue case runs under it), world-readable so a case can
drop root privileges (``support.trees.as_nobody``) to make a permission error
real even when the tests run as root.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from support.runs import copy_model

BASE_VARIANTS = ("tflite-fp32", "tflite-dynamic-int8", "coreml-fp32")


@pytest.fixture(scope="session")
def rel_base(tiny_run, tmp_path_factory):
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run as convert
    from edgekit.runtime import check

    run_dir = copy_model(tiny_run, tmp_path_factory.mktemp("rel-base") / "run")
    result = convert(ConvertConfig(run_dir=run_dir, variants=BASE_VARIANTS))
    assert result.ok, [v.reason for v in result.failed]
    check.run(check.CheckConfig(run_dir=run_dir, limit=200, latency_runs=2, warmup_runs=0))
    return run_dir


@pytest.fixture
def case_root():
    root = Path(tempfile.mkdtemp(prefix="edgekit rel ü-", dir="/tmp"))
    os.chmod(root, 0o755)
    yield root
    for p in [root, *root.rglob("*")]:  # a case may have made parts read-only
        if p.is_dir() and not p.is_symlink():
            os.chmod(p, 0o755)
    shutil.rmtree(root, ignore_errors=True)
