"""edgekit tune on a tiny checked run: the plan it finds meets the target on
the verify half, becomes a recipe file and a converted variant any stage can
read, and an unreachable target says so and exits 1."""
from __future__ import annotations

import dataclasses
import json

import pytest

from edgekit import artifacts
from edgekit.rundir import TUNE_SCHEMA, RunDir, VariantIndex

LIMIT = 400          # test images: halves of 200


def _tune(run, platform, target, **kw):
    from edgekit.runtime import tune

    return tune.run(tune.TuneConfig(run_dir=run, platform=platform, target_agreement=target, limit=LIMIT, **kw))


def _check_result(run, result, fmt):
    from edgekit.convert import recipe
    from edgekit.runtime import metrics

    rd = RunDir(run)
    assert result.reached and result.ok and result.failure() is None
    # every kept candidate met the target on the verify half; rejected ones did not
    for c in result.candidates:
        if c.passed:
            assert c.images == LIMIT // 2 and metrics.wilson_interval(round(c.agreement * c.images), c.images)[0] \
                >= result.target
    # the recipe is a valid recipe file whose layers are the plan
    r = recipe.parse(rd.tuned_recipe(result.variant))
    assert r.id == result.variant and r.format == fmt and set(r.data[fmt]["layers"]) == set(result.plan)
    # the variant is converted and listed like any other
    index = VariantIndex.read(rd)
    v = index.variants(None, [result.variant])[0]
    assert v.file_intact() and v.size_bytes == result.size_bytes
    assert v.manifest["recipe"][fmt]["layers"] == r.data[fmt]["layers"]
    assert "layers" in v.manifest and "error" not in v.manifest["layers"]
    data = artifacts.read_manifest(rd.tune_json(result.variant), TUNE_SCHEMA)
    assert data["reached"] and data["plan"] == result.plan and data["report"]["images"] == LIMIT // 2
    assert data["split"]["verify_images"] + data["split"]["report_images"] == LIMIT
    return v


def _check_seed(run, result, options):
    """The search starts from the smallest uniform plan that passes and never ends above it."""
    data = artifacts.read_manifest(RunDir(run).tune_json(result.variant), TUNE_SCHEMA)
    seed = data["seed"]
    order = list(reversed(options))                   # smallest option first
    uniform = [c for c in result.candidates if len(set(c.plan.values())) == 1]
    first = result.candidates[:order.index(seed["option"]) + 1]
    assert [c.plan[next(iter(c.plan))] for c in first] == order[:len(first)]   # tried in that order
    assert all(not c.passed for c in first[:-1]) and first[-1].passed and first[-1] in uniform
    assert seed["size_bytes"] == first[-1].size_bytes
    kept = [c for c in result.candidates if c.plan == result.plan]
    assert kept and kept[-1].passed and kept[-1].size_bytes <= seed["size_bytes"]
    assert seed["lowered"] == [n for n, o in result.plan.items() if o != seed["option"]]
    plans = [tuple(sorted(c.plan.items())) for c in result.candidates]
    assert len(set(plans)) == len(plans)              # no plan is measured twice across the sweeps
    return seed


def test_android_plan_is_smaller_than_float_and_goes_through_convert(tune_run):
    from edgekit.runtime.tune import TFLITE_OPTIONS

    result = _tune(tune_run, "android", 0.98)
    v = _check_result(tune_run, result, "tflite")
    fp32 = VariantIndex.read(tune_run).variants(None, ["tflite-fp32"])[0]
    assert v.size_bytes < 0.5 * fp32.size_bytes       # the large dense layer at least went to integers
    assert result.plan["features"] in set(TFLITE_OPTIONS) - {"float32"}
    seed = _check_seed(tune_run, result, list(TFLITE_OPTIONS))
    assert seed["option"] != "float32"


@pytest.mark.slow   # about a minute: Core ML conversion and compression per candidate
def test_ios_plan_meets_the_target_and_check_reads_the_variant(tune_run):
    from edgekit.runtime import check

    from edgekit.convert import recipe
    from edgekit.runtime.tune import COREML_OPTIONS, IOS18_OPTIONS

    result = _tune(tune_run, "ios", 0.98)
    v = _check_result(tune_run, result, "coreml")
    assert any(opt != "float16" for opt in result.plan.values())
    _check_seed(tune_run, result, list(COREML_OPTIONS))
    # the program is iOS18 only when its plan needs an iOS18 op
    target = recipe.parse(RunDir(tune_run).tuned_recipe(result.variant)).coreml["minimum_deployment_target"]
    assert target == ("iOS18" if IOS18_OPTIONS & set(result.plan.values()) else "iOS16")
    checked = check.run(check.CheckConfig(run_dir=tune_run, variants=(v.id,), limit=100, latency_runs=2,
                                          warmup_runs=0))
    assert checked.variants[0].id == v.id and checked.variants[0].backend == "mil-reference"


def test_unreachable_target_says_so_exits_1_and_writes_no_variant(tune_run, capsys):
    from edgekit.apps import cli

    code = cli.main(["tune", "--run", str(tune_run), "--platform", "android", "--target-agreement", "1",
                     "--limit", str(LIMIT)])
    captured = capsys.readouterr()
    assert code == 1
    assert "no plan reaches a 100% agreement lower bound" in captured.err
    assert "best found" in captured.err
    rd = RunDir(tune_run)
    assert not rd.variant_dir("tflite-tuned").exists() and not rd.tuned_recipe("tflite-tuned").exists()
    data = json.loads(rd.tune_json("tflite-tuned").read_text())
    assert data["reached"] is False and data["plan"] and len(data["candidates"]) == 1


def test_a_size_cap_below_any_plan_is_unreachable_and_converts_nothing(tune_run):
    result = _tune(tune_run, "android", 0.5, max_size_kb=1)
    assert not result.ok and "--max-size" in result.failure()
    assert not RunDir(tune_run).variant_dir("tflite-tuned").exists()


def test_allowed_disagreements_follows_the_wilson_bound():
    from edgekit.runtime import metrics
    from edgekit.runtime.tune import allowed_disagreements

    for n, target in ((200, 0.98), (5000, 0.999), (10000, 0.999), (100, 0.5)):
        k = allowed_disagreements(n, target)
        assert metrics.wilson_interval(n - k, n)[0] >= target
        assert k == n or metrics.wilson_interval(n - k - 1, n)[0] < target
    assert allowed_disagreements(1000, 1.0) == -1


@pytest.mark.parametrize("kw", [{"target_agreement": 0}, {"target_agreement": 1.5},
                                {"target_agreement": float("nan")}, {"platform": "windows"},
                                {"max_size_kb": -1}, {"limit": 5}])
def test_config_is_validated_once(kw):
    from edgekit.errors import ConfigError
    from edgekit.runtime.tune import TuneConfig

    args = {"run_dir": "r", "platform": "ios", "target_agreement": 0.99, **kw}
    with pytest.raises(ConfigError):
        TuneConfig(**args)


def test_tune_is_an_on_request_stage():
    import importlib

    from edgekit import stage
    from edgekit.apps import cli

    assert "tune" in stage.ON_REQUEST and "tune" not in stage.STAGES
    assert callable(stage.module("tune").run) and callable(stage.module("tune").is_current)
    mod = importlib.import_module(cli.COMMANDS["tune"])
    assert all(hasattr(mod, a) for a in ("PARENTS", "add_arguments", "config_from_args", "show", "HELP"))


def test_per_layer_tflite_recipe_is_validated(tmp_path):
    from edgekit.convert import recipe
    from edgekit.convert.recipe import builtin_dir
    from edgekit.errors import ConfigError

    base = json.loads((builtin_dir() / "tflite-fp32.json").read_text())

    def write(rid, layers, **tflite):
        data = {**base, "id": rid, "kind": "low-bit", "reference": "tflite-fp32",
                "tflite": {**base["tflite"], **tflite, "layers": layers}}
        p = tmp_path / f"{rid}.json"
        p.write_text(json.dumps(data))
        return p

    ok = recipe.parse(write("tflite-a", {"features": {"weights": "int4"}, "conv1": None,
                                         "logits": {"weights": "int8", "symmetric": False, "granularity": "tensor"}}))
    assert ok.tflite["layers"]["features"] == {"weights": "int4"}
    with pytest.raises(ConfigError, match=r"tflite\.layers\.features\.symmetric"):
        recipe.parse(write("tflite-e", {"features": {"weights": "int8", "symmetric": "no"}}))
    with pytest.raises(ConfigError, match=r"tflite\.layers\.features\.granularity"):
        recipe.parse(write("tflite-f", {"features": {"weights": "int8", "granularity": "block"}}))
    with pytest.raises(ConfigError, match=r"tflite\.layers\.features\.weights"):
        recipe.parse(write("tflite-b", {"features": {"weights": "int2"}}))
    with pytest.raises(ConfigError, match="float32 conversion"):
        recipe.parse(write("tflite-c", {"features": {"weights": "int8"}}, optimizations=["DEFAULT"]))
    with pytest.raises(ConfigError, match=r"tflite\.layers"):
        recipe.parse(write("tflite-d", {}))


@pytest.mark.parametrize("comp, target, field", [
    ({"nbits": 6, "granularity": "per_grouped_channel", "group_size": 16}, "iOS18", None),
    ({"nbits": 3, "granularity": "per_tensor"}, "iOS18", None),
    ({"nbits": 6, "granularity": "per_tensor", "enable_per_channel_scale": True}, "iOS18", None),
    ({"nbits": 6, "granularity": "per_grouped_channel", "group_size": 16}, "iOS16", "granularity"),
    ({"nbits": 3, "granularity": "per_tensor"}, "iOS17", "nbits"),
    ({"nbits": 6, "granularity": "per_tensor", "enable_per_channel_scale": True}, "iOS16", "enable_per_channel_scale"),
    ({"nbits": 6, "granularity": "per_tensor", "enable_per_channel_scale": 1}, "iOS18", "enable_per_channel_scale"),
    ({"nbits": 6, "granularity": "per_grouped_channel"}, "iOS18", "group_size"),
    ({"nbits": 6, "granularity": "per_tensor", "group_size": 16}, "iOS18", "group_size"),
    ({"nbits": 6, "granularity": "per_grouped_channel", "group_size": 0}, "iOS18", "group_size"),
])
def test_ios18_palette_fields_are_validated(tmp_path, comp, target, field):
    """What only iOS18's ops can hold is refused, naming the field, in a recipe for an older iOS."""
    from edgekit.convert import recipe
    from edgekit.convert.recipe import builtin_dir
    from edgekit.errors import ConfigError

    data = json.loads((builtin_dir() / "coreml-fp16.json").read_text())
    data.update(id="coreml-x", kind="low-bit", reference="coreml-fp32")
    data["coreml"] = {**data["coreml"], "minimum_deployment_target": target,
                      "layers": {"features": {"method": "palettize", "mode": "kmeans", **comp}}}
    path = tmp_path / "coreml-x.json"
    path.write_text(json.dumps(data))
    if field is None:
        assert recipe.parse(path).coreml["layers"]["features"]["nbits"] == comp["nbits"]
    else:
        with pytest.raises(ConfigError, match=rf"coreml\.layers\.features\.{field}"):
            recipe.parse(path)


def test_linear_per_block_needs_its_block_size_and_ios18(tmp_path):
    from edgekit.convert import recipe
    from edgekit.convert.recipe import builtin_dir
    from edgekit.errors import ConfigError

    data = json.loads((builtin_dir() / "coreml-w8.json").read_text())
    comp = {**data["coreml"]["compression"], "dtype": "int4", "granularity": "per_block", "block_size": 32}
    path = tmp_path / "coreml-w8.json"
    for target, extra, match in (("iOS18", {}, None), ("iOS16", {}, r"coreml\.compression\.granularity"),
                                 ("iOS18", {"block_size": None}, r"coreml\.compression\.block_size"),
                                 ("iOS18", {"granularity": "per_channel"}, r"coreml\.compression\.block_size")):
        data["coreml"] = {**data["coreml"], "minimum_deployment_target": target, "compression": {**comp, **extra}}
        path.write_text(json.dumps(data))
        if match is None:
            assert recipe.parse(path).coreml["compression"]["block_size"] == 32
        else:
            with pytest.raises(ConfigError, match=match):
                recipe.parse(path)


def test_a_layer_coremltools_skips_is_an_error_not_a_float16_layer(tune_base):
    """coremltools logs and skips a weight it cannot compress as asked (here a block
    size that divides none of the dense layer's axes); a per-layer recipe must not
    silently ship that layer in float16."""
    from edgekit import quiet
    from edgekit.convert import coreml, recipe
    from edgekit.rundir import ModelArtifact

    model = ModelArtifact.read(RunDir(tune_base))
    keras = model.load_keras()
    r = recipe.load("coreml-fp16")
    r = dataclasses.replace(r, coreml={**r.coreml, "minimum_deployment_target": "iOS18"})
    meta = {"author": "t", "license": "-", "short_description": "-", "version": "-", "input_description": "-",
            "output_descriptions": {}, "user_defined": {}}
    with quiet.quiet():
        base = coreml.convert(keras, r, class_names=list(model.io.class_names), image_shape=model.io.image_shape,
                              metadata=meta)
    block = {"method": "linear", "dtype": "int4", "mode": "linear_symmetric", "granularity": "per_block",
             "block_size": 1000, "weight_threshold": 0}
    with pytest.raises(ValueError, match="left the weights of 'features' uncompressed"):
        coreml.compress_layers(base, {"features": block}, keras)
    ok = coreml.compress_layers(base, {"features": {**block, "block_size": 4}}, keras)
    assert "constexpr_blockwise_shift_scale" in coreml.program_ops(ok.get_spec())


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A checked run of a tf_keras colour net that takes BGR inputs with per-channel
    mean/std (support.colour.h5_model, imported as a user would), on colour photos."""
    from support import colour

    from edgekit.apps.cli import main

    root = tmp_path_factory.mktemp("tune-colour")
    photos = colour.make_colour_folder(root / "photos")
    model = colour.h5_model(root / "net.h5", photos)
    run = root / "run"
    assert main(["import", "--model", str(model), "--dataset", "folder", "--data-dir", str(photos), "--run", str(run),
                 "--color", "bgr", "--mean", ",".join(map(str, colour.MEAN[::-1])),
                 "--std", ",".join(map(str, colour.STD[::-1]))]) == 0
    assert main(["convert", "--run", str(run), "--variants", "coreml-fp32"]) == 0
    assert main(["check", "--run", str(run), "--latency-runs", "2"]) in (0, 1)
    return run


@pytest.mark.slow   # about a minute: a colour net trained, imported, converted and checked first
def test_ios_candidates_take_the_models_colour_and_pixels(colour_run):
    """Candidates are built with the model's BGR order and per-channel mean/std, as
    convert builds the tuned variant: the converted variant gives the kept
    candidate's verify-half agreement exactly (a grayscale candidate program
    would not even convert for a 3-channel model)."""
    from edgekit.runtime import tune

    result = tune.run(tune.TuneConfig(run_dir=colour_run, platform="ios", target_agreement=0.85))
    assert result.reached, result.failure()
    kept = [c for c in result.candidates if c.plan == result.plan and c.passed][-1]
    assert result.verify["agreement"] == kept.agreement and result.verify["images"] == kept.images
    assert result.report["agreement"] >= 0.85
    data = artifacts.read_manifest(RunDir(colour_run).tune_json(result.variant), TUNE_SCHEMA)
    int8 = {layer: snr["int8"] for layer, snr in data["sensitivity"]["local_snr_db"].items()}
    assert int8 and all(v is None or v > 30 for v in int8.values()), int8   # each layer fed its true inputs


@pytest.mark.slow   # shares colour_run with the test above
def test_diagnose_reads_a_colour_program_channels_first(colour_run):
    """The colour net's first layers are 16x16x16 (H = W = C): by shape alone their
    ML Program values look channels-last and were compared transposed (-3 dB on a
    float32 program); and its image input takes BGR pixels, not model inputs. Every
    row of the float32 program is exact to float32 rounding."""
    from edgekit.runtime import diagnose

    result = diagnose.run(diagnose.DiagnoseConfig(run_dir=colour_run, variant="coreml-fp32"))
    rows = [r for r in result.rows if r.accumulated is not None]
    assert len(rows) >= 8
    assert all(r.accumulated.snr_db > 90 for r in rows), [(r.layer, r.accumulated.snr_db) for r in rows]
    assert all(r.local.snr_db > 90 for r in rows if r.local is not None)
