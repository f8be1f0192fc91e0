"""``edgekit check``: flags to a ``CheckConfig``, the result to a table.

In: ``--run DIR`` with ``model/`` and ``variants/``. Out: ``DIR/check/``
(results.json, junit.xml, predictions/), a table on stdout, exit code 1 if
any variant misses its thresholds. TensorFlow is imported only in ``main``.
"""
from __future__ import annotations

import argparse
import math
import sys

HELP = "run every variant in its runtime and compare it with the original model"
DESCRIPTION = """\
Run the original Keras model and every converted variant on the whole test set,
each in its real runtime, and compare them: top-1 agreement, accuracy change
(with an exact McNemar test), max/mean probability difference, PSNR/SNR,
per-class changes, flipped samples, size, zipped size, batch-1 latency and
throughput. Writes DIR/check/results.json, junit.xml and predictions/*.npz
(replacing an earlier check), prints a table, and exits 1 if a variant fails.

Backends (--backend auto picks per variant):
  litert         the LiteRT interpreter, for .tflite variants
  coreml         Apple's Core ML runtime, for .mlpackage variants (macOS only)
  mil-reference  edgekit's numpy interpreter of the ML Program, for .mlpackage
                 variants on Linux (labelled mil-reference, never "Core ML")

Default thresholds depend on what a variant changes (see results.json):
  float32    100% top-1 agreement, max abs difference <= 1e-4
  float16    >= 99.9% agreement, PSNR >= 60 dB, accuracy drop <= 0.1 point
  quantized  >= 99.5% agreement, PSNR >= 30 dB, accuracy drop <= 0.5 point
  low-bit    >= 98% agreement, PSNR >= 20 dB, accuracy drop <= 1 point
A threshold given on the command line replaces the default for every variant.

Example:
  edgekit check --run runs/mnist
  edgekit check --run runs/mnist --variants tflite-int8,coreml-w8 --min-agreement 0.999
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, metavar="DIR", help="run directory (with model/ and variants/)")
    p.add_argument("--variants", default="all", metavar="all|ID,...",
                   help="variants to check (default: all in DIR/variants)")
    p.add_argument("--backend", default="auto", metavar="auto|litert|coreml|mil-reference",
                   help="runtime for the variants (default: auto)")
    p.add_argument("--min-agreement", type=float, metavar="F", help="top-1 agreement floor, a fraction in [0, 1]")
    p.add_argument("--max-accuracy-drop", type=float, metavar="PP", help="largest accuracy drop allowed, in percentage points")
    p.add_argument("--min-psnr", type=float, metavar="DB", help="output PSNR floor in dB (peak 1.0)")
    p.add_argument("--max-abs-diff", type=float, metavar="D", help="largest abs probability difference allowed")
    p.add_argument("--limit", type=int, metavar="N", help="check only the first N test images (quick look; numbers are noisier)")
    p.add_argument("--latency-runs", type=int, default=None, metavar="N", help="timed batch-1 runs per variant (default 200)")


def _config(args):
    from edgekit.runtime.check import DEFAULT_LATENCY_RUNS, CheckConfig

    variants = None
    if args.variants.strip() != "all":
        variants = tuple(v.strip() for v in args.variants.split(",") if v.strip()) or ("",)
    return CheckConfig(run_dir=args.run, variants=variants, backend=args.backend,
                       min_agreement=args.min_agreement, max_accuracy_drop=args.max_accuracy_drop,
                       min_psnr_db=args.min_psnr, max_abs_diff=args.max_abs_diff, limit=args.limit,
                       latency_runs=args.latency_runs if args.latency_runs is not None else DEFAULT_LATENCY_RUNS)


def format_table(result) -> str:
    head = f"{'variant':<22} {'backend':<13} {'size KB':>8} {'zip KB':>7} {'agree %':>8} {'acc %':>6} {'Δ pts':>6} " \
           f"{'p':>6} {'PSNR dB':>7} {'max|Δ|':>8} {'p50 ms':>7} {'img/s':>7}  result"
    o = result.original
    lines = [head, f"{'original (keras)':<22} {'keras':<13} {'':>8} {'':>7} {'':>8} {100 * o['accuracy']:>6.2f} "
                   f"{'':>6} {'':>6} {'':>7} {'':>8} {o['latency_ms']['p50']:>7.3f} {o['throughput_ips']:>7.0f}"]
    for v in result.variants:
        c = v.comparison
        psnr = "inf" if math.isinf(c.psnr_db) else f"{c.psnr_db:.1f}"
        lines.append(
            f"{v.id:<22} {v.backend:<13} {v.size_bytes / 1024:>8.1f} {v.zipped_bytes / 1024:>7.1f} "
            f"{100 * c.agreement:>8.2f} {100 * c.accuracy:>6.2f} {c.accuracy_change:>+6.2f} {c.mcnemar_p:>6.3f} "
            f"{psnr:>7} {c.max_abs_diff:>8.2g} {v.latency_ms['p50']:>7.3f} {v.throughput_ips:>7.0f}  "
            f"{'PASS' if v.passed else 'FAIL'}")
        for r in v.reasons:
            lines.append(f"    - {r}")
    return "\n".join(lines)


def main(args) -> int:
    from edgekit.errors import StageFailed
    from edgekit.runtime import check

    result = check.run(_config(args))
    print(format_table(result))
    print(f"\n{len(result.variants)} variants on {result.test_count} test images in {result.seconds:.1f} s; "
          f"wrote {result.out_dir}")
    sys.stdout.flush()
    if not result.passed:
        raise StageFailed(f"{len(result.failed)} of {len(result.variants)} variants failed their thresholds: "
                          f"{', '.join(v.id for v in result.failed)} (see {result.out_dir / 'junit.xml'})")
    return 0
