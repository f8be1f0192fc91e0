"""edgekit import on three user-trained colour classifiers: the model/ contract,
accuracy as the model's own, the rebuild check, logits, the stage protocol."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit import rundir
from edgekit.rundir import Color, ModelArtifact
from support import colour

FORMAT = {"keras3": "keras3", "saved_model": "saved_model", "h5": "tf_keras-h5"}


@pytest.mark.parametrize("fmt", ["keras3", "saved_model", "h5"])
def test_accuracy_after_import_is_the_models_own(fmt, imported, user_models, photos):
    """edgekit's measured accuracy (its own loading, resizing, colour order and
    pixel mapping) is within 0.5 points of the model's accuracy with its own
    preprocessing on the same test images read with PIL: a wrong colour order
    (red <-> blue) or scale would cost far more."""
    x, y = colour.reference_inputs(photos)
    own = colour.own_accuracy(user_models[fmt], fmt, x, y)
    model = ModelArtifact.read(imported[fmt])
    measured = model.manifest["metrics"]["test_accuracy"]
    assert abs(measured - own) <= 0.005, (fmt, measured, own)
    assert own > 0.6, "the fixture model must have learned the colours for this to prove anything"


def test_a_wrong_colour_order_would_be_caught(imported, user_models, photos):
    """The test above can fail: the h5 model (BGR) fed RGB loses accuracy."""
    x, y = colour.reference_inputs(photos)
    right = colour.own_accuracy(user_models["h5"], "h5", x, y)
    swapped = colour.own_accuracy(user_models["h5"], "h5", x[..., ::-1], y)
    assert right - swapped > 0.2


@pytest.mark.parametrize("fmt", ["keras3", "saved_model", "h5"])
def test_model_dir_has_trains_contract_and_the_source(fmt, imported, user_models):
    model = ModelArtifact.read(imported[fmt])
    m = model.manifest
    assert m["schema"] == rundir.MODEL_SCHEMA and model.files_intact()
    assert model.io.image_shape == (32, 32, 3) and model.io.class_names == colour.CLASSES
    src = m["source"]
    assert src["format"] == FORMAT[fmt]
    assert src["path"] == str(user_models[fmt].resolve())
    from edgekit import artifacts

    p = user_models[fmt]
    assert src["sha256"] == (artifacts.sha256_tree(p) if p.is_dir() else artifacts.sha256_file(p))
    assert src["rebuild"]["max_abs_prob_diff"] <= 1e-5 and src["rebuild"]["images"] >= 80
    # the converted source: a tf_keras model edgekit's loader reads (input image, output probabilities)
    keras_model = model.load_keras()
    assert keras_model.layers[-1].name == rundir.OUTPUT_NAME
    ds = model.dataset()
    assert ds.x_test.shape[1:] == (32, 32, 3) and ds.info["resize"] == "bilinear"
    probs = keras_model.predict(model.io.pixels.apply(ds.x_test), verbose=0)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert float(np.mean(probs.argmax(1) == ds.y_test)) == m["metrics"]["test_accuracy"]


def test_each_way_of_stating_pixels_is_recorded(imported):
    k3, sm, h5 = (ModelArtifact.read(imported[f]) for f in ("keras3", "saved_model", "h5"))
    # the user's model takes 0..255 (its Rescaling(1/255) inside); that Rescaling is folded
    # into the pixel mapping, so model.keras takes 0..1
    assert "Rescaling" in k3.manifest["source"]["pixels_from"]
    assert k3.manifest["source"]["user_pixels"] == {"scale": [1.0] * 3, "bias": [0.0] * 3}
    assert k3.manifest["source"]["rebuild"]["folded_rescaling"]["layer"] == "scale"
    assert np.allclose(k3.io.pixels.value_range(), [0.0, 1.0])
    assert "scale" not in [layer.name for layer in k3.load_keras().layers]
    assert sm.io.pixels.value_range() == [-1.0, 1.0] and sm.io.color is Color.RGB
    assert h5.io.color is Color.BGR and h5.manifest["source"]["pixels_from"] == "--mean/--std"
    mean, std = np.asarray(colour.MEAN[::-1]), np.asarray(colour.STD[::-1])
    assert np.allclose(h5.io.pixels.apply(np.full((1, 1, 1, 3), 255, np.uint8))[0, 0, 0], (1 - mean) / std)
    # BGR: the dataset arrays are in the model's channel order
    assert h5.dataset().x_test[0, 0, 0].tolist() == k3.dataset().x_test[0, 0, 0, ::-1].tolist()


def test_logits_are_detected_and_softmax_is_applied_once(imported):
    k3, sm = ModelArtifact.read(imported["keras3"]), ModelArtifact.read(imported["saved_model"])
    assert k3.manifest["source"]["output_activation"] == "none"
    assert sm.manifest["source"]["output_activation"] == "softmax"
    for m in (k3, sm):
        names = [layer.__class__.__name__ for layer in m.load_keras().layers]
        assert names.count("Softmax") == 1 and names[-1] == "Softmax"
        assert m.io.output_activation == "softmax"          # what model.keras gives: probabilities


def test_keras3_hard_swish_is_rebuilt_from_builtin_layers(imported):
    m = ModelArtifact.read(imported["keras3"])
    assert m.manifest["source"]["rebuild"]["composed_activations"] == ["dw1_act"]
    json.dumps(m.manifest)


def test_import_is_a_stage(imported, user_models, tmp_path):
    from edgekit import stage
    from edgekit.train import importer

    assert stage.STAGES["import"] == "edgekit.train.importer"
    assert importer.is_current(imported["h5"])
    # a changed source file makes the import stale
    copy_model = tmp_path / "net.h5"
    copy_model.write_bytes(user_models["h5"].read_bytes())
    run = tmp_path / "run"
    import shutil

    shutil.copytree(imported["h5"], run)
    man = json.loads((run / "model" / "manifest.json").read_text())
    man["source"]["path"] = str(copy_model)
    (run / "model" / "manifest.json").write_text(json.dumps(man))
    assert importer.is_current(run)
    with open(copy_model, "ab") as f:
        f.write(b"\0")
    assert not importer.is_current(run)


def test_a_tf_keras_dot_keras_file_imports_too(user_models, photos, tmp_path, imported):
    """tf_keras' own .keras format (metadata keras_version 2.x): loaded by tf_keras with safe_mode."""
    import tf_keras

    from edgekit.apps.cli import main

    path = tmp_path / "net.keras"
    tf_keras.models.load_model(user_models["h5"], compile=False).save(path)
    from support import colour as C

    run = tmp_path / "run"
    argv = ["import", "--model", str(path), "--dataset", "folder", "--data-dir", str(photos), "--run", str(run),
            "--color", "bgr", "--mean", ",".join(map(str, C.MEAN[::-1])), "--std", ",".join(map(str, C.STD[::-1]))]
    assert main(argv) == 0
    m = ModelArtifact.read(run)
    assert m.manifest["source"]["format"] == "tf_keras"
    assert m.manifest["metrics"]["test_accuracy"] == ModelArtifact.read(imported["h5"]).manifest["metrics"]["test_accuracy"]
