"""Benchmark of ``edgekit tune`` on a checked default run (issue 13's numbers).

In: ``--run DIR``, a run with model/, variants/ and check/ (``edgekit run``
on the default cnn and full MNIST makes one). Out (stdout): per platform, the
search as tune prints it, then one line: the tuned variant's size, the
smallest uniform variant of the same format whose check agreement lower
bound meets the target (from check/results.json), their ratio, whether the
tuned variant is strictly smaller, its agreement on the report half and
whether that half's lower bound meets the target too (reported, not a bar:
with 5,000 images and a 99.9% target no disagreement is allowed), the seed
(the smallest uniform plan that passed the verify half) and tune's wall time
(bar: 5 minutes on 2 cores). Exit 1 if a bar (size, time) is missed.

    .venv/bin/python bench/tune.py --run runs/mnist [--target 0.999] [--platforms ios,android] [--seed N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow)

MAX_SECONDS = 300.0     # tune's wall time per platform (issue 13)


def _seed(result) -> dict | None:
    from edgekit import artifacts
    from edgekit.rundir import TUNE_SCHEMA

    return artifacts.read_manifest(result.record, TUNE_SCHEMA).get("seed")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--target", type=float, default=0.999)
    ap.add_argument("--platforms", default="ios,android")
    ap.add_argument("--seed", type=int, default=0, help="seed of tune's test-set split")
    args = ap.parse_args(argv)
    from edgekit.runtime import tune, tune_cli

    ok = True
    lines = []
    for platform in args.platforms.split(","):
        t0 = time.perf_counter()
        result = tune.run(tune.TuneConfig(run_dir=args.run, platform=platform, target_agreement=args.target,
                                          seed=args.seed))
        wall = time.perf_counter() - t0
        tune_cli.show(result)
        u = result.uniform
        rep = result.report or {}
        if not result.ok or result.size_bytes is None:
            lines.append(f"{platform}: no plan reached {100 * args.target:g}% ({result.failure()}); "
                         f"wall {wall:.0f} s")
            ok = False
            continue
        smaller = bool(u) and result.size_bytes < u["size_bytes"]
        ratio = f"{result.size_bytes / u['size_bytes']:.3f}" if u else "n/a"
        lines.append(f"{platform}: {result.variant} {result.size_bytes / 1024:.1f} KB vs smallest uniform meeting "
                     f"{100 * args.target:g}% {u['id'] + ' ' + format(u['size_bytes'] / 1024, '.1f') + ' KB' if u else '(none)'}"
                     f": ratio {ratio} ({'strictly smaller' if smaller else 'NOT smaller'}); report half "
                     f"{100 * rep.get('agreement', 0):.2f}% (lower bound {100 * rep.get('agreement_lower_bound', 0):.2f}%, "
                     f"{'meets' if rep.get('agreement_lower_bound', 0) >= args.target else 'misses'} the target); "
                     f"wall {wall:.0f} s ({'<=' if wall <= MAX_SECONDS else '>'} {MAX_SECONDS:.0f} s)")
        seed = _seed(result)
        if seed:
            lines.append(f"    seed: every layer at {seed['option']} {seed['size_bytes'] / 1024:.1f} KB; plan "
                         + ", ".join(f"{k} {v}" for k, v in result.plan.items()))
        same = (u or {}).get("same_rule")
        if same:
            lines.append(f"    under tune's rule (verify half): smallest uniform {same['id']} "
                         f"{same['size_bytes'] / 1024:.1f} KB, ratio {result.size_bytes / same['size_bytes']:.3f}")
        ok &= smaller and wall <= MAX_SECONDS
    print()
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
