"""``edgekit convert``: flags in (``add_arguments``, ``PARENTS``), a ``ConvertConfig`` out
(``config_from_args``), and ``show(result)`` printing the summary table;
``edgekit.convert.stage.run`` does the work.

Exit codes: 0 every variant converted, 1 at least one failed (the table
says which and why; the others are written), 2 bad input (one line).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgekit.apps import flags
from edgekit.convert.config import DEFAULT_CALIBRATION_SIZE, ConvertConfig

HELP = "convert the trained model into TFLite and Core ML variants (one recipe each)"

DESCRIPTION = """\
Convert <run>/model/ (written by `edgekit train`) into phone-ready variants,
one directory per recipe: <run>/variants/<id>/ with model.tflite or
Model.mlpackage and variant.json (kind, reference, hashes, sizes, I/O,
quantization, operators), and <run>/variants/index.json listing every variant
tried (ok or failed, and why).

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


PARENTS = [flags.run_dir, flags.overwrite, flags.variants, flags.jobs]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """convert's own flags (``--run``, ``--overwrite``, ``--variants`` and ``--jobs`` come from ``PARENTS``)."""
    p.add_argument("--calibration-size", type=int, default=DEFAULT_CALIBRATION_SIZE, metavar="N",
                   help=f"training images used to calibrate integer variants (default {DEFAULT_CALIBRATION_SIZE})")
    p.add_argument("--recipes", type=Path, default=None, metavar="DIR",
                   help="folder of recipe files to use instead of the shipped ones")
    p.add_argument("--finetune-limit", type=int, default=None, metavar="N",
                   help="at most N training images per fine-tune (overrides the recipes' train_limit)")
    p.add_argument("--calibration-seed", type=int, default=0, metavar="N",
                   help="seed of the calibration and fine-tuning samples (default 0)")


def config_from_args(args: argparse.Namespace) -> ConvertConfig:
    return ConvertConfig(run_dir=args.run, variants=flags.ids(args.variants), calibration_size=args.calibration_size,
                         overwrite=args.overwrite, recipe_dir=args.recipes, finetune_limit=args.finetune_limit,
                         calibration_seed=args.calibration_seed, jobs=args.jobs)


def show(result) -> int:
    """The summary table (a ``ConvertResult``); 1 with the failures on stderr when a variant failed."""
    from edgekit.convert.stage import summary_table

    print(summary_table(result))
    if not result.ok:
        print(f"edgekit: {result.failure()}", file=sys.stderr)
        return 1
    return 0
