"""``edgekit import``: flags in (``add_arguments``, ``PARENTS``), an ``ImportConfig``
out (``config_from_args``), and ``show(result)``. ``edgekit.train.importer.run``
does the work (TensorFlow is imported only then).

``add_own_arguments`` adds only the flags ``edgekit train`` does not have
(``edgekit run`` takes both sets: ``--model PATH`` there runs import)."""
from __future__ import annotations

import argparse

from edgekit.apps import flags
from edgekit.train.data import DATASETS
from edgekit.train.importer import ImportConfig

HELP = "import your own Keras or SavedModel classifier and write <run>/model/"

DESCRIPTION = """\
Import an image classifier you trained yourself and write <run>/model/ with
the same contract `edgekit train` writes, so convert, check, report and
golden work on it unchanged.

--model PATH: a Keras 3 .keras file, a tf_keras/Keras 2 .keras or .h5 file,
or a SavedModel directory saved by tf_keras (serving_default signature).
The model is loaded safely (no Lambda layers, no custom objects), rebuilt
in tf_keras with the same weights (checked to give the same probabilities
within 1e-5), and measured on the dataset's test split. A model without a
final softmax (logits) is recorded as such and gets one softmax appended.

The dataset is the evaluation, calibration and fine-tuning data of every
later stage. Folder images are resized to the model's input size (bilinear,
whole image, no crop) and read in colour for a 3-channel model.

How pixels become inputs: --input-range LO,HI (pixel 0 -> LO, 255 -> HI;
default 0,1, or 0,255 when the model starts with a Rescaling layer; write a
negative range as --input-range=-1,1), or per-channel --mean and --std on
pixels in [0, 1]. --color says the model's colour order; without it, a
grayscale dataset for a colour model (or the reverse) is an error, with it
the data is converted.

Examples:
  edgekit import --model flowers.keras --dataset folder --data-dir ~/flowers --run runs/flowers
  edgekit import --model net.h5 --dataset folder --data-dir ~/photos --mean 0.485,0.456,0.406 \\
                 --std 0.229,0.224,0.225 --run runs/net
  edgekit import --model saved_model/ --input-range=-1,1 --color bgr --dataset folder --data-dir d --run runs/sm
"""

PARENTS = [flags.run_dir, flags.overwrite]


def add_own_arguments(p) -> None:
    """The flags only import has (``edgekit run`` adds these beside train's)."""
    p.add_argument("--input-range", metavar="LO,HI",
                   help="the values pixel 0 and 255 map to (default 0,1; 0,255 with a Rescaling layer inside)")
    p.add_argument("--mean", metavar="C1,C2,C3",
                   help="per-channel mean on pixels in [0, 1], in the model's channel order (B,G,R with "
                        "--color bgr); with --std")
    p.add_argument("--std", metavar="C1,C2,C3",
                   help="per-channel standard deviation on pixels in [0, 1], same order; with --mean")
    p.add_argument("--color", choices=["rgb", "bgr", "grayscale"],
                   help="the model's colour order; converts data of the other kind (default: from the model)")
    p.add_argument("--class-names", metavar="FILE", help="class names, one per line, in the model's output order")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """import's flags (``--run`` and ``--overwrite`` come from ``PARENTS``)."""
    p.add_argument("--model", required=True, metavar="PATH",
                   help="the .keras or .h5 file, or SavedModel directory, to import")
    p.add_argument("--dataset", default="mnist", choices=list(DATASETS),
                   help="the evaluation, calibration and fine-tuning data (default: mnist)")
    p.add_argument("--data-dir", metavar="DIR", help="where the dataset's files are (required for idx and folder)")
    add_own_arguments(p)
    p.add_argument("--image-size", type=int, metavar="N", help="side for a model whose input size is dynamic")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the dataset split (default: 0)")
    p.add_argument("--val-size", type=int, metavar="N", help="validation images taken from the training set")
    p.add_argument("--train-limit", type=int, metavar="N", help="keep a class-balanced subset of N training images")
    p.add_argument("--test-limit", type=int, metavar="N", help="evaluate on a class-balanced subset of N images")


def config_from_args(args: argparse.Namespace) -> ImportConfig:
    return ImportConfig(run_dir=args.run, model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                        input_range=args.input_range, mean=args.mean, std=args.std, color=args.color,
                        class_names_file=args.class_names, image_size=args.image_size, seed=args.seed,
                        val_size=args.val_size, train_limit=args.train_limit, test_limit=args.test_limit,
                        overwrite=args.overwrite)


def show(result) -> int:
    """Where the model went and what edgekit measured (an ``ImportResult``); the exit code."""
    logits = " (logits: one softmax appended)" if result.output_activation == "none" else ""
    print(f"model:    {result.model_dir}  (imported {result.source_format}, {result.params:,} parameters{logits})")
    print(f"manifest: {result.manifest_path}")
    print(f"test accuracy (measured by edgekit): {result.test_accuracy:.4f}; tf_keras rebuild within "
          f"{result.rebuild_max_abs_diff:.1g} of the model's probabilities")
    return 0 if result.ok else 1
