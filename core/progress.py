"""Progress bars for long work, on stderr, quiet when not a terminal.

``EDGEKIT_PROGRESS=0`` turns them off, ``=1`` forces them on (e.g. in CI logs).
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def enabled() -> bool:
    flag = os.environ.get("EDGEKIT_PROGRESS")
    if flag is not None:
        return flag not in ("0", "", "false", "no")
    return sys.stderr.isatty()


def bar(iterable: Iterable[T] | None = None, *, desc: str, total: int | None = None, unit: str = "it"):
    """A tqdm bar with edgekit's settings (stderr, dynamic width, no leftovers)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr,
                disable=not enabled(), dynamic_ncols=True, leave=False)
