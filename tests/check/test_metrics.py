"""Metrics and gate of the checker: pure numpy, against hand-computed values and scipy."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from edgekit.errors import ConfigError, ShapeError
from edgekit.runtime import metrics as m


def onehot(idx, c=3, hi=0.9):
    p = np.full((len(idx), c), (1 - hi) / (c - 1), np.float32)
    p[np.arange(len(idx)), idx] = hi
    return p


def test_mcnemar_hand_computed():
    # b=5, c=0: p = 2 * 0.5**5 = 0.0625
    assert m.mcnemar_exact_p(5, 0) == pytest.approx(0.0625, rel=1e-12)
    # b=3, c=1: 2 * (1 + 4) / 16 = 0.625
    assert m.mcnemar_exact_p(3, 1) == pytest.approx(0.625, rel=1e-12)
    assert m.mcnemar_exact_p(0, 0) == 1.0
    assert m.mcnemar_exact_p(4, 4) == 1.0  # capped at 1


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3000), st.integers(0, 3000))
def test_mcnemar_matches_scipy_binomtest(b, c):
    expected = 1.0 if b + c == 0 else stats.binomtest(min(b, c), b + c, 0.5).pvalue
    # below ~1e-250 scipy underflows to 0 where the log-space sum still has digits
    assert m.mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-250)


def test_mcnemar_tiny_p_matches_exact_integer_arithmetic():
    # b=10, c=1065: p ~ 2.7e-300, where scipy's binomtest and logcdf underflow;
    # the exact sum of binomial coefficients is a Python integer
    exact = sum(math.comb(1075, i) for i in range(11))
    expected_log = math.log(2) + math.log(exact) - 1075 * math.log(2)
    assert math.log(m.mcnemar_exact_p(10, 1065)) == pytest.approx(expected_log, rel=1e-9)


def test_compare_counts_agreement_flips_and_per_class():
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 1])
    orig = onehot([0, 0, 1, 2, 2, 2, 0, 1])        # right: 0,1,2,4,5,7 (6/8)
    var = onehot([0, 1, 1, 1, 2, 0, 2, 1])         # right: 0,2,3,4,6,7 (6/8)
    r = m.compare(labels, orig, var)
    assert r.flipped == [1, 3, 5, 6]
    assert r.agreement == pytest.approx(0.5)
    assert r.accuracy == pytest.approx(0.75) and r.original_accuracy == pytest.approx(0.75)
    assert r.accuracy_change == pytest.approx(0.0)
    assert (r.discordant_b, r.discordant_c) == (2, 2)  # b: idx 1,5; c: idx 3,6
    assert r.mcnemar_p == 1.0
    # class 0: orig 2/2, var 1/2 -> -50 pts; class 1: orig 2/3, var 3/3 -> +33.3; class 2: 2/3 vs 2/3
    assert r.per_class_accuracy_change == pytest.approx([-50.0, 100 / 3, 0.0])
    assert r.max_abs_diff == pytest.approx(0.85)


def test_per_class_absent_class_is_none_and_json_has_no_inf():
    labels = np.array([0, 0])
    p = onehot([0, 0])
    r = m.compare(labels, p, p.copy())
    assert r.per_class_accuracy_change == [0.0, None, None]
    assert math.isinf(r.psnr_db) and math.isinf(r.snr_db)
    j = r.to_json()
    assert j["psnr_db"] is None and j["snr_db"] is None and j["identical_outputs"] is True


def test_psnr_and_snr_hand_computed():
    ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    test = ref + np.array([[0.1, -0.1], [0.1, -0.1]])
    # mse = 0.01 -> psnr = 20 dB; signal = 2, noise = 0.04 -> snr = 10 log10(50)
    assert m.psnr_db(ref, test) == pytest.approx(20.0)
    assert m.snr_db(ref, test) == pytest.approx(10 * math.log10(50))


def test_compare_refuses_mismatched_shapes_and_nan():
    p = onehot([0, 1])
    with pytest.raises(ShapeError):
        m.compare([0, 1], p, p[:1])
    with pytest.raises(ShapeError):
        m.compare([0, 1, 2], p, p)
    bad = p.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ShapeError):
        m.compare([0, 1], p, bad)


def test_gate_collects_every_reason():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    orig = onehot(labels)
    wrong = labels.copy()
    wrong[:20] = (wrong[:20] + 1) % 3               # 10% flipped, all were right
    r = m.compare(labels, orig, onehot(wrong, hi=0.5))
    reasons = m.gate(r, m.DEFAULT_THRESHOLDS[m.Kind.FLOAT32])
    assert any("agreement 90.00%" in s and "exact 100% bar" in s for s in reasons)
    assert any("max abs probability difference" in s for s in reasons)
    q = m.gate(r, m.DEFAULT_THRESHOLDS[m.Kind.QUANTIZED])
    assert len(q) == 4  # agreement, drop beyond the margin, significant drop, PSNR
    assert any("accuracy dropped 10.00 points" in s for s in q) and any("significant drop" in s for s in q)
    assert m.gate(r, m.Thresholds()) == []   # nothing gated, PSNR above the absolute floor


def test_gate_passes_identical_outputs_under_every_default_given_enough_images():
    labels = np.arange(10000) % 3
    p = onehot(labels)
    r = m.compare(labels, p, p.copy())
    for kind in m.Kind:
        assert m.gate(r, m.DEFAULT_THRESHOLDS[kind]) == []
    # 10 identical images show exactness (float32) but not a 99.5% lower bound
    small = m.compare(labels[:10], p[:10], p[:10].copy())
    assert m.gate(small, m.DEFAULT_THRESHOLDS[m.Kind.FLOAT32]) == []
    assert any("needs about" in s for s in m.gate(small, m.DEFAULT_THRESHOLDS[m.Kind.QUANTIZED]))


def test_comparison_carries_both_intervals_into_json():
    labels = np.zeros(359, int)
    orig = onehot(labels)
    var = orig.copy()
    var[:2] = onehot([1, 1])
    r = m.compare(labels, orig, var)
    assert r.agreement_ci == pytest.approx(m.wilson_interval(357, 359))
    assert r.accuracy_change_ci == pytest.approx(tuple(100 * v for v in m.paired_change_interval(2, 0, 359)))
    j = r.to_json()
    assert j["agreement_ci"] == pytest.approx(list(r.agreement_ci)) and isinstance(j["agreement_ci"], list)
    assert j["accuracy_change_ci"][0] < r.accuracy_change < j["accuracy_change_ci"][1] and j["confidence"] == 0.95


def test_absolute_psnr_floor_applies_even_when_not_gated():
    labels = np.zeros(4, int)
    orig = np.tile([1.0, 0.0], (4, 1))
    var = np.tile([0.51, 0.49], (4, 1))   # same top-1, RMS error 0.49 -> 6.2 dB
    r = m.compare(labels, orig, var)
    reasons = m.gate(r, m.Thresholds())
    assert len(reasons) == 1 and "absolute floor" in reasons[0]


@pytest.mark.parametrize("kwargs", [
    {"min_agreement": 1.5}, {"min_agreement": -0.1}, {"max_accuracy_drop": -1},
    {"min_psnr_db": 5.0}, {"max_abs_diff": 2.0}, {"min_agreement": float("nan")},
])
def test_thresholds_out_of_range_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        m.Thresholds(**kwargs)


def test_override_replaces_only_given_values():
    base = m.DEFAULT_THRESHOLDS[m.Kind.QUANTIZED]
    t = base.override(m.Thresholds(min_agreement=0.9))
    assert t.min_agreement == 0.9 and t.min_psnr_db == base.min_psnr_db


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 60), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_compare_invariants_on_random_outputs(n, c, seed):
    """Agreement, flips, discordant pairs and accuracy change must tell one story."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    orig = rng.dirichlet(np.ones(c), n).astype(np.float32)
    var = rng.dirichlet(np.ones(c), n).astype(np.float32)
    r = m.compare(labels, orig, var)
    assert r.agreement == pytest.approx(1 - len(r.flipped) / n)
    assert r.accuracy_change == pytest.approx(100 * (r.discordant_c - r.discordant_b) / n)
    assert r.discordant_b + r.discordant_c <= len(r.flipped)
    assert 0 <= r.mcnemar_p <= 1 and r.max_abs_diff >= r.mean_abs_diff >= 0
    assert r.psnr_db == pytest.approx(-10 * np.log10(np.mean((orig.astype(float) - var) ** 2)))
