"""``edgekit golden``: flags -> GoldenConfig -> runtime.golden.run; prints what the kit holds."""
from __future__ import annotations

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


def add_arguments(parser) -> None:
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory (with model/ and check/)")
    parser.add_argument("--count", type=int, default=100, metavar="N", help="samples in the kit (default 100)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="order of the stratified fill (default 0)")


def main(args) -> int:
    from edgekit.runtime import golden

    result = golden.run(golden.GoldenConfig(run=args.run, count=args.count, seed=args.seed))
    print(f"golden kit: {result.directory / 'golden.json'} ({result.count} samples, "
          f"{result.flipped_included} flipped by some variant; {len(result.variants)} variants)")
    return 0
