"""Decoded weights against coremltools' own decompression, and mutation
tests: deliberately broken decoding must be caught by these checks."""
from __future__ import annotations

import numpy as np
import pytest
from support.mil import differing_weights

from edgekit.runtime import mil
from edgekit.runtime.mil.blob import unpack_bits

COMPRESSED = ("w8", "pal6", "pal4", "pal2", "pruned")  # conftest.compress kinds

FP32_ATOL = 1e-5


@pytest.mark.parametrize("variant", [f"{k}-{t}" for t in ("iOS16", "iOS18") for k in ("fp16",) + COMPRESSED])
def test_weights_bit_for_bit(cnn_packages, variant):
    prog = mil.load(cnn_packages[variant])
    kinds = {t for t in prog.op_types if t.startswith("constexpr_")}
    if variant.startswith("fp16"):
        assert not kinds
    else:
        assert kinds, "compression produced no constexpr op: the comparison would prove nothing"
    assert differing_weights(prog, cnn_packages[variant]) == []


def test_unpack_bits_is_coremltools_packing():
    from coremltools.optimize._utils import pack_elements_into_bits

    rng = np.random.default_rng(0)
    for nbits in (1, 2, 3, 4, 6):
        for signed in (False, True):
            if signed and nbits != 4:
                continue
            lo, hi = (-(1 << nbits - 1), 1 << nbits - 1) if signed else (0, 1 << nbits)
            values = rng.integers(lo, hi, size=101).astype(np.int8 if signed else np.uint8)
            packed = pack_elements_into_bits(values, nbits)
            assert np.array_equal(unpack_bits(packed, nbits, 101, signed), values)
            if nbits > 1:
                assert not np.array_equal(unpack_bits(packed, nbits, 101, signed, lsb_first=False), values)


# ------------------------------------------------------------------ mutations
# Each mutation is a test-only switch of Program (mil.MUTATIONS). Each must be
# caught by a check the project runs: the bit-for-bit weight comparison, the
# fp32 agreement with Keras, or the fp16 representability of fp16 outputs.

@pytest.mark.parametrize("variant", ["pal6-iOS16", "pal4-iOS16", "pal2-iOS16", "pruned-iOS16", "pal4-iOS18"])
def test_wrong_bit_order_is_caught(cnn_packages, mnist, variant):
    good = mil.load(cnn_packages[variant])
    bad = mil.Program(cnn_packages[variant], _mutation="bit-order")
    assert differing_weights(bad, cnn_packages[variant])
    # and it changes what the app would see
    images = mnist[2][:300]
    assert (bad.predict(images).argmax(1) != good.predict(images).argmax(1)).mean() > 0.01


@pytest.mark.parametrize("variant", ["w8-iOS16", "w8-iOS18"])
def test_ignored_zero_point_is_caught(cnn_packages, mnist, variant):
    bad = mil.Program(cnn_packages[variant], _mutation="ignore-zero-point")
    assert differing_weights(bad, cnn_packages[variant])
    images = mnist[2][:300]
    good = mil.load(cnn_packages[variant]).predict(images)
    assert np.abs(bad.predict(images) - good).max() > 0.05


def test_skipped_transpose_is_caught(trained_cnn, cnn_packages, mnist, keras_probs):
    images = mnist[2]
    ref = keras_probs(trained_cnn, images)
    bad = mil.Program(cnn_packages["fp32"], _mutation="skip-transpose").predict(images)
    assert np.abs(bad - ref).max() > FP32_ATOL
    assert (bad.argmax(1) == ref.argmax(1)).mean() < 0.9


def test_missing_fp16_rounding_is_caught(cnn_packages, mnist):
    images = mnist[2][:300]
    bad = mil.Program(cnn_packages["fp16-iOS16"], _mutation="no-fp16-rounding").predict(images)
    # an fp16 program's outputs are fp16 values; without rounding they are not
    assert not np.array_equal(bad, bad.astype(np.float16).astype(np.float32))


def test_unknown_mutation_is_refused(cnn_packages):
    with pytest.raises(ValueError, match="unknown mutation"):
        mil.Program(cnn_packages["fp32"], _mutation="typo")


def test_pruned_program_matches_keras_pruned_the_same_way(trained_cnn, cnn_packages, mnist, keras_probs):
    """An independent check of the sparse path on a trained network: zero the
    same smallest-magnitude 60% of each large Keras kernel (conftest.compress:
    target_sparsity 0.6, tensors over 512 values) and compare predictions."""
    import tf_keras as keras

    model = keras.models.clone_model(trained_cnn)
    model.set_weights(trained_cnn.get_weights())
    pruned_tensors = 0
    for layer in model.layers:
        weights = layer.get_weights()
        if weights and weights[0].size > 512:
            k = weights[0]
            flat = np.abs(k.astype(np.float16).astype(np.float32)).reshape(-1)  # the program prunes fp16 weights
            drop = np.argsort(flat, kind="stable")[: int(round(0.6 * flat.size))]
            k = k.reshape(-1).copy()
            k[drop] = 0
            layer.set_weights([k.reshape(weights[0].shape)] + weights[1:])
            pruned_tensors += 1
    assert pruned_tensors == 3  # conv2, dense, and the 1280-value output layer
    images = mnist[2]
    ref = keras_probs(model, images)
    got = mil.load(cnn_packages["pruned-iOS16"]).predict(images)
    unpruned = keras_probs(trained_cnn, images)
    assert (ref.argmax(1) != unpruned.argmax(1)).any() or np.abs(ref - unpruned).max() > 0.01  # pruning mattered
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.99
    assert np.abs(got - ref).max() < 5e-2  # fp16 program vs float32 Keras, as in the fp16 test
