"""Data that is accepted with a warning: test images that duplicate training
images (the refusals are in the reliability catalogue)."""
from __future__ import annotations

import shutil

from edgekit.train import data

from support.datasets import make_image_folder


def test_test_images_duplicating_training_images_are_one_warning_line(tmp_path, capsys):
    root = make_image_folder(tmp_path / "img", classes=("cat", "dog"), per_class=6, split=True)
    # three test images are byte-copies of training images
    for k, name in enumerate(sorted((root / "train" / "cat").iterdir())[:3]):
        shutil.copy(name, root / "test" / "cat" / f"copy{k}{name.suffix}")
    ds = data.load_dataset("folder", root, val_size=2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    n_test = len(ds.y_test)
    assert err[0].startswith(f"edgekit: warning: {root}: 3 of {n_test} test images are byte-identical")
    # the later stages re-read the same data without repeating it
    data.load_dataset("folder", root, val_size=2, warn=False)
    assert capsys.readouterr().err == ""


def test_distinct_images_give_no_warning(tmp_path, capsys):
    root = make_image_folder(tmp_path / "img", classes=("cat", "dog"), per_class=6, split=True)
    data.load_dataset("folder", root, val_size=2)
    assert capsys.readouterr().err == ""
