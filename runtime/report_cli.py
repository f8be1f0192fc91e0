"""``edgekit report``: flags -> ReportConfig (config_from_args); the report
stage's ReportResult -> where the report is and the recommendation per
platform (show). The work is edgekit.runtime.report.run."""
from __future__ import annotations

import argparse

from edgekit.apps import flags

HELP = "write the size/accuracy trade-off report (HTML, Markdown, JSON) of a checked run"
DESCRIPTION = """\
Write RUN/report/ from the check stage's results: report.html (one
self-contained page: the variant table, the recommendation per platform,
size-vs-accuracy chart with the Pareto front, agreement and latency charts,
the confusion matrix of the recommended variant, flipped test images, the
training plots and the environment), report.md and report.json
(schema edgekit.report/1), and the charts as PNG files.

The recommendation per platform (iOS / Core ML, Android / TFLite) is the
smallest variant whose check passed; the report says so plainly when none
did. Core ML results measured by edgekit's numpy interpreter are labelled
`mil-reference`, never "Core ML".

Needs RUN/check/ (edgekit check) and RUN/model/ (edgekit train). The report
is derived data: an existing RUN/report/ is replaced.

Example:
  edgekit report --run runs/mnist
  open runs/mnist/report/report.html
"""


PARENTS = [flags.run_dir]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """report's own flags (``--run`` comes from ``PARENTS``)."""
    parser.add_argument("--gallery-per-variant", type=int, default=8, metavar="N",
                        help="flipped test images shown per variant (default 8)")
    parser.add_argument("--gallery-total", type=int, default=64, metavar="N",
                        help="flipped test images shown in all (default 64)")


def config_from_args(args: argparse.Namespace):
    from edgekit.runtime.report import ReportConfig

    return ReportConfig(run_dir=args.run, gallery_per_variant=args.gallery_per_variant,
                        gallery_total=args.gallery_total)


def show(result) -> int:
    """Where the report is and the recommendation lines (a ``ReportResult``); the exit code."""
    print(f"report: {result.html}")
    print(result.summary)
    return 0 if result.ok else 1
