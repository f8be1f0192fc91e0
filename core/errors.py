"""edgekit's typed errors.

Every error a user can cause by what they hand in is an ``EdgekitError``: the
CLI prints its message as one line and exits with code 2, without a
traceback. Messages name the file or argument first, then the problem:
``data/train-images.gz: truncated: header says 60000 images, file holds 12``.
"""
from __future__ import annotations

import os


class EdgekitError(Exception):
    """Bad input or environment: one line for the user, exit code 2."""

    exit_code = 2

    def __init__(self, where: str | os.PathLike | None, problem: str):
        self.where = str(where) if where is not None else None
        self.problem = problem
        super().__init__(f"{self.where}: {problem}" if self.where else problem)


class DataError(EdgekitError):
    """A dataset file or folder is missing, corrupt or inconsistent."""


class ConfigError(EdgekitError):
    """A flag or config value is out of range or unknown."""


class ArtifactError(EdgekitError):
    """A run-directory artifact (manifest, model file, variant) is missing, corrupt or foreign."""


class ModelFileError(ArtifactError):
    """A model file (.keras, .tflite, .mlpackage) cannot be read safely."""


class ShapeError(EdgekitError):
    """An input does not match the shape or dtype the model declares."""


class OutputError(EdgekitError):
    """An output location cannot be written."""


class StageFailed(Exception):
    """The stage ran but its result is a failure (a variant failed to convert
    or failed its thresholds). Exit code 1; the stage's own summary says why."""

    exit_code = 1


def first_line(e: BaseException, *, with_type: bool = False, limit: int = 300) -> str:
    """The first line of a library exception's message (at most ``limit``
    characters), for a one-line reason; ``with_type`` prefixes the class name."""
    text = str(e).strip()
    line = text.splitlines()[0][:limit] if text else ""
    if not line:
        return type(e).__name__
    return f"{type(e).__name__}: {line}" if with_type else line
