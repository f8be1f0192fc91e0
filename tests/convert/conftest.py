"""Fixtures for the conversion stage's tests.

``convert_run``: a private copy of the session's ``tiny_run`` model (so other
stages' tests never see these variants) converted once per session with
EVERY shipped recipe (fine-tunes on 256 images, calibration on 100), plus the
ConvertResult. ``fresh_run``: a new run dir holding only a copy of ``model/``,
for tests that convert (or fail to) on their own.
"""
from __future__ import annotations

import pytest
from support.runs import copy_model

FINETUNE_LIMIT = 256
CALIBRATION = 100


@pytest.fixture(scope="session")
def convert_run(tiny_run, tmp_path_factory):
    """(run_dir, ConvertResult) with every shipped recipe converted."""
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run

    run_dir = copy_model(tiny_run, tmp_path_factory.mktemp("convert-all"))
    result = run(ConvertConfig(run_dir=run_dir, finetune_limit=FINETUNE_LIMIT, calibration_size=CALIBRATION))
    return run_dir, result


@pytest.fixture
def fresh_run(tiny_run, tmp_path):
    return copy_model(tiny_run, tmp_path / "run")


@pytest.fixture(scope="session")
def tiny_model(tiny_run):
    """The Keras model of ``tiny_run`` and its manifest (a dict)."""
    from edgekit.rundir import ModelArtifact

    model = ModelArtifact.read(tiny_run)
    return model.load_keras(), model.manifest


@pytest.fixture(scope="session")
def tiny_test_images(tiny_run):
    """200 float32 test images and labels of the tiny run's own split."""
    from edgekit.rundir import ModelArtifact
    from edgekit.train import data

    ds = ModelArtifact.read(tiny_run).dataset()
    return data.to_float(ds.x_test[:200]), ds.y_test[:200]
