"""The ``edgekit`` command: turns flags into a stage config, runs the stage, prints the result.

Each subcommand has a module (``COMMANDS``) that provides ``HELP`` (one
line), ``DESCRIPTION`` (the --help text), ``PARENTS`` (the shared flags it
takes, from ``edgekit.apps.flags``) and ``add_arguments(parser)`` (its own
flags). A stage's CLI module adds ``config_from_args(args)`` and
``show(result) -> int``; this module runs the stage in between through the
stage protocol (``edgekit.stage``). The other commands (``run``, ``doctor``)
have ``main(args) -> int``. Those modules import cheaply (TensorFlow only
when the stage runs) so ``edgekit --help`` is instant.

Exit codes: 0 success, 1 the stage ran and something failed (a variant did
not convert or missed its thresholds), 2 bad input (one line on stderr, no
traceback), 130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType
from typing import Sequence

import edgekit
from edgekit import quiet, stage
from edgekit.apps import flags
from edgekit.errors import EdgekitError, StageFailed

# subcommand -> module; order is the order `edgekit --help` lists them.
COMMANDS = {
    "run": "edgekit.apps.pipeline",
    "train": "edgekit.train.cli",
    "import": "edgekit.train.import_cli",
    "convert": "edgekit.convert.cli",
    "check": "edgekit.runtime.check_cli",
    "report": "edgekit.runtime.report_cli",
    "golden": "edgekit.runtime.golden_cli",
    "diagnose": "edgekit.runtime.diagnose_cli",
    "tune": "edgekit.runtime.tune_cli",
    "doctor": "edgekit.apps.doctor",
}


class Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as edgekit errors (one line, exit 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise EdgekitError(self.prog, message)


def add_command(sub, name: str, mod: ModuleType) -> argparse.ArgumentParser:
    parents = [make() for make in getattr(mod, "PARENTS", ())] + [flags.verbose()]
    p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                       formatter_class=argparse.RawDescriptionHelpFormatter, parents=parents)
    mod.add_arguments(p)
    p.set_defaults(_command=name, _module=mod)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="edgekit",
        description=(
            "Train an image classifier, convert it into every useful TensorFlow Lite and "
            "Core ML variant, run each in its real runtime against the original, and report "
            "the size/accuracy trade-off.\n\nStart with:  edgekit run --run runs/mnist"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edgekit {edgekit.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, modname in COMMANDS.items():
        add_command(sub, name, importlib.import_module(modname))
    return parser


def run_command(name: str, mod: ModuleType, args: argparse.Namespace) -> int:
    """A stage through the protocol (config, run, show); another command through its main."""
    if name not in stage.ALL:
        return int(mod.main(args) or 0)
    config = mod.config_from_args(args)
    result = stage.module(name).run(config)
    return int(mod.show(result) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (tests call this directly)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "_module", None):
            parser.print_help()
            return 2
        if getattr(args, "verbose", False):
            quiet.set_verbose(True)
        return run_command(args._command, args._module, args)
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
