"""``edgekit train``: flags in (``add_arguments``, ``PARENTS``), a ``TrainConfig``
out (``config_from_args``), and ``show(result)`` printing where the artifacts
went and the test accuracy. ``edgekit.train.training.run`` does the work
(TensorFlow is imported only then)."""
from __future__ import annotations

import argparse

from edgekit.apps import flags
from edgekit.train.config import MODEL_DEFAULTS, DatasetName, Model, Strategy, TrainConfig

HELP = "train a model from the zoo and write <run>/model/"

DESCRIPTION = """\
Train an image classifier and write <run>/model/: model.keras, saved_model/,
manifest.json (dataset hashes, resolved config, test/val accuracy, confusion
matrix), plots/ and tensorboard/ (training curves, embedding projector).

Models:   linear (softmax regression), cnn (the TensorFlow Layers-API tutorial
          net), deep (Deep MNIST), mobile (depthwise-separable, for phones),
          phone (inverted residuals for colour photos, trained in RGB: a folder's
          colour is kept, grayscale data gets three equal channels; --image-size 96).
Datasets: mnist (bundled), fashion-mnist (apt-get install dataset-fashion-mnist),
          idx (--data-dir with the four IDX files), folder (--data-dir with one
          subfolder of PNG/JPEG images per class; train/ and test/ if present).

How long to train is decided by the validation split unless --epochs is
given: warm-up + cosine cycles (cnn: 1 epoch, then 1, 2, 4, ... more, each
doubling the total) while a cycle still raises the best validation accuracy
by 0.5 points, up to --max-epochs; the best validation epoch is kept.
--epochs N trains one warm-up + cosine schedule over N epochs instead. Batch
size and learning rate default to per-model values; the same --seed gives
the same weights.

Examples:
  edgekit train --run runs/mnist
  edgekit train --model mobile --run runs/mobile
  edgekit train --dataset folder --data-dir ~/letters --model cnn --run runs/letters
  tensorboard --logdir runs/mnist/model/tensorboard

Several machines: set TF_CONFIG on each host and run the same command with
--strategy multiworker on all of them; the chief writes the run (README.md,
"Training on several machines"). --batch-size is then the global batch.
"""


PARENTS = [flags.run_dir, flags.overwrite]


def add_arguments(p: argparse.ArgumentParser, *, or_path: bool = False) -> None:
    """train's own flags (``--run`` and ``--overwrite`` come from ``PARENTS``).
    ``or_path``: ``--model`` may also name your own model file (``edgekit run``,
    where a path runs import instead of train)."""
    caps = ", ".join(f"{m}: {d.max_epochs}" for m, d in MODEL_DEFAULTS.items())
    zoo = [m.value for m in Model]
    if or_path:
        p.add_argument("--model", default="cnn", metavar="NAME|PATH",
                       help=f"a zoo model ({', '.join(zoo)}; default cnn), or the path of your own .keras/.h5 "
                            "file or SavedModel directory: then import runs instead of train")
    else:
        p.add_argument("--model", default="cnn", choices=zoo, help="the zoo model (default: cnn)")
    p.add_argument("--dataset", default="mnist", choices=[d.value for d in DatasetName],
                   help="the dataset (default: mnist)")
    p.add_argument("--data-dir", metavar="DIR", help="where the dataset's files are (required for idx and folder)")
    p.add_argument("--epochs", type=int, metavar="N",
                   help="a fixed budget of N epochs (default: decided by the validation split)")
    p.add_argument("--max-epochs", type=int, metavar="N",
                   help=f"cap of the budget the validation split decides (default per model: {caps})")
    batches = ", ".join(f"{m}: {d.batch_size}" for m, d in MODEL_DEFAULTS.items())
    p.add_argument("--batch-size", type=int, metavar="N", help=f"mini-batch size (default per model: {batches})")
    p.add_argument("--learning-rate", type=float, metavar="F", help="peak Adam learning rate (default per model)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed for split, init and shuffling (default: 0)")
    p.add_argument("--val-size", type=int, metavar="N",
                   help="validation images taken from the training set (default: 5000, or 10%% of a small set)")
    p.add_argument("--train-limit", type=int, metavar="N", help="train on a class-balanced subset of N images")
    p.add_argument("--test-limit", type=int, metavar="N", help="evaluate on a class-balanced subset of N images")
    p.add_argument("--image-size", type=int, default=28, metavar="N",
                   help="side of the square model input for --dataset folder (default: 28)")
    p.add_argument("--no-early-stopping", action="store_true",
                   help="train all epochs (without --epochs: the model's first cycle only)")
    p.add_argument("--strategy", default="default", choices=[s.value for s in Strategy],
                   help="default (one device), mirrored (all local devices), multiworker (the hosts in TF_CONFIG)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(run_dir=args.run, model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                       epochs=args.epochs, max_epochs=args.max_epochs, batch_size=args.batch_size,
                       learning_rate=args.learning_rate,
                       seed=args.seed, val_size=args.val_size, train_limit=args.train_limit,
                       test_limit=args.test_limit, overwrite=args.overwrite, image_size=args.image_size,
                       early_stopping=not args.no_early_stopping, strategy=args.strategy)


def show(result) -> int:
    """Where the model went and its test accuracy (a ``TrainResult``); the exit code."""
    if not result.writer:  # a non-chief worker of --strategy multiworker
        print(f"worker done: the chief writes the model; this worker's shard record: {result.manifest_path}")
        print(f"test accuracy (this worker's copy): {result.test_accuracy:.4f}")
        return 0
    print(f"model:    {result.model_dir}  ({result.params:,} parameters, {result.epochs_run} epochs, "
          f"{result.train_seconds:.0f} s)")
    print(f"manifest: {result.manifest_path}")
    print(f"test accuracy: {result.test_accuracy:.4f}  (val {result.val_accuracy:.4f})")
    return 0 if result.ok else 1
