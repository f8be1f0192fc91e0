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
the confusion matrix of the recommended variant, "Where the error comes
from", flipped test images, the training plots and the environment),
report.md and report.json (schema edgekit.report/2), and the charts as PNG
files.

"Where the error comes from": each variant whose check failed or is
inconclusive, and each recommended one, is diagnosed as `edgekit diagnose`
does (per Keras layer: the accumulated and the local error, the first layer
where the error jumps, a chart), on the first --diagnose-limit test images.
A current RUN/diagnose/<id>.json (same variant and model, at least that
many images) is reused; the others are written there. One status line per
diagnosed variant. --diagnose-limit 0 leaves the section out.

The recommendation per platform (iOS / Core ML, Android / TFLite) is the
smallest variant whose check passed, whose accuracy did not drop
significantly (exact McNemar, Holm-corrected across the checked variants)
and whose 95% agreement lower bound is at least --target-agreement (99.5%).
--max-size KB picks the most faithful such variant within KB instead;
--max-accuracy-drop PP also asks the 95% interval of the accuracy change to
stay above -PP. Every smaller variant is listed with the reason it was
passed over; when none qualifies the report says so and names the closest. Core ML results measured by edgekit's numpy interpreter are labelled
`mil-reference`, never "Core ML".

Needs RUN/check/ (edgekit check) and RUN/model/ (edgekit train). The report
is derived data: an existing RUN/report/ is replaced.

Example:
  edgekit report --run runs/mnist
  edgekit report --run runs/mnist --max-size 200 --target-agreement 0.998
  edgekit report --run runs/mnist --diagnose-limit 0      # no per-layer section (fastest)
  open runs/mnist/report/report.html
"""


PARENTS = [flags.run_dir, flags.recommendation, flags.max_accuracy_drop, flags.diagnose_limit]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """report's own flags (``--run``, the recommendation flags and ``--diagnose-limit`` come from ``PARENTS``)."""
    parser.add_argument("--gallery-per-variant", type=int, default=8, metavar="N",
                        help="flipped test images shown per variant (default 8)")
    parser.add_argument("--gallery-total", type=int, default=64, metavar="N",
                        help="flipped test images shown in all (default 64)")


def policy_kwargs(args: argparse.Namespace) -> dict:
    """The recommendation flags as ``Policy`` (and ReportConfig) fields; golden's
    kit recommends by the same policy."""
    from edgekit.runtime.report import DEFAULT_TARGET_AGREEMENT

    target = args.target_agreement
    return {"target_agreement": DEFAULT_TARGET_AGREEMENT if target is None else target,
            "max_size_kb": args.max_size, "max_accuracy_drop": args.max_accuracy_drop}


def shared_kwargs(args: argparse.Namespace) -> dict:
    """The flags report shares with ``edgekit run`` (the recommendation, --diagnose-limit)
    as ReportConfig fields."""
    return {**policy_kwargs(args), "diagnose_limit": args.diagnose_limit}


def config_from_args(args: argparse.Namespace):
    from edgekit.runtime.report import ReportConfig

    return ReportConfig(run_dir=args.run, gallery_per_variant=args.gallery_per_variant,
                        gallery_total=args.gallery_total, **shared_kwargs(args))


def show(result) -> int:
    """Where the report is and the recommendation lines (a ``ReportResult``); the exit code."""
    print(f"report: {result.html}")
    print(result.summary)
    return 0 if result.ok else 1
