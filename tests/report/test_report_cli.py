"""`edgekit report` / `edgekit golden` on bad input: one line naming the file, exit 2, nothing written."""
from __future__ import annotations

import json

import pytest

from edgekit.apps import cli
from edgekit.rundir import CHECK_SCHEMA


def _next_major(schema: str) -> str:
    name, major = schema.rsplit("/", 1)
    return f"{name}/{int(major) + 1}"


@pytest.mark.parametrize("cmd", ["report", "golden"])
def test_missing_run_directory(cmd, tmp_path, capsys):
    assert cli.main([cmd, "--run", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run directory not found" in err


@pytest.mark.parametrize("cmd", ["report", "golden"])
def test_run_without_check_results(cmd, tmp_path, capsys):
    assert cli.main([cmd, "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "check/results.json" in err and "not found" in err
    assert not (tmp_path / cmd).exists() and not (tmp_path / "report").exists()


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"schema": "edgekit.model/1"}), f"not an edgekit manifest of kind '{CHECK_SCHEMA}'"),
    (json.dumps({"schema": _next_major(CHECK_SCHEMA), "variants": {}}), "is not supported by this edgekit"),
    (json.dumps({"schema": CHECK_SCHEMA, "variants": []}), "'variants' should be dict"),
])
def test_corrupt_or_foreign_results(content, message, tmp_path, capsys):
    (tmp_path / "check").mkdir()
    (tmp_path / "check" / "results.json").write_text(content)
    assert cli.main(["report", "--run", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("argv, flag", [(["golden", "--count", "0"], "--count"),
                                         (["report", "--gallery-total", "-1"], "--gallery-total")])
def test_bad_numbers(argv, flag, tmp_path, capsys):
    assert cli.main([*argv, "--run", str(tmp_path)]) == 2
    assert flag in capsys.readouterr().err
