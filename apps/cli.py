"""The ``edgekit`` command: turns flags into a stage config and prints the result.

Each subcommand lives with its stage in a module that provides ``HELP`` (one
line), ``DESCRIPTION`` (the --help text), ``add_arguments(parser)`` and
``main(args) -> int``. Those modules must import cheaply (TensorFlow only
inside ``main``) so ``edgekit --help`` is instant.

Exit codes: 0 success, 1 the stage ran and something failed (a variant did
not convert or missed its thresholds), 2 bad input (one line on stderr, no
traceback), 130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

import edgekit
from edgekit.errors import EdgekitError, StageFailed

# subcommand -> module; order is the order `edgekit --help` lists them.
COMMANDS = {
    "run": "edgekit.apps.pipeline",
    "train": "edgekit.train.cli",
    "convert": "edgekit.convert.cli",
    "check": "edgekit.runtime.check_cli",
    "report": "edgekit.runtime.report_cli",
    "golden": "edgekit.runtime.golden_cli",
    "doctor": "edgekit.apps.doctor",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as edgekit errors (one line, exit 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise EdgekitError(self.prog, message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgekit",
        description=(
            "Train an image classifier, convert it into every useful TensorFlow Lite and "
            "Core ML variant, run each in its real runtime against the original, and report "
            "the size/accuracy trade-off.\n\nStart with:  edgekit run --run runs/mnist"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edgekit {edgekit.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, modname in COMMANDS.items():
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (tests call this directly)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "_main", None):
            parser.print_help()
            return 2
        return int(args._main(args) or 0)
    except EdgekitError as e:
        print(f"edgekit: error: {e}", file=sys.stderr)
        return e.exit_code
    except StageFailed as e:
        if str(e):
            print(f"edgekit: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgekit: interrupted; completed artifacts are intact, partial ones were removed", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
