"""The zoo (train/models.py): every model takes H x W x C from the data, and
the ``phone`` net for colour photos is what its docstring says it is and
trains from scratch on a colour folder."""
from __future__ import annotations

import json

import pytest

from edgekit.train import models

SHAPES = [(28, 28, 1), (32, 32, 3), (40, 24, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", models.MODELS)
def test_every_model_takes_its_shape_from_the_data(name, shape):
    m = models.build_model(name, shape, 6, 0)
    assert tuple(m.input_shape) == (None, *shape) and tuple(m.output_shape) == (None, 6)
    assert m.layers[0].name == "image" and m.layers[-1].name == "probabilities"
    assert m.get_layer(models.FEATURES_LAYER) is not None


def test_phone_is_an_inverted_residual_net_for_photos():
    photo = models.build_model("phone", (96, 96, 3), 6, 0)
    kinds = [type(layer).__name__ for layer in photo.layers]
    # depthwise-separable inverted residuals with batch norm, ReLU6 and global pooling
    assert kinds.count("DepthwiseConv2D") == sum(r for _, _, r, _ in models.PHONE_STAGES)
    assert kinds.count("Add") == 4 and "GlobalAveragePooling2D" in kinds
    assert kinds.count("BatchNormalization") >= 2 * kinds.count("DepthwiseConv2D")
    relus = [layer for layer in photo.layers if kinds[photo.layers.index(layer)] == "ReLU"]
    assert relus and all(float(r.max_value) == 6.0 for r in relus)
    # four stride-2 steps: a 96x96 photo is 6x6 before the global pooling
    assert tuple(photo.get_layer(models.FEATURES_LAYER).input_shape) == (None, 6, 6, models.PHONE_HEAD)
    # global pooling: the size of a photo does not change the parameter count
    assert photo.count_params() == models.build_model("phone", (224, 160, 3), 6, 0).count_params()
    assert photo.count_params() < 0.05 * models.build_model("cnn", (96, 96, 3), 6, 0).count_params()
    # only layers TFLite, tfmot's default quantize registry and coremltools all take
    allowed = {"InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "Add",
               "GlobalAveragePooling2D", "Dropout", "Dense", "Softmax"}
    assert set(kinds) <= allowed


def test_phone_quantizes_with_tfmot():
    """The QAT recipe wraps the model with tfmot's default 8-bit scheme: every
    phone layer must be in its registry (hard-swish's Multiply is not)."""
    import tensorflow_model_optimization as tfmot

    m = models.build_model("phone", (32, 32, 3), 4, 0)
    q = tfmot.quantization.keras.quantize_model(m)
    assert q.count_params() > m.count_params()


@pytest.mark.slow
def test_phone_trains_from_scratch_on_a_colour_folder(tmp_path):
    """edgekit train --model phone --dataset folder: RGB kept (io color rgb,
    3 channels), and the colour-coded shapes of support.colour learned.
    Measured: 100% test accuracy (80 images) after 7 epochs, ~60 s on 2 cores."""
    from support.colour import make_colour_folder

    from edgekit.apps.cli import main

    data = make_colour_folder(tmp_path / "photos", train_per_class=40, test_per_class=20)
    run = tmp_path / "run"
    assert main(["train", "--model", "phone", "--dataset", "folder", "--data-dir", str(data), "--image-size", "32",
                 "--run", str(run), "--epochs", "15", "--batch-size", "16"]) == 0
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    inp = manifest["io"]["inputs"][0]
    assert inp["color"] == "rgb" and inp["shape"] == [None, 32, 32, 3]
    assert manifest["metrics"]["test_accuracy"] >= 0.9
