"""Bad input to `edgekit train`: exit code 2, one stderr line naming the
file or flag, and the run directory left exactly as it was."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from support.cli import exit_2
from support.datasets import make_idx_dir, make_image_folder

from edgekit.train.idx import write_idx


def fails_cleanly(capsys, argv, run_dir, *fragments):
    """`edgekit train --run <run_dir> <argv>`: exit 2, one line with every fragment, run_dir untouched."""
    return exit_2(capsys, ["train", "--run", str(run_dir), *argv], *fragments, unchanged=run_dir)


def test_missing_data_dir(tmp_path, capsys):
    missing = tmp_path / "nope"
    fails_cleanly(capsys, ["--dataset", "idx", "--data-dir", str(missing)], tmp_path / "run",
                  str(missing), "not found")


def test_data_dir_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    fails_cleanly(capsys, ["--dataset", "idx", "--data-dir", str(f)], tmp_path / "run", str(f), "not a directory")


def test_unreadable_data_dir(tmp_path, capsys):
    d = make_idx_dir(tmp_path / "idx")
    os.chmod(d, 0)
    try:
        if os.access(d, os.R_OK):
            pytest.skip("running as root: chmod 000 does not stop reads here (the is-a-file case covers the path)")
        fails_cleanly(capsys, ["--dataset", "idx", "--data-dir", str(d)], tmp_path / "run", str(d), "cannot read")
    finally:
        os.chmod(d, 0o755)


def test_wrong_magic(tmp_path, capsys):
    d = make_idx_dir(tmp_path / "idx")
    (d / "train-images-idx3-ubyte.gz").write_bytes((d / "train-labels-idx1-ubyte.gz").read_bytes())
    fails_cleanly(capsys, ["--dataset", "idx", "--data-dir", str(d)], tmp_path / "run",
                  "train-images-idx3-ubyte.gz", "wrong magic 0x00000801")


def test_truncated_file(tmp_path, capsys):
    d = make_idx_dir(tmp_path / "idx", compress=False)
    p = d / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-10])
    fails_cleanly(capsys, ["--dataset", "idx", "--data-dir", str(d)], tmp_path / "run", str(p),
                  "truncated: header says 20 images of 8x8, file holds 1270 bytes of pixels")


def test_count_mismatch(tmp_path, capsys):
    d = make_idx_dir(tmp_path / "idx")
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(59, np.uint8))
    fails_cleanly(capsys, ["--dataset", "idx", "--data-dir", str(d)], tmp_path / "run",
                  "train-labels-idx1-ubyte.gz", "59 labels for 60 images")


def test_label_outside_class_range(tmp_path, capsys):
    # fashion-mnist has 10 classes, so a label 12 in a copy of its files is out of range
    d = make_idx_dir(tmp_path / "fm", size=28, classes=10)
    labels = np.arange(20, dtype=np.uint8) % 10
    labels[5] = 12
    write_idx(d / "t10k-labels-idx1-ubyte.gz", labels)
    fails_cleanly(capsys, ["--dataset", "fashion-mnist", "--data-dir", str(d)], tmp_path / "run",
                  "t10k-labels-idx1-ubyte.gz", "label 12 at record 5 is outside the 10 classes")


def test_image_folder_without_images(tmp_path, capsys):
    root = tmp_path / "img"
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    fails_cleanly(capsys, ["--dataset", "folder", "--data-dir", str(root)], tmp_path / "run",
                  "cat", "holds no images")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails_cleanly(capsys, ["--dataset", "folder", "--data-dir", str(empty)], tmp_path / "run",
                  str(empty), "no class subfolders")


def test_image_folder_with_non_image_files(tmp_path, capsys):
    root = make_image_folder(tmp_path / "img")
    (root / "dog" / "notes.txt").write_text("hello")
    fails_cleanly(capsys, ["--dataset", "folder", "--data-dir", str(root)], tmp_path / "run",
                  "notes.txt", "not a PNG or JPEG")
    (root / "dog" / "notes.txt").unlink()
    (root / "dog" / "fake.png").write_bytes(b"\x89PNG but not really")
    fails_cleanly(capsys, ["--dataset", "folder", "--data-dir", str(root)], tmp_path / "run",
                  "fake.png", "not a PNG or JPEG")


@pytest.mark.parametrize("argv, fragment", [
    (["--model", "resnet"], "--model: invalid choice: 'resnet' (choose from 'linear', 'cnn', 'deep', 'mobile', 'phone')"),
    (["--dataset", "cifar"], "--dataset: invalid choice: 'cifar'"),
    (["--epochs", "0"], "--epochs: must be a positive integer, got 0"),
    (["--epochs", "-3"], "--epochs: must be a positive integer, got -3"),
    (["--batch-size", "0"], "--batch-size: must be a positive integer, got 0"),
    (["--learning-rate", "nan"], "--learning-rate: must be a number in (0, 1)"),
    (["--dataset", "idx"], "--data-dir"),
    (["--epochs", "two"], "invalid int value"),
])
def test_bad_flags(tmp_path, capsys, argv, fragment):
    fails_cleanly(capsys, argv, tmp_path / "run", fragment)


@pytest.mark.parametrize("field, value, fragment", [
    ("model", "resnet", "unknown value 'resnet'; choose one of linear, cnn, deep, mobile, phone"),
    ("dataset", "cifar", "unknown value 'cifar'; choose one of mnist, fashion-mnist, idx, folder"),
])
def test_config_refuses_unknown_names(tmp_path, field, value, fragment):
    """The same names refused by TrainConfig itself (what `edgekit run` and Python callers build)."""
    from edgekit.errors import ConfigError
    from edgekit.train import TrainConfig

    with pytest.raises(ConfigError) as e:
        TrainConfig(run_dir=tmp_path, **{field: value})
    assert e.value.where == f"--{field}" and fragment in e.value.problem


def test_help_lists_the_choices(capsys):
    from support.cli import run_main

    with pytest.raises(SystemExit):
        run_main(["train", "--help"], capsys)
    out = " ".join(capsys.readouterr().out.split())
    assert "{linear,cnn,deep,mobile,phone}" in out and "{mnist,fashion-mnist,idx,folder}" in out


def test_existing_model_dir_needs_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "keep.txt").write_text("mine")
    fails_cleanly(capsys, ["--epochs", "1"], run, str(run / "model"), "already exists (pass --overwrite")


def test_unwritable_run_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file cannot hold a run directory")
    fails_cleanly(capsys, ["--epochs", "1"], blocker / "run", str(blocker), "not a directory")


def test_read_only_run_dir(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: chmod 555 does not stop writes (test_unwritable_run_dir covers a path under a file)")
        fails_cleanly(capsys, ["--epochs", "1"], ro / "run", str(ro), "not writable")
    finally:
        os.chmod(ro, 0o755)


def test_corrupt_gzip_inside(tmp_path, capsys):
    d = make_idx_dir(tmp_path / "idx")
    p = d / "train-images-idx3-ubyte.gz"
    raw = bytearray(p.read_bytes())
    raw[-8:] = b"\0" * 8  # wrong CRC and length in the gzip trailer
    p.write_bytes(bytes(raw))
    fails_cleanly(capsys, ["--dataset", "idx", "--data-dir", str(d)], tmp_path / "run", str(p), "gzip")
