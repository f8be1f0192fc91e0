"""The model artifact that later stages read: manifest, files, reload."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import artifacts
from edgekit.errors import ModelFileError
from edgekit.train import data, models
from edgekit.train.training import SCHEMA


@pytest.fixture(scope="module")
def manifest(tiny_run):
    return artifacts.read_manifest(tiny_run / "model" / "manifest.json", SCHEMA,
                                   {"config": dict, "dataset": dict, "io": dict, "files": dict, "metrics": dict})


def test_manifest_describes_the_model(tiny_run, manifest):
    assert manifest["model"]["name"] == "cnn"
    assert manifest["model"]["params"] == 242062
    assert manifest["io"]["inputs"][0] == {"name": "image", "shape": [None, 28, 28, 1], "dtype": "float32",
                                           "range": [0.0, 1.0]}
    assert manifest["io"]["outputs"][0]["name"] == "probabilities"
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
