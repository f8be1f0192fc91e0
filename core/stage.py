"""The stage protocol: what every stage module offers, and the registry of stages.

A stage is a module with

    run(config) -> Result          do the work; bad input raises an EdgekitError
                                   before anything is written
    is_current(run_dir) -> bool    its artifacts exist, are intact (files hash as
                                   their manifests record) and were made from the
                                   current upstream artifacts

and a frozen, validated config dataclass (``TrainConfig``, ``ImportConfig``, ``ConvertConfig``,
``CheckConfig``, ``ReportConfig``, ``GoldenConfig``, ``DiagnoseConfig``; each has
``run_dir``). ``STAGES`` are ``edgekit run``'s, in order; ``ON_REQUEST`` stages
(``edgekit diagnose``) run only when asked, through the same protocol.
Its ``Result`` satisfies ``StageResult``. Each stage's CLI module (in the
stage's folder) has ``add_arguments(parser)`` (its own flags),
``config_from_args(args) -> Config`` and ``show(result) -> int`` (prints the
result, returns the exit code); it never does the work itself. ``edgekit
run`` drives the same protocol (edgekit.apps.pipeline): ``config_from_args``,
``run``, ``show``, never a CLI ``main``.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Protocol, runtime_checkable

# stage name -> module implementing the protocol, in pipeline order.
STAGES = {
    "train": "edgekit.train.training",
    "import": "edgekit.train.importer",     # instead of train: a user's own model (edgekit run --model PATH)
    "convert": "edgekit.convert.stage",
    "check": "edgekit.runtime.check",
    "report": "edgekit.runtime.report",
    "golden": "edgekit.runtime.golden",
}
# Stages a person runs on request (one variant, one platform), not part of
# `edgekit run`'s order; same protocol.
ON_REQUEST = {
    "diagnose": "edgekit.runtime.diagnose",
    "tune": "edgekit.runtime.tune",
}
ALL = {**STAGES, **ON_REQUEST}

# Processes a stage may use for independent work (convert's fine-tunes, check's
# LiteRT predictions; ``--jobs``): this machine's cores, at most 2 (the work
# splits in two), never an input of a stage's result.
DEFAULT_JOBS = max(1, min(2, os.cpu_count() or 1))


def check_jobs(jobs) -> None:
    from edgekit.errors import ConfigError

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError("--jobs", f"must be an integer >= 1, got {jobs!r}")


@runtime_checkable
class StageResult(Protocol):
    @property
    def ok(self) -> bool:
        """False when the stage ran but something in it failed (exit code 1)."""

    def failure(self) -> str | None:
        """One line saying what failed, or None when ``ok``."""


def module(stage: str) -> ModuleType:
    """The module of ``stage`` (imported on first use: importing it may load TensorFlow)."""
    return importlib.import_module(ALL[stage])


def is_current(stage: str, run_dir: Path) -> bool:
    return bool(module(stage).is_current(Path(run_dir)))
