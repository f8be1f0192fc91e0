"""Fixtures for the mil-reference interpreter tests: small tf_keras models
(a briefly trained ``cnn`` and an untrained ``mobile``-style net with
depthwise convs, batch norm, dilation and global pooling), converted with
coremltools at the deployment targets edgekit uses and compressed with
coremltools.optimize.coreml, plus the MNIST test images they run on."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow loads)
from support.mil_colour import COLOUR_SIZE, build_colour, convert_colour, set_batch_norm_statistics

MNIST = Path(edgekit.__file__).resolve().parent.parent / "data" / "mnist"
LABELS = [str(i) for i in range(10)]


def read_idx(name: str, limit: int) -> np.ndarray:
    with gzip.open(MNIST / name, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    return arr[:limit]


@pytest.fixture(scope="session")
def mnist():
    """(train_x uint8 [3000,28,28], train_y, test_x uint8 [1000,28,28], test_y)."""
    return (read_idx("train-images-idx3-ubyte.gz", 3000), read_idx("train-labels-idx1-ubyte.gz", 3000),
            read_idx("t10k-images-idx3-ubyte.gz", 1000), read_idx("t10k-labels-idx1-ubyte.gz", 1000))


def build_cnn(keras):
    i = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(16, 5, padding="same", activation="relu")(i)
    x = keras.layers.MaxPool2D()(x)
    x = keras.layers.Conv2D(36, 5, padding="same", activation="relu")(x)
    x = keras.layers.MaxPool2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(i, x)


def build_mobile(keras):
    i = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(i)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 1)(x)
    x = keras.layers.AveragePooling2D(3, strides=2, padding="same")(x)
    x = keras.layers.Conv2D(16, 3, padding="valid", dilation_rate=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    x = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(i, x)


def convert(model, path: Path, precision: str, target: str):
    import coremltools as ct

    ml = ct.convert(
        model, convert_to="mlprogram", source="tensorflow",
        inputs=[ct.ImageType(name="image", shape=(1, 28, 28, 1), scale=1 / 255,
                             color_layout=ct.colorlayout.GRAYSCALE)],
        classifier_config=ct.ClassifierConfig(LABELS),
        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
        minimum_deployment_target=getattr(ct.target, target))
    ml.save(str(path))
    return ml


def compress(ml, kind: str):
    import coremltools.optimize.coreml as cto

    if kind == "w8":  # asymmetric, so zero points are not all zero
        return cto.linear_quantize_weights(ml, cto.OptimizationConfig(cto.OpLinearQuantizerConfig(mode="linear")))
    if kind == "w8sym":
        return cto.linear_quantize_weights(ml, cto.OptimizationConfig(cto.OpLinearQuantizerConfig(mode="linear_symmetric")))
    if kind.startswith("pal"):
        cfg = cto.OpPalettizerConfig(mode="kmeans", nbits=int(kind[3:]), weight_threshold=512)
        return cto.palettize_weights(ml, cto.OptimizationConfig(cfg))
    if kind == "pruned":
        cfg = cto.OpMagnitudePrunerConfig(target_sparsity=0.6, weight_threshold=512)
        return cto.prune_weights(ml, cto.OptimizationConfig(cfg))
    raise ValueError(kind)


@pytest.fixture(scope="session")
def trained_cnn(mnist):
    import tf_keras as keras

    train_x, train_y, _, _ = mnist
    keras.utils.set_random_seed(0)
    model = build_cnn(keras)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(train_x[..., None].astype("float32") / 255, train_y, epochs=2, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def keras_probs():
    """Keras probabilities for uint8 images, fed as the model was trained (pixels / 255)."""
    def run(model, images_u8):
        return model.predict(images_u8[..., None].astype("float32") / 255, batch_size=500, verbose=0)
    return run


COMPRESSED = ("w8", "pal6", "pal4", "pal2", "pruned")


@pytest.fixture(scope="session")
def cnn_packages(trained_cnn, tmp_path_factory):
    """{"fp32": path, "fp16-iOS16": path, "w8-iOS16": path, ..., "pruned-iOS18": path}."""
    root = tmp_path_factory.mktemp("mil-cnn")
    out = {}
    convert(trained_cnn, root / "fp32.mlpackage", "fp32", "iOS15")
    out["fp32"] = root / "fp32.mlpackage"
    for target in ("iOS16", "iOS18"):
        ml = convert(trained_cnn, root / f"fp16-{target}.mlpackage", "fp16", target)
        out[f"fp16-{target}"] = root / f"fp16-{target}.mlpackage"
        for kind in COMPRESSED:
            path = root / f"{kind}-{target}.mlpackage"
            compress(ml, kind).save(str(path))
            out[f"{kind}-{target}"] = path
    return out


@pytest.fixture(scope="session")
def mobile_model():
    import tf_keras as keras

    keras.utils.set_random_seed(1)
    model = build_mobile(keras)
    set_batch_norm_statistics(keras, model, seed=1, spread=0.1)   # so folding them matters
    return model


@pytest.fixture(scope="session")
def mobile_package(mobile_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("mil-mobile") / "mobile.mlpackage"
    convert(mobile_model, path, "fp32", "iOS15")
    return path


# ------------------------------------------------------------------ colour

@pytest.fixture(scope="session")
def colour_pixels():
    """(uint8 RGB [240, 32, 32, 3], labels): smooth colour blobs plus noise,
    seeded; the label is the dominant channel (0-2), or 3/4 for dark/bright
    images, so colour order decides it."""
    rng = np.random.default_rng(7)
    n = 240
    yy, xx = np.mgrid[0:COLOUR_SIZE, 0:COLOUR_SIZE] / COLOUR_SIZE
    wave = 0.6 + 0.4 * np.sin(6 * xx[None, ..., None] * rng.uniform(0.5, 2, (n, 1, 1, 3)) + 4 * yy[None, ..., None])
    base = rng.uniform(0, 255, (n, 1, 1, 3)) * wave
    pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    means = pixels.reshape(n, -1, 3).mean(1)
    labels = means.argmax(1)
    labels[means.mean(1) < 70] = 3
    labels[means.mean(1) > 150] = 4
    return pixels, labels


@pytest.fixture(scope="session")
def colour_model(colour_pixels):
    """build_colour trained for a few epochs on colour_pixels fed in BGR
    order (so its answers depend on the input and on the channel order),
    starting from random batch-norm statistics; the moving statistics end up
    those of the data (far from mean 0, variance 1, as test_colour checks)."""
    import tf_keras as keras

    from support.mil_colour import keras_colour_input

    keras.utils.set_random_seed(3)
    model = build_colour(keras)
    set_batch_norm_statistics(keras, model, 3)
    for layer in model.layers:  # moving statistics follow the batches within these few steps
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.5
    pixels, labels = colour_pixels
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(keras_colour_input(pixels, "bgr"), labels, epochs=8, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def colour_packages(colour_model, tmp_path_factory):
    """{"bgr-fp32", "rgb-fp32", "bgr-fp16", "bgr-pal4"}: the colour model converted."""
    root = tmp_path_factory.mktemp("mil-colour")
    out: dict[str, Path] = {}
    for layout in ("BGR", "RGB"):
        key = f"{layout.lower()}-fp32"
        convert_colour(colour_model, root / f"{key}.mlpackage", layout, "fp32", "iOS15")
        out[key] = root / f"{key}.mlpackage"
    ml = convert_colour(colour_model, root / "bgr-fp16.mlpackage", "BGR", "fp16", "iOS16")
    out["bgr-fp16"] = root / "bgr-fp16.mlpackage"
    import coremltools.optimize.coreml as cto

    cfg = cto.OpPalettizerConfig(mode="kmeans", nbits=4, weight_threshold=64)  # the small net's convs too
    cto.palettize_weights(ml, cto.OptimizationConfig(cfg)).save(str(root / "bgr-pal4.mlpackage"))
    out["bgr-pal4"] = root / "bgr-pal4.mlpackage"
    return out
