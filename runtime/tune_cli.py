"""``edgekit tune``: flags to a ``TuneConfig``; the result to the layer plan.

In: ``--run DIR --platform ios|android --target-agreement F [--max-size KB]``.
Out: (edgekit.runtime.tune does the work) ``DIR/tune/recipes/<id>.json``,
``DIR/variants/<id>/``, ``DIR/tune/<id>.json``; on stdout the search as it
goes and the layer plan at the end; exit 1 when no plan reaches the target.
"""
from __future__ import annotations

import argparse
import sys

from edgekit.apps import flags

HELP = "search the smallest per-layer precision plan that keeps a target agreement"
DESCRIPTION = """\
Search, layer by layer, the smallest mixed-precision variant whose top-1
agreement with the original meets a target, and write it as a recipe and a
variant (coreml-tuned for ios, tflite-tuned for android) that check, report
and golden treat like any other.

Core ML (ios), per layer: float16, 8-bit linear, or 6/4/3/2-bit palettes
(6 and 4 bits also one palette per group of 16 channels; 3-bit and grouped
palettes make the tuned program iOS18); TFLite (android): float32, int8 or
int4 weights (ai-edge-quantizer; per channel, with zero points, or int8 per
tensor). The search starts from the smallest uniform plan that passes and
lowers layers from there, so it never ends larger than that.
The test set is split in two: candidates are judged on one half (their 95%
lower bound of agreement must meet the target), the final plan is measured
on the other. Layers are lowered least sensitive first (edgekit diagnose's
local error). Needs a checked run (edgekit check): the result is compared
with the smallest uniform variant that meets the same target.

Writes DIR/tune/recipes/<id>.json (edgekit convert --recipes takes it),
DIR/variants/<id>/ and the search record DIR/tune/<id>.json. Run edgekit
check afterwards to include the tuned variant in the report. Exit 1 when no
plan reaches the target (the best found is printed and recorded).

Example:
  edgekit tune --run runs/mnist --platform ios --target-agreement 0.999
  edgekit tune --run runs/mnist --platform ios --target-agreement 0.995 --max-size 120
"""

PARENTS = [flags.run_dir]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """tune's own flags (``--run`` comes from ``PARENTS``)."""
    p.add_argument("--platform", required=True, choices=["ios", "android"],
                   help="ios: a Core ML variant; android: a TFLite variant")
    p.add_argument("--target-agreement", required=True, type=float, metavar="F",
                   help="top-1 agreement with the original to keep, a fraction in (0, 1], e.g. 0.999")
    p.add_argument("--max-size", type=float, metavar="KB", help="also stay at or under this file size")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the test-set split (default 0)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N test images (a quick look)")


def config_from_args(args):
    from edgekit.runtime.tune import TuneConfig

    return TuneConfig(run_dir=args.run, platform=args.platform, target_agreement=args.target_agreement,
                      max_size_kb=args.max_size, seed=args.seed, limit=args.limit)


def _db(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def format_plan(result) -> str:
    lines = [f"{'layer':<18} {'weights':>8} {'plan':<8} {'bits':>4} {'local SNR dB':>12} {'rank':>4}"]
    for r in result.layers:
        lines.append(f"{r['layer'][:18]:<18} {r['weights']:>8} {r['option']:<8} {r['bits']:>4} "
                     f"{_db(r['local_snr_db']):>12} {r['rank']:>4}")
    return "\n".join(lines)


def summary(result) -> str:
    out = []
    if result.size_bytes is not None and result.report is not None:
        rep, ver = result.report, result.verify
        out.append(f"{result.variant}: {result.size_bytes / 1024:.1f} KB; verify half {100 * ver['agreement']:.2f}% "
                   f"agreement (lower bound {100 * ver['agreement_lower_bound']:.2f}%); report half "
                   f"{100 * rep['agreement']:.2f}% (lower bound {100 * rep['agreement_lower_bound']:.2f}%, "
                   f"{'meets' if rep['agreement_lower_bound'] >= result.target else 'misses'} the target), "
                   f"accuracy {100 * rep['accuracy']:.2f}% vs original {100 * rep['original_accuracy']:.2f}%")
        u = result.uniform
        if u:
            out.append(f"smallest uniform variant meeting {100 * result.target:g}% in check: {u['id']} "
                       f"{u['size_bytes'] / 1024:.1f} KB; tuned/uniform = {result.size_bytes / u['size_bytes']:.3f}")
            same = u.get("same_rule")
            out.append("  under tune's rule (the verify half): " + (
                f"{same['id']} {same['size_bytes'] / 1024:.1f} KB; tuned/uniform = "
                f"{result.size_bytes / same['size_bytes']:.3f}" if same else "no uniform variant passes"))
        else:
            out.append(f"no uniform variant of this run meets {100 * result.target:g}% in check")
    out.append(f"{len(result.candidates)} candidates in {result.seconds:.1f} s; wrote {result.record}"
               + (f" and {result.recipe}; run `edgekit check --run {result.run_dir}` to include it in the report"
                  if result.recipe else ""))
    return "\n".join(out)


def show(result) -> int:
    print()
    print(format_plan(result))
    print()
    print(summary(result))
    sys.stdout.flush()
    if not result.ok:
        print(f"edgekit tune: {result.failure()} (best found: "
              + ", ".join(f"{k} {v}" for k, v in result.plan.items()) + ")", file=sys.stderr)
        return 1
    return 0
