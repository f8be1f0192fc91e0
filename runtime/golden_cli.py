"""``edgekit golden``: flags -> GoldenConfig (config_from_args); the golden
stage's GoldenResult -> what the kit holds (show). The work is
edgekit.runtime.golden.run."""
from __future__ import annotations

import argparse

from edgekit.apps import flags

HELP = "write the on-device parity kit (golden/) of a checked run"
DESCRIPTION = """\
Write RUN/golden/: test inputs (default 100: every image a variant flipped,
up to half the kit, then a class-stratified fill) as PNG, as .npy and as a
plain JSON array, with the original model's probabilities and each
variant's expected outputs and tolerances, in golden.json (schema
edgekit.golden/1, documented in docs/GOLDEN.md). An app test on a phone
loads the kit, runs the shipped model on each PNG and checks the rules
(apps/ios/ has an XCTest that does).

Needs RUN/check/ (edgekit check). An existing RUN/golden/ is replaced.

Example:
  edgekit golden --run runs/mnist
  edgekit golden --run runs/mnist --count 200
"""


PARENTS = [flags.run_dir, flags.recommendation, flags.max_accuracy_drop]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """golden's own flags (``--run`` and the report's recommendation flags, which
    decide the kit's ``recommended``, come from ``PARENTS``)."""
    parser.add_argument("--count", type=int, default=100, metavar="N", help="samples in the kit (default 100)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="order of the stratified fill (default 0)")


def config_from_args(args: argparse.Namespace):
    from edgekit.runtime.golden import GoldenConfig
    from edgekit.runtime.report.policy import Policy
    from edgekit.runtime.report_cli import policy_kwargs

    return GoldenConfig(run_dir=args.run, count=args.count, seed=args.seed, policy=Policy(**policy_kwargs(args)))


def show(result) -> int:
    """Where the kit is and what it holds (a ``GoldenResult``); the exit code."""
    print(f"golden kit: {result.directory / 'golden.json'} ({result.count} samples, "
          f"{result.flipped_included} flipped by some variant; {len(result.variants)} variants)")
    return 0 if result.ok else 1
