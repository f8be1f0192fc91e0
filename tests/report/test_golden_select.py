"""Golden kit sample selection and rules, on hand-made data (the real-run
kit is tested in tests/apps/test_pipeline.py)."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import ShapeError
from edgekit.runtime import golden


def test_flipped_first_capped_at_half_then_stratified():
    labels = np.repeat(np.arange(10), 50)                # 500 samples, 50 per class
    flipped = {"a": list(range(0, 200, 2)), "b": [1, 3, 5]}
    idx = golden.select_samples(labels, flipped, count=100, seed=0)
    assert len(idx) == len(set(idx)) == 100
    assert {1, 3, 5} <= set(idx[:50])                   # round-robin: b's flips are not crowded out by a's 100
    assert sum(i in set(flipped["a"]) | set(flipped["b"]) for i in idx[:50]) == 50
    counts = np.bincount(labels[idx[50:]], minlength=10)
    assert counts.max() - counts.min() <= 1             # the fill is stratified
    assert golden.select_samples(labels, flipped, count=100, seed=0) == idx
    assert golden.select_samples(labels, flipped, count=100, seed=1)[50:] != idx[50:]


def test_small_sets_and_out_of_range_flips():
    labels = np.array([0, 1, 1, 2])
    assert sorted(golden.select_samples(labels, {"a": [99, -1, 2]}, count=100)) == [0, 1, 2, 3]


def _kit(expected_top1, original_top1, known=(), ties=(), tol=0.01):
    def probs(k):
        p = np.full(3, 0.1)
        p[k] = 0.8
        return [float(v) for v in p]

    samples = [{"id": f"{i:04d}", "test_index": i, "original": {"top1": o, "probabilities": probs(o)}}
               for i, o in enumerate(original_top1)]
    return {"model": {"class_names": ["a", "b", "c"]}, "samples": samples,
            "variants": {"v": {"tolerance": {"max_abs_prob_diff": tol}, "known_flips": list(known), "near_ties": list(ties),
                               "expected": [{"top1": e, "probabilities": probs(e)} for e in expected_top1]}}}


def test_verify_rules():
    kit = _kit(expected_top1=[0, 1, 2], original_top1=[0, 2, 2], known=["0001"])
    exp = np.array([s["probabilities"] for s in kit["variants"]["v"]["expected"]])
    assert golden.verify(kit, "v", exp) == []
    assert golden.verify(kit, "v", exp + 0.009) == []
    assert len(golden.verify(kit, "v", exp + 0.02)) == 3
    # a known flip may show the original's class (at the original's probabilities it breaks the tolerance only)
    swapped = exp.copy()
    swapped[1] = kit["samples"][1]["original"]["probabilities"]
    fails = golden.verify(kit, "v", swapped)
    assert len(fails) == 1 and "max abs probability" in fails[0]
    # an unexpected top-1 on a normal sample is a failure of its own
    bad = exp.copy()
    bad[0] = [0.1, 0.8, 0.1]
    assert any("top-1 1, expected 0" in f for f in golden.verify(kit, "v", bad))
    with pytest.raises(ShapeError):
        golden.verify(kit, "v", exp[:2])
