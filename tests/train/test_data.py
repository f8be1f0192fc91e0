"""IDX reader and dataset loading: good data, bad data, splits."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.errors import ConfigError, DataError
from edgekit.train import data
from edgekit.train.idx import read_idx, write_idx

from support.datasets import make_idx_dir, make_image_folder


@pytest.mark.parametrize("compress", [True, False])
def test_idx_roundtrip_gzip_and_raw(tmp_path, compress):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "a-images"
    write_idx(p, x, compress=compress)
    got = read_idx(p, "images")
    assert (got.array == x).all()
    assert (read_idx(p, "images").content_sha256 == got.content_sha256)


def test_idx_errors_name_the_problem(tmp_path):
    p = tmp_path / "imgs"
    p.write_bytes(struct.pack(">IIII", 0x803, 60000, 28, 28) + b"\0" * 1234)
    with pytest.raises(DataError, match="truncated: header says 60000 images of 28x28, file holds 1234 bytes of pixels"):
        read_idx(p, "images")
    # the same lie inside gzip: refused before reading 47 MB that do not exist
    g = tmp_path / "imgs.gz"
    g.write_bytes(gzip.compress(p.read_bytes()))
    with pytest.raises(DataError, match="truncated"):
        read_idx(g, "images")
    write_idx(tmp_path / "labels", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match=r"wrong magic 0x00000801 \(expected an IDX image file"):
        read_idx(tmp_path / "labels", "images")
    (tmp_path / "short").write_bytes(b"\0\0")
    with pytest.raises(DataError, match="too short"):
        read_idx(tmp_path / "short", "labels")
    (tmp_path / "huge").write_bytes(struct.pack(">IIII", 0x803, 2**32 - 1, 2**16, 2**16))
    with pytest.raises(DataError, match="more than"):
        read_idx(tmp_path / "huge", "images")
    write_idx(tmp_path / "extra", np.zeros(5, np.uint8))
    with open(tmp_path / "extra", "ab") as f:
        f.write(b"\1")
    with pytest.raises(DataError, match="more bytes"):
        read_idx(tmp_path / "extra", "labels")
    bad_gz = tmp_path / "bad.gz"
    good = gzip.compress(struct.pack(">II", 0x801, 1000) + bytes(1000))
    bad_gz.write_bytes(good[:20] + b"\xff" * 8 + good[28:])
    with pytest.raises(DataError):
        read_idx(bad_gz, "labels")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=64), compress=st.booleans())
def test_idx_fuzz_only_raises_data_error(tmp_path, blob, compress):
    p = tmp_path / "fuzz"
    # a valid-looking header followed by random bytes, or random bytes alone
    for payload in (blob, struct.pack(">II", 0x801, len(blob)) + blob, struct.pack(">IIII", 0x803, 1, 2, 2) + blob):
        p.write_bytes(gzip.compress(payload) if compress else payload)
        for kind in ("images", "labels"):
            try:
                got = read_idx(p, kind)
            except DataError:
                continue
            assert got.array.dtype == np.uint8


def test_bundled_mnist_split_is_seeded_and_balanced():
    a = data.load_dataset("mnist", train_limit=500, test_limit=200, seed=3)
    b = data.load_dataset("mnist", train_limit=500, test_limit=200, seed=3)
    c = data.load_dataset("mnist", train_limit=500, test_limit=200, seed=4)
    assert (a.x_train == b.x_train).all() and (a.x_val == b.x_val).all() and (a.x_test == b.x_test).all()
    assert not (a.x_val == c.x_val).all()
    assert a.x_train.shape == (500, 28, 28) and a.x_val.shape == (5000, 28, 28) and a.x_test.shape == (200, 28, 28)
    assert np.bincount(a.y_train, minlength=10).min() == 50 and np.bincount(a.y_test, minlength=10).min() == 20
    assert a.x_train.dtype == np.uint8 and a.y_train.dtype == np.int64
    f = data.to_float(a.x_test)
    assert f.shape == (200, 28, 28, 1) and f.dtype == np.float32 and f.max() == 1.0 and f.min() == 0.0


def test_full_mnist_split_sizes_and_disjoint_val():
    ds = data.load_dataset("mnist")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (55000, 5000, 10000)
    assert np.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.info["files"]["train-images-idx3-ubyte.gz"] == \
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971"


def test_corrupt_mnist_copy_is_refused(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    for p in data.bundled_mnist_dir().glob("*.gz"):
        (d / p.name).write_bytes(p.read_bytes())
    raw = gzip.decompress((d / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw[:100] + bytes([(raw[100] + 1) % 10]) + raw[101:]))
    with pytest.raises(DataError, match="t10k-labels.*corrupt or not the original mnist"):
        data.load_dataset("mnist", data_dir=d)


def test_idx_dataset_and_reload_from_manifest(tmp_path):
    d = make_idx_dir(tmp_path / "idx", n_train=60, n_test=21, classes=3, size=8, compress=False)
    ds = data.load_dataset("idx", d, val_size=None, seed=1)
    assert ds.class_names == ["0", "1", "2"] and ds.image_shape == (8, 8, 1)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (54, 6, 21)
    again = data.load_from_manifest({"dataset": ds.info}, tmp_path)
    assert (again.x_val == ds.x_val).all() and (again.y_train == ds.y_train).all()
    write_idx(d / "t10k-labels-idx1-ubyte", np.zeros(21, np.uint8))
    with pytest.raises(DataError, match="changed since the model was trained"):
        data.load_from_manifest({"dataset": ds.info}, tmp_path)


def test_idx_test_label_outside_training_classes(tmp_path):
    d = make_idx_dir(tmp_path / "idx", classes=3)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.full(20, 7, np.uint8))
    with pytest.raises(DataError, match="label 7 at record 0 is outside the 3 classes"):
        data.load_dataset("idx", d, val_size=10)


def test_fashion_mnist_from_debian_package():
    if not data.FASHION_MNIST_DIR.exists():
        pytest.skip(f"{data.FASHION_MNIST_DIR} absent: apt-get install dataset-fashion-mnist to run this test")
    ds = data.load_dataset("fashion-mnist", train_limit=100, test_limit=100)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert len(ds.y_test) == 100 and ds.image_shape == (28, 28, 1)


def test_image_folder_with_seeded_split(tmp_path):
    root = make_image_folder(tmp_path / "img", classes=("b_dog", "a_cat"), per_class=10, size=(12, 10))
    ds = data.load_dataset("folder", root, val_size=2, seed=0)
    assert ds.class_names == ["a_cat", "b_dog"]
    assert ds.x_train.shape[1:] == (28, 28) and ds.image_shape == (28, 28, 1)
    assert len(ds.y_test) == 4 and sorted(np.bincount(ds.y_test)) == [2, 2]
    assert len(ds.y_train) + len(ds.y_val) == 16 and len(ds.y_val) == 2
    small = data.load_dataset("folder", root, val_size=2, image_size=(16, 16))
    assert small.x_train.shape[1:] == (16, 16)
    again = data.load_from_manifest({"dataset": ds.info}, tmp_path)
    assert (again.x_train == ds.x_train).all()


def test_image_folder_with_train_test_subfolders(tmp_path):
    root = make_image_folder(tmp_path / "img", per_class=3, split=True)
    ds = data.load_dataset("folder", root, val_size=None)
    assert len(ds.y_test) == 6 and len(ds.y_train) + len(ds.y_val) == 6


def test_val_size_too_large_names_the_flag(tmp_path):
    d = make_idx_dir(tmp_path / "idx", n_train=60)
    with pytest.raises(ConfigError, match="--val-size"):
        data.load_dataset("idx", d, val_size=60)


def test_manifest_from_another_machine_finds_bundled_mnist():
    ds = data.load_dataset("mnist", train_limit=100, test_limit=50)
    info = dict(ds.info, source="/nonexistent/site-packages/edgekit/data/mnist")
    again = data.load_from_manifest({"dataset": info}, "/tmp")
    assert (again.x_test == ds.x_test).all() and (again.y_train == ds.y_train).all()


@pytest.mark.parametrize("broken", [
    {},
    {"dataset": {"name": "mnist"}},
    {"dataset": "mnist"},
])
def test_incomplete_manifest_dataset_section(tmp_path, broken):
    from edgekit.errors import ArtifactError

    with pytest.raises(ArtifactError, match="dataset section is incomplete"):
        data.load_from_manifest(broken, tmp_path)


def test_manifest_file_names_cannot_leave_the_source(tmp_path):
    from edgekit.errors import ArtifactError

    ds = data.load_dataset("mnist", train_limit=100, test_limit=50)
    info = dict(ds.info, files={"../../etc/passwd": "0" * 64})
    with pytest.raises(ArtifactError, match="plain file names"):
        data.load_from_manifest({"dataset": info}, tmp_path)
