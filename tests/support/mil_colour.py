"""The colour network the mil-reference tests convert (tests/mil): a
32x32x3 phone-style tf_keras net with every op family coremltools emits for
colour networks, its BGR mean/std preprocessing, and its Core ML conversion
with an RGB or BGR image input that carries that preprocessing."""
from __future__ import annotations

from pathlib import Path

import numpy as np

COLOUR_SIZE = 32
COLOUR_LABELS = ["a", "b", "c", "d", "e"]
# the Keras model's own preprocessing: BGR order, (pixel / 255 - mean) / STD
# (one std, so Core ML's scalar ImageType scale can hold it; per-channel bias)
BGR_MEAN = (0.40, 0.45, 0.50)
STD = 0.25


def build_colour(keras):
    """A 32x32x3 phone-style net with every op family the converter emits for
    colour networks: a stride-2 stem with batch norm and ReLU6, an inverted
    residual (1x1 expand, hard-swish written as Keras's MobileNetV3 writes it,
    3x3 depthwise, ReLU6, linear 1x1 projection, residual add), explicit
    ZeroPadding2D before a stride-2 'valid' depthwise conv, a squeeze-excite
    branch (global pool, relu, hard-sigmoid, mul), a swish (silu) and a
    sigmoid branch joined by concat, a batch norm the converter cannot fold
    into a conv, global average pooling and a softmax head."""
    L = keras.layers
    i = keras.Input((COLOUR_SIZE, COLOUR_SIZE, 3), name="image")
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(i)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    y = L.Conv2D(32, 1, use_bias=False)(x)
    y = L.BatchNormalization()(y)
    y = L.Multiply()([y, L.ReLU(6.0)(y + 3.0) * (1.0 / 6.0)])         # hard-swish
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
    y = L.BatchNormalization()(y)
    y = L.ReLU(6.0)(y)
    y = L.Conv2D(16, 1, use_bias=False)(y)
    y = L.BatchNormalization()(y)
    x = L.Add()([x, y])
    x = L.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="valid", depth_multiplier=2)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(8, 1, activation="relu")(s)
    s = L.Conv2D(32, 1, activation="hard_sigmoid")(s)
    x = L.Multiply()([x, s])
    a = L.Activation("swish")(L.Conv2D(16, 1)(x))
    b = L.Activation("sigmoid")(L.Conv2D(8, 1)(x))
    x = L.Concatenate()([a, b])
    x = L.BatchNormalization()(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(len(COLOUR_LABELS), activation="softmax", name="probabilities")(x)
    return keras.Model(i, x)


def set_batch_norm_statistics(keras, model, seed: int, spread: float = 0.3) -> None:
    """Non-trivial gamma, beta, moving mean and variance: folding them wrongly shows.
    ``spread``: the standard deviation of beta and the moving mean."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                               rng.normal(0, spread, beta.shape).astype("float32"),
                               rng.normal(0, spread, mean.shape).astype("float32"),
                               rng.uniform(0.5, 1.5, var.shape).astype("float32")])


def keras_colour_input(pixels_rgb: np.ndarray, order: str) -> np.ndarray:
    """What the Keras model is fed for RGB pixels: channels in ``order``, then its normalisation."""
    x = pixels_rgb[..., ::-1] if order == "bgr" else pixels_rgb
    mean = np.asarray(BGR_MEAN if order == "bgr" else BGR_MEAN[::-1], np.float32)
    return ((x.astype(np.float32) / 255 - mean) / np.float32(STD)).astype(np.float32)


def convert_colour(model, path: Path, layout: str, precision: str, target: str):
    """Core ML image input in ``layout`` ("RGB"/"BGR") carrying the model's
    preprocessing: scale 1/(255 std), bias -mean/std per channel in that order."""
    import coremltools as ct

    mean = BGR_MEAN if layout == "BGR" else BGR_MEAN[::-1]
    ml = ct.convert(
        model, convert_to="mlprogram", source="tensorflow",
        inputs=[ct.ImageType(name="image", shape=(1, COLOUR_SIZE, COLOUR_SIZE, 3), scale=1 / (255 * STD),
                             bias=[-m / STD for m in mean], color_layout=getattr(ct.colorlayout, layout))],
        classifier_config=ct.ClassifierConfig(COLOUR_LABELS),
        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
        minimum_deployment_target=getattr(ct.target, target))
    ml.save(str(path))
    return ml
