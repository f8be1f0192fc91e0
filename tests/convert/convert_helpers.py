"""Helpers shared by the conversion tests (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import shutil
from pathlib import Path


def copy_model(src_run: Path, dst_run: Path) -> Path:
    """A run dir holding a copy of ``src_run/model`` only, so conversions here never touch shared runs."""
    dst_run.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src_run / "model", dst_run / "model")
    return dst_run
