"""Throughput of edgekit's mil-reference interpreter next to Keras, in one run.

In: nothing (bundled MNIST). Trains the zoo's default ``cnn`` briefly (the
weights do not change the cost), converts it with the real Core ML recipes
``coreml-fp32``, ``coreml-fp16`` and ``coreml-pal4`` (edgekit.convert), then
times, side by side on the same 10,000 MNIST test images:
Keras ``model.predict`` and ``edgekit.runtime.mil`` ``Program.predict``.
Out: images/s of each and the interpreter/Keras ratio (timings on a shared
machine are noisy; the ratio, measured in the same run, is what to compare).

    .venv/bin/python bench/mil_throughput.py [--repeats 3] [--train-limit 5000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow loads)

TARGET_IPS = 2000.0


def best_ips(fn, n: int, repeats: int) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU second of this process),
    best of ``repeats``. CPU seconds count every thread, so the second number
    is per core and less sensitive to other processes on the machine."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return n / wall, n / cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-limit", type=int, default=5000)
    args = ap.parse_args()

    import numpy as np
    import tf_keras as keras

    from edgekit.convert import coreml, recipe
    from edgekit.runtime import mil
    from edgekit.train import data, models

    ds = data.load_dataset("mnist", train_limit=args.train_limit)
    model = models.build_model("cnn", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(data.to_float(ds.x_train), ds.y_train, epochs=1, batch_size=64, verbose=0)
    x_u8, x_f = ds.x_test, data.to_float(ds.x_test)
    n = len(x_u8)
    meta = {"author": "bench", "license": "bench", "short_description": "bench", "version": "0",
            "user_defined": {}, "input_description": "image", "output_descriptions": {}}

    keras_ips, keras_cpu = best_ips(lambda: model.predict(x_f, batch_size=256, verbose=0), n, args.repeats)
    ref = model.predict(x_f, batch_size=256, verbose=0)
    print(f"{n} MNIST test images, best of {args.repeats}")
    print(f"{'model':<14}{'images/s':>10}{'vs keras':>10}{'img/cpu-s':>11}{'vs keras':>10}{'max|dp|':>10}{'top-1 agree':>13}")
    print(f"{'keras':<14}{keras_ips:>10.0f}{1.0:>10.2f}{keras_cpu:>11.0f}{1.0:>10.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for rid in ("coreml-fp32", "coreml-fp16", "coreml-pal4"):
            path = Path(tmp) / f"{rid}.mlpackage"
            coreml.convert(model, recipe.load(rid), class_names=ds.class_names,
                           image_shape=ds.image_shape, metadata=meta).save(str(path))
            prog = mil.load(path)
            probs = prog.predict(x_u8)
            ips, cpu = best_ips(lambda: prog.predict(x_u8), n, args.repeats)
            agree = (probs.argmax(1) == ref.argmax(1)).mean()
            print(f"{rid:<14}{ips:>10.0f}{ips / keras_ips:>10.2f}{cpu:>11.0f}{cpu / keras_cpu:>10.2f}{np.abs(probs - ref).max():>10.1e}{agree:>13.4f}"
                  + ("" if ips >= TARGET_IPS else f"   (below the {TARGET_IPS:.0f} images/s target)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
