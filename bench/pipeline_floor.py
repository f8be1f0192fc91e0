"""What the default ``edgekit run`` has to compute, piece by piece, in CPU seconds.

Issue 14 asks for the default run in <= 60 s on 2 cores. Two cores give 120
CPU-seconds in 60 s, so the run's own work has to fit in that, with both
cores busy every second. This script measures that work without the
pipeline around it: each piece alone, one after the other, in this process,
CPU seconds of all its threads (user + system, ``time.process_time``;
less sensitive than wall time to what the host lends this 2-core VM):

- importing TensorFlow + tf_keras (each process that trains, converts or
  runs Keras pays it; the default run has two: the main one and the spare);
- training: the default model (``cnn``), 2 epochs (what the validation
  split decides on MNIST) with validation after each, on the default split;
- the three tfmot fine-tunes with their conversions, and the 13 other
  conversions (edgekit.convert, ``--jobs 1``);
- predictions on the 10,000 test images: the original (Keras), the 9
  LiteRT files on one thread each (the int16x8 file on its own line: its
  kernels are LiteRT's reference code) and the 7 Core ML programs in the
  mil-reference interpreter.

In: ``--run DIR``, a run directory that ``edgekit run`` finished (its model
and variants are reused); without it, one is made first in a temporary
directory. Out: a table of CPU seconds per piece, their sum, and the sum
over 2 cores: the shortest wall time those pieces allow, before any
start-up, file writing, latency timing, report or golden kit.

    .venv/bin/python bench/pipeline_floor.py [--run DIR]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORES = 2
TARGET_S = 60.0


class Ledger:
    def __init__(self):
        self.rows: list[tuple[str, float, float]] = []

    def measure(self, what: str, fn):
        """``fn()``, its library output held back (edgekit.quiet), timed."""
        from edgekit import quiet

        t0, c0 = time.perf_counter(), time.process_time()
        out = quiet.call(fn)
        self.rows.append((what, time.process_time() - c0, time.perf_counter() - t0))
        print(f"  {what:58s} {self.rows[-1][1]:7.1f} CPU-s {self.rows[-1][2]:7.1f} s", flush=True)
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="a run directory `edgekit run` finished (default: make one)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-floor-"))
    try:
        run = args.run
        if run is None:
            run = tmp / "run"
            print(f"making a default run in {run} ...", flush=True)
            done = subprocess.run([sys.executable, "-m", "edgekit", "run", "--run", str(run)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if done.returncode not in (0, 1):
                print(f"edgekit run failed (exit {done.returncode})", file=sys.stderr)
                return 2
        return measure(run, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(run: Path, tmp: Path) -> int:
    led = Ledger()
    print("piece by piece, one after the other in this process:", flush=True)
    from edgekit import quiet

    led.measure("import tensorflow + tf_keras (once per process)", lambda: (quiet.import_tensorflow(),
                                                                          quiet.import_keras()))
    from edgekit.convert import stage as convert_stage
    from edgekit.convert.config import ConvertConfig
    from edgekit.rundir import ModelArtifact, RunDir, VariantIndex
    from edgekit.runtime import mil
    from edgekit.runtime.backends import LiteRTBackend, mil_feed
    from edgekit.train import training
    from edgekit.train.config import TrainConfig
    from edgekit.train.data import load_dataset
    from edgekit.train.predict import predict

    config = TrainConfig(run_dir=tmp / "train", epochs=2).resolved()
    ds = load_dataset("mnist", val_size=config.val_size, seed=config.seed)
    led.measure("train: cnn, 2 epochs, validation after each", lambda: training.train_model(config, ds))

    model = ModelArtifact.read(RunDir(run))
    x = model.io.pixels.apply(model.dataset().x_test)
    keras = model.load_keras()
    quiet.call(predict, keras, x[:256])  # traces the predict function, as check does before its predictions
    led.measure(f"predict: original (Keras) on {len(x):,} images", lambda: predict(keras, x))

    ids = [v.id for v in VariantIndex.read(RunDir(run)).variants()]
    finetunes = [i for i in ids if i in ("tflite-qat-int8", "tflite-pruned-int8", "tflite-clustered-int8")]
    others = [i for i in ids if i not in finetunes]
    for what, chosen in ((f"convert: the {len(finetunes)} tfmot fine-tunes + their conversions", finetunes),
                         (f"convert: the {len(others)} other variants", others)):
        copy = tmp / f"convert-{len(chosen)}"
        copy.mkdir()
        shutil.copytree(run / "model", copy / "model")
        led.measure(what, lambda: convert_stage.run(ConvertConfig(run_dir=copy, variants=tuple(chosen), jobs=1)))

    tflite = sorted((run / "variants").glob("*/model.tflite"))
    slow = [p for p in tflite if "int16x8" in p.parent.name]
    fast = [p for p in tflite if p not in slow]
    led.measure(f"predict: {len(fast)} LiteRT files, 1 thread each",
                lambda: [LiteRTBackend(p, num_threads=1).predict(x) for p in fast])
    for p in slow:
        led.measure(f"predict: {p.parent.name} (LiteRT reference kernels)",
                    lambda: LiteRTBackend(p, num_threads=1).predict(x))
    programs = [mil.load(p) for p in sorted((run / "variants").glob("*/*.mlpackage"))]
    led.measure(f"predict: {len(programs)} Core ML programs, mil-reference",
                lambda: [prog.predict(mil_feed(prog.input_spec, x, model.io.pixels)) for prog in programs])

    total = sum(c for _, c, _ in led.rows) + led.rows[0][1]   # the spare imports TensorFlow too
    floor = total / CORES
    print(f"  {'import tensorflow + tf_keras in the spare process':58s} {led.rows[0][1]:7.1f} CPU-s")
    print(f"\nsum: {total:.1f} CPU-s; on {CORES} cores, never idle: {floor:.1f} s "
          f"= {floor / TARGET_S:.2f}x issue 14's {TARGET_S:.0f} s, before start-up, file writing, "
          "latency timing, report and golden kit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
