"""The interpreter against the Keras model it was converted from."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from edgekit.errors import ShapeError
from edgekit.runtime import mil

# fp32 programs do the same float32 arithmetic as Keras in another order:
# differences are a few ulp of the logits, far below 1e-5 in probability.
FP32_ATOL = 1e-5


def test_fp32_cnn_matches_keras(trained_cnn, cnn_packages, mnist, keras_probs):
    images = mnist[2]
    ref = keras_probs(trained_cnn, images)
    got = mil.load(cnn_packages["fp32"]).predict(images)
    assert got.shape == (1000, 10) and got.dtype == np.float32
    assert np.abs(got - ref).max() <= FP32_ATOL
    assert (got.argmax(1) == ref.argmax(1)).all()
    assert (ref.argmax(1) == mnist[3]).mean() > 0.8  # the model is trained, so agreement means something


def test_fp32_mobile_matches_keras(mobile_model, mobile_package, mnist, keras_probs):
    """Depthwise conv, folded batch norm, relu6, 'same' avg pool, a dilated
    conv (space_to_batch/batch_to_space) and global average pooling."""
    images = mnist[2][:300]
    prog = mil.load(mobile_package)
    assert {"space_to_batch", "batch_to_space", "avg_pool", "reduce_mean", "relu6"} <= set(prog.op_types)
    ref = keras_probs(mobile_model, images)
    got = prog.predict(images)
    assert np.abs(got - ref).max() <= FP32_ATOL
    assert (got.argmax(1) == ref.argmax(1)).all()


def test_batch_of_n_equals_one_at_a_time(cnn_packages, mnist):
    prog = mil.load(cnn_packages["fp16-iOS16"])
    images = mnist[2][:300]  # > one internal chunk
    batched = prog.predict(images)
    single = np.concatenate([prog.predict(images[i:i + 1]) for i in range(0, 300, 37)])
    np.testing.assert_allclose(batched[::37], single, atol=1e-3)
    assert (batched[::37].argmax(1) == single.argmax(1)).all()


def test_chunk_is_sized_by_the_largest_im2col_matrix(cnn_packages, mobile_package):
    """The cnn's 5x5 conv2 builds a [14 * 14, 5 * 5 * 16] float32 matrix an
    image (313,600 bytes), larger than any activation: it sets the chunk.
    The mobile net's 1x1 and depthwise convs build none."""
    from edgekit.runtime.mil import program

    prog = mil.load(cnn_packages["fp32"])
    convs = [prog._im2col_bytes(op) for op in prog._steps if op.type == "conv"]
    assert convs == [28 * 28 * 25 * 4, 14 * 14 * 25 * 16 * 4]
    assert prog.chunk == program.CHUNK_BYTES // convs[1] < program.CHUNK
    mobile = mil.load(mobile_package)
    built = {}
    for op in mobile._steps:
        if op.type == "conv":
            weight, groups = (np.asarray(mobile._consts[op.args[k][0][1]]) for k in ("weight", "groups"))
            _, cg, kh, kw = weight.shape
            kind = "pointwise" if kh * kw == 1 else "depthwise" if cg == 1 and int(groups) > 1 else "im2col"
            built.setdefault(kind, []).append(mobile._im2col_bytes(op))
    assert set(built) == {"pointwise", "depthwise", "im2col"}
    assert set(built["pointwise"]) == set(built["depthwise"]) == {0} and min(built["im2col"]) > 0


def test_fp16_program_behaves_as_fp16(trained_cnn, cnn_packages, mnist, keras_probs):
    images = mnist[2]
    ref = keras_probs(trained_cnn, images)
    got = mil.load(cnn_packages["fp16-iOS16"]).predict(images)
    # the last fp16 op is the softmax: every probability is an fp16 value
    assert np.array_equal(got, got.astype(np.float16).astype(np.float32))
    diff = np.abs(got - ref).max()
    assert FP32_ATOL < diff < 5e-2  # fp16 rounding shows, and stays small
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.99


def test_uint8_and_float_inputs_agree(cnn_packages, mnist):
    prog = mil.load(cnn_packages["fp32"])
    images = mnist[2][:200]
    a = prog.predict(images)
    b = prog.predict(images[..., None].astype(np.float32) / 255)
    assert np.abs(a - b).max() <= FP32_ATOL


def test_api(cnn_packages):
    prog = mil.load(cnn_packages["pal4-iOS18"])
    spec = prog.input_spec
    assert (spec.name, spec.kind, spec.shape, spec.color_layout) == ("image", "image", (28, 28), "GRAYSCALE")
    assert spec.scale == pytest.approx(1 / 255) and spec.bias == (0.0,) and spec.channels == 1
    assert prog.class_labels == [str(i) for i in range(10)]
    assert {"conv", "max_pool", "linear", "softmax", "classify", "constexpr_lut_to_dense"} <= set(prog.op_types)
    w = prog.weights()
    assert any(v.shape == (128, 1764) and v.dtype == np.float16 for v in w.values())


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 28, 28), np.int32), "neither uint8"),
    (np.zeros((2, 28, 27), np.uint8), r"\[N, 28, 28\]"),
    (np.zeros((2, 28, 28), np.float32), r"\[N, 28, 28, 1\]"),
    (np.full((2, 28, 28, 1), 2.0, np.float32), r"\[0, 1\]"),
    (np.zeros((0, 28, 28), np.uint8), "empty"),
])
def test_bad_inputs_are_shape_errors(cnn_packages, bad, match):
    with pytest.raises(ShapeError, match=match):
        mil.load(cnn_packages["fp32"]).predict(bad)


@pytest.mark.skipif(sys.platform != "darwin", reason="MLModel.predict (the real Core ML runtime) exists only on macOS")
@pytest.mark.parametrize("variant", ["fp32", "fp16-iOS16", "pal4-iOS16", "w8-iOS18"])
def test_matches_real_coreml_runtime(cnn_packages, mnist, variant):
    import coremltools as ct
    from PIL import Image

    images = mnist[2][:200]
    model = ct.models.MLModel(str(cnn_packages[variant]), compute_units=ct.ComputeUnit.CPU_ONLY)
    real = np.array([[model.predict({"image": Image.fromarray(im, mode="L")})["classLabel_probs"][str(c)]
                      for c in range(10)] for im in images], dtype=np.float32)
    got = mil.load(cnn_packages[variant]).predict(images)
    tol = FP32_ATOL if variant == "fp32" else 2e-2  # Core ML's fp16 kernels accumulate differently
    assert np.abs(got - real).max() <= tol
    assert (got.argmax(1) == real.argmax(1)).mean() >= 0.99


def test_skipping_exact_fp16_roundings_changes_nothing(cnn_packages, mnist):
    """relu/max_pool/transpose/reshape of fp16 values are fp16 values: the
    interpreter skips re-rounding them, which must be bit-identical."""
    prog = mil.load(cnn_packages["pal4-iOS16"])
    assert {"relu", "max_pool", "transpose", "reshape"} & {op.type for op in prog._ops if op.name in prog._already_fp16}
    images = mnist[2][:200]
    fast = prog.predict(images)
    prog._already_fp16 = set()
    assert np.array_equal(fast, prog.predict(images))
