"""Do the default training settings hold beyond MNIST? The default `cnn`
against the same network with a 4x longer budget, on MNIST and Fashion-MNIST.

For each dataset, in one process one after the other:

(a) ``edgekit train --model cnn --dataset D`` with the defaults: the
    validation split decides the budget (warm-up + cosine cycles, each
    doubling the epochs so far, while a cycle still raises the best
    validation accuracy by 0.5 points; train/config.py);
(b) the same network and data with a fixed budget of 4x the epochs (a) ran:
    ``--epochs 4E --no-early-stopping``, one warm-up + cosine schedule fitted
    to those 4E epochs. What it reaches is counted both ways: at its last
    epoch (what that command writes) and at its best validation epoch (the
    weights the default keeps too), whichever is higher being the bar.

Prints the test accuracies, the gap in points (the promise: (a) within 0.5
points of the better of (b)), each run's epochs and training seconds, and
the load average (the machine is shared; the accuracies do not depend on the
load, the seconds do). Exit code 1 if (a) is more than 0.5 points below.

    .venv/bin/python bench/train_defaults.py                  # both datasets
    .venv/bin/python bench/train_defaults.py --dataset fashion-mnist

Fashion-MNIST: ``apt-get install dataset-fashion-mnist`` (.ci/run does).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow is imported)
from edgekit.train import TrainConfig, run

PROMISE_POINTS = 0.5


def _best_val_epoch():
    """A callback keeping the weights of the best validation epoch (``weights``, ``epoch``)."""
    import tf_keras as keras

    class BestEpoch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.best, self.weights, self.epoch = -1.0, None, 0

        def on_epoch_end(self, epoch, logs=None):
            if logs["val_accuracy"] > self.best:
                self.best, self.weights, self.epoch = logs["val_accuracy"], self.model.get_weights(), epoch + 1

    return BestEpoch()


def _test_accuracy(run_dir: Path, weights) -> float:
    """The run's model with ``weights`` on its test set."""
    from edgekit.rundir import ModelArtifact
    from edgekit.train.data import to_float

    artifact = ModelArtifact.read(run_dir)
    model, ds = artifact.load_keras(), artifact.dataset()
    model.set_weights(weights)
    return float((model.predict(to_float(ds.x_test), batch_size=1000, verbose=0).argmax(1) == ds.y_test).mean())


def _train(run_dir: Path, dataset: str, seed: int, callbacks=(), **budget) -> dict:
    t0 = time.perf_counter()
    r = run(TrainConfig(run_dir=run_dir, model="cnn", dataset=dataset, seed=seed, **budget), callbacks=callbacks)
    m = json.loads(r.manifest_path.read_text())
    return {"test": r.test_accuracy, "val": r.val_accuracy, "epochs": r.epochs_run, "train_s": r.train_seconds,
            "wall_s": time.perf_counter() - t0, "budget": m["metrics"]["budget"], "load": os.getloadavg()[0]}


def measure(dataset: str, seed: int, tmp: Path) -> dict:
    print(f"[{dataset}] default cnn (budget from the validation split); load average {os.getloadavg()[0]:.1f}",
          flush=True)
    default = _train(tmp / f"{dataset}-default", dataset, seed)
    b = default["budget"]
    print(f"[{dataset}]   {default['test']:.4f} test, {default['epochs']} epochs (cycles {b.get('cycles')}, "
          f"stopped: {b.get('stopped')}), {default['train_s']:.0f} s", flush=True)
    longer = 4 * default["epochs"]
    print(f"[{dataset}] 4x budget: --epochs {longer} --no-early-stopping; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    best = _best_val_epoch()
    four = _train(tmp / f"{dataset}-4x", dataset, seed, [best], epochs=longer, early_stopping=False)
    four.update(best_epoch=best.epoch, best_epoch_test=_test_accuracy(tmp / f"{dataset}-4x", best.weights))
    print(f"[{dataset}]   {four['test']:.4f} test at its last epoch, {four['best_epoch_test']:.4f} at its best validation "
          f"epoch ({best.epoch}), {four['epochs']} epochs, {four['train_s']:.0f} s", flush=True)
    bar = max(four["test"], four["best_epoch_test"])
    return {"dataset": dataset, "default": default, "four_x": four, "gap_points": 100 * (bar - default["test"])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", action="append", choices=["mnist", "fashion-mnist"],
                   help="measure only this dataset (repeatable; default: both)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    datasets = args.dataset or ["mnist", "fashion-mnist"]
    print(f"load average before: {os.getloadavg()} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(d, args.seed, Path(tmp)) for d in datasets]
    print(f"load average after: {os.getloadavg()}")
    print()
    print("| dataset | default cnn: test acc | epochs (cycles) | train s | 4x budget: test acc, last epoch "
          "| at best val epoch | epochs | train s | 4x better by (points) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    ok = True
    for r in rows:
        d, f = r["default"], r["four_x"]
        ok &= r["gap_points"] <= PROMISE_POINTS
        print(f"| {r['dataset']} | {100 * d['test']:.2f}% | {d['epochs']} ({'+'.join(map(str, d['budget']['cycles']))}) "
              f"| {d['train_s']:.0f} | {100 * f['test']:.2f}% | {100 * f['best_epoch_test']:.2f}% (epoch "
              f"{f['best_epoch']}) | {f['epochs']} | {f['train_s']:.0f} | {r['gap_points']:+.2f} |")
    print(f"\nevery default within {PROMISE_POINTS} points of its 4x budget: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
