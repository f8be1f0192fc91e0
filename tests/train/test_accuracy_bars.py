"""Full-MNIST accuracy bars of every zoo model with its default settings.

The cnn bar is the headline (CI runs it: ~1.5 minutes on 2 cores); the
others are slow-only (`pytest -m slow tests/train`).
"""
from __future__ import annotations

import pytest

from edgekit.train import TrainConfig, run

BARS = {"cnn": 0.990, "deep": 0.993, "linear": 0.92, "mobile": 0.990}


def _train(tmp_path, model):
    return run(TrainConfig(run_dir=tmp_path / model, model=model))


@pytest.mark.slow
@pytest.mark.headline
def test_cnn_defaults_reach_99_0_on_mnist(tmp_path):
    r = _train(tmp_path, "cnn")
    assert r.test_accuracy >= BARS["cnn"], r


@pytest.mark.slow
@pytest.mark.parametrize("model", ["deep", "linear", "mobile"])
def test_default_accuracy_bar(tmp_path, model):
    r = _train(tmp_path, model)
    assert r.test_accuracy >= BARS[model], r
