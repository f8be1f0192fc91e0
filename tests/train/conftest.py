"""Fixtures for the training stage's tests: tiny IDX and image-folder datasets."""
from __future__ import annotations

import pytest
from support.datasets import make_idx_dir, make_image_folder


@pytest.fixture
def idx_dir(tmp_path):
    return make_idx_dir(tmp_path / "idx")


@pytest.fixture
def image_folder(tmp_path):
    return make_image_folder(tmp_path / "images")
