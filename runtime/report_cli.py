"""``edgekit report``: flags -> ReportConfig -> runtime.report.run; prints where
the report is and the recommendation per platform."""
from __future__ import annotations

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


def add_arguments(parser) -> None:
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory (with model/ and check/)")
    parser.add_argument("--gallery-per-variant", type=int, default=8, metavar="N",
                        help="flipped test images shown per variant (default 8)")
    parser.add_argument("--gallery-total", type=int, default=64, metavar="N",
                        help="flipped test images shown in all (default 64)")


def main(args) -> int:
    from edgekit.runtime import report

    result = report.run(report.ReportConfig(run=args.run, gallery_per_variant=args.gallery_per_variant,
                                            gallery_total=args.gallery_total))
    print(f"report: {result.html}")
    print(result.summary)
    return 0
