"""Shared fixtures for every stage's tests.

``tiny_run``: a run directory whose ``model/`` is the ``cnn`` trained for one
epoch on 3,000 MNIST training images (seed 0) and evaluated on 1,000 test
images; built once per session. ``tiny_run_factory(model=..., **config)``
builds (and caches) other tiny runs the same way (support.runs.train_tiny_run).
"""
from __future__ import annotations

import os

import pytest

import edgekit  # noqa: F401  (selects tf_keras before anything imports TensorFlow)

os.environ.setdefault("EDGEKIT_PROGRESS", "0")


@pytest.fixture(scope="session")
def tiny_run_factory(tmp_path_factory):
    """``make(model="cnn", **overrides) -> Path`` of a run dir with a trained
    ``model/``; identical requests share one run."""
    from support.runs import TINY, train_tiny_run

    cache = {}

    def make(model: str = "cnn", **overrides):
        key = (model, tuple(sorted({**TINY, **overrides}.items())))
        if key not in cache:
            cache[key] = train_tiny_run(tmp_path_factory.mktemp(f"tiny-{model}"), model, **overrides)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_run(tiny_run_factory):
    """Path of a run dir whose model/ is a tiny cnn (1 epoch, 3000 train / 1000 test MNIST, seed 0)."""
    return tiny_run_factory("cnn")
