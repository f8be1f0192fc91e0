"""Colour (RGB/BGR image input) programs with the ops phone networks use,
against the tf_keras model they were converted from (support.mil_colour:
depthwise convs, batch norm, ReLU6, hard-swish, residual add, pad, squeeze-
excite mul, silu, sigmoid, concat, global pooling; BGR mean/std preprocessing
carried by the image input's scale and per-channel bias)."""
from __future__ import annotations

import numpy as np
import pytest
from support.mil import differing_weights
from support.mil_colour import BGR_MEAN, STD, keras_colour_input

from edgekit.errors import ShapeError
from edgekit.runtime import mil

# fp32 programs do the same float32 arithmetic as Keras in another order
FP32_ATOL = 1e-5


def _keras(model, pixels, order):
    return model.predict(keras_colour_input(pixels, order), batch_size=240, verbose=0)


@pytest.fixture
def pixels(colour_pixels):
    return colour_pixels[0]


def test_fp32_colour_matches_keras(colour_model, colour_packages, pixels, colour_pixels):
    prog = mil.load(colour_packages["bgr-fp32"])
    ops = set(prog.op_types)
    # the op families of phone networks, as the converter emitted them
    assert {"conv", "relu6", "mul", "add", "pad", "reduce_mean", "concat", "silu", "sigmoid", "batch_norm",
            "relu", "minimum", "maximum"} <= ops
    assert any(op.type == "conv" and int(np.asarray(prog._const_arg(op, "groups", 1))) > 1 for op in prog._ops)
    ref = _keras(colour_model, pixels, "bgr")
    got = prog.predict(pixels)
    assert got.shape == (240, 5) and got.dtype == np.float32
    labels = colour_pixels[1]
    assert (ref.argmax(1) == labels).mean() > 0.6  # trained: the answers depend on the input, so agreeing means something
    stats = [w for layer in colour_model.layers if type(layer).__name__ == "BatchNormalization"
             for w in layer.get_weights()[2:]]
    assert max(np.abs(m).max() for m in stats[::2]) > 0.2 and max(np.abs(v - 1).max() for v in stats[1::2]) > 0.2
    assert np.abs(got - ref).max() <= FP32_ATOL
    assert (got.argmax(1) == ref.argmax(1)).all()


def test_colour_order_matters_and_is_followed(colour_model, colour_packages, pixels):
    """The same model behind an RGB and a BGR image input: both get the same
    RGB pixels and each agrees with Keras fed in its own order; a BGR program
    fed without the channel swap (what an interpreter ignoring the layout
    would compute) does not."""
    bgr, rgb = mil.load(colour_packages["bgr-fp32"]), mil.load(colour_packages["rgb-fp32"])
    assert (bgr.input_spec.color_layout, rgb.input_spec.color_layout) == ("BGR", "RGB")
    ref_bgr = _keras(colour_model, pixels, "bgr")
    ref_rgb = _keras(colour_model, pixels, "rgb")
    assert (ref_bgr.argmax(1) != ref_rgb.argmax(1)).mean() > 0.1  # swapping the order changes the answer
    assert np.abs(bgr.predict(pixels) - ref_bgr).max() <= FP32_ATOL
    assert np.abs(rgb.predict(pixels) - ref_rgb).max() <= FP32_ATOL
    unswapped = bgr.predict(np.ascontiguousarray(pixels[..., ::-1]))
    assert np.abs(unswapped - ref_bgr).max() > 1e-2


def test_input_spec_carries_the_preprocessing(colour_packages):
    spec = mil.load(colour_packages["bgr-fp16"]).input_spec
    assert (spec.kind, spec.shape, spec.channels, spec.color_layout) == ("image", (32, 32), 3, "BGR")
    assert spec.scale == pytest.approx(1 / (255 * STD))
    assert spec.bias == pytest.approx([-m / STD for m in BGR_MEAN])   # program (B, G, R) order
    assert mil.load(colour_packages["rgb-fp32"]).input_spec.bias == pytest.approx([-m / STD for m in BGR_MEAN[::-1]])


def test_float_and_uint8_colour_inputs_agree(colour_packages, pixels):
    prog = mil.load(colour_packages["bgr-fp32"])
    a = prog.predict(pixels[:50])
    b = prog.predict(pixels[:50].astype(np.float32) / 255)
    assert np.abs(a - b).max() <= FP32_ATOL


def test_fp16_colour_behaves_as_fp16(colour_model, colour_packages, pixels):
    got = mil.load(colour_packages["bgr-fp16"]).predict(pixels)
    ref = _keras(colour_model, pixels, "bgr")
    assert np.array_equal(got, got.astype(np.float16).astype(np.float32))  # fp16 softmax: fp16 values
    diff = np.abs(got - ref).max()
    # fp16 keeps 11 significant bits through ~20 ops: differences of a few
    # 1e-3 in probability; more would mean a wrong op, less no fp16 at all
    assert FP32_ATOL < diff < 1e-2
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.97


def test_palettized_colour_runs(colour_model, colour_packages, pixels):
    """4-bit palettized weights (constexpr_lut_to_dense on depthwise and 1x1
    convs): decoded as coremltools decodes them, and the program runs."""
    prog = mil.load(colour_packages["bgr-pal4"])
    assert "constexpr_lut_to_dense" in prog.op_types
    assert differing_weights(prog, colour_packages["bgr-pal4"]) == []
    got = prog.predict(pixels)
    assert got.shape == (240, 5) and np.isfinite(got).all()
    assert np.allclose(got.sum(1), 1, atol=1e-2)
    fp16 = mil.load(colour_packages["bgr-fp16"]).predict(pixels)
    assert 1e-3 < np.abs(got - fp16).max()  # 16 values per tensor do change the weights


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 32, 32), np.uint8), r"\[N, 32, 32, 3\]"),
    (np.zeros((2, 32, 32, 1), np.uint8), r"\[N, 32, 32, 3\]"),
    (np.zeros((2, 32, 32, 3), np.float64), "neither uint8"),
    (np.full((2, 32, 32, 3), 1.5, np.float32), r"\[0, 1\]"),
])
def test_bad_colour_inputs_are_shape_errors(colour_packages, bad, match):
    with pytest.raises(ShapeError, match=match):
        mil.load(colour_packages["rgb-fp32"]).predict(bad)


def test_mil_reference_backend_feeds_a_bgr_program_in_its_order(colour_model, colour_packages, pixels):
    """The checker's backend gets the Keras model's inputs (B, G, R order,
    mean/std normalised) and must give the BGR program the same image."""
    from edgekit.rundir import PixelMapping
    from edgekit.runtime import backends

    mapping = PixelMapping.from_mean_std(BGR_MEAN, [STD] * 3)
    x = keras_colour_input(pixels, "bgr")
    backend = backends.MilReferenceBackend(colour_packages["bgr-fp32"], ["a", "b", "c", "d", "e"], pixels=mapping)
    assert backend.image_shape == (32, 32, 3)
    got = backend.predict(x)
    assert np.abs(got - _keras(colour_model, pixels, "bgr")).max() <= FP32_ATOL
