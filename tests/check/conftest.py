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


def write_tflite_variant(run_dir: Path, recipe_id: str, content: bytes) -> Path:
    """variants/<id>/ with model.tflite and a variant.json (schema edgekit.variant/1)
    built from the recipe file of that id, as the convert stage writes it."""
    import json

    from edgekit import artifacts

    recipe = json.loads(Path(edgekit.__file__).parent.parent.joinpath("convert", "recipes", f"{recipe_id}.json").read_text())
    vdir = run_dir / "variants" / recipe_id
    vdir.mkdir(parents=True)
    (vdir / "model.tflite").write_bytes(content)
    manifest = {
        "schema": "edgekit.variant/1", "id": recipe_id, "format": "tflite", "platform": "android",
        "recipe": recipe,
        "source_model": {"manifest": "../../model/manifest.json",
                         "sha256": artifacts.sha256_file(run_dir / "model" / "manifest.json")},
        "file": artifacts.file_record(vdir / "model.tflite", vdir),
        "zipped_bytes": artifacts.zipped_size(vdir / "model.tflite"),
    }
    artifacts.write_json(vdir / "variant.json", manifest)
    return vdir


@pytest.fixture(scope="session")
def tflite_bytes(tiny_run):
    """{"tflite-fp32": bytes, "tflite-int8": bytes} converted here from tiny_run's model
    (int8 calibrated on 200 training images, int8 I/O)."""
    import tensorflow as tf

    from edgekit import artifacts
    from edgekit.train import data, models

    manifest = artifacts.read_manifest(tiny_run / "model" / "manifest.json", "edgekit.model/1")
    model = models.load_model(tiny_run / "model", manifest)
    calib = data.to_float(data.load_from_manifest(manifest, tiny_run / "model").x_train[:200])
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
    import shutil

    def make(variants=("tflite-fp32", "tflite-int8")):
        run_dir = tmp_path / "run"
        shutil.copytree(tiny_run / "model", run_dir / "model")
        for vid in variants:
            vid, content = (vid, tflite_bytes[vid]) if isinstance(vid, str) else (vid[0], tflite_bytes[vid[1]])
            write_tflite_variant(run_dir, vid, content)
        return run_dir

    return make


@pytest.fixture(scope="session")
def converted_run(tiny_run, tmp_path_factory):
    """A private copy of tiny_run's model/ with coreml-fp32 and coreml-w8 converted
    by the convert stage (read-only for tests: copy it before damaging anything)."""
    import shutil

    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run as convert

    run_dir = tmp_path_factory.mktemp("converted") / "run"
    shutil.copytree(tiny_run / "model", run_dir / "model")
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


def rehash_variant(vdir: Path) -> None:
    """Re-record variant.json's file sha256/size after a test damaged the model
    file on purpose, so the damage reaches the runtime rather than the hash check."""
    import json

    from edgekit import artifacts

    man = json.loads((vdir / "variant.json").read_text())
    man["file"] = artifacts.file_record(vdir / man["file"]["path"], vdir)
    artifacts.write_json(vdir / "variant.json", man)
