"""edgekit.runtime.golden.verify on rows the rules cannot judge: NaN or
infinity, and a vector of the wrong length, each one failure of its sample
(the Swift rule in apps/ios reports the same; tests/ios/swift_fixtures.py
writes the cross-language cases)."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import ShapeError
from edgekit.runtime import golden


def _kit():
    p = [0.8, 0.1, 0.1]
    samples = [{"id": f"{i:04d}", "test_index": 10 + i, "original": {"top1": 0, "probabilities": p}} for i in range(3)]
    return {"model": {"class_names": ["a", "b", "c"]}, "samples": samples,
            "variants": {"v": {"tolerance": {"max_abs_prob_diff": 0.01}, "known_flips": [], "near_ties": [],
                               "expected": [{"top1": 0, "probabilities": p}] * 3}}}


def test_nan_and_infinity_fail_their_sample_only():
    rows = [[0.8, 0.1, 0.1], [0.8, float("nan"), 0.1], [0.8, 0.1, float("-inf")]]
    assert golden.verify(_kit(), "v", rows) == ["sample 0001 (test #11): probability nan at class 1",
                                                "sample 0002 (test #12): probability -inf at class 2"]


def test_a_row_of_the_wrong_length_fails_its_sample_only():
    rows = [[0.8, 0.1, 0.1], [0.8, 0.1], [0.8, 0.1, 0.1, 0.0]]
    assert golden.verify(_kit(), "v", rows) == ["sample 0001 (test #11): 2 probabilities, the kit has 3 classes",
                                                "sample 0002 (test #12): 4 probabilities, the kit has 3 classes"]


def test_the_wrong_number_of_rows_is_a_shape_error():
    with pytest.raises(ShapeError):
        golden.verify(_kit(), "v", np.full((2, 3), 1 / 3))
