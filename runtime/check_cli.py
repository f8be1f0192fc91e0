"""``edgekit check``: flags to a ``CheckConfig``, the result to a table.

In: ``--run DIR`` with ``model/`` and ``variants/``. Out: ``DIR/check/``
(results.json, junit.xml, predictions/), a table on stdout with each
variant's verdict, exit code 1 if any variant fails (``show``). The work is
edgekit.runtime.check.run; TensorFlow is imported only there.
"""
from __future__ import annotations

import argparse
import math
import sys

from edgekit.apps import flags

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

Every bar is judged on a 95% interval from this test set: a variant passes when
the whole interval meets it, fails when the whole interval misses it (or its
accuracy drop is significant, exact McNemar, Holm-corrected across the checked
variants), and is INCONCLUSIVE when the interval straddles the bar; the table
then says about how many test images would decide it. Inconclusive is never a
pass, but only a failure makes the exit code 1.

Default thresholds depend on what a variant declares it changes (its kind):
{thresholds}
A threshold given on the command line replaces the default for every variant.

Example:
  edgekit check --run runs/mnist
  edgekit check --run runs/mnist --variants tflite-int8,coreml-w8 --min-agreement 0.999
"""


def _default_thresholds() -> str:
    from edgekit.runtime import metrics

    lines = []
    for kind, t in metrics.DEFAULT_THRESHOLDS.items():
        parts = []
        if t.min_agreement is not None:
            parts.append(f"{'' if t.min_agreement >= 1 else '>= '}{100 * t.min_agreement:g}% top-1 agreement"
                         + (" (exact)" if t.min_agreement >= 1 else ""))
        if t.min_psnr_db is not None:
            parts.append(f"PSNR >= {t.min_psnr_db:g} dB")
        if t.max_accuracy_drop is not None:
            parts.append(f"accuracy drop <= {t.max_accuracy_drop:g} point")
        if t.max_abs_diff is not None:
            parts.append(f"max abs difference <= {t.max_abs_diff:g}")
        if t.significance is not None:
            parts.append(f"no significant drop (p < {t.significance:g})")
        lines.append(f"  {kind.value:<10} {', '.join(parts)}")
    return "\n".join(lines)


DESCRIPTION = DESCRIPTION.format(thresholds=_default_thresholds())

PARENTS = [flags.run_dir, flags.variants, flags.max_accuracy_drop, flags.jobs]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """check's own flags (``--run``, ``--variants``, ``--max-accuracy-drop`` and ``--jobs`` come from ``PARENTS``)."""
    from edgekit.runtime.backends import BackendName

    p.add_argument("--backend", default="auto", choices=[b.value for b in BackendName],
                   help="runtime for the variants (default: auto)")
    p.add_argument("--min-agreement", type=float, metavar="F", help="top-1 agreement floor, a fraction in [0, 1]")
    p.add_argument("--min-psnr", type=float, metavar="DB", help="output PSNR floor in dB (peak 1.0)")
    p.add_argument("--max-abs-diff", type=float, metavar="D", help="largest abs probability difference allowed")
    p.add_argument("--limit", type=int, metavar="N", help="check only the first N test images (quick look; verdicts are more often inconclusive)")
    p.add_argument("--latency-runs", type=int, default=None, metavar="N",
                   help=f"at most N timed batch-1 runs per variant (default {_latency_default()}); fewer when "
                        "the mean is already known to +-5%%")


def _latency_default() -> int:
    from edgekit.runtime.check import DEFAULT_LATENCY_RUNS

    return DEFAULT_LATENCY_RUNS


def config_from_args(args):
    from edgekit.runtime.check import DEFAULT_LATENCY_RUNS, CheckConfig

    variants = None
    ids = flags.ids(args.variants)
    if ids != (flags.ALL,):
        variants = ids or ("",)
    return CheckConfig(run_dir=args.run, variants=variants, backend=args.backend,
                       min_agreement=args.min_agreement, max_accuracy_drop=args.max_accuracy_drop,
                       min_psnr_db=args.min_psnr, max_abs_diff=args.max_abs_diff, limit=args.limit,
                       latency_runs=args.latency_runs if args.latency_runs is not None else DEFAULT_LATENCY_RUNS,
                       jobs=args.jobs)


def _verdict_cell(v) -> str:
    if v.inconclusive:
        n = v.judgement.images_to_decide
        from edgekit.runtime import metrics
        return "INCONCLUSIVE" + (f" (~{metrics.about(n)} images to decide)" if n is not None else "")
    return "PASS" if v.passed else "FAIL"


def format_table(result) -> str:
    head = f"{'variant':<22} {'backend':<13} {'size KB':>8} {'zip KB':>7} {'agree %':>8} {'agree 95% CI':>15} " \
           f"{'acc %':>6} {'Δ pts':>6} {'p holm':>6} {'PSNR dB':>7} {'max|Δ|':>8} {'p50 ms':>7} {'img/s':>7}  verdict"
    o = result.original
    lines = [head, f"{'original (keras)':<22} {'keras':<13} {'':>8} {'':>7} {'':>8} {'':>15} {100 * o['accuracy']:>6.2f} "
                   f"{'':>6} {'':>6} {'':>7} {'':>8} {o['latency_ms']['p50']:>7.3f} {o['throughput_ips']:>7.0f}"]
    for v in result.variants:
        c = v.comparison
        psnr = "inf" if math.isinf(c.psnr_db) else f"{c.psnr_db:.1f}"
        lo, hi = c.agreement_ci
        ci = f"{100 * lo:.2f}-{100 * hi:.2f}"
        lines.append(
            f"{v.id:<22} {v.backend:<13} {v.size_bytes / 1024:>8.1f} {v.zipped_bytes / 1024:>7.1f} "
            f"{100 * c.agreement:>8.2f} {ci:>15} {100 * c.accuracy:>6.2f} {c.accuracy_change:>+6.2f} "
            f"{v.judgement.mcnemar_p_holm:>6.3f} {psnr:>7} {c.max_abs_diff:>8.2g} {v.latency_ms['p50']:>7.3f} "
            f"{v.throughput_ips:>7.0f}  {_verdict_cell(v)}")
        for r in v.reasons:
            lines.append(f"    - {r}")
        for r in v.judgement.inconclusive_reasons:
            lines.append(f"    ? {r}")
    return "\n".join(lines)


def status_line(result) -> str:
    """The summary line: how many passed, failed and are inconclusive."""
    n = len(result.variants)
    counts = f"{n - len(result.failed) - len(result.inconclusive)} pass, {len(result.failed)} fail, " \
             f"{len(result.inconclusive)} inconclusive"
    line = f"{n} variants on {result.test_count} test images in {result.seconds:.1f} s ({counts}); wrote {result.out_dir}"
    if result.inconclusive:
        from edgekit.runtime import metrics
        sizes = [v.judgement.images_to_decide for v in result.inconclusive]
        need = max((s for s in sizes if s is not None), default=None)
        line += (f"\ninconclusive: {', '.join(v.id for v in result.inconclusive)}"
                 + (f" (about {metrics.about(need)} test images would decide them)" if need is not None else ""))
    return line


def show(result) -> int:
    """Print the table and the status line; 1 if a variant failed, else 0."""
    print(format_table(result))
    print(f"\n{status_line(result)}")
    sys.stdout.flush()
    if not result.ok:
        print(f"edgekit check: {result.failure()}", file=sys.stderr)
        return 1
    return 0
