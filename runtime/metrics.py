"""Comparison metrics between the original model and a variant, and the verdict.

In: the test labels (int, N), the original model's probabilities and a
variant's probabilities (float, N x C). Out: a ``Comparison`` report (top-1
agreement with its 95% Wilson interval, accuracies and their change with a 95%
Tango score interval for that paired change, an exact McNemar test of the
change, max/mean abs probability difference, PSNR/SNR of the probabilities,
per-class accuracy changes, flipped indices).

A separate step applies ``Thresholds`` to reports: ``judge_all`` (or ``judge``
for one variant) returns a ``Judgement`` per variant whose ``verdict`` is
``pass`` (every gated interval lies on the right side of its bar), ``fail``
(some interval lies wholly on the wrong side, or a drop is significant after
Holm's correction across the variants) or ``inconclusive`` (an interval
straddles its bar; the judgement says how many test images would decide it).
An inconclusive verdict is never a pass. Every reason is collected before
anything is decided, and each tolerance is set in one place below.

Pure numpy plus the standard library (``math``, ``statistics.NormalDist`` for
the normal quantile): no TensorFlow, no scipy, so tests run in milliseconds.
"""
from __future__ import annotations

import dataclasses
import enum
import math
import statistics
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgekit import rundir

from edgekit.errors import ConfigError, ShapeError

# PSNR of probabilities uses peak 1.0: a probability lives in [0, 1].
PROBABILITY_PEAK = 1.0


# ------------------------------------------------------------------ metrics

def top1(probs: np.ndarray) -> np.ndarray:
    return np.asarray(probs).argmax(axis=1)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value on the discordant pairs.

    ``b``: original right and variant wrong; ``c``: the opposite. Under "no
    change" each discordant pair is a fair coin, so
    p = min(1, 2 * P[Binom(b + c, 0.5) <= min(b, c)]); 1.0 when b + c = 0.
    Summed in log space with exact log-binomials, so it stays accurate for
    thousands of discordant pairs (no 0.5**n underflow).
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    log_half_n = n * math.log(0.5)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n for i in range(k + 1)]
    top = max(logs)
    cdf = math.exp(top) * sum(math.exp(v - top) for v in logs)
    return min(1.0, 2.0 * cdf)


def psnr_db(reference: np.ndarray, test: np.ndarray, peak: float = PROBABILITY_PEAK) -> float:
    """10 log10(peak^2 / MSE) in float64; ``inf`` when the outputs are identical."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """10 log10(signal power / noise power), the reference being the signal;
    ``inf`` when identical."""
    ref = np.asarray(reference, np.float64)
    noise = float(np.sum((ref - np.asarray(test, np.float64)) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


# ---------------------------------------------------------------- intervals

# Every verdict uses 95% intervals: the conventional level, and the one the
# issue and the report promise; a caller may ask for another.
CONFIDENCE = 0.95


def _z(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (1.959964 at 95%)."""
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _wilson(k: float, n: float, z: float) -> tuple[float, float]:
    """Wilson bounds for real-valued counts (``images_to_decide`` scales them)."""
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    lo = 0.0 if k <= 0 else max(0.0, centre - half)
    hi = 1.0 if k >= n else min(1.0, centre + half)
    return lo, hi


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval ``(lo, hi)`` for a proportion of ``k`` successes in ``n``.

    Chosen over Clopper-Pearson because its coverage is close to nominal on
    average where Clopper-Pearson is conservative (Brown, Cai & DasGupta 2001),
    it needs no beta quantiles (no scipy), and it is the interval Newcombe's
    and Tango's paired methods are built on. Exact at the edges: ``lo`` is 0.0
    when k = 0 and ``hi`` is 1.0 when k = n; ``lo < hi`` always. n = 0 is
    refused: no images carry no information.
    """
    if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n:
        raise ValueError(f"counts must be integers, got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if n <= 0:
        raise ValueError(f"a proportion needs n >= 1 trials, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"successes must be in [0, n={n}], got k={k}")
    return _wilson(k, n, _z(confidence))


def _tango_z(delta: float, x12: float, x21: float, n: float) -> float:
    """Tango's score statistic for H0: p12 - p21 = delta.

    ``p21`` is replaced by its maximum-likelihood value under H0, the positive
    root of 2n q^2 + W q - x21 delta (1 - delta) = 0 with
    W = -x12 - x21 + (2n - x12 + x21) delta (Tango 1998, eq. 3).
    """
    w = -x12 - x21 + (2 * n - x12 + x21) * delta
    q = (math.sqrt(max(0.0, w * w + 8 * n * x21 * delta * (1 - delta))) - w) / (4 * n)
    q = max(q, -delta, 0.0)                     # p21 >= 0 and p12 = q + delta >= 0
    var = n * (2 * q + delta * (1 - delta))
    num = x12 - x21 - n * delta
    if var <= 0.0:
        return 0.0 if num == 0 else math.copysign(math.inf, num)
    return num / math.sqrt(var)


def _tango(x12: float, x21: float, n: float, z: float) -> tuple[float, float]:
    """Tango bounds for (x12 - x21) / n; real-valued counts allowed."""
    est = (x12 - x21) / n

    def root(target: float, lo: float, hi: float) -> float:
        # Z(delta) decreases in delta: bisect for Z = target on [lo, hi]
        for _ in range(200):
            mid = (lo + hi) / 2
            if _tango_z(mid, x12, x21, n) > target:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    lower = -1.0 if est <= -1.0 else root(z, -1.0, est)
    upper = 1.0 if est >= 1.0 else root(-z, est, 1.0)
    return lower, upper


def paired_change_interval(b: int, c: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Interval ``(lo, hi)`` for the paired accuracy change (c - b) / n, as a fraction.

    ``b``: images the original gets right and the variant wrong; ``c``: the
    opposite; ``n``: all images, both models run on each. This is Tango's
    asymptotic score interval (Tango 1998, Stat Med 17:891): it needs only
    the discordant counts, its test at change 0 is exactly McNemar's
    statistic (b - c)^2 / (b + c), and it is among the intervals Fagerland,
    Lydersen & Laake (2013) recommend for paired proportions (near-nominal
    coverage, no overshoot beyond [-1, 1], sensible at b = c = 0, where it is
    +-z^2 / (n + z^2) like Wilson's interval for 0 of n). Solved by bisection.
    """
    for name, v in (("b", b), ("c", c), ("n", n)):
        if isinstance(v, bool) or int(v) != v:
            raise ValueError(f"{name} must be an integer, got {v!r}")
    b, c, n = int(b), int(c), int(n)
    if n <= 0:
        raise ValueError(f"a paired change needs n >= 1 images, got n={n}")
    if b < 0 or c < 0 or b + c > n:
        raise ValueError(f"discordant counts must be >= 0 with b + c <= n, got b={b}, c={c}, n={n}")
    return _tango(c, b, n, _z(confidence))


# -------------------------------------------------- multiple comparisons

def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni step-down adjusted p-values, keyed like ``pvalues``.

    With the m p-values sorted ascending, p_(i) becomes
    max over j <= i of min(1, (m - j + 1) p_(j)): monotone in the raw p, never
    below it, at most 1. Rejecting where the adjusted p < alpha keeps the
    chance of any false "significant" across all m variants <= alpha
    (Holm 1979), and is never less powerful than plain Bonferroni.
    """
    for key, p in pvalues.items():
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value for {key!r} must be in [0, 1], got {p!r}")
    m = len(pvalues)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, (key, p) in enumerate(sorted(pvalues.items(), key=lambda kv: kv[1])):
        running = max(running, min(1.0, (m - rank) * float(p)))
        adjusted[key] = running
    return {key: adjusted[key] for key in pvalues}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """What validation found for one variant, before any threshold is applied."""

    count: int
    agreement: float              # fraction of samples with the same top-1 as the original
    accuracy: float               # variant accuracy against the labels
    original_accuracy: float
    accuracy_change: float        # percentage points, variant - original
    discordant_b: int             # original right, variant wrong
    discordant_c: int             # original wrong, variant right
    mcnemar_p: float
    max_abs_diff: float
    mean_abs_diff: float
    psnr_db: float                # may be inf (identical outputs)
    snr_db: float                 # may be inf
    per_class_accuracy_change: list[float | None]   # percentage points; None for a class absent from the labels
    flipped: list[int]            # indices whose top-1 differs from the original's
    # 95% intervals (``CONFIDENCE``); derived from the counts above when not given
    agreement_ci: tuple[float, float] | None = None          # fraction, Wilson
    accuracy_change_ci: tuple[float, float] | None = None    # percentage points, Tango

    def __post_init__(self):
        if self.agreement_ci is None:
            object.__setattr__(self, "agreement_ci", wilson_interval(self.count - len(self.flipped), self.count))
        if self.accuracy_change_ci is None:
            lo, hi = paired_change_interval(self.discordant_b, self.discordant_c, self.count)
            object.__setattr__(self, "accuracy_change_ci", (100.0 * lo, 100.0 * hi))

    @property
    def agreeing(self) -> int:
        """Images whose top-1 matches the original's."""
        return self.count - len(self.flipped)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict. JSON has no infinity: an infinite PSNR/SNR (the
        outputs are bit-identical) is written as null, with
        ``identical_outputs: true`` saying why. The intervals are ``[lo, hi]``
        lists (``agreement_ci`` a fraction, ``accuracy_change_ci`` in points)."""
        d = dataclasses.asdict(self)
        for key in ("psnr_db", "snr_db"):
            if not math.isfinite(d[key]):
                d[key] = None
        d["identical_outputs"] = self.max_abs_diff == 0.0
        d["agreement_ci"] = [float(v) for v in self.agreement_ci]
        d["accuracy_change_ci"] = [float(v) for v in self.accuracy_change_ci]
        d["confidence"] = CONFIDENCE
        return d


def _check_pair(labels: np.ndarray, original: np.ndarray, variant: np.ndarray) -> None:
    if original.ndim != 2 or variant.shape != original.shape:
        raise ShapeError("predictions", f"variant output shape {variant.shape} does not match the original's {original.shape}")
    if labels.shape != (original.shape[0],):
        raise ShapeError("labels", f"{labels.shape[0] if labels.ndim else 0} labels for {original.shape[0]} predictions")
    if not np.all(np.isfinite(variant)):
        raise ShapeError("predictions", "variant output contains NaN or infinity")


def compare(labels: Sequence[int] | np.ndarray, original: np.ndarray, variant: np.ndarray) -> Comparison:
    """Compare a variant's probabilities with the original's on labelled data."""
    labels = np.asarray(labels).astype(np.int64)
    original = np.asarray(original, np.float64)
    variant = np.asarray(variant, np.float64)
    _check_pair(labels, original, variant)
    n, num_classes = original.shape
    if n == 0:
        raise ShapeError("predictions", "no samples to compare")
    o_pred, v_pred = top1(original), top1(variant)
    o_right, v_right = o_pred == labels, v_pred == labels
    per_class: list[float | None] = []
    for k in range(num_classes):
        mask = labels == k
        if not mask.any():
            per_class.append(None)
            continue
        per_class.append(100.0 * (float(v_right[mask].mean()) - float(o_right[mask].mean())))
    b = int(np.sum(o_right & ~v_right))
    c = int(np.sum(~o_right & v_right))
    diff = np.abs(original - variant)
    return Comparison(
        count=int(n),
        agreement=float(np.mean(o_pred == v_pred)),
        accuracy=float(v_right.mean()),
        original_accuracy=float(o_right.mean()),
        accuracy_change=100.0 * (float(v_right.mean()) - float(o_right.mean())),
        discordant_b=b,
        discordant_c=c,
        mcnemar_p=mcnemar_exact_p(b, c),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        psnr_db=psnr_db(original, variant),
        snr_db=snr_db(original, variant),
        per_class_accuracy_change=per_class,
        flipped=[int(i) for i in np.flatnonzero(o_pred != v_pred)],
    )


# -------------------------------------------------------------- thresholds

# How a variant changes the numbers, which decides the fitting metric; declared
# by its recipe and owned by the run directory layer.
Kind = rundir.Kind


# fp32 -> fp32 conversions only reorder float sums (XNNPACK / BNNS kernels vs
# TF's): measured differences on softmax outputs are ~1e-7; 1e-4 leaves two
# orders of margin and still catches any real change (fp16 weights give ~1e-3).
FLOAT32_MAX_ABS_DIFF = 1e-4
# Same math, so the same answers: 100% agreement, judged exactly, since no
# finite test set can show 100% statistically (zero flips passes, one flip is a
# certain fail); with no flip accuracy cannot move, so no drop bar is needed.
FLOAT32_MIN_AGREEMENT = 1.0
# Half precision rounds every weight and activation to 11 significant bits
# (relative error 4.9e-4): probabilities move by ~1e-4 RMS, i.e. ~80 dB; 60 dB
# (RMS error 1e-3) is the floor below which the conversion is broken.
FLOAT16_MIN_PSNR = 60.0
# fp16 may flip only genuine near-ties (~1 in 10^4): the agreement's lower
# bound must clear 99.9%, which 10,000 images with up to 3 flips do; fewer than
# ~3,800 images cannot show it even with no flip, and are inconclusive.
FLOAT16_MIN_AGREEMENT = 0.999
# A variant that flips at most 0.1% of images cannot lose more than 0.1 points:
# the drop bar asks of the change interval what the agreement bar implies.
FLOAT16_MAX_ACCURACY_DROP = 0.1
# Calibrated int8 changes probabilities by ~1e-2 RMS (~40 dB); below 30 dB
# (RMS error 3e-2) the quantization parameters are wrong, not just coarse.
QUANTIZED_MIN_PSNR = 30.0
# "Keeps the original's answers": the agreement's lower bound must clear 99.5%.
# Good int8 flips ~1 image in 1000 (MNIST: tflite-int8 99.92%, qat 99.83%, lower
# bounds 99.84% and 99.73%: pass); a miscalibrated one flips percents (1% of
# 10,000: upper bound 99.18%: fail); 2 flips in 359 cannot tell (inconclusive).
QUANTIZED_MIN_AGREEMENT = 0.995
# Non-inferiority margin on the change interval: half a point, the most a
# variant agreeing on 99.5% can lose; any smaller but real drop is caught by
# the significance test (SIGNIFICANCE), not by this margin.
QUANTIZED_MAX_ACCURACY_DROP = 0.5
# Palettized/pruned weights are lossy by design, but fewer bits are a size
# choice, not a licence to change answers: the same 99.5% lower bound as int8.
# The old 98% / 1 point passed coreml-pal2 (99.44%, -0.21 points, McNemar
# p = 0.005), a measurably worse classifier; now its interval straddles 99.5%
# (inconclusive) while coreml-pal4 (99.88%) still passes.
LOW_BIT_MIN_AGREEMENT = 0.995
# Same reasoning as QUANTIZED_MAX_ACCURACY_DROP (was 1.0, more than 99.5%
# agreement allows).
LOW_BIT_MAX_ACCURACY_DROP = 0.5
# 20 dB (RMS error 0.1) still means "the same classifier" for weights this
# coarse; below it the palette or mask is wrong.
LOW_BIT_MIN_PSNR = 20.0
# A drop is significant when its exact McNemar p, Holm-adjusted across the
# run's variants, is below 5%: the conventional family-wise error rate, so the
# chance of failing any variant of a run for a drop that is not real is <= 5%.
SIGNIFICANCE = 0.05
# Below this no variant passes, whatever the CLI asks: outputs with an RMS
# error above 0.3 are a different function (like ml-stable-diffusion's
# ABSOLUTE_MIN_PSNR).
ABSOLUTE_MIN_PSNR = 10.0


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The bars for one variant. ``None`` means "not gated".

    ``min_agreement`` and ``max_accuracy_drop`` are judged on 95% intervals
    (see ``judge``); the PSNR and abs-difference bars on the measured value;
    ``significance`` is the alpha of the Holm-adjusted McNemar test of a drop.
    """

    min_agreement: float | None = None        # fraction in [0, 1]
    max_accuracy_drop: float | None = None    # percentage points >= 0
    min_psnr_db: float | None = None          # dB >= ABSOLUTE_MIN_PSNR
    max_abs_diff: float | None = None         # probability units in [0, 1]
    significance: float | None = None         # alpha in [0, 0.5]

    def __post_init__(self):
        validate_threshold("min_agreement", self.min_agreement, 0.0, 1.0)
        validate_threshold("max_accuracy_drop", self.max_accuracy_drop, 0.0, 100.0)
        validate_threshold("min_psnr_db", self.min_psnr_db, ABSOLUTE_MIN_PSNR, 1000.0)
        validate_threshold("max_abs_diff", self.max_abs_diff, 0.0, 1.0)
        validate_threshold("significance", self.significance, 0.0, 0.5)

    def override(self, other: "Thresholds") -> "Thresholds":
        """These thresholds with every value ``other`` sets replacing ours."""
        changes = {f.name: getattr(other, f.name) for f in dataclasses.fields(other) if getattr(other, f.name) is not None}
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FLAGS = {"min_agreement": "--min-agreement", "max_accuracy_drop": "--max-accuracy-drop",
          "min_psnr_db": "--min-psnr", "max_abs_diff": "--max-abs-diff", "significance": "--significance"}


def validate_threshold(name: str, value: float | None, low: float, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(_FLAGS[name], f"must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(_FLAGS[name], f"{value:g} is outside [{low:g}, {high:g}]")


DEFAULT_THRESHOLDS = {
    Kind.FLOAT32: Thresholds(min_agreement=FLOAT32_MIN_AGREEMENT, max_abs_diff=FLOAT32_MAX_ABS_DIFF),
    Kind.FLOAT16: Thresholds(min_agreement=FLOAT16_MIN_AGREEMENT, max_accuracy_drop=FLOAT16_MAX_ACCURACY_DROP,
                             min_psnr_db=FLOAT16_MIN_PSNR, significance=SIGNIFICANCE),
    Kind.QUANTIZED: Thresholds(min_agreement=QUANTIZED_MIN_AGREEMENT, max_accuracy_drop=QUANTIZED_MAX_ACCURACY_DROP,
                               min_psnr_db=QUANTIZED_MIN_PSNR, significance=SIGNIFICANCE),
    Kind.LOW_BIT: Thresholds(min_agreement=LOW_BIT_MIN_AGREEMENT, max_accuracy_drop=LOW_BIT_MAX_ACCURACY_DROP,
                             min_psnr_db=LOW_BIT_MIN_PSNR, significance=SIGNIFICANCE),
}


# ----------------------------------------------------------------- verdicts

class Verdict(str, enum.Enum):
    """What the test set shows about one bar, or about a whole variant."""

    PASS = "pass"                   # the whole interval meets the bar
    FAIL = "fail"                   # the whole interval misses it (or a drop is significant)
    INCONCLUSIVE = "inconclusive"   # the interval straddles the bar: never a pass


def decide(interval: tuple[float, float], *, minimum: float | None = None,
           maximum: float | None = None) -> Verdict:
    """The verdict of ``interval`` against one bar, given as exactly one of
    ``minimum`` (the quantity must be >= it, e.g. agreement) or ``maximum``
    (it must be <= it, e.g. an accuracy drop). A bound equal to the bar meets it.
    """
    if (minimum is None) == (maximum is None):
        raise ValueError("give exactly one of minimum= or maximum=")
    lo, hi = interval
    if not lo <= hi:
        raise ValueError(f"interval lower bound {lo!r} above its upper bound {hi!r}")
    if minimum is not None:
        return Verdict.PASS if lo >= minimum else Verdict.FAIL if hi < minimum else Verdict.INCONCLUSIVE
    return Verdict.PASS if hi <= maximum else Verdict.FAIL if lo > maximum else Verdict.INCONCLUSIVE


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict over several bars: fail if any fails, else inconclusive if
    any is, else pass (also for no bar at all)."""
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    return Verdict.INCONCLUSIVE if Verdict.INCONCLUSIVE in verdicts else Verdict.PASS


# The largest test set images_to_decide looks at; beyond it "no size decides".
MAX_IMAGES_TO_DECIDE = 10**9


def _smallest_n(decided: Callable[[int], bool]) -> int | None:
    """Smallest n >= 1 with ``decided(n)``, assuming it stays decided for
    larger n (interval widths shrink like 1/sqrt(n)); None beyond the cap."""
    hi = 1
    while not decided(hi):
        if hi > MAX_IMAGES_TO_DECIDE:
            return None
        hi *= 2
    lo = hi // 2            # not decided (or 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if decided(mid):
            hi = mid
        else:
            lo = mid
    return hi


def images_to_decide(agreement: float, min_agreement: float, confidence: float = CONFIDENCE) -> int | None:
    """About how many test images would make the agreement's Wilson interval
    decide against ``min_agreement`` if the observed agreement stayed the same:
    the smallest n whose interval at that rate lies wholly above the bar or
    wholly below it. None when the rate equals the bar (no size decides it).
    """
    if not 0.0 <= agreement <= 1.0 or not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"agreement {agreement!r} and bar {min_agreement!r} must be fractions in [0, 1]")
    if agreement == min_agreement:
        return None
    z = _z(confidence)
    return _smallest_n(lambda n: decide(_wilson(agreement * n, n, z), minimum=min_agreement) is not Verdict.INCONCLUSIVE)


def images_to_decide_change(b: int, c: int, n: int, max_accuracy_drop: float,
                            confidence: float = CONFIDENCE) -> int | None:
    """The same for the accuracy-change interval against a drop bar (points):
    the smallest test set whose Tango interval, at the observed discordant
    rates b/n and c/n, lies wholly within or wholly beyond the bar. None when
    the observed change equals minus the bar."""
    paired_change_interval(b, c, n)                      # validates the counts
    margin = -max_accuracy_drop / 100.0
    if (c - b) / n == margin:
        return None
    z = _z(confidence)
    return _smallest_n(lambda m: decide(_tango(c / n * m, b / n * m, m, z), minimum=margin) is not Verdict.INCONCLUSIVE)


def about(images: int) -> str:
    """A test-set size rounded up to two significant digits: 64,873 -> "65,000"."""
    if images < 100:
        return f"{images:,}"
    step = 10 ** (len(str(images)) - 2)
    return f"{-(-images // step) * step:,}"


def _needs(images: int | None) -> str:
    if images is None:
        return "no test-set size decides it: the observed value sits on the bar"
    return f"needs about {about(images)} test images to decide"


@dataclasses.dataclass(frozen=True)
class Judgement:
    """The verdict on one variant, with every reason behind it."""

    verdict: Verdict
    reasons: list[str]                  # decided failures; non-empty exactly when the verdict is FAIL
    inconclusive_reasons: list[str]     # bars the intervals straddle, each with the size that would decide it
    images_to_decide: int | None        # when inconclusive: test images that would decide every straddled
                                        # bar at the observed rates (None if decided, or if no size would)
    mcnemar_p_holm: float               # exact McNemar p after Holm's correction (the raw p if judged alone)
    holm_family: int                    # how many variants' tests the correction covered (1: none)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "reasons": list(self.reasons),
                "inconclusive_reasons": list(self.inconclusive_reasons),
                "images_to_decide": self.images_to_decide,
                "mcnemar_p_holm": self.mcnemar_p_holm, "holm_family": self.holm_family}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def judge(report: Comparison, thresholds: Thresholds, *, mcnemar_p_holm: float | None = None,
          holm_family: int = 1) -> Judgement:
    """Apply ``thresholds`` to one report; every reason is collected.

    - agreement: the Wilson interval (``report.agreement_ci``) against
      ``min_agreement``; a bar of exactly 1.0 is judged exactly (no flip
      passes, any flip fails), since no interval can ever reach 1.
    - accuracy: the Tango interval of the change (``report.accuracy_change_ci``)
      against minus ``max_accuracy_drop``.
    - significance: a drop (b > c) whose McNemar p, Holm-adjusted when
      ``mcnemar_p_holm`` is given (``judge_all`` does that), is below
      ``significance`` fails, whatever the margin.
    - PSNR, max abs difference and the absolute PSNR floor are measured
      facts of these outputs: pass or fail, never inconclusive.
    """
    t, r = thresholds, report
    if holm_family < 1:
        raise ValueError(f"holm_family must be >= 1, got {holm_family}")
    p_holm = r.mcnemar_p if mcnemar_p_holm is None else float(mcnemar_p_holm)
    if not r.mcnemar_p <= p_holm + 1e-15 or p_holm > 1.0:
        raise ValueError(f"Holm-adjusted p {p_holm!r} must lie in [raw p {r.mcnemar_p!r}, 1]")
    flips = f"{len(r.flipped):,} of {r.count:,} flipped"
    reasons: list[str] = []
    undecided: list[str] = []
    sizes: list[int | None] = []

    if t.min_agreement is not None:
        lo, hi = r.agreement_ci
        ci = f"{_pct(r.agreement)} (95% CI {_pct(lo)} to {_pct(hi)})"
        if t.min_agreement >= 1.0:
            if r.flipped:
                reasons.append(f"top-1 agreement {_pct(r.agreement)} misses the exact 100% bar ({flips})")
        else:
            v = decide(r.agreement_ci, minimum=t.min_agreement)
            if v is Verdict.FAIL:
                reasons.append(f"top-1 agreement {ci} is below the {_pct(t.min_agreement)} bar ({flips})")
            elif v is Verdict.INCONCLUSIVE:
                n = images_to_decide(r.agreement, t.min_agreement)
                sizes.append(n)
                undecided.append(f"top-1 agreement {ci} straddles the {_pct(t.min_agreement)} bar "
                                 f"({flips}): {_needs(n)}")

    if t.max_accuracy_drop is not None:
        lo, hi = r.accuracy_change_ci
        v = decide(r.accuracy_change_ci, minimum=-t.max_accuracy_drop)
        if v is Verdict.FAIL:
            reasons.append(f"accuracy dropped {-r.accuracy_change:.2f} points (95% CI {-hi:.2f} to {-lo:.2f}) "
                           f"beyond the {t.max_accuracy_drop:.2f}-point bar")
        elif v is Verdict.INCONCLUSIVE:
            n = images_to_decide_change(r.discordant_b, r.discordant_c, r.count, t.max_accuracy_drop)
            sizes.append(n)
            undecided.append(f"accuracy change {r.accuracy_change:+.2f} points (95% CI {lo:+.2f} to {hi:+.2f}) "
                             f"straddles the -{t.max_accuracy_drop:.2f}-point bar: {_needs(n)}")

    if t.significance is not None and r.discordant_b > r.discordant_c and p_holm < t.significance:
        holm_text = f", Holm-adjusted over {holm_family} variants p={p_holm:.2g}" if holm_family > 1 else ""
        reasons.append(f"accuracy dropped {-r.accuracy_change:.2f} points, a significant drop "
                       f"(exact McNemar p={r.mcnemar_p:.2g}{holm_text} < {t.significance:g})")

    if t.min_psnr_db is not None and r.psnr_db < t.min_psnr_db:
        reasons.append(f"output PSNR {r.psnr_db:.1f} dB < {t.min_psnr_db:.1f} dB")
    if t.max_abs_diff is not None and r.max_abs_diff > t.max_abs_diff:
        reasons.append(f"max abs probability difference {r.max_abs_diff:.3g} > {t.max_abs_diff:.3g}")
    if r.psnr_db < ABSOLUTE_MIN_PSNR and not (t.min_psnr_db is not None and r.psnr_db < t.min_psnr_db):
        reasons.append(f"output PSNR {r.psnr_db:.1f} dB is below the absolute floor {ABSOLUTE_MIN_PSNR:.0f} dB")

    verdict = Verdict.FAIL if reasons else Verdict.INCONCLUSIVE if undecided else Verdict.PASS
    needed = None
    if verdict is Verdict.INCONCLUSIVE and sizes and None not in sizes:
        needed = max(s for s in sizes if s is not None)
    return Judgement(verdict=verdict, reasons=reasons, inconclusive_reasons=undecided, images_to_decide=needed,
                     mcnemar_p_holm=p_holm, holm_family=holm_family)


def judge_all(reports: Mapping[str, Comparison], thresholds: Mapping[str, Thresholds]) -> dict[str, Judgement]:
    """Judge every variant of a run, keyed by variant id like ``reports``.

    The McNemar p-values of the variants whose thresholds gate
    ``significance`` form one family and are Holm-adjusted together
    (``holm``), so testing many variants does not manufacture a
    "significant" drop; every variant's ``Judgement`` says how large the
    family was. The intervals stay per-variant 95% intervals.
    """
    if set(reports) != set(thresholds):
        raise ValueError(f"reports and thresholds name different variants: "
                         f"{sorted(set(reports) ^ set(thresholds))}")
    family = {vid: r.mcnemar_p for vid, r in reports.items() if thresholds[vid].significance is not None}
    adjusted = holm(family)
    return {vid: judge(r, thresholds[vid], mcnemar_p_holm=adjusted.get(vid),
                       holm_family=len(family) if vid in family else 1)
            for vid, r in reports.items()}


def gate(report: Comparison, thresholds: Thresholds) -> list[str]:
    """Every reason ``report`` does not pass ``thresholds``; empty: it passes.

    The compatible path for callers that only need pass / not pass: the
    decided failures of ``judge`` followed by its inconclusive reasons, since
    an inconclusive verdict is never a pass. Judged alone (no Holm
    correction); a run with several variants should use ``judge_all``.
    """
    j = judge(report, thresholds)
    return j.reasons + j.inconclusive_reasons
