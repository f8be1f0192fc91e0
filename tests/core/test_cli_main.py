"""The top-level CLI: every subcommand is listed, --help is cheap, bad flags exit 2."""
from __future__ import annotations

import subprocess
import sys

from edgekit.apps import cli


def test_every_subcommand_is_registered_and_teaches():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == list(cli.COMMANDS)
    for name, p in sub.choices.items():
        assert p.description and len(p.description) > 40, name


def test_help_does_not_import_tensorflow():
    code = "import sys; from edgekit.apps import cli; cli.build_parser(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_unknown_subcommand_and_flag_are_one_line_exit_2(capsys):
    assert cli.main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice" in err[0]
    assert cli.main(["train", "--epochs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--epochs" in err[0]


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
