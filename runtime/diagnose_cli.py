"""``edgekit diagnose``: flags to a ``DiagnoseConfig``; the result to a per-layer table.

In: ``--run DIR --variant ID [--limit N]``. Out: ``DIR/diagnose/<ID>.json``
and ``<ID>.png`` (edgekit.runtime.diagnose does the work), and on stdout one
row per Keras layer with its accumulated and local error and the first layer
where the error jumps.
"""
from __future__ import annotations

import argparse

from edgekit.apps import flags

HELP = "per layer, where a variant loses the original's answers (accumulated and local error)"
DESCRIPTION = """\
Run one variant and the original Keras model side by side on test images and
compare them layer by layer, by Keras layer name:

  accumulated  the variant end to end, its tensor for the layer against the
               float model's output of that layer
  local        the variant's op(s) for that layer alone, fed the float model's
               inputs: what converting this layer costs by itself

each as SNR in dB (higher is closer), cosine similarity and max abs difference,
plus the first layer where the accumulated error jumps (20 dB below the layer
before). TFLite variants run in LiteRT with every intermediate tensor kept;
Core ML variants in edgekit's mil-reference interpreter (Core ML's runtime
shows no intermediate values). The layer-to-tensor map is the one convert
stored in variant.json. Writes DIR/diagnose/<ID>.json and <ID>.png.

Example:
  edgekit diagnose --run runs/mnist --variant coreml-pal2
  edgekit diagnose --run runs/mnist --variant tflite-int8 --limit 200
"""

PARENTS = [flags.run_dir]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """diagnose's own flags (``--run`` comes from ``PARENTS``)."""
    from edgekit.runtime.diagnose import DEFAULT_LIMIT

    p.add_argument("--variant", required=True, metavar="ID", help="the variant to diagnose (one id)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                   help=f"compare on the first N test images (default {DEFAULT_LIMIT})")


def config_from_args(args):
    from edgekit.runtime.diagnose import DiagnoseConfig

    return DiagnoseConfig(run_dir=args.run, variant=args.variant, limit=args.limit)


def _num(e, attr: str, fmt: str) -> str:
    return "-" if e is None else format(getattr(e, attr), fmt)


def format_table(result) -> str:
    from edgekit.runtime.diagnose import snr_text

    head = (f"{'layer':<18} {'class':<18} {'acc SNR dB':>10} {'acc cos':>8} {'acc max|Δ|':>10} "
            f"{'loc SNR dB':>10} {'loc cos':>8} {'loc max|Δ|':>10}  note")
    lines = [head]
    for r in result.rows:
        a, lo = r.accumulated, r.local
        note = r.note or ""
        if r.layer == result.first_jump:
            note = ("<- first jump; " + note).rstrip("; ")
        if r.status != "op":
            lines.append(f"{r.layer[:18]:<18} {r.cls[:18]:<18} {'':>10} {'':>8} {'':>10} {'':>10} {'':>8} {'':>10}  "
                         f"{note}")
            continue
        lines.append(f"{r.layer[:18]:<18} {r.cls[:18]:<18} {snr_text(a):>10} {_num(a, 'cosine', '.5f'):>8} "
                     f"{_num(a, 'max_abs_diff', '.3g'):>10} {snr_text(lo):>10} {_num(lo, 'cosine', '.5f'):>8} "
                     f"{_num(lo, 'max_abs_diff', '.3g'):>10}  {note}")
    return "\n".join(lines)


def summary(result) -> str:
    from edgekit.runtime.diagnose import snr_text

    if result.first_jump:
        r = result.row(result.first_jump)
        fused = f" (fused op: {', '.join([r.layer, *r.fused_with])})" if r.fused_with else ""
        jump = f"first jump: {r.layer}{fused}, accumulated SNR {snr_text(r.accumulated)} dB"
    else:
        jump = "no jump: the accumulated error never rises 20 dB from one layer to the next"
    worst = f"; lowest local SNR: {result.worst_local}" if result.worst_local else ""
    return (f"{jump}{worst}\n{result.variant} on {result.images} test images ({result.backend}) in "
            f"{result.seconds:.1f} s; wrote {result.path} and {result.chart}")


def show(result) -> int:
    print(format_table(result))
    print()
    print(summary(result))
    return 0
