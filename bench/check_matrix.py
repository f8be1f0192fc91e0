"""Benchmark of the checker on the whole default variant matrix.

In: ``--run DIR`` with a trained model and converted variants, or nothing:
then the default ``cnn`` is trained on full MNIST and every recipe is
converted into ``--out`` (default runs/bench-check, replaced).
Out (stdout): the check table, the wall time of checking the whole matrix on
the test set, each TFLite variant's LiteRT batch-1 latency as a ratio to the
Keras model's ``predict_on_batch`` at batch 1 (both measured in the same
run, side by side), and the bars below with PASS/FAIL. Exit 1 if a bar fails.

    .venv/bin/python bench/check_matrix.py [--run DIR | --out DIR]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow)

# The headline bars of the checker (bench/README.md "Checker").
INT8_IDS = ("tflite-int8", "tflite-qat-int8")
MIN_INT8_AGREEMENT = 0.998          # full-integer variants agree with the float model on >= 99.8%
MAX_INT8_ACCURACY_CHANGE = 0.1      # ... and move accuracy by at most 0.1 point
MAX_CHECK_SECONDS = 120.0           # the whole matrix on 10,000 images, 2 cores


def build(out: Path) -> Path:
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run as convert
    from edgekit.train import TrainConfig, run as train

    t0 = time.perf_counter()
    train(TrainConfig(run_dir=out, model="cnn", overwrite=True))
    print(f"trained default cnn on full MNIST in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    result = convert(ConvertConfig(run_dir=out, overwrite=True))
    print(f"converted {len(result.variants) - len(result.failed)} variants in {time.perf_counter() - t0:.0f} s", flush=True)
    for o in result.failed:
        print(f"  conversion FAILED {o.id}: {o.reason}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="existing run dir with model/ and variants/")
    p.add_argument("--out", type=Path, default=Path("runs/bench-check"), help="where to train and convert without --run")
    args = p.parse_args(argv)

    from edgekit.runtime import check, check_cli

    run_dir = args.run if args.run else build(args.out)
    t0, c0 = time.perf_counter(), time.process_time()
    result = check.run(check.CheckConfig(run_dir=run_dir))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(check_cli.format_table(result))
    print()

    keras_p50 = result.original["latency_ms"]["p50"]
    # Wall time depends on what else runs on the machine; CPU seconds (all
    # threads of this process) much less so. Where each variant's time went:
    print(f"check wall time {wall:.1f} s, process CPU time {cpu:.1f} s (all threads); prediction time by backend:")
    for name in sorted({v.backend for v in result.variants}):
        vs = [v for v in result.variants if v.backend == name]
        secs = sum(v.comparison.count / v.throughput_ips for v in vs)
        print(f"  {name:<14} {len(vs):>2} variants  {secs:6.1f} s predicting the test set")
    print()
    print(f"batch-1 latency, LiteRT p50 / Keras predict_on_batch p50 ({keras_p50:.3f} ms), same run:")
    for v in result.variants:
        if v.backend == "litert":
            ratio = v.latency_ms["p50"] / keras_p50
            print(f"  {v.id:<22} {v.latency_ms['p50']:8.3f} ms  ratio {ratio:.5f}  ({1 / ratio:,.0f}x faster than Keras)")
    print()

    by_id = {v.id: v for v in result.variants}
    bars = [(f"checked {len(result.variants)} variants on {result.test_count} images in {wall:.1f} s "
             f"<= {MAX_CHECK_SECONDS:.0f} s", wall <= MAX_CHECK_SECONDS)]
    bars.append((f"test set is the full 10,000 images ({result.test_count})", result.test_count == 10000))
    for vid in INT8_IDS:
        v = by_id.get(vid)
        if v is None:
            bars.append((f"{vid} present in the run", False))
            continue
        c = v.comparison
        bars.append((f"{vid} agreement {100 * c.agreement:.2f}% >= {100 * MIN_INT8_AGREEMENT:.1f}%",
                     c.agreement >= MIN_INT8_AGREEMENT))
        bars.append((f"{vid} accuracy change {c.accuracy_change:+.2f} pts within ±{MAX_INT8_ACCURACY_CHANGE}",
                     abs(c.accuracy_change) <= MAX_INT8_ACCURACY_CHANGE))
    failed_defaults = [v.id for v in result.failed]
    print(f"variants failing default thresholds: {', '.join(failed_defaults) or 'none'}")
    for v in result.failed:
        for r in v.reasons:
            print(f"  {v.id}: {r}")
    for text, ok in bars:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in bars) else 1


if __name__ == "__main__":
    sys.exit(main())
