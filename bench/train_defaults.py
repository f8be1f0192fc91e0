"""Do the default training settings hold beyond MNIST? The default `cnn`
against the same network with a 4x longer budget, on MNIST and Fashion-MNIST.

For each dataset, in one process one after the other:

(a) ``edgekit train --model cnn --dataset D`` with the defaults: the
    validation split decides the budget (warm-up + cosine cycles, each
    doubling the epochs so far, while a cycle still raises the best
    validation accuracy by 0.5 points; train/config.py);
(b) the same network and data with a fixed budget of 4x the epochs (a) ran:
    ``--epochs 4E --no-early-stopping``, one warm-up + cosine schedule fitted
    to those 4E epochs.

Prints both test accuracies, the gap in points (the promise: (a) within 0.5
points of (b)), each run's epochs and training seconds, and the load average
(the machine is shared; the accuracies do not depend on the load, the
seconds do). Exit code 1 if a gap is over 0.5 points.

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


def _train(run_dir: Path, dataset: str, seed: int, **budget) -> dict:
    t0 = time.perf_counter()
    r = run(TrainConfig(run_dir=run_dir, model="cnn", dataset=dataset, seed=seed, **budget))
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
    four = _train(tmp / f"{dataset}-4x", dataset, seed, epochs=longer, early_stopping=False)
    print(f"[{dataset}]   {four['test']:.4f} test, {four['epochs']} epochs, {four['train_s']:.0f} s", flush=True)
    return {"dataset": dataset, "default": default, "four_x": four,
            "gap_points": 100 * (four["test"] - default["test"])}


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
    print("| dataset | default cnn: test acc | epochs (cycles) | train s | 4x budget: test acc | epochs | train s "
          "| gap (points) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    ok = True
    for r in rows:
        d, f = r["default"], r["four_x"]
        ok &= r["gap_points"] <= PROMISE_POINTS
        print(f"| {r['dataset']} | {100 * d['test']:.2f}% | {d['epochs']} ({'+'.join(map(str, d['budget']['cycles']))}) "
              f"| {d['train_s']:.0f} | {100 * f['test']:.2f}% | {f['epochs']} | {f['train_s']:.0f} "
              f"| {r['gap_points']:+.2f} |")
    print(f"\nevery default within {PROMISE_POINTS} points of its 4x budget: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
