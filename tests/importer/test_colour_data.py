"""Colour and size in train/data.py: folders keep colour when asked, in RGB or
BGR order, resized bilinear (whole image) to any size; IDX stays grayscale;
a colour mismatch is an error only when strict (import without --color)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgekit.errors import DataError
from edgekit.train.data import load_dataset, load_from_manifest
from support.datasets import make_idx_dir, make_image_folder


def _folder(tmp_path, mode="RGB"):
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(5):
            shape = (30, 40, 3) if mode == "RGB" else (30, 40)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")
    return root


def _expected(path, size, mode):
    with Image.open(path) as im:
        return np.asarray(im.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR), np.uint8)


def test_rgb_folder_read_in_colour_and_resized_whole(tmp_path):
    root = _folder(tmp_path)
    ds = load_dataset("folder", root, val_size=0, image_size=(24, 48), color="rgb")
    assert ds.x_train.shape[1:] == (24, 48, 3) and ds.image_shape == (24, 48, 3)
    assert ds.info["color"] == "rgb" and ds.info["source_color"] == "rgb" and ds.info["resize"] == "bilinear"
    all_x = np.concatenate([ds.x_train, ds.x_test])
    first = _expected(root / "a" / "0.png", (24, 48), "RGB")
    assert any(np.array_equal(x, first) for x in all_x)


def test_bgr_is_the_rgb_arrays_reversed_and_rebuilt_from_the_manifest(tmp_path):
    root = _folder(tmp_path)
    rgb = load_dataset("folder", root, val_size=0, image_size=(16, 16), color="rgb")
    bgr = load_dataset("folder", root, val_size=0, image_size=(16, 16), color="bgr")
    assert np.array_equal(bgr.x_test, rgb.x_test[..., ::-1])
    again = load_from_manifest({"dataset": bgr.info}, tmp_path)
    assert np.array_equal(again.x_test, bgr.x_test)


def test_default_stays_grayscale_as_before(tmp_path):
    root = _folder(tmp_path)
    ds = load_dataset("folder", root, val_size=0, image_size=(16, 16))
    assert ds.x_train.ndim == 3 and ds.image_shape == (16, 16, 1) and ds.info["color"] == "grayscale"


def test_auto_follows_the_files(tmp_path):
    colour = load_dataset("folder", _folder(tmp_path / "c"), val_size=0, image_size=(16, 16), color="auto")
    gray = load_dataset("folder", _folder(tmp_path / "g", mode="L"), val_size=0, image_size=(16, 16), color="auto")
    assert colour.image_shape == (16, 16, 3) and gray.image_shape == (16, 16, 1)
    # a grayscale folder read through RGB equals reading it as L
    plain = load_dataset("folder", tmp_path / "g" / "photos", val_size=0, image_size=(16, 16))
    assert np.array_equal(gray.x_test, plain.x_test)


def test_mismatch_is_an_error_only_when_strict(tmp_path):
    gray = _folder(tmp_path / "g", mode="L")
    with pytest.raises(DataError, match="pass --color rgb"):
        load_dataset("folder", gray, val_size=0, image_size=(16, 16), color="rgb", strict_color=True)
    ds = load_dataset("folder", gray, val_size=0, image_size=(16, 16), color="rgb")      # --color rgb: converted
    assert ds.image_shape == (16, 16, 3) and np.array_equal(ds.x_test[..., 0], ds.x_test[..., 2])
    with pytest.raises(DataError, match="pass --color grayscale"):
        load_dataset("folder", _folder(tmp_path / "c"), val_size=0, image_size=(16, 16), color="grayscale",
                     strict_color=True)


def test_idx_stays_grayscale_unless_colour_is_asked_for(tmp_path):
    d = make_idx_dir(tmp_path / "idx", size=16)
    with pytest.raises(DataError, match="IDX images are grayscale"):
        load_dataset("idx", d, val_size=0, color="rgb", strict_color=True)
    ds = load_dataset("idx", d, val_size=0, color="rgb")
    assert ds.image_shape == (16, 16, 3)
    assert load_dataset("idx", d, val_size=0, color="auto").image_shape == (16, 16, 1)


def test_support_folder_still_loads_for_train(tmp_path):
    ds = load_dataset("folder", make_image_folder(tmp_path / "f"), val_size=0, image_size=(12, 10))
    assert ds.image_shape == (12, 10, 1)
