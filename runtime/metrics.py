"""Comparison metrics between the original model and a variant, and the gate.

In: the test labels (int, N), the original model's probabilities and a
variant's probabilities (float, N x C). Out: a ``Comparison`` report (top-1
agreement, accuracies and their change, an exact McNemar test of that change,
max/mean abs probability difference, PSNR/SNR of the probabilities,
per-class accuracy changes, flipped indices). A separate ``gate`` applies
``Thresholds`` to a report and returns every failure reason at once, so
validation never raises half-way and a tolerance is set in one place.

Pure numpy (plus ``math``): no TensorFlow, so tests run in milliseconds.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, Sequence

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

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict. JSON has no infinity: an infinite PSNR/SNR (the
        outputs are bit-identical) is written as null, with
        ``identical_outputs: true`` saying why."""
        d = dataclasses.asdict(self)
        for key in ("psnr_db", "snr_db"):
            if not math.isfinite(d[key]):
                d[key] = None
        d["identical_outputs"] = self.max_abs_diff == 0.0
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
# Half precision rounds every weight and activation to 11 significant bits
# (relative error 4.9e-4): probabilities move by ~1e-4 RMS, i.e. ~80 dB; 60 dB
# (RMS error 1e-3) is the floor below which the conversion is broken.
FLOAT16_MIN_PSNR = 60.0
# fp16 may flip only genuine near-ties: at most 1 in 1000 samples.
FLOAT16_MIN_AGREEMENT = 0.999
# Calibrated int8 changes probabilities by ~1e-2 RMS (~40 dB); below 30 dB
# (RMS error 3e-2) the quantization parameters are wrong, not just coarse.
QUANTIZED_MIN_PSNR = 30.0
# A good int8 model flips a handful of ambiguous digits per 1000; 99.5%
# leaves room for that and fails a miscalibrated one (which flips percents).
QUANTIZED_MIN_AGREEMENT = 0.995
# What an app team accepts to pay for 4x smaller weights: half a point.
QUANTIZED_MAX_ACCURACY_DROP = 0.5
# Palettized/pruned weights are lossy by design; the floors say "still the
# same classifier": 98% agreement, 1 point of accuracy, 20 dB (RMS error 0.1).
LOW_BIT_MIN_AGREEMENT = 0.98
LOW_BIT_MAX_ACCURACY_DROP = 1.0
LOW_BIT_MIN_PSNR = 20.0
# Below this no variant passes, whatever the CLI asks: outputs with an RMS
# error above 0.3 are a different function (like ml-stable-diffusion's
# ABSOLUTE_MIN_PSNR).
ABSOLUTE_MIN_PSNR = 10.0


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Pass/fail bars for one variant. ``None`` means "not gated"."""

    min_agreement: float | None = None        # fraction in [0, 1]
    max_accuracy_drop: float | None = None    # percentage points >= 0
    min_psnr_db: float | None = None          # dB >= ABSOLUTE_MIN_PSNR
    max_abs_diff: float | None = None         # probability units in [0, 1]

    def __post_init__(self):
        validate_threshold("min_agreement", self.min_agreement, 0.0, 1.0)
        validate_threshold("max_accuracy_drop", self.max_accuracy_drop, 0.0, 100.0)
        validate_threshold("min_psnr_db", self.min_psnr_db, ABSOLUTE_MIN_PSNR, 1000.0)
        validate_threshold("max_abs_diff", self.max_abs_diff, 0.0, 1.0)

    def override(self, other: "Thresholds") -> "Thresholds":
        """These thresholds with every value ``other`` sets replacing ours."""
        changes = {f.name: getattr(other, f.name) for f in dataclasses.fields(other) if getattr(other, f.name) is not None}
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FLAGS = {"min_agreement": "--min-agreement", "max_accuracy_drop": "--max-accuracy-drop",
          "min_psnr_db": "--min-psnr", "max_abs_diff": "--max-abs-diff"}


def validate_threshold(name: str, value: float | None, low: float, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(_FLAGS[name], f"must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(_FLAGS[name], f"{value:g} is outside [{low:g}, {high:g}]")


DEFAULT_THRESHOLDS = {
    Kind.FLOAT32: Thresholds(min_agreement=1.0, max_accuracy_drop=0.0, max_abs_diff=FLOAT32_MAX_ABS_DIFF),
    Kind.FLOAT16: Thresholds(min_agreement=FLOAT16_MIN_AGREEMENT, max_accuracy_drop=0.1, min_psnr_db=FLOAT16_MIN_PSNR),
    Kind.QUANTIZED: Thresholds(min_agreement=QUANTIZED_MIN_AGREEMENT, max_accuracy_drop=QUANTIZED_MAX_ACCURACY_DROP,
                               min_psnr_db=QUANTIZED_MIN_PSNR),
    Kind.LOW_BIT: Thresholds(min_agreement=LOW_BIT_MIN_AGREEMENT, max_accuracy_drop=LOW_BIT_MAX_ACCURACY_DROP,
                             min_psnr_db=LOW_BIT_MIN_PSNR),
}


def gate(report: Comparison, thresholds: Thresholds) -> list[str]:
    """Every reason ``report`` fails ``thresholds`` (empty list: it passes)."""
    reasons: list[str] = []
    t = thresholds
    if t.min_agreement is not None and report.agreement < t.min_agreement:
        reasons.append(f"top-1 agreement {100 * report.agreement:.2f}% < {100 * t.min_agreement:.2f}% "
                       f"({len(report.flipped)} of {report.count} flipped)")
    if t.max_accuracy_drop is not None and -report.accuracy_change > t.max_accuracy_drop + 1e-9:
        reasons.append(f"accuracy dropped {-report.accuracy_change:.2f} points > {t.max_accuracy_drop:.2f} "
                       f"(McNemar p={report.mcnemar_p:.3g})")
    if t.min_psnr_db is not None and report.psnr_db < t.min_psnr_db:
        reasons.append(f"output PSNR {report.psnr_db:.1f} dB < {t.min_psnr_db:.1f} dB")
    if t.max_abs_diff is not None and report.max_abs_diff > t.max_abs_diff:
        reasons.append(f"max abs probability difference {report.max_abs_diff:.3g} > {t.max_abs_diff:.3g}")
    if report.psnr_db < ABSOLUTE_MIN_PSNR and not (t.min_psnr_db is not None and report.psnr_db < t.min_psnr_db):
        reasons.append(f"output PSNR {report.psnr_db:.1f} dB is below the absolute floor {ABSOLUTE_MIN_PSNR:.0f} dB")
    return reasons
