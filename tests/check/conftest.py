"""Fixtures of the checker tests: tiny Keras models converted here with
tf.lite.TFLiteConverter, so the backend tests do not wait for the convert stage."""
from pathlib import Path

import numpy as np
import pytest
from support.models import tiny_classifier
from support.runs import copy_model, index_variants, write_tflite_variant

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow loads)


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

    model = tiny_classifier()
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


@pytest.fixture(scope="session")
def tflite_bytes(tiny_run):
    """{"tflite-fp32": bytes, "tflite-int8": bytes} converted here from tiny_run's model
    (int8 calibrated on 200 training images, int8 I/O)."""
    import tensorflow as tf

    from edgekit.rundir import ModelArtifact
    from edgekit.train import data

    artifact = ModelArtifact.read(tiny_run)
    model = artifact.load_keras()
    calib = data.to_float(artifact.dataset().x_train[:200])
    fp32 = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    good_int8 = conv.convert()
    # Miscalibrated on purpose: calibration images scaled to 2% of their range,
    # so every activation range is ~50x too narrow and real inputs saturate.
    dim = calib * np.float32(0.02)
    conv.representative_dataset = lambda: ([dim[i:i + 1]] for i in range(len(dim)))
    return {"tflite-fp32": fp32, "tflite-int8": good_int8, "miscalibrated-int8": conv.convert()}


@pytest.fixture
def make_run(tiny_run, tflite_bytes, tmp_path):
    """``make(variants=("tflite-fp32", "tflite-int8")) -> run dir``: a private copy of
    tiny_run's model/ (tiny_run itself is shared and never written) plus variants;
    an item ``(recipe_id, key)`` writes ``tflite_bytes[key]`` under that recipe's id."""
    def make(variants=("tflite-fp32", "tflite-int8")):
        run_dir = copy_model(tiny_run, tmp_path / "run")
        for vid in variants:
            vid, content = (vid, tflite_bytes[vid]) if isinstance(vid, str) else (vid[0], tflite_bytes[vid[1]])
            write_tflite_variant(run_dir, vid, content)
        index_variants(run_dir)
        return run_dir

    return make


@pytest.fixture(scope="session")
def converted_run(tiny_run, tmp_path_factory):
    """A private copy of tiny_run's model/ with coreml-fp32 and coreml-w8 converted
    by the convert stage (read-only for tests: copy it before damaging anything)."""
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run as convert

    run_dir = copy_model(tiny_run, tmp_path_factory.mktemp("converted") / "run")
    result = convert(ConvertConfig(run_dir=run_dir, variants=("coreml-fp32", "coreml-w8")))
    assert result.ok, [(v.id, v.reason) for v in result.failed]
    return run_dir


@pytest.fixture
def copy_run(tmp_path):
    """``copy(run_dir) -> a writable copy`` for tests that damage files."""
    import shutil

    def copy(run_dir: Path) -> Path:
        dst = tmp_path / "copy"
        shutil.copytree(run_dir, dst)
        return dst

    return copy
