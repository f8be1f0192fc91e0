"""diagnose on the stage protocol (an on-request stage: not in `edgekit run`'s
order), its CLI module, and the per-layer Core ML recipe it is tested with."""
from __future__ import annotations

import importlib
import json

import pytest
from support.diagnose import TWO_BIT, two_bit_recipe


def test_diagnose_is_an_on_request_stage_with_the_protocol():
    from edgekit import stage
    from edgekit.apps import cli

    assert "diagnose" in stage.ON_REQUEST and "diagnose" not in stage.STAGES
    mod = stage.module("diagnose")
    assert callable(mod.run) and callable(mod.is_current)
    cli_mod = importlib.import_module(cli.COMMANDS["diagnose"])
    for attr in ("PARENTS", "add_arguments", "config_from_args", "show", "HELP", "DESCRIPTION"):
        assert hasattr(cli_mod, attr)
    assert not hasattr(cli_mod, "main")


def test_help_explains_both_errors(capsys):
    from edgekit.apps import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["diagnose", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "accumulated" in out and "local" in out and "--variant" in out and "--limit" in out


def test_config_is_validated_once():
    from edgekit.errors import ConfigError
    from edgekit.runtime.diagnose import DEFAULT_LIMIT, DiagnoseConfig

    assert DiagnoseConfig(run_dir="r", variant="coreml-pal2").limit == DEFAULT_LIMIT
    for bad in ({"variant": ""}, {"variant": "a/b"}, {"variant": "x", "limit": 0}, {"variant": "x", "limit": True}):
        with pytest.raises(ConfigError):
            DiagnoseConfig(run_dir="r", **bad)


def _write(tmp_path, data):
    p = tmp_path / f"{data['id']}.json"
    p.write_text(json.dumps(data))
    return p


def test_per_layer_core_ml_recipe_validates_each_layer_like_the_global_compression(tmp_path):
    from edgekit.convert import recipe
    from edgekit.errors import ConfigError

    ok = recipe.parse(_write(tmp_path, two_bit_recipe()))
    assert ok.coreml["layers"] == {"conv2": TWO_BIT}
    mixed = two_bit_recipe("coreml-mixed")
    mixed["coreml"]["layers"] = {"conv2": TWO_BIT, "features": None}
    assert recipe.parse(_write(tmp_path, mixed)).coreml["layers"]["features"] is None
    bad = two_bit_recipe("coreml-bad")
    bad["coreml"]["layers"]["conv2"] = {**TWO_BIT, "nbits": 5}
    with pytest.raises(ConfigError, match=r"coreml\.layers\.conv2\.nbits"):
        recipe.parse(_write(tmp_path, bad))
    empty = two_bit_recipe("coreml-empty")
    empty["coreml"]["layers"] = {}
    with pytest.raises(ConfigError, match=r"coreml\.layers"):
        recipe.parse(_write(tmp_path, empty))
    old = two_bit_recipe("coreml-old")
    old["coreml"]["minimum_deployment_target"] = "iOS15"
    with pytest.raises(ConfigError, match="iOS16"):
        recipe.parse(_write(tmp_path, old))


def test_a_per_layer_recipe_naming_a_layer_without_weights_fails_that_variant_only(tiny_run, tmp_path):
    from support.runs import copy_model

    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run as convert

    recipes = tmp_path / "recipes"
    recipes.mkdir()
    _write(recipes, two_bit_recipe("coreml-pool", layer="pool1"))
    result = convert(ConvertConfig(run_dir=copy_model(tiny_run, tmp_path / "run"), recipe_dir=recipes))
    assert not result.ok
    assert "'pool1', which has no weight op" in result.failed[0].reason
