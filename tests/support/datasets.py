"""Tiny IDX and image-folder datasets, written from seeded random pixels."""
from __future__ import annotations

import numpy as np


def make_idx_dir(path, n_train=60, n_test=20, classes=3, size=8, seed=0, compress=True):
    """Four IDX files of random ``size``x``size`` images with labels 0..classes-1."""
    from edgekit.train.idx import write_idx

    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if compress else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(path / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, size, size), dtype=np.uint8))
        write_idx(path / f"{prefix}-labels-idx1-ubyte{ext}", np.arange(n, dtype=np.uint8) % classes)
    return path


def make_image_folder(path, classes=("cat", "dog"), per_class=6, size=(12, 10), split=False, seed=0):
    """``<path>[/train|/test]/<class>/<i>.png|jpg``: random RGB images, PNG and JPEG alternating."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for part in ("train", "test") if split else ("",):
        for c in classes:
            d = path / part / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                Image.fromarray(img, "RGB").save(d / f"{i}.{'png' if i % 2 else 'jpg'}")
    return path
