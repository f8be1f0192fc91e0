"""Fixtures of the diagnose tests.

``diag_run``: one run per session, from the shared ``tiny_run`` model, with
variants converted by the real convert stage from a test-only recipe folder:
``tflite-fp32`` and ``coreml-fp32`` (the shipped recipes), and
``coreml-conv2-2bit`` (a float32 program whose conv2 weights alone are
palettized to 2 bits through the recipe's per-layer ``layers``); plus
``tflite-conv2-damaged``: tflite-fp32 with conv2's kernel rounded to 4 levels
in the flatbuffer (the layer map and everything else unchanged).
"""
from __future__ import annotations

import json
import shutil

import pytest
from support.diagnose import damage_tflite_kernel, two_bit_recipe
from support.runs import copy_model, index_variants

@pytest.fixture(scope="session")
def diag_run(tiny_run, tmp_path_factory):
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.recipe import builtin_dir
    from edgekit.convert.stage import run as convert

    base = tmp_path_factory.mktemp("diagnose")
    recipes = base / "recipes"
    recipes.mkdir()
    for rid in ("tflite-fp32", "coreml-fp32"):
        shutil.copy(builtin_dir() / f"{rid}.json", recipes)
    (recipes / "coreml-conv2-2bit.json").write_text(json.dumps(two_bit_recipe()))
    run_dir = copy_model(tiny_run, base / "run")
    result = convert(ConvertConfig(run_dir=run_dir, recipe_dir=recipes))
    assert result.ok, [v.reason for v in result.failed]
    src, dst = run_dir / "variants" / "tflite-fp32", run_dir / "variants" / "tflite-conv2-damaged"
    shutil.copytree(src, dst)
    man = json.loads((dst / "variant.json").read_text())
    man["id"] = "tflite-conv2-damaged"
    (dst / "variant.json").write_text(json.dumps(man))
    damage_tflite_kernel(dst)
    index_variants(run_dir)
    return run_dir
