"""``edgekit convert``: flags in, a ConvertConfig to ``edgekit.convert.stage.run``, a summary table out.

Exit codes: 0 every variant converted, 1 at least one failed (the table
says which and why; the others are written), 2 bad input (one line).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "convert the trained model into TFLite and Core ML variants (one recipe each)"

DESCRIPTION = """\
Convert <run>/model/ (written by `edgekit train`) into phone-ready variants,
one directory per recipe: <run>/variants/<id>/ with model.tflite or
Model.mlpackage and variant.json (hashes, sizes, I/O, quantization, operators).

TensorFlow Lite (Android):  tflite-fp32, tflite-fp16, tflite-dynamic-int8,
  tflite-int8 / tflite-uint8 (full integer, calibrated on training images),
  tflite-int16x8, and tfmot fine-tunes: tflite-qat-int8, tflite-pruned-int8,
  tflite-clustered-int8 (short fine-tunes on the model's own training data).
Core ML (iOS, ML Program with image input and classifier output):
  coreml-fp32, coreml-fp16, coreml-w8 (int8 weights), coreml-pal6/pal4/pal2
  (palettized weights), coreml-pruned.

Each variant is a recipe file (edgekit/convert/recipes/<id>.json); point
--recipes at a folder of your own to add or change variants.

Examples:
  edgekit convert --run runs/mnist
  edgekit convert --run runs/mnist --variants tflite-int8,coreml-pal4 --overwrite
"""


def _ids(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, type=Path, metavar="DIR",
                   help="run directory holding model/ (variants/ is written beside it)")
    p.add_argument("--variants", default="all", metavar="all|ID,ID",
                   help="'all' (default) or a comma-separated list of variant ids")
    p.add_argument("--calibration-size", type=int, default=500, metavar="N",
                   help="training images used to calibrate integer variants (default 500)")
    p.add_argument("--overwrite", action="store_true", help="replace existing variants/<id>/ directories")
    p.add_argument("--recipes", type=Path, default=None, metavar="DIR",
                   help="folder of recipe files to use instead of the shipped ones")
    p.add_argument("--finetune-limit", type=int, default=None, metavar="N",
                   help="at most N training images per fine-tune (overrides the recipes' train_limit)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration and fine-tuning samples (default 0)")


def main(args: argparse.Namespace) -> int:
    from edgekit.convert.config import ConvertConfig

    config = ConvertConfig(run_dir=args.run, variants=_ids(args.variants), calibration_size=args.calibration_size,
                           overwrite=args.overwrite, recipe_dir=args.recipes, finetune_limit=args.finetune_limit,
                           seed=args.seed)
    from edgekit.convert import stage

    result = stage.run(config)
    print(stage.summary_table(result))
    if not result.ok:
        print(f"edgekit: {len(result.failed)} variant(s) failed: "
              + "; ".join(f"{v.id}: {v.reason}" for v in result.failed), file=sys.stderr)
        return 1
    return 0
