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


def test_every_stage_offers_the_protocol_and_its_cli_only_builds_and_shows():
    import importlib

    from edgekit import stage

    for name in stage.STAGES:
        mod = stage.module(name)
        assert callable(mod.run) and callable(mod.is_current), name
        cli_mod = importlib.import_module(cli.COMMANDS[name])
        for attr in ("PARENTS", "add_arguments", "config_from_args", "show", "HELP", "DESCRIPTION"):
            assert hasattr(cli_mod, attr), f"{cli.COMMANDS[name]} lacks {attr}"
        assert not hasattr(cli_mod, "main"), f"{cli.COMMANDS[name]}: the CLI runs stages through the protocol"


def test_shared_flags_are_declared_once_and_seeds_are_separate():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    run = sub.choices["run"]
    options = [o for a in run._actions for o in a.option_strings]
    assert len(options) == len(set(options))
    assert "--seed" in options and "--calibration-seed" in options
    assert options.count("--variants") == 1 and "--overwrite" not in options
    for name in ("train", "convert", "check", "report", "golden"):
        opts = [o for a in sub.choices[name]._actions for o in a.option_strings]
        assert "--run" in opts and "--verbose" in opts, name


def test_help_lists_the_choices_of_model_dataset_and_backend():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    train_help = sub.choices["train"].format_help()
    for word in ("linear", "cnn", "deep", "mobile", "mnist", "fashion-mnist", "folder"):
        assert word in train_help
    check_help = sub.choices["check"].format_help()
    for word in ("litert", "mil-reference"):
        assert word in check_help
    for name in ("train", "check"):
        acts = {a.dest: a for a in sub.choices[name]._actions}
        for dest in {"train": ("model", "dataset"), "check": ("backend",)}[name]:
            assert acts[dest].choices, f"{name} --{dest} has no choices"


def test_no_module_outside_the_run_directory_layer_spells_a_schema_id():
    """A string literal that is a schema id (or starts with one, like an
    f-string's constant part) lives only in rundir.py; prose in a docstring or
    comment that names an id is documentation, not a second spelling."""
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"^edgekit\.[a-z-]+/\d+")
    offenders = []
    for folder in ("apps", "train", "convert", "runtime", "core"):
        for path in (root / folder).rglob("*.py"):
            if path.name == "rundir.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.match(node.value):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
