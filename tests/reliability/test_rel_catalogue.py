"""The bad-input catalogue (reliability_cases.CASES) through ``edgekit.apps.cli.main``.

Every case: exit code 2, one stderr line ``edgekit: error: <where>: <problem>``
naming the file or flag, no traceback, and the case directory exactly as it
was before (paths, sizes, sha256, mtimes). docs/RELIABILITY.md lists exactly
these cases.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.cli import error_line, run_main
from support.trees import assert_unchanged, snapshot

# the catalogue is this folder's data, imported relatively: only the
# reliability tests can see it (pytest's importlib mode makes this folder a package)
from .reliability_cases import CASES, Ctx, markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"


def test_catalogue_is_large_and_covers_every_stage():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.stage for c in CASES} == {"data", "train", "convert", "check", "report", "diagnose", "import", "tune"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, rel_base, case_root, monkeypatch, capsys):
    ctx = Ctx(root=case_root, base=rel_base, monkeypatch=monkeypatch)
    argv = case.setup(ctx)
    before = snapshot(case_root)
    code, out, err = run_main(argv, capsys, nobody=case.nobody)
    monkeypatch.undo()
    line = error_line(code, out, err)
    expected = case.expect if isinstance(case.expect, tuple) else (case.expect,)
    assert any(e.lower() in line.lower() for e in expected), line
    if case.where is not None:
        # the location comes first: "<where>: <problem>"
        where_part = line[len("edgekit: error: "):].split(": ", 1)[0]
        assert case.where.lower() in where_part.lower() or case.where.lower() in line.lower(), line
    assert_unchanged(before, case_root)
    if case.post:
        case.post(ctx)


def _doc_ids() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.M)


def test_docs_table_matches_the_cases():
    """Every case id in the code is in docs/RELIABILITY.md and vice versa, in
    the same order and with the same text (regenerate with
    ``PYTHONPATH=tests python tests/reliability/reliability_cases.py``)."""
    assert _doc_ids() == [c.id for c in CASES]
    assert markdown_table() in DOC.read_text(encoding="utf-8")
