"""Backends: LiteRT on .tflite files converted in the fixture; backend choice; bad files."""
import platform

import numpy as np
import pytest

from edgekit.errors import ConfigError, ModelFileError, ShapeError
from edgekit.runtime import backends as b
from edgekit.runtime import metrics


def test_litert_fp32_matches_keras_exactly_in_top1(tflite_models, images):
    ref = tflite_models["keras"].predict_on_batch(images)
    out = b.LiteRTBackend(tflite_models["fp32"]).predict(images)
    assert out.dtype == np.float32 and out.shape == (64, 10)
    assert np.abs(out - ref).max() < metrics.FLOAT32_MAX_ABS_DIFF
    assert (out.argmax(1) == ref.argmax(1)).all()


@pytest.mark.parametrize("kind", ["int8", "uint8"])
def test_litert_integer_io_is_dequantized_from_the_tensor_parameters(tflite_models, images, kind):
    backend = b.LiteRTBackend(tflite_models[kind])
    assert backend.input_dtype == np.dtype(kind) and backend.output_dtype == np.dtype(kind)
    ref = tflite_models["keras"].predict_on_batch(images)
    out = backend.predict(images)
    # dequantized probabilities: sum to ~1 and close to the float model; a
    # forgotten zero point would shift every value by ~0.5 and fail both.
    assert np.allclose(out.sum(1), 1.0, atol=0.05)
    assert np.abs(out - ref).max() < 0.05
    assert metrics.psnr_db(ref, out) > 30


def test_litert_batches_regardless_of_chunk_and_fixed_batch(tflite_models, images):
    full = b.LiteRTBackend(tflite_models["fp32"]).predict(images)
    chunked = b.LiteRTBackend(tflite_models["fp32"], chunk=5).predict(images)   # 64 = 12*5 + 4
    fixed = b.LiteRTBackend(tflite_models["fixed"])
    assert not fixed.dynamic_batch and fixed.chunk == 1
    np.testing.assert_allclose(chunked, full, atol=1e-6)
    np.testing.assert_allclose(fixed.predict(images[:7]), full[:7], atol=1e-6)
    # a single image after a big batch: the interpreter really is resized
    np.testing.assert_allclose(b.LiteRTBackend(tflite_models["fp32"]).predict(images[3:4]), full[3:4], atol=1e-6)


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((2, 28, 28), np.float32), "shape"),
    (np.zeros((2, 32, 32, 1), np.float32), "shape"),
    (np.zeros((2, 28, 28, 1), np.uint8), "dtype"),
    (np.zeros((2, 28, 28, 1), np.float64), "dtype"),
    (np.zeros((0, 28, 28, 1), np.float32), "empty"),
])
def test_litert_refuses_wrong_input_naming_the_file(tflite_models, bad, msg):
    backend = b.LiteRTBackend(tflite_models["fp32"])
    with pytest.raises(ShapeError) as e:
        backend.predict(bad)
    assert msg in str(e.value) and "fp32.tflite" in str(e.value)


@pytest.mark.parametrize("damage", ["truncate", "foreign", "empty", "missing", "zero-body"])
def test_litert_refuses_broken_files_with_one_line(tflite_models, tmp_path, damage):
    good = tflite_models["fp32"].read_bytes()
    path = tmp_path / "model.tflite"
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 3])
    elif damage == "foreign":
        path.write_bytes(b"PK\x03\x04" + bytes(200))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "zero-body":
        path.write_bytes(good[:8] + bytes(len(good) - 8))
    with pytest.raises(ModelFileError) as e:
        b.LiteRTBackend(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_resolve_picks_runtime_by_format_and_platform():
    assert b.resolve("auto", "tflite") == b.BackendName.LITERT
    with pytest.raises(ConfigError):
        b.resolve("mil-reference", "tflite")
    with pytest.raises(ConfigError):
        b.resolve("litert", "coreml")
    assert b.resolve("mil-reference", "coreml") == b.BackendName.MIL_REFERENCE
    if platform.system() == "Darwin":
        assert b.resolve("auto", "coreml") == b.BackendName.COREML
    else:
        assert b.resolve("auto", "coreml") == b.BackendName.MIL_REFERENCE
        with pytest.raises(ConfigError) as e:
            b.resolve("coreml", "coreml")
        assert "only on macOS" in str(e.value)


def test_litert_file_that_loads_but_fails_to_run_is_one_line(tflite_models, monkeypatch):
    """The 1,000-example fuzz found a damaged file LiteRT opens and then fails
    to invoke ("Input tensor 5 lacks data", a RuntimeError); that must be a
    one-line ModelFileError like a file that does not load. (Searching for
    such a file here is not safe: other damage segfaults LiteRT itself.)"""
    backend = b.LiteRTBackend(tflite_models["fp32"])

    def invoke():
        raise RuntimeError("Input tensor 5 lacks data\nNode number 3 (CONV_2D) failed to invoke.")

    monkeypatch.setattr(backend._interp, "invoke", invoke)
    with pytest.raises(ModelFileError, match="LiteRT cannot run this model .*: Input tensor 5 lacks data$") as e:
        backend.predict(np.zeros((2, 28, 28, 1), np.float32))
    assert str(tflite_models["fp32"]) in str(e.value) and "\n" not in str(e.value)
