"""The model zoo: a name, an input shape and a class count in, a tf_keras model out.

Every model follows the I/O convention of docs/ARTIFACTS.md: one input
named ``image`` (float32 ``[batch, H, W, C]``, C = 1 or 3, H and W from the
data, values as the recorded preprocessing maps pixels) and a final softmax
layer named ``probabilities``. Layer names are stable, so later stages and
plots can find ``conv1`` or the ``features`` (penultimate) layer by name.
Only layers that TFLite, tfmot (quantize/prune/cluster) and coremltools all
handle are used: no Lambda, no custom layers, no SeparableConv2D.

- ``linear``: softmax regression (the tutorial's ~92% baseline).
- ``cnn``: the Layers-API tutorial net (conv 5x5x16, pool, conv 5x5x36, pool,
  dense 128, dense 10): 242,062 parameters on MNIST.
- ``deep``: "Deep MNIST for experts" (conv 5x5x32, pool, conv 5x5x64, pool,
  dense 1024, dropout 0.5, dense 10).
- ``mobile``: for phones: a conv stem and depthwise-separable blocks
  (DepthwiseConv2D + 1x1 Conv2D, each with batch norm and ReLU), global
  average pooling; about a tenth of ``cnn``'s parameters.
- ``phone``: for colour photos on phones (MobileNetV2's design, scaled down):
  a stride-2 conv stem, inverted residual blocks (1x1 expansion, 3x3
  depthwise, linear 1x1 projection, each with batch norm, ReLU6 after the
  first two, a residual Add where the shape allows), a 1x1 head conv,
  global average pooling, dropout and the dense head. Four stride-2 steps
  (96x96 -> 6x6) keep its cost low at photo sizes; about 0.1 M parameters.
  ReLU6 rather than hard-swish: tfmot's quantize registry has no Multiply,
  so a hard-swish network could not get the QAT recipe.

``cnn`` and ``deep`` flatten their last feature map, so their dense layer
grows with H x W (``cnn`` at 96x96x3: 2.7 M parameters); ``mobile`` and
``phone`` pool globally and do not.

``load_model(model_dir, manifest)`` loads a trained model's ``.keras`` file
safely (``safe_mode=True``, no custom objects) after checking its sha256.
"""
from __future__ import annotations

import os
from pathlib import Path

from edgekit import quiet
from edgekit.errors import ArtifactError, ConfigError, ModelFileError
from edgekit.rundir import INPUT_NAME, MODEL_MANIFEST, OUTPUT_NAME

MODELS = ("linear", "cnn", "deep", "mobile", "phone")
# The penultimate layer whose activations the projector export shows.
FEATURES_LAYER = "features"


def _head(keras, x, num_classes: int):
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.layers.Softmax(name=OUTPUT_NAME)(x)


def _linear(keras, inp, num_classes):
    x = keras.layers.Flatten(name=FEATURES_LAYER)(inp)
    return _head(keras, x, num_classes)


def _two_conv(keras, inp, num_classes, *, filters, dense, dropout=None):
    """The tutorials' shape: two 5x5 conv + 2x2 pool stages, one dense layer."""
    L = keras.layers
    x = L.Conv2D(filters[0], 5, padding="same", activation="relu", name="conv1")(inp)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.Conv2D(filters[1], 5, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool2")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(dense, activation="relu", name=FEATURES_LAYER)(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    return _head(keras, x, num_classes)


def _cnn(keras, inp, num_classes):
    return _two_conv(keras, inp, num_classes, filters=(16, 36), dense=128)


def _deep(keras, inp, num_classes):
    return _two_conv(keras, inp, num_classes, filters=(32, 64), dense=1024, dropout=0.5)


def _mobile(keras, inp, num_classes):
    L = keras.layers

    def conv_bn(x, filters, kernel, name):
        x = L.Conv2D(filters, kernel, padding="same", use_bias=False, name=name)(x)
        x = L.BatchNormalization(name=f"{name}_bn")(x)
        return L.ReLU(name=f"{name}_relu")(x)

    def separable(x, filters, name):
        x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = L.BatchNormalization(name=f"{name}_dw_bn")(x)
        x = L.ReLU(name=f"{name}_dw_relu")(x)
        return conv_bn(x, filters, 1, f"{name}_pw")

    x = conv_bn(inp, 32, 3, "conv1")           # 28x28x32
    x = separable(x, 48, "block1")             # 28x28x48
    x = L.MaxPooling2D(2, name="pool1")(x)     # 14x14
    x = separable(x, 64, "block2")
    x = separable(x, 64, "block3")
    x = L.MaxPooling2D(2, name="pool2")(x)     # 7x7
    x = separable(x, 128, "block4")
    x = separable(x, 128, "block5")
    x = L.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    x = L.Dropout(0.2, name="dropout")(x)
    return _head(keras, x, num_classes)


# phone: (expansion, output channels, repeats, first stride) per stage, as
# MobileNetV2's table; the first block of a stage may change shape, the
# repeats add a residual.
PHONE_STAGES = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2), (4, 48, 2, 2), (4, 64, 1, 1))
PHONE_STEM, PHONE_HEAD = 16, 192


def _phone(keras, inp, num_classes):
    L = keras.layers

    def bn(x, name):
        # momentum 0.9: the moving statistics inference uses catch up within
        # ~50 steps, so a folder of a few hundred photos trains too (0.99
        # left them at their initial values after 10 short epochs: chance accuracy)
        return L.BatchNormalization(momentum=0.9, name=name)(x)

    def bn_relu6(x, name):
        return L.ReLU(6.0, name=f"{name}_relu6")(bn(x, f"{name}_bn"))

    def inverted_residual(x, expansion, filters, stride, name):
        channels = x.shape[-1]
        y = x
        if expansion != 1:
            y = L.Conv2D(channels * expansion, 1, use_bias=False, name=f"{name}_expand")(y)
            y = bn_relu6(y, f"{name}_expand")
        y = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(y)
        y = bn_relu6(y, f"{name}_dw")
        y = L.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(y)
        y = bn(y, f"{name}_project_bn")  # linear bottleneck: no activation
        if stride == 1 and channels == filters:
            y = L.Add(name=f"{name}_add")([x, y])
        return y

    x = L.Conv2D(PHONE_STEM, 3, strides=2, padding="same", use_bias=False, name="conv1")(inp)
    x = bn_relu6(x, "conv1")
    block = 0
    for expansion, filters, repeats, stride in PHONE_STAGES:
        for r in range(repeats):
            block += 1
            x = inverted_residual(x, expansion, filters, stride if r == 0 else 1, f"block{block}")
    x = L.Conv2D(PHONE_HEAD, 1, use_bias=False, name="head")(x)
    x = bn_relu6(x, "head")
    x = L.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    x = L.Dropout(0.2, name="dropout")(x)
    return _head(keras, x, num_classes)


_BUILDERS = {"linear": _linear, "cnn": _cnn, "deep": _deep, "mobile": _mobile, "phone": _phone}


def build_model(name: str, input_shape=(28, 28, 1), num_classes: int = 10, seed: int = 0):
    """A fresh, uncompiled tf_keras model ``name`` (one of MODELS); weights
    are initialised from ``seed``."""
    if name not in _BUILDERS:
        raise ConfigError("--model", f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=tuple(input_shape), name=INPUT_NAME, dtype="float32")
    out = _BUILDERS[name](keras, inp, num_classes)
    return keras.Model(inp, out, name=name)


def load_model(model_dir: str | os.PathLike, manifest: dict):
    """The trained tf_keras model of ``model_dir``, loaded without compiling
    and with ``safe_mode=True`` after its sha256 is checked against the
    manifest. A missing, changed, corrupt or foreign file is a ModelFileError."""
    from edgekit import artifacts

    model_dir = Path(model_dir)
    try:
        rec = manifest["files"]["keras"]
        rel, expected = rec["path"], rec["sha256"]
    except (TypeError, KeyError) as e:
        raise ArtifactError(Path(model_dir) / MODEL_MANIFEST, f"manifest has no files.keras entry ({e})") from None
    path = artifacts.resolve_inside(model_dir, rel, "keras model")
    if not path.is_file():
        raise ModelFileError(path, "model file not found")
    actual = artifacts.sha256_file(path)
    if actual != expected:
        raise ModelFileError(path, "sha256 differs from the manifest: the model file was changed or replaced")
    keras = quiet.import_keras()  # TensorFlow's start-up lines held back

    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # keras raises many types for foreign or broken files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(path, f"not a loadable tf_keras model ({first[:200]})") from None
    names = [t.name.split(":")[0] for t in model.inputs]
    if model.get_layer(index=-1).name != OUTPUT_NAME or not model.inputs:
        raise ModelFileError(path, f"does not follow edgekit's I/O convention (input {INPUT_NAME!r}, "
                                   f"output layer {OUTPUT_NAME!r}); inputs {names}")
    return model

