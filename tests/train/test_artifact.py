"""The model artifact that later stages read: manifest, files, reload."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import artifacts
from edgekit.errors import ModelFileError
from edgekit.train import data, models
from edgekit.rundir import MODEL_SCHEMA as SCHEMA


@pytest.fixture(scope="module")
def manifest(tiny_run):
    return artifacts.read_manifest(tiny_run / "model" / "manifest.json", SCHEMA,
                                   {"config": dict, "dataset": dict, "io": dict, "files": dict, "metrics": dict})


def test_manifest_describes_the_model(tiny_run, manifest):
    assert manifest["model"]["name"] == "cnn"
    assert manifest["model"]["params"] == 242062
    assert manifest["io"]["inputs"][0] == {"name": "image", "shape": [None, 28, 28, 1], "dtype": "float32",
                                           "range": [0.0, 1.0], "color": "grayscale",
                                           "pixels": {"scale": [1 / 255], "bias": [0.0]}, "resize": "bilinear"}
    assert manifest["io"]["outputs"][0]["name"] == "probabilities"
    assert manifest["io"]["class_names"] == [str(i) for i in range(10)]
    assert manifest["dataset"]["class_names"] == [str(i) for i in range(10)]
    assert manifest["dataset"]["split"] == {"seed": 0, "val_size": 5000, "train": 3000, "val": 5000, "test": 1000,
                                            "train_limit": 3000, "test_limit": 1000}
    m = manifest["metrics"]
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 1000
    assert m["test_accuracy"] == pytest.approx(np.trace(cm) / 1000)
    # one epoch on 3000 images is far from converged but well above chance
    assert 0.6 < m["test_accuracy"] < 1.0
    for key in ("keras", "saved_model"):
        rec = manifest["files"][key]
        path = tiny_run / "model" / rec["path"]
        assert rec["sha256"] == artifacts.sha256_tree(path) and rec["size_bytes"] == artifacts.tree_size(path)


def test_model_reloads_and_reproduces_the_manifest_accuracy(tiny_run, manifest):
    model = models.load_model(tiny_run / "model", manifest)
    ds = data.load_from_manifest(manifest, tiny_run / "model")
    pred = model.predict(data.to_float(ds.x_test), verbose=0).argmax(1)
    assert float((pred == ds.y_test).mean()) == pytest.approx(manifest["metrics"]["test_accuracy"])


def test_model_artifact_reads_the_run(tiny_run, manifest):
    from edgekit.rundir import Color, ModelArtifact
    from edgekit.train import training

    model = ModelArtifact.read(tiny_run)
    assert model.manifest == manifest
    assert model.sha256 == artifacts.sha256_file(tiny_run / "model" / "manifest.json")
    io = model.io
    assert (io.image_shape, io.class_names, io.color) == ((28, 28, 1), tuple(str(i) for i in range(10)),
                                                          Color.GRAYSCALE)
    assert (io.input_name, io.output_name, io.outputs_logits) == ("image", "probabilities", False)
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert np.array_equal(io.pixels.apply(pixels), data.to_float(pixels))  # exactly pixel / 255
    assert model.files_intact() and training.is_current(tiny_run)
    ds = model.dataset()
    pred = model.load_keras().predict(data.to_float(ds.x_test), verbose=0).argmax(1)
    assert float((pred == ds.y_test).mean()) == pytest.approx(manifest["metrics"]["test_accuracy"])


def test_is_current_needs_an_intact_model(tiny_run, tmp_path):
    import shutil

    from edgekit.train import training

    assert not training.is_current(tmp_path / "nothing")
    copy = tmp_path / "run"
    shutil.copytree(tiny_run / "model", copy / "model")
    assert training.is_current(copy)
    (copy / "model" / "model.keras").write_bytes(b"changed")
    assert not training.is_current(copy)


def test_changed_model_file_is_refused(tiny_run, manifest, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_run / "model", copy)
    (copy / "model.keras").write_bytes(b"PK\x03\x04 not a real keras file")
    with pytest.raises(ModelFileError, match="sha256 differs"):
        models.load_model(copy, manifest)
    # a foreign file whose hash the manifest does vouch for still fails cleanly
    forged = dict(manifest, files={"keras": {"path": "model.keras",
                                             "sha256": artifacts.sha256_file(copy / "model.keras")}})
    with pytest.raises(ModelFileError, match="not a loadable"):
        models.load_model(copy, forged)
