"""Colour photos and user-trained colour classifiers, generated (seeded) for the import tests.

``make_colour_folder``: ``<root>/train|test/<class>/<i>.png``, 40x40 RGB
images that ``edgekit`` resizes to the model's 32x32. Each class is a
coloured shape on a noisy background: ``red`` squares, ``green`` discs,
``blue`` squares, ``yellow`` discs; so colour order matters (BGR-swapped
inputs put red where blue is) and so does shape.

``reference_inputs``: the test split read here with PIL (RGB, bilinear to
32x32): the images a user would evaluate their own model on.

Three small colour nets with batch norm and depthwise convs, each trained
briefly on those images with its own preprocessing, as a user would:

- ``keras3_model``: Keras 3 ``.keras``, a Rescaling(1/255) layer inside,
  ReLU6 and hard-swish, output **logits** (no softmax).
- ``saved_model``: tf_keras SavedModel directory, inputs in [-1, 1], softmax.
- ``h5_model``: tf_keras ``.h5``, BGR channel order, per-channel mean/std.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("blue", "green", "red", "yellow")          # sorted: the folder order edgekit reads
COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200), "yellow": (210, 200, 40)}
SOURCE_SIZE, SIZE = 40, 32
MEAN = (0.45, 0.42, 0.40)
STD = (0.25, 0.24, 0.26)


def make_colour_folder(root: Path, train_per_class: int = 40, test_per_class: int = 20, seed: int = 0) -> Path:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for c in CLASSES:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                bg = rng.integers(60, 160, (SOURCE_SIZE, SOURCE_SIZE, 3), dtype=np.uint8)
                im = Image.fromarray(bg, "RGB")
                draw = ImageDraw.Draw(im)
                r = int(rng.integers(8, 14))
                cx, cy = (int(v) for v in rng.integers(r, SOURCE_SIZE - r, 2))
                colour = tuple(int(np.clip(v + rng.integers(-30, 31), 0, 255)) for v in COLOURS[c])
                box = (cx - r, cy - r, cx + r, cy + r)
                (draw.rectangle if c in ("red", "blue") else draw.ellipse)(box, fill=colour)
                im.save(d / f"{i:03d}.png")
    return root


def _read_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    xs, ys = [], []
    for label, c in enumerate(CLASSES):
        for p in sorted((root / split / c).glob("*.png")):
            with Image.open(p) as im:
                xs.append(np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR), np.uint8))
            ys.append(label)
    return np.stack(xs), np.asarray(ys, np.int64)


def reference_inputs(root: Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB ``[N, 32, 32, 3]`` and labels, read with PIL (not edgekit)."""
    return _read_split(root, split)


# ------------------------------------------------------------- preprocessing

def pre_keras3(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)                                   # Rescaling(1/255) is inside the model


def pre_saved_model(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 127.5 - 1.0).astype(np.float32)


def pre_h5(x: np.ndarray) -> np.ndarray:
    bgr = x[..., ::-1].astype(np.float32) / 255.0
    return ((bgr - np.asarray(MEAN[::-1], np.float32)) / np.asarray(STD[::-1], np.float32)).astype(np.float32)


# ------------------------------------------------------------------ models

def _body(L, x, relu6, hswish):
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = L.BatchNormalization(momentum=0.8, name="stem_bn")(x)
    x = relu6(x, "stem_act")
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw1")(x)
    y = L.BatchNormalization(momentum=0.8, name="dw1_bn")(y)
    y = hswish(y, "dw1_act")
    y = L.Conv2D(16, 1, use_bias=False, name="pw1")(y)
    y = L.BatchNormalization(momentum=0.8, name="pw1_bn")(y)
    x = L.Add(name="res1")([x, y])
    x = L.DepthwiseConv2D(3, strides=2, padding="same", name="dw2")(x)
    x = L.BatchNormalization(momentum=0.8, name="dw2_bn")(x)
    x = relu6(x, "dw2_act")
    x = L.Conv2D(24, 1, name="pw2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return x


def _fit(model, keras, x, y, epochs=12, seed=0):
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not _ends_in_softmax(model)),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model


def _ends_in_softmax(model) -> bool:
    return type(model.layers[-1]).__name__ == "Softmax"


def keras3_model(path: Path, data: Path) -> Path:
    """Keras 3 ``.keras``: Rescaling inside, logits out."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(1)
    inp = keras.Input((SIZE, SIZE, 3), name="photo")
    x = L.Rescaling(1 / 255.0, name="scale")(inp)
    x = _body(L, x, lambda t, n: L.ReLU(6.0, name=n)(t), lambda t, n: L.Activation("hard_swish", name=n)(t))
    out = L.Dense(len(CLASSES), name="logits")(x)
    model = keras.Model(inp, out, name="k3_colour")
    xt, yt = _read_split(data, "train")
    _fit(model, keras, pre_keras3(xt), yt)
    model.save(path)
    return path


def _tf_keras_model(keras, name: str):
    L = keras.layers
    keras.utils.set_random_seed(2)
    inp = keras.Input((SIZE, SIZE, 3), name="input_image")
    x = _body(L, inp, lambda t, n: L.ReLU(6.0, name=n)(t), lambda t, n: L.ReLU(name=n)(t))
    x = L.Dense(len(CLASSES), name="dense_out")(x)
    out = L.Softmax(name="softmax_out")(x)
    return keras.Model(inp, out, name=name)


def saved_model(path: Path, data: Path) -> Path:
    """tf_keras SavedModel directory: inputs in [-1, 1], softmax out."""
    import tf_keras as keras

    model = _tf_keras_model(keras, "sm_colour")
    xt, yt = _read_split(data, "train")
    _fit(model, keras, pre_saved_model(xt), yt)
    model.save(path, save_format="tf")
    return path


def h5_model(path: Path, data: Path) -> Path:
    """tf_keras ``.h5``: BGR order, per-channel mean/std."""
    import tf_keras as keras

    model = _tf_keras_model(keras, "h5_colour")
    xt, yt = _read_split(data, "train")
    _fit(model, keras, pre_h5(xt), yt)
    model.save(path, save_format="h5")
    return path


def own_accuracy(path: Path, fmt: str, x: np.ndarray, y: np.ndarray) -> float:
    """The model's accuracy with its own preprocessing, loaded the way its framework does."""
    if fmt == "keras3":
        import keras

        model, pre = keras.saving.load_model(path, compile=False), pre_keras3
    else:
        import tf_keras as keras

        model = keras.models.load_model(path, compile=False)
        pre = pre_saved_model if fmt == "saved_model" else pre_h5
    pred = np.asarray(model.predict(pre(x), verbose=0)).argmax(1)
    return float(np.mean(pred == y))
