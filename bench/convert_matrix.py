"""Benchmark of the conversion stage on the whole default variant matrix.

In: ``--run DIR`` holding a trained ``model/`` (its ``variants/`` is
replaced), or nothing: then the default ``cnn`` is trained with edgekit's
defaults on full MNIST into ``--out`` (default runs/bench-convert) first.
Out (stdout): the conversion table, the size ratios tflite-int8/tflite-fp32
and coreml-pal4/coreml-fp32, and the total conversion time, each against its
bar with PASS/MISS. The time is given as wall seconds and as this process's
CPU seconds, with the load average: on a shared machine the wall time
measures the neighbours too, while the CPU seconds are the work done (on an
idle 2-core machine wall ~= CPU / 2..1). Exit 1 if a bar is missed.

    .venv/bin/python bench/convert_matrix.py [--run DIR | --out DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow)

MAX_INT8_RATIO = 0.26      # tflite-int8 / tflite-fp32 file size
MAX_PAL4_RATIO = 0.15      # coreml-pal4 / coreml-fp32 package size
MAX_SECONDS = 90.0         # the whole default matrix, default cnn on MNIST, 2 cores


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="existing run dir with a trained model/")
    p.add_argument("--out", type=Path, default=Path("runs/bench-convert"), help="where to train without --run")
    args = p.parse_args(argv)

    from edgekit.convert import stage
    from edgekit.convert.config import ConvertConfig

    run_dir = args.run
    if run_dir is None:
        from edgekit.train import TrainConfig, run as train

        run_dir = args.out
        t0 = time.perf_counter()
        train(TrainConfig(run_dir=run_dir, model="cnn", overwrite=True))
        print(f"trained the default cnn on MNIST in {time.perf_counter() - t0:.0f} s", flush=True)
    from edgekit.rundir import ModelArtifact, VariantArtifact

    manifest = ModelArtifact.read(run_dir).manifest
    print(f"model: {manifest['model']['name']}, test accuracy {manifest['metrics']['test_accuracy']:.4f}")

    config = ConvertConfig(run_dir=run_dir, overwrite=True)
    load_before = os.getloadavg()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = stage.run(config)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    load_after = os.getloadavg()
    print(stage.summary_table(result))
    print()
    for v in result.variants:
        if v.status == "ok":
            rec = VariantArtifact.read(run_dir, v.id).manifest
            if rec["finetune"]:
                ft = rec["finetune"]
                print(f"{v.id}: fine-tuned {ft['train_images']} images x {ft['epochs']} epoch in {ft['seconds']:.1f} s, "
                      f"val accuracy {ft['val_accuracy']:.4f}"
                      + (f", sparsity {ft['sparsity_reached']:.3f}" if "sparsity_reached" in ft else ""))
    print()

    size = {v.id: v.size_bytes for v in result.variants if v.status == "ok"}
    misses = []

    def bar(name, value, limit, unit=""):
        ok = value is not None and value <= limit
        if not ok:
            misses.append(name)
        shown = "n/a" if value is None else f"{value:.3f}{unit}"
        print(f"{name:<32} {shown:>10}   bar <= {limit}{unit}   {'PASS' if ok else 'MISS'}")

    def ratio(a, b):
        return size[a] / size[b] if a in size and b in size else None

    bar("tflite-int8 / tflite-fp32", ratio("tflite-int8", "tflite-fp32"), MAX_INT8_RATIO)
    bar("coreml-pal4 / coreml-fp32", ratio("coreml-pal4", "coreml-fp32"), MAX_PAL4_RATIO)
    bar("total conversion, wall", wall, MAX_SECONDS, " s")
    print(f"{'total conversion, CPU':<32} {cpu:>10.1f} s   (this process, all threads)")
    print(f"load average (1 min) before/after: {load_before[0]:.1f} / {load_after[0]:.1f} on {os.cpu_count()} cores")
    if result.failed:
        misses.append("failed variants")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
