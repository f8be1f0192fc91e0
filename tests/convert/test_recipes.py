"""Recipes are validated data: every shipped file validates, every kind of
mistake is a ConfigError naming the file and the field (no TensorFlow needed)."""
from __future__ import annotations

import copy
import json

import pytest

from edgekit.convert import recipe as recipes
from edgekit.convert.config import ConvertConfig
from edgekit.errors import ConfigError

SHIPPED = recipes.known_ids()


def test_shipped_matrix_is_complete():
    assert set(SHIPPED) >= {
        "tflite-fp32", "tflite-fp16", "tflite-dynamic-int8", "tflite-int8", "tflite-uint8", "tflite-int16x8",
        "tflite-qat-int8", "tflite-pruned-int8", "tflite-clustered-int8",
        "coreml-fp32", "coreml-fp16", "coreml-w8", "coreml-pal6", "coreml-pal4", "coreml-pal2", "coreml-pruned"}


@pytest.mark.parametrize("rid", SHIPPED)
def test_shipped_recipe_validates(rid):
    r = recipes.load(rid)
    assert r.id == rid and r.data["schema"] == recipes.SCHEMA
    assert r.platform == {"tflite": "android", "coreml": "ios"}[r.format]


def test_one_float_reference_per_format():
    refs = [r.id for r in recipes.load_all() if r.reference is None]
    assert sorted(refs) == ["coreml-fp32", "tflite-fp32"]
    assert {r.reference for r in recipes.load_all() if r.reference} == {"coreml-fp32", "tflite-fp32"}
    assert all(r.reference in (None, f"{r.format}-fp32") for r in recipes.load_all())


def _kind_by_rule(r) -> str:
    """What the shipped recipes' kinds were inferred as before recipes declared them."""
    if (r.finetune or {}).get("method") in ("prune", "cluster"):
        return "low-bit"
    if r.format == "tflite":
        if "float16" in r.tflite["supported_types"]:
            return "float16"
        return "quantized" if r.tflite["optimizations"] else "float32"
    comp = r.coreml["compression"]
    if comp is None:
        return r.coreml["compute_precision"]
    return "quantized" if comp["method"] == "linear" or comp.get("nbits", 0) >= 6 else "low-bit"


@pytest.mark.parametrize("rid", SHIPPED)
def test_shipped_recipe_declares_the_kind_it_always_had(rid):
    from edgekit.rundir import Kind

    r = recipes.load(rid)
    assert isinstance(r.kind, Kind) and r.kind.value == r.data["kind"] == _kind_by_rule(r)


def _mutations():
    """(name, base id, mutate(data), field named in the message)."""
    def set_(path, value):
        def f(d):
            *head, last = path
            for k in head:
                d = d[k]
            d[last] = value
        return f

    def delete(path):
        def f(d):
            *head, last = path
            for k in head:
                d = d[k]
            del d[last]
        return f

    return [
        ("wrong schema", "tflite-fp32", set_(["schema"], "edgekit.recipe/1"), "schema"),
        ("missing kind", "tflite-fp32", delete(["kind"]), "kind"),
        ("bad kind", "tflite-int8", set_(["kind"], "int8"), "kind"),
        ("kind not a string", "tflite-int8", set_(["kind"], ["quantized"]), "kind"),
        ("missing reference", "tflite-int8", delete(["reference"]), "reference"),
        ("reference not an id", "tflite-int8", set_(["reference"], "TFLite FP32"), "reference"),
        ("reference is itself", "tflite-int8", set_(["reference"], "tflite-int8"), "reference"),
        ("unknown top field", "tflite-fp32", set_(["optimisations"], []), "optimisations"),
        ("missing format", "tflite-fp32", delete(["format"]), "format"),
        ("bad format", "tflite-fp32", set_(["format"], "onnx"), "format"),
        ("id differs from file", "tflite-fp32", set_(["id"], "tflite-fp64"), "id"),
        ("unknown optimization", "tflite-int8", set_(["tflite", "optimizations"], ["FASTEST"]), "tflite.optimizations[0]"),
        ("unknown op set", "tflite-int8", set_(["tflite", "ops"], ["TFLITE_INT4"]), "tflite.ops[0]"),
        ("bad io type", "tflite-int8", set_(["tflite", "inference_input_type"], "int4"), "tflite.inference_input_type"),
        ("int8 io without calibration", "tflite-int8", set_(["tflite", "representative"], False), "tflite.inference_input_type"),
        ("representative not bool", "tflite-int8", set_(["tflite", "representative"], "yes"), "tflite.representative"),
        ("coreml section in tflite", "tflite-fp32", set_(["coreml"], {}), "coreml"),
        ("bad precision", "coreml-fp32", set_(["coreml", "compute_precision"], "bfloat16"), "coreml.compute_precision"),
        ("palette bits", "coreml-pal4", set_(["coreml", "compression", "nbits"], 5), "coreml.compression.nbits"),
        ("compression on iOS15", "coreml-pal4", set_(["coreml", "minimum_deployment_target"], "iOS15"), "coreml.minimum_deployment_target"),
        ("sparsity 1", "coreml-pruned", set_(["coreml", "compression", "target_sparsity"], 1.0), "coreml.compression.target_sparsity"),
        ("compression method", "coreml-w8", set_(["coreml", "compression", "method"], "zip"), "coreml.compression.method"),
        ("finetune on coreml", "coreml-fp32", set_(["finetune"], {"method": "qat"}), "finetune"),
        ("finetune method", "tflite-qat-int8", set_(["finetune", "method"], "distill"), "finetune.method"),
        ("epochs 0", "tflite-qat-int8", set_(["finetune", "epochs"], 0), "finetune.epochs"),
        ("epochs bool", "tflite-qat-int8", set_(["finetune", "epochs"], True), "finetune.epochs"),
        ("clusters 1", "tflite-clustered-int8", set_(["finetune", "clusters"], 1), "finetune.clusters"),
        ("cluster init", "tflite-clustered-int8", set_(["finetune", "init"], "best"), "finetune.init"),
        ("prune schedule", "tflite-pruned-int8", set_(["finetune", "schedule"], "cubic"), "finetune.schedule"),
        ("missing prune target", "tflite-pruned-int8", delete(["finetune", "target_sparsity"]), "finetune.target_sparsity"),
    ]


@pytest.mark.parametrize("name,base,mutate,field", _mutations(), ids=[m[0] for m in _mutations()])
def test_invalid_recipe_names_file_and_field(tmp_path, name, base, mutate, field):
    data = copy.deepcopy(recipes.load(base).data)
    mutate(data)
    path = tmp_path / f"{base}.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as e:
        recipes.parse(path)
    assert e.value.where == str(path)
    assert f"recipe field {field!r}" in e.value.problem


def test_not_json_is_config_error(tmp_path):
    path = tmp_path / "tflite-x.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        recipes.parse(path)


def test_new_variant_is_a_new_file(tmp_path):
    data = copy.deepcopy(recipes.load("coreml-pal4").data)
    data.update(id="coreml-pal3", description="3-bit palettized weights")
    data["coreml"]["compression"]["nbits"] = 3
    data["coreml"]["minimum_deployment_target"] = "iOS18"     # 3-bit palettes are iOS18 ops
    (tmp_path / "coreml-pal3.json").write_text(json.dumps(data))
    cfg = ConvertConfig(run_dir=tmp_path / "run", variants="all", recipe_dir=tmp_path)
    assert [r.id for r in cfg.recipes()] == ["coreml-pal3"]
    assert cfg.recipes()[0].coreml["compression"]["nbits"] == 3


@pytest.mark.parametrize("kwargs,flag", [
    (dict(variants=("tflite-int9",)), "--variants"),
    (dict(variants=()), "--variants"),
    (dict(variants=("all", "tflite-fp32")), "--variants"),
    (dict(variants=("tflite-fp32", "tflite-fp32")), "--variants"),
    (dict(calibration_size=0), "--calibration-size"),
    (dict(finetune_limit=0), "--finetune-limit"),
])
def test_config_refuses(tmp_path, kwargs, flag):
    with pytest.raises(ConfigError) as e:
        ConvertConfig(run_dir=tmp_path, **kwargs)
    assert e.value.where == flag


def test_unknown_id_lists_known():
    with pytest.raises(ConfigError) as e:
        ConvertConfig(run_dir=".", variants=("tflite-int9",))
    assert "tflite-int8" in e.value.problem and "coreml-pal4" in e.value.problem


def _json_values():
    from hypothesis import strategies as st

    return st.recursive(st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(-2, 2, allow_nan=False)
                        | st.sampled_from(["", "int8", "float16", "DEFAULT", "kmeans", "iOS15", "qat", "x"]),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                        max_leaves=6)


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, prefix + (k,))


def test_any_mutation_is_valid_or_one_config_error(tmp_path_factory):
    """Fuzz: set any field of any shipped recipe to any JSON value; the
    validator accepts it or raises ConfigError naming the file, never crashes."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    shipped = {r.id: r.data for r in recipes.load_all()}
    cases = [(rid, p) for rid, d in shipped.items() for p in _paths(d) if p]
    folder = tmp_path_factory.mktemp("fuzz")

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.sampled_from(cases), _json_values())
    def check(case, value):
        rid, path = case
        data = copy.deepcopy(shipped[rid])
        node = data
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        f = folder / f"{rid}.json"
        f.write_text(json.dumps(data))
        try:
            r = recipes.parse(f)
        except ConfigError as e:
            assert e.where == str(f) and e.problem.startswith("recipe field ")
        else:
            assert r.id == rid

    check()


def test_cli_module_and_validation_import_without_tensorflow():
    """`edgekit --help` stays instant: the convert CLI, its config and the
    recipe validator must not pull in TensorFlow or coremltools."""
    import subprocess
    import sys

    code = ("import sys, edgekit.convert.cli, edgekit.convert.config, edgekit.convert.recipe; "
            "from edgekit.convert.config import ConvertConfig; ConvertConfig(run_dir='.'); "
            "heavy = [m for m in ('tensorflow', 'coremltools', 'tf_keras') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
