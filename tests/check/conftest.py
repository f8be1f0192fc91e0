"""Fixtures of the checker tests: tiny Keras models converted here with
tf.lite.TFLiteConverter, so the backend tests do not wait for the convert stage."""
from pathlib import Path

import numpy as np
import pytest

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow loads)


def _tiny_model(seed: int = 0):
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inp, x)


@pytest.fixture(scope="session")
def images():
    """Seeded images in [0, 1] with some structure (blobs) so outputs are not flat."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 28, 28, 1), dtype=np.float32)
    return (x > 0.7).astype(np.float32) * rng.random((64, 1, 1, 1), dtype=np.float32)


@pytest.fixture(scope="session")
def tflite_models(tmp_path_factory, images):
    """{"keras": model, "fp32": path, "int8": path (int8 I/O), "uint8": path, "fixed": path (batch 1)}."""
    import tensorflow as tf

    model = _tiny_model()
    out = tmp_path_factory.mktemp("tflite")

    def convert(name, int_io=None, fixed=False):
        if fixed:
            fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec([1, 28, 28, 1], tf.float32)])
            conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
        else:
            conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if int_io is not None:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = lambda: ([images[i:i + 1]] for i in range(32))
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = int_io
            conv.inference_output_type = int_io
        path = Path(out, f"{name}.tflite")
        path.write_bytes(conv.convert())
        return path

    return {"keras": model, "fp32": convert("fp32"), "int8": convert("int8", tf.int8),
            "uint8": convert("uint8", tf.uint8), "fixed": convert("fixed", fixed=True)}
