"""Each elementwise op the interpreter runs, against the semantics of its
coremltools op definition (``converters/mil/mil/ops/defs/iOS15``): a one-op
ML Program built with coremltools' MIL builder, saved as an .mlpackage and
run by mil-reference, compared with the definition's own ``value_inference``
(computed by the builder when the op's input is a constant) or, for the ops
whose definition has none, with the formula its docstring states."""
from __future__ import annotations

import numpy as np
import pytest

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow loads)
from edgekit.runtime import mil
from edgekit.runtime.mil import ops

SHAPE = (1, 3, 4, 5)
# values across every branch: negatives, zero, the relu6/hard-sigmoid knees, large
X = np.concatenate([np.linspace(-8, 8, 57), [0.0, 3.0, -3.0]]).astype(np.float32).reshape(SHAPE)

# op -> (const parameters, formula for definitions without value_inference)
CASES = {
    "relu": ({}, None),
    "relu6": ({}, None),
    "sigmoid": ({}, None),
    "silu": ({}, lambda x: x / (1 + np.exp(-x))),
    "softplus": ({}, None),
    "softsign": ({}, None),
    "tanh": ({}, None),
    "elu": ({"alpha": 0.7}, None),
    "leaky_relu": ({"alpha": 0.1}, None),
    "prelu": ({"alpha": np.array([0.1, 0.2, 0.3], np.float32)}, None),
    "clamped_relu": ({"alpha": 0.2, "beta": 5.0}, None),
    "thresholded_relu": ({"alpha": 1.5}, None),
    "sigmoid_hard": ({"alpha": 1 / 6, "beta": 0.5}, None),
    "linear_activation": ({"alpha": 1.5, "beta": -0.5}, None),
    "scaled_tanh": ({"alpha": 2.0, "beta": 0.5}, None),
    "softplus_parametric": ({"alpha": np.array([0.5, 1.0, 2.0], np.float32),
                             "beta": np.array([1.0, 0.5, 2.0], np.float32)}, None),
    "clip": ({"alpha": -1.0, "beta": 2.5}, None),
    "threshold": ({"alpha": 0.5}, None),
    "abs": ({}, None),
    "exp": ({}, None),
    "square": ({}, None),
}


def _reference(op: str, params: dict, formula):
    from coremltools.converters.mil.mil import Builder as mb

    found = {}

    @mb.program(input_specs=[mb.TensorSpec(shape=(1,))])
    def _prog(dummy):
        found["val"] = getattr(mb, op)(x=X, **params).val  # value_inference on a constant input
        return dummy

    if found["val"] is None:
        assert formula is not None, f"{op} has no value_inference; the test needs its formula"
        return formula(X.astype(np.float64)).astype(np.float32)
    return np.asarray(found["val"], np.float32)


def _one_op_package(op: str, params: dict, path):
    import coremltools as ct
    from coremltools.converters.mil.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=SHAPE)], opset_version=ct.target.iOS15)
    def prog(x):
        return getattr(mb, op)(x=x, **params)

    ct.convert(prog, convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
               minimum_deployment_target=ct.target.iOS15).save(str(path))
    return path


@pytest.mark.parametrize("op", sorted(CASES))
def test_op_matches_its_definition(op, tmp_path):
    params, formula = CASES[op]
    assert op in mil.SUPPORTED_OPS
    prog = mil.load(_one_op_package(op, params, tmp_path / f"{op}.mlpackage"))
    assert op in prog.op_types  # the converter kept the op (no rewrite hid it)
    got = prog.predict(X)
    ref = _reference(op, params, formula)
    # float32 kernels against the definitions' float64/float32 numpy: a few ulp
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("mode, expected", [
    ("constant", [[9, 9, 9, 9, 9], [9, 1, 2, 3, 9], [9, 4, 5, 6, 9]]),
    ("reflect", [[5, 4, 5, 6, 5], [2, 1, 2, 3, 2], [5, 4, 5, 6, 5]]),
    ("replicate", [[1, 1, 2, 3, 3], [1, 1, 2, 3, 3], [4, 4, 5, 6, 6]]),
])
def test_pad_modes(mode, expected):
    """iOS15 pad: (before, after) pairs for the last axes; reflect mirrors
    without the edge, replicate repeats it."""
    x = np.array([[[[1, 2, 3], [4, 5, 6]]]], np.float32)
    got = ops.pad_op(x, np.array([1, 0, 1, 1]), mode, 9.0)
    assert got[0, 0].tolist() == expected


def test_fp16_rounding_is_numpys_cast_bit_for_bit():
    """The interpreter's own fp32 -> fp16 rounding (numpy's cast is ~20x
    slower on fp16 subnormals) against numpy's cast on every kind of value:
    random bit patterns (NaNs, infinities, subnormals of both types), values
    near fp16's range, ties, signed zeros and the overflow boundary."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    near = (bits & np.uint32(0x87FFFFFF)) | np.uint32(0x30000000)      # exponents around fp16's
    edge = np.array([65504, 65519.99, 65520, 65536, 2**-14, 2**-24, 2**-25, 3 * 2**-25, 1 + 2**-11,
                     1 + 3 * 2**-11, 0.0, np.inf, np.nan, 1e-30, 1e30], np.float32)
    edge = np.concatenate([edge, -edge, np.nextafter(edge, np.float32(0)), np.nextafter(edge, np.float32(np.inf))])
    x = np.concatenate([bits.view(np.float32), near.view(np.float32), edge])
    with np.errstate(all="ignore"):
        ref = x.astype(np.float16).astype(np.float32)
    got = ops.round_f16(x)
    same = (got.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(got) & np.isnan(ref))
    assert same.all(), x[~same][:5]
    # an NCHW view of NHWC memory, rounded in place, the same
    y = np.ascontiguousarray(x[: 4 * 6 * 5 * 7].reshape(4, 6, 5, 7)).transpose(0, 3, 1, 2)
    want = ops.round_f16(np.ascontiguousarray(y))
    ops.round_f16_in_place(y)
    same = (y.view(np.uint32) == want.view(np.uint32)) | (np.isnan(y) & np.isnan(want))
    assert same.all()
