"""The bad-input cases of ``edgekit import`` for the reliability catalogue
(tests/reliability/reliability_cases.py wraps each tuple in its ``Case``).

Each setup gets the case context ``c`` (``c.root``: the snapshotted case
directory) and builds its input there: tiny models built from code (no
training), a tiny colour folder, then returns the argv. Every case must end
in one line naming the file or flag, exit 2, nothing written.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 16


def _photos(c, classes=("a", "b"), per_class=6, mode="RGB") -> Path:
    from PIL import Image

    root = c.root / "photos"
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shape = (20, 20, 3) if mode == "RGB" else (20, 20)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / name / f"{i}.png")
    return root


def _tf_keras_model(inputs=((SIZE, SIZE, 3),), classes=2, head="dense", lambda_layer=False):
    import tf_keras as keras

    L = keras.layers
    ins = [keras.Input(s, name=f"in{i}") for i, s in enumerate(inputs)]
    x = ins[0] if len(ins) == 1 else L.Concatenate()(ins)
    if lambda_layer:
        x = L.Lambda(lambda t: t * 2.0, name="double")(x)
    if len(x.shape) == 4:
        x = L.Conv2D(4, 3, padding="same", name="conv")(x)
        if head == "conv":
            return keras.Model(ins, x)
        x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(classes, name="logits")(x)
    return keras.Model(ins, x)


def _argv(c, model: Path, *flags, data: Path | None = None) -> list:
    data = data if data is not None else _photos(c)
    return ["import", "--model", str(model), "--dataset", "folder", "--data-dir", str(data),
            "--run", str(c.root / "new run"), *flags]


def _saved(c, name="model.keras", **kw) -> Path:
    path = c.root / name
    model = _tf_keras_model(**kw)
    model.save(path) if name.endswith(".keras") else model.save(path, save_format="h5")
    return path


def _missing(c):
    return _argv(c, c.root / "no such model.keras")


def _not_a_model(c):
    p = c.root / "notes.keras"
    p.write_text("these are my notes, not a model\n")
    return _argv(c, p)


def _truncated(name):
    def setup(c):
        p = _saved(c, name)
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
        return _argv(c, p)
    return setup


def _saved_model_no_signature(c):
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self):
            self.w = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)])
        def scale(self, x):
            return x * self.w

    p = c.root / "exported"
    tf.saved_model.save(Scale(), str(p), signatures={})
    return _argv(c, p)


def _two_inputs(c):
    return _argv(c, _saved(c, inputs=((SIZE, SIZE, 3), (SIZE, SIZE, 3))))


def _rank2(c):
    return _argv(c, _saved(c, inputs=((784,),)))


def _dynamic(c):
    return _argv(c, _saved(c, inputs=((None, None, 3),)))


def _conv_output(c):
    return _argv(c, _saved(c, head="conv"))


def _class_count(c):
    return _argv(c, _saved(c, classes=3))


def _lambda(c):
    return _argv(c, _saved(c, lambda_layer=True))


def _custom_layer(c):
    import keras

    @keras.saving.register_keras_serializable(package="MyApp")
    class ColourJitter(keras.layers.Layer):
        def call(self, x):
            return x * 1.0

    inp = keras.Input((SIZE, SIZE, 3))
    x = ColourJitter(name="jitter")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2)(x)
    p = c.root / "custom.keras"
    keras.Model(inp, out).save(p)
    return _argv(c, p)


def _flags(*flags, model_kw=None, name="model.keras"):
    def setup(c):
        return _argv(c, _saved(c, name, **(model_kw or {})), *flags)
    return setup


def _undecodable(c):
    data = _photos(c)
    (data / "a" / "holiday.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    return _argv(c, _saved(c), data=data)


def _gray_for_rgb(c):
    return _argv(c, _saved(c), data=_photos(c, mode="L"))


def _run_import_flag_without_model(c):
    return ["run", "--run", str(c.root / "new run"), "--mean", "0.5", "--std", "0.2"]


def _run_unknown_model(c):
    return ["run", "--run", str(c.root / "new run"), "--model", "resnet"]


# (id, stage, what, setup, expect, where) -- the reliability Case fields
CASES = [
    ("import-missing-path", "import", "--model path that does not exist", _missing, "model not found",
     "no such model.keras"),
    ("import-not-a-model", "import", "a text file named notes.keras", _not_a_model, "is not a Keras model",
     "notes.keras"),
    ("import-truncated-keras", "import", ".keras file cut in half", _truncated("model.keras"),
     "truncated or corrupt", "model.keras"),
    ("import-truncated-h5", "import", ".h5 file cut in half", _truncated("model.h5"), "truncated or corrupt",
     "model.h5"),
    ("import-savedmodel-no-signature", "import", "SavedModel without a serving signature",
     _saved_model_no_signature, "no serving signature", "exported"),
    ("import-two-inputs", "import", "model with two image inputs", _two_inputs, "has 2 inputs", "model.keras"),
    ("import-input-rank-2", "import", "model taking [N, 784] (not an image)", _rank2, "not an image batch",
     "model.keras"),
    ("import-dynamic-size", "import", "model taking [N, None, None, 3] without --image-size", _dynamic,
     "is dynamic", "model.keras"),
    ("import-output-feature-map", "import", "model whose output is a conv feature map", _conv_output,
     "does not give one class vector", "model.keras"),
    ("import-class-count", "import", "3-class model on a 2-class folder", _class_count,
     "gives 3 classes but the dataset folder has 2", "model.keras"),
    ("import-lambda-layer", "import", "model with a Lambda layer", _lambda, "Lambda layer", "model.keras"),
    ("import-custom-layer", "import", "Keras 3 model with a custom layer class", _custom_layer,
     "custom layer class 'MyApp>ColourJitter'", "custom.keras"),
    ("import-range-reversed", "import", "--input-range=1,0", _flags("--input-range=1,0"), "LO must be below HI",
     "--input-range"),
    ("import-mean-two-values", "import", "--mean/--std with 2 values", _flags("--mean", "0.5,0.5", "--std", "0.2,0.2"),
     "give one per channel", "--mean"),
    ("import-mean-for-grayscale", "import", "3 --mean values for a 1-channel model",
     _flags("--mean", "0.5,0.5,0.5", "--std", "0.2,0.2,0.2", "--color", "grayscale",
            model_kw={"inputs": ((SIZE, SIZE, 1),)}), "3 values for a 1-channel model", "--mean"),
    ("import-std-zero", "import", "--std 0.2,0,0.2", _flags("--mean", "0.5,0.5,0.5", "--std", "0.2,0,0.2"),
     "divides by zero", "--std"),
    ("import-undecodable-image", "import", "a .png in the folder that is not an image", _undecodable,
     "is not a PNG or JPEG image", "holiday.png"),
    ("import-grayscale-data-rgb-model", "import", "grayscale photos for an RGB model, no --color",
     _gray_for_rgb, "pass --color rgb", "photos"),
    ("run-import-flag-with-zoo-model", "import", "edgekit run --mean/--std with a zoo model",
     _run_import_flag_without_model, "applies to an imported model", "--mean"),
    ("run-unknown-model", "import", "edgekit run --model resnet (neither a zoo model nor a path)",
     _run_unknown_model, "unknown model 'resnet'", "--model"),
]
