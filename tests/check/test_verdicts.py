"""Statistical verdicts of the checker: intervals, Holm, pass/fail/inconclusive.

Published values pin the interval formulas (Newcombe 1998 for Wilson, the
Bentur et al. example of Fagerland, Lydersen & Laake 2014 and PropCIs for
Tango's paired interval), scipy cross-checks Wilson over random inputs, and
the measured MNIST numbers of issue 12 pin what the default bars must decide.
"""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy import stats

from edgekit.errors import ConfigError
from edgekit.runtime import metrics as m
from edgekit.runtime.metrics import Verdict

Z95 = 1.959963984540054
ORDER = {Verdict.FAIL: 0, Verdict.INCONCLUSIVE: 1, Verdict.PASS: 2}
QUANTIZED = m.DEFAULT_THRESHOLDS[m.Kind.QUANTIZED]
LOW_BIT = m.DEFAULT_THRESHOLDS[m.Kind.LOW_BIT]


def counts_report(n, b, c, other=0):
    """A ``Comparison`` of n images (all labelled 0) with b images the original
    gets right and the variant wrong, c the opposite, and ``other`` flips where
    both are wrong. Every flip is a near-tie (probabilities move by 0.01), as
    real quantization flips are, so PSNR stays high and only the counts matter."""
    assert b + c + other <= n
    orig = np.tile([0.98, 0.01, 0.01], (n, 1))
    var = orig.copy()
    rows = [(b, [0.50, 0.49, 0.01], [0.49, 0.50, 0.01]),
            (c, [0.49, 0.50, 0.01], [0.50, 0.49, 0.01]),
            (other, [0.01, 0.50, 0.49], [0.01, 0.49, 0.50])]
    i = 0
    for count, o, v in rows:
        orig[i:i + count], var[i:i + count] = o, v
        i += count
    r = m.compare(np.zeros(n, int), orig, var)
    assert (r.discordant_b, r.discordant_c, len(r.flipped)) == (b, c, b + c + other)
    return r


# ------------------------------------------------------------------ Wilson

@pytest.mark.parametrize("k, n, lo, hi", [
    # Newcombe (1998), "Two-sided confidence intervals for the single
    # proportion", Stat Med 17:857, Table II, method 3 (score, no correction)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombe_1998(k, n, lo, hi):
    got = m.wilson_interval(k, n)
    assert round(got[0], 4) == lo and round(got[1], 4) == hi


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_matches_scipy(kn, confidence):
    k, n = kn
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    lo, hi = m.wilson_interval(k, n, confidence)
    assert lo == pytest.approx(ref.low, abs=1e-12) and hi == pytest.approx(ref.high, abs=1e-12)


def test_wilson_edges_are_exact_and_n_zero_is_refused():
    assert m.wilson_interval(0, 50)[0] == 0.0
    assert m.wilson_interval(50, 50)[1] == 1.0
    # the other end at k = n has a closed form: n / (n + z^2)
    assert m.wilson_interval(10000, 10000)[0] == pytest.approx(10000 / (10000 + Z95 ** 2), rel=1e-12)
    for k, n in [(0, 0), (1, 0), (-1, 5), (6, 5)]:
        with pytest.raises(ValueError):
            m.wilson_interval(k, n)
    with pytest.raises(ValueError):
        m.wilson_interval(1, 5, confidence=1.0)
    with pytest.raises(ValueError):
        m.wilson_interval(1.5, 5)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_rate_narrows_with_data_and_widens_with_confidence(kn):
    k, n = kn
    lo, hi = m.wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0 and lo < hi
    lo10, hi10 = m.wilson_interval(10 * k, 10 * n)      # same rate, ten times the images
    assert hi10 - lo10 < hi - lo
    lo99, hi99 = m.wilson_interval(k, n, 0.99)
    assert lo99 <= lo and hi <= hi99


# -------------------------------------------------------- paired change

def test_tango_matches_the_bentur_example():
    # Fagerland, Lydersen & Laake (2014), airway hyper-responsiveness before and
    # after stem cell transplantation (Bentur et al. 2009), a, b, c, d = 1, 1, 7, 12:
    # Tango's asymptotic score interval for p1 - p2 = (b - c)/n is -0.517 to -0.026.
    # Ours is for (c - b)/n (variant minus original), so the published one mirrored.
    lo, hi = m.paired_change_interval(b=7, c=1, n=21)
    assert (round(lo, 3), round(hi, 3)) == (-0.517, -0.026)
    assert m.paired_change_interval(b=1, c=7, n=21) == pytest.approx((-hi, -lo), abs=1e-12)


def test_tango_matches_propcis_at_90_percent():
    # R PropCIs::scoreci.mp(25, 28, 618, 0.90), the interval for (28 - 25)/618
    assert [round(v, 4) for v in m.paired_change_interval(25, 28, 618, 0.90)] == [-0.0148, 0.0247]


def test_tango_with_no_discordant_pair_is_symmetric_closed_form():
    lo, hi = m.paired_change_interval(0, 0, 10000)
    bound = Z95 ** 2 / (10000 + Z95 ** 2)      # the score equation's root: n d^2 = z^2 d (1 - d)
    assert lo == pytest.approx(-bound, rel=1e-9) and hi == pytest.approx(bound, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20000).flatmap(
    lambda n: st.integers(0, n).flatmap(lambda b: st.tuples(st.just(b), st.integers(0, n - b), st.just(n)))))
def test_tango_properties(bcn):
    b, c, n = bcn
    lo, hi = m.paired_change_interval(b, c, n)
    est = (c - b) / n
    assert -1.0 <= lo <= est <= hi <= 1.0 and lo < hi
    # mirror: swapping who is right negates the interval
    mlo, mhi = m.paired_change_interval(c, b, n)
    assert (mlo, mhi) == pytest.approx((-hi, -lo), abs=1e-9)
    # Tango's score test at change 0 is McNemar's (b - c)^2 / (b + c): the
    # interval holds 0 exactly when that statistic is below z^2
    if b + c:
        chi2 = (b - c) ** 2 / (b + c)
        assume(abs(chi2 - Z95 ** 2) > 1e-6)
        assert (lo <= 0.0 <= hi) == (chi2 < Z95 ** 2)


def test_tango_refuses_impossible_counts():
    for b, c, n in [(0, 0, 0), (-1, 0, 10), (6, 5, 10), (1, 1.5, 10)]:
        with pytest.raises(ValueError):
            m.paired_change_interval(b, c, n)


# -------------------------------------------------------------------- Holm

def test_holm_hand_worked():
    # sorted: d .005*4 = .02, a .01*3 = .03, c .03*2 = .06, b .04*1 = .04 -> .06 (monotone)
    got = m.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
    assert got == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02})
    assert list(got) == ["a", "b", "c", "d"]         # keyed and ordered like the input
    assert m.holm({}) == {}
    assert m.holm({"only": 0.02}) == {"only": 0.02}
    assert m.holm({"x": 0.4, "y": 0.6}) == {"x": 0.8, "y": 0.8}
    for bad in (-0.1, 1.5, float("nan"), True):
        with pytest.raises(ValueError):
            m.holm({"x": bad})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_holm_properties(ps):
    raw = {f"v{i}": p for i, p in enumerate(ps)}
    adj = m.holm(raw)
    mcount = len(ps)
    for key, p in raw.items():
        assert p <= adj[key] <= min(1.0, mcount * p) + 1e-15    # between raw and Bonferroni
    for i in raw:
        for j in raw:
            if raw[i] <= raw[j]:
                assert adj[i] <= adj[j]                          # monotone in the raw p
    assert min(adj.values()) == pytest.approx(min(1.0, mcount * min(ps)))


# ---------------------------------------------------------------- decide

def test_decide_is_direction_aware_and_a_bound_on_the_bar_meets_it():
    assert m.decide((0.996, 0.999), minimum=0.995) is Verdict.PASS
    assert m.decide((0.995, 0.999), minimum=0.995) is Verdict.PASS
    assert m.decide((0.990, 0.994), minimum=0.995) is Verdict.FAIL
    assert m.decide((0.990, 0.999), minimum=0.995) is Verdict.INCONCLUSIVE
    assert m.decide((0.1, 0.4), maximum=0.5) is Verdict.PASS
    assert m.decide((0.6, 0.9), maximum=0.5) is Verdict.FAIL
    assert m.decide((0.4, 0.6), maximum=0.5) is Verdict.INCONCLUSIVE
    with pytest.raises(ValueError):
        m.decide((0.1, 0.2))
    with pytest.raises(ValueError):
        m.decide((0.1, 0.2), minimum=0.1, maximum=0.3)
    with pytest.raises(ValueError):
        m.decide((0.3, 0.2), minimum=0.1)


def test_combine():
    P, F, I = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE
    assert m.combine([P, I, F]) is F and m.combine([P, I]) is I and m.combine([P, P]) is P and m.combine([]) is P
    assert Verdict("inconclusive") is I and I.value == "inconclusive"


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000), st.data(), st.floats(0.5, 0.9999))
def test_agreement_verdict_never_improves_with_more_flips(n, data, bar):
    k1 = data.draw(st.integers(0, n))
    k2 = data.draw(st.integers(0, k1))                  # k2 <= k1: at least as many flips
    v1 = m.decide(m.wilson_interval(k1, n), minimum=bar)
    v2 = m.decide(m.wilson_interval(k2, n), minimum=bar)
    assert ORDER[v2] <= ORDER[v1]
    # and a lower bar never gives a worse verdict
    assert ORDER[m.decide(m.wilson_interval(k1, n), minimum=bar * 0.99)] >= ORDER[v1]


# ---------------------------------------------------------- images to decide

def test_images_to_decide_is_the_smallest_deciding_size():
    rate = 357 / 359
    n = m.images_to_decide(rate, 0.995)
    decided = lambda size: m.decide(m._wilson(rate * size, size, Z95), minimum=0.995) is not Verdict.INCONCLUSIVE
    assert decided(n) and not decided(n - 1)
    assert 50_000 < n < 70_000
    # zero flips against 99.9%: n / (n + z^2) >= 0.999  <=>  n >= 999 z^2
    assert m.images_to_decide(1.0, 0.999) == math.ceil(999 * Z95 ** 2)
    assert m.images_to_decide(0.995, 0.995) is None


def test_images_to_decide_change():
    n = m.images_to_decide_change(b=1, c=1, n=359, max_accuracy_drop=0.5)
    assert m.decide(m._tango(n / 359, n / 359, n, Z95), minimum=-0.005) is Verdict.PASS
    assert m.decide(m._tango((n - 1) / 359, (n - 1) / 359, n - 1, Z95), minimum=-0.005) is Verdict.INCONCLUSIVE
    assert m.images_to_decide_change(b=5, c=0, n=1000, max_accuracy_drop=0.5) is None   # change is exactly -0.5


def test_about_rounds_up_to_two_significant_digits():
    assert [m.about(v) for v in (7, 99, 100, 2351, 58610, 65000, 1234567)] == \
        ["7", "99", "100", "2,400", "59,000", "65,000", "1,300,000"]


# ------------------------------------------------- the issue's measured facts

@pytest.mark.parametrize("b, c, other", [(2, 0, 0), (1, 1, 0), (0, 2, 0), (0, 0, 2), (1, 0, 1)])
def test_359_images_with_2_flips_at_995_is_never_a_fail(b, c, other):
    r = counts_report(359, b, c, other)
    assert r.agreement == pytest.approx(0.9944, abs=5e-5)
    j = m.judge(r, QUANTIZED)
    assert j.verdict in (Verdict.INCONCLUSIVE, Verdict.PASS) and j.reasons == []
    assert j.verdict is Verdict.INCONCLUSIVE        # and, honestly, 359 images cannot show 99.5% either
    assert any("needs about" in s and "test images to decide" in s for s in j.inconclusive_reasons)
    assert j.images_to_decide is not None and j.images_to_decide > 359


@pytest.mark.parametrize("b, c, other", [(100, 0, 0), (50, 50, 0), (0, 100, 0), (30, 20, 50), (0, 0, 100)])
def test_10000_images_with_1_percent_flips_at_995_fails(b, c, other):
    r = counts_report(10000, b, c, other)
    assert r.agreement == pytest.approx(0.99)
    j = m.judge(r, QUANTIZED)
    assert j.verdict is Verdict.FAIL
    assert any("agreement 99.00%" in s and "below the 99.50% bar" in s for s in j.reasons)


def mnist_default_run():
    """The default MNIST run of issue 12 (10,000 test images), as counts that
    reproduce the measured agreement, accuracy change and McNemar p."""
    runs = {  # id: (kind, b, c, other flips)
        "tflite-fp32": (m.Kind.FLOAT32, 0, 0, 0),
        "tflite-fp16": (m.Kind.FLOAT16, 0, 0, 0),
        "tflite-int8": (m.Kind.QUANTIZED, 3, 2, 3),           # 99.92%, -0.01 pp
        "tflite-qat-int8": (m.Kind.QUANTIZED, 6, 4, 7),       # 99.83%
        "tflite-pruned-int8": (m.Kind.LOW_BIT, 81, 18, 4),    # 98.97%, -0.63 pp, p = 1e-10
        "coreml-fp32": (m.Kind.FLOAT32, 0, 0, 0),
        "coreml-pal4": (m.Kind.LOW_BIT, 4, 5, 3),             # 99.88%, +0.01 pp
        "coreml-pal2": (m.Kind.LOW_BIT, 36, 15, 5),           # 99.44%, -0.21 pp, p = 0.005
        "coreml-pruned": (m.Kind.LOW_BIT, 62, 24, 4),         # -0.38 pp, p = 5e-5
    }
    reports = {vid: counts_report(10000, b, c, o) for vid, (_, b, c, o) in runs.items()}
    thresholds = {vid: m.DEFAULT_THRESHOLDS[kind] for vid, (kind, *_) in runs.items()}
    return reports, thresholds


def test_measured_counts_reproduce_the_issue():
    reports, _ = mnist_default_run()
    expect = {"tflite-int8": (0.9992, -0.01, None), "tflite-qat-int8": (0.9983, None, None),
              "coreml-pal4": (0.9988, 0.01, None), "coreml-pal2": (0.9944, -0.21, 0.005),
              "tflite-pruned-int8": (0.9897, -0.63, 1e-10), "coreml-pruned": (None, -0.38, 5e-5)}
    for vid, (agree, change, p) in expect.items():
        r = reports[vid]
        if agree is not None:
            assert r.agreement == pytest.approx(agree)
        if change is not None:
            assert r.accuracy_change == pytest.approx(change)
        if p is not None:
            assert r.mcnemar_p == pytest.approx(p, rel=0.1)


def test_default_bars_on_the_mnist_run():
    reports, thresholds = mnist_default_run()
    j = m.judge_all(reports, thresholds)
    for vid in ("tflite-fp32", "tflite-fp16", "coreml-fp32", "tflite-int8", "tflite-qat-int8", "coreml-pal4"):
        assert j[vid].verdict is Verdict.PASS, (vid, j[vid])
    # pal2 must not pass as "keeps the answers", alone or corrected with the family
    assert j["coreml-pal2"].verdict is not Verdict.PASS
    assert m.judge(reports["coreml-pal2"], LOW_BIT).verdict is not Verdict.PASS
    assert any("straddles the 99.50% bar" in s for s in j["coreml-pal2"].inconclusive_reasons)
    assert j["tflite-pruned-int8"].verdict is Verdict.FAIL
    assert any("agreement 98.97%" in s for s in j["tflite-pruned-int8"].reasons)
    assert j["coreml-pruned"].verdict is Verdict.FAIL
    assert any("significant drop" in s and "Holm-adjusted over 7 variants" in s for s in j["coreml-pruned"].reasons)
    # the float32 variants gate no significance, so the family is the other seven
    assert j["tflite-fp32"].holm_family == 1 and j["coreml-pal2"].holm_family == 7


def test_old_low_bit_bars_would_have_passed_pal2():
    """The reason the low-bit defaults changed: 98% / 1 point let pal2 through."""
    reports, _ = mnist_default_run()
    old = m.Thresholds(min_agreement=0.98, max_accuracy_drop=1.0, min_psnr_db=20.0)
    assert m.judge(reports["coreml-pal2"], old).verdict is Verdict.PASS
    assert m.judge(reports["coreml-pal2"], LOW_BIT).verdict is not Verdict.PASS


# ----------------------------------------------------------------- judge

def test_holm_changes_a_verdict_only_through_the_family():
    # b=14, c=4: p = 0.031 alone -> a significant drop; with two other variants
    # whose tests are weaker, Holm multiplies it by 3 -> not significant
    r = counts_report(10000, 14, 4)
    t = m.Thresholds(significance=0.05)
    assert r.mcnemar_p == pytest.approx(0.0309, abs=1e-4)
    assert m.judge(r, t).verdict is Verdict.FAIL
    family = {"x": r, "y": counts_report(10000, 5, 3), "z": counts_report(10000, 2, 2)}
    j = m.judge_all(family, {k: t for k in family})
    assert j["x"].verdict is Verdict.PASS and j["x"].holm_family == 3
    assert j["x"].mcnemar_p_holm == pytest.approx(3 * r.mcnemar_p)
    # a gain, however significant, is never a failure
    assert m.judge(counts_report(10000, 0, 30), t).verdict is Verdict.PASS


def test_judge_all_refuses_mismatched_keys_and_judge_a_bad_holm_p():
    r = counts_report(100, 1, 0)
    with pytest.raises(ValueError):
        m.judge_all({"a": r}, {"b": QUANTIZED})
    with pytest.raises(ValueError):
        m.judge(r, QUANTIZED, mcnemar_p_holm=r.mcnemar_p / 2)   # Holm never lowers a p


def test_exact_bar_of_100_percent():
    t = m.Thresholds(min_agreement=1.0)
    assert m.judge(counts_report(50, 0, 0), t).verdict is Verdict.PASS        # no interval reaches 1: exact rule
    j = m.judge(counts_report(100000, 0, 0, 1), t)
    assert j.verdict is Verdict.FAIL and "exact 100% bar (1 of 100,000 flipped)" in j.reasons[0]


def test_inconclusive_judgement_carries_the_largest_size_needed():
    r = counts_report(1000, 3, 1)          # 99.6%: not on the 99.5% bar itself
    j = m.judge(r, QUANTIZED)
    assert j.verdict is Verdict.INCONCLUSIVE and not j.passed and len(j.inconclusive_reasons) == 2
    n_agree = m.images_to_decide(r.agreement, QUANTIZED.min_agreement)
    n_change = m.images_to_decide_change(3, 1, 1000, QUANTIZED.max_accuracy_drop)
    assert j.images_to_decide == max(n_agree, n_change)
    assert f"needs about {m.about(n_agree)} test images to decide" in j.inconclusive_reasons[0]
    assert m.gate(r, QUANTIZED) == j.inconclusive_reasons     # gate: not a pass, with the reasons
    d = j.to_json()
    assert d["verdict"] == "inconclusive" and d["images_to_decide"] == j.images_to_decide
    assert d["holm_family"] == 1 and d["mcnemar_p_holm"] == r.mcnemar_p


def test_a_fail_outranks_inconclusive_and_keeps_both_lists():
    r = counts_report(1000, 3, 1, 1)
    t = QUANTIZED.override(m.Thresholds(max_abs_diff=0.001))
    j = m.judge(r, t)
    assert j.verdict is Verdict.FAIL and j.images_to_decide is None
    assert any("max abs probability difference" in s for s in j.reasons) and j.inconclusive_reasons
    assert m.gate(r, t) == j.reasons + j.inconclusive_reasons


def test_significance_threshold_is_validated():
    with pytest.raises(ConfigError):
        m.Thresholds(significance=0.6)
    assert m.Thresholds(significance=0.01).to_json()["significance"] == 0.01
