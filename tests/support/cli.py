"""The exit-2 runner: bad input through ``edgekit.apps.cli.main`` gives exit
code 2, exactly one stderr line ``edgekit: error: <where>: <problem>``, no
traceback, and (when asked) leaves a directory tree exactly as it was."""
from __future__ import annotations

from pathlib import Path

from support.trees import as_nobody, assert_unchanged, snapshot

PREFIX = "edgekit: error: "


def run_main(argv: list[str], capsys, *, nobody: bool = False) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``edgekit.apps.cli.main(argv)``; with
    ``nobody``, run as the unprivileged user (see ``trees.as_nobody``)."""
    from edgekit.apps import cli

    capsys.readouterr()
    if nobody:
        with as_nobody():
            code = cli.main(argv)
    else:
        code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def error_line(code: int, out: str, err: str) -> str:
    """Assert the exit-2 contract on a finished call; the one error line."""
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}; stderr: {err[-2000:]}"
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert "Traceback" not in err + out, err
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0]


def exit_2(capsys, argv: list[str], *needles: str, unchanged: Path | None = None) -> str:
    """Run ``edgekit <argv>``, assert exit 2 with one error line holding every
    needle, and (with ``unchanged``) that the tree there is exactly as before."""
    before = snapshot(unchanged) if unchanged is not None else None
    line = error_line(*run_main(argv, capsys))
    for needle in needles:
        assert needle in line, line
    if unchanged is not None:
        assert_unchanged(before, unchanged)
    return line
