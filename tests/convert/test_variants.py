"""Every shipped recipe converted from the tiny cnn: the files load in their
real tools, hold what the recipe asked for, and variant.json says what the
file is (parametrized over the recipe files themselves)."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import artifacts
from edgekit.convert import recipe as recipes
from edgekit.rundir import VARIANT_SCHEMA, VariantIndex, VariantStatus

RECIPES = recipes.load_all()
TFLITE = [r for r in RECIPES if r.format == "tflite"]
COREML = [r for r in RECIPES if r.format == "coreml"]
ids = lambda rs: [r.id for r in rs]  # noqa: E731

REQUIRED = {"id": str, "format": str, "kind": str, "platform": str, "recipe": dict, "source_model": dict, "file": dict,
            "zipped_bytes": int, "io": dict, "operators": list, "conversion_seconds": float, "versions": dict}


def variant(run_dir, rid):
    return artifacts.read_manifest(run_dir / "variants" / rid / "variant.json", VARIANT_SCHEMA, REQUIRED)


def test_every_recipe_converted(convert_run):
    run_dir, result = convert_run
    assert [v.id for v in result.variants] == recipes.known_ids()
    assert result.ok, [(v.id, v.reason) for v in result.failed]
    assert sorted(p.name for p in (run_dir / "variants").iterdir() if p.is_dir()) == recipes.known_ids()
    index = VariantIndex.read(run_dir)
    assert index.source_sha256 == artifacts.sha256_file(run_dir / "model" / "manifest.json")
    assert index.ok_ids == recipes.known_ids()
    for r in RECIPES:
        e = index.entries[r.id]
        assert (e.format, e.kind, e.reference, e.status, e.reason) == (r.format, r.kind, r.reference,
                                                                       VariantStatus.OK, None)


@pytest.mark.parametrize("r", RECIPES, ids=ids(RECIPES))
def test_variant_json_describes_the_file(convert_run, r):
    run_dir, _ = convert_run
    v = variant(run_dir, r.id)
    vdir = run_dir / "variants" / r.id
    assert (v["id"], v["format"], v["platform"]) == (r.id, r.format, {"tflite": "android", "coreml": "ios"}[r.format])
    assert (v["kind"], v["reference"]) == (r.kind.value, r.reference)  # as the recipe declares
    assert v["recipe"] == r.data
    path = artifacts.resolve_inside(vdir, v["file"]["path"])
    assert path.name == ("model.tflite" if r.format == "tflite" else "Model.mlpackage")
    assert v["file"]["sha256"] == artifacts.sha256_tree(path)
    assert v["file"]["size_bytes"] == artifacts.tree_size(path) > 10_000
    assert 0 < v["zipped_bytes"] == artifacts.zipped_size(path)
    manifest = artifacts.resolve_inside(run_dir, "model/manifest.json")
    assert v["source_model"]["sha256"] == artifacts.sha256_file(manifest)
    assert (vdir / v["source_model"]["manifest"]).resolve() == manifest.resolve()
    assert v["conversion_seconds"] > 0
    assert v["versions"]["coremltools"] == "9.0" and v["versions"]["tensorflow"].startswith("2.21")
    assert (v["finetune"] is None) == (r.finetune is None)
    assert v["operators"] and all(isinstance(o, str) for o in v["operators"])
    assert [i["name"] for i in v["io"]["inputs"]] == ["image"]


# ------------------------------------------------------------------ TFLite

def _interp(path):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    return it


@pytest.mark.parametrize("r", TFLITE, ids=ids(TFLITE))
def test_tflite_runs_in_litert_with_recorded_io(convert_run, r, tiny_model, tiny_test_images):
    from edgekit.runtime.backends import LiteRTBackend

    run_dir, _ = convert_run
    v = variant(run_dir, r.id)
    path = run_dir / "variants" / r.id / "model.tflite"
    it = _interp(path)
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    rin, rout = v["io"]["inputs"][0], v["io"]["outputs"][0]
    assert rout["name"] == "probabilities"
    assert np.dtype(inp["dtype"]).name == rin["dtype"] == r.tflite["inference_input_type"]
    assert np.dtype(out["dtype"]).name == rout["dtype"] == r.tflite["inference_output_type"]
    assert rin["shape"] == [None, 28, 28, 1] and rout["shape"] == [None, 10]
    for det, rec in ((inp, rin), (out, rout)):
        if np.issubdtype(det["dtype"], np.integer):
            scale, zero = det["quantization"]
            assert rec["quantization"] == {"scale": pytest.approx(scale, rel=1e-6), "zero_point": zero}
        else:
            assert rec["quantization"] is None
    if rin["dtype"] in ("int8", "uint8"):
        # Calibrated on [0, 1] pixels: the input range maps exactly onto the integer range.
        lo = -128 if rin["dtype"] == "int8" else 0
        assert rin["quantization"]["scale"] == pytest.approx(1 / 255, rel=1e-3)
        assert rin["quantization"]["zero_point"] == lo
    # Operators recorded are those in the file (builtins, no delegate node).
    assert "DELEGATE" not in v["operators"]
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(v["operators"])

    x, y = tiny_test_images
    probs = LiteRTBackend(path).predict(x)
    assert probs.shape == (len(x), 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=0.05)
    keras_probs = tiny_model[0].predict(x, verbose=0)
    agreement = np.mean(probs.argmax(1) == keras_probs.argmax(1))
    if r.finetune is None:
        # Post-training conversions of the same weights: int8 may flip a few borderline images.
        assert agreement >= 0.95, agreement
    else:
        # Fine-tuned on 256 images: a different model, but still a working classifier.
        assert np.mean(probs.argmax(1) == y) >= 0.5


def test_tflite_fp32_matches_keras(convert_run, tiny_model, tiny_test_images):
    from edgekit.runtime.backends import LiteRTBackend

    run_dir, _ = convert_run
    x, _ = tiny_test_images
    probs = LiteRTBackend(run_dir / "variants" / "tflite-fp32" / "model.tflite").predict(x)
    # Same float32 graph, different kernels: differences are float rounding only.
    np.testing.assert_allclose(probs, tiny_model[0].predict(x, verbose=0), atol=1e-5)


def test_size_ratios(convert_run):
    run_dir, _ = convert_run
    size = {r.id: variant(run_dir, r.id)["file"]["size_bytes"] for r in RECIPES}
    zipped = {r.id: variant(run_dir, r.id)["zipped_bytes"] for r in RECIPES}
    assert size["tflite-int8"] / size["tflite-fp32"] <= 0.26
    assert size["tflite-dynamic-int8"] / size["tflite-fp32"] <= 0.26
    assert 0.45 <= size["tflite-fp16"] / size["tflite-fp32"] <= 0.55
    assert 0.45 <= size["coreml-fp16"] / size["coreml-fp32"] <= 0.55
    assert size["coreml-w8"] / size["coreml-fp32"] <= 0.28
    assert size["coreml-pal4"] / size["coreml-fp32"] <= 0.15
    assert size["coreml-pal2"] < size["coreml-pal4"] < size["coreml-pal6"] < size["coreml-w8"]
    # Pruned and clustered int8 files keep dense storage; the zeros and repeats show after deflate.
    assert zipped["tflite-pruned-int8"] <= 0.6 * zipped["tflite-int8"]
    assert zipped["tflite-clustered-int8"] <= 0.75 * zipped["tflite-int8"]


def _weight_tensors(path):
    """int8 filter tensors of CONV_2D / FULLY_CONNECTED ops, read from the file."""
    it = _interp(path)
    out = {}
    for op in it._get_ops_details():
        if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D"):
            idx = int(op["inputs"][1])
            out[it.get_tensor_details()[idx]["name"]] = it.get_tensor(idx)
    return out


def test_tflite_pruned_reaches_target_sparsity(convert_run):
    run_dir, _ = convert_run
    v = variant(run_dir, "tflite-pruned-int8")
    target = v["recipe"]["finetune"]["target_sparsity"]
    assert v["finetune"]["sparsity_reached"] >= target - 0.01
    weights = _weight_tensors(run_dir / "variants" / "tflite-pruned-int8" / "model.tflite")
    assert len(weights) == 4
    for name, w in weights.items():
        assert w.dtype == np.int8
        assert np.mean(w == 0) >= target - 0.01, name


def test_tflite_clustered_has_few_values_per_channel(convert_run):
    run_dir, _ = convert_run
    v = variant(run_dir, "tflite-clustered-int8")
    k = v["recipe"]["finetune"]["clusters"]
    assert max(v["finetune"]["layer_unique_values"].values()) <= k
    weights = _weight_tensors(run_dir / "variants" / "tflite-clustered-int8" / "model.tflite")
    for name, w in weights.items():
        per_channel = [np.unique(w[c]).size for c in range(w.shape[0])]  # output channel first in TFLite
        assert max(per_channel) <= k, name
    # and the plain int8 file of the same model is not like that
    plain = _weight_tensors(run_dir / "variants" / "tflite-int8" / "model.tflite")
    assert max(np.unique(w[0]).size for w in plain.values()) > 2 * k


def test_finetune_record_uses_the_model_settings(convert_run, tiny_model):
    run_dir, _ = convert_run
    cfg = tiny_model[1]["config"]
    for rid in ("tflite-qat-int8", "tflite-pruned-int8", "tflite-clustered-int8"):
        v = variant(run_dir, rid)
        ft, spec = v["finetune"], v["recipe"]["finetune"]
        assert ft["method"] == spec["method"] and ft["epochs"] == spec["epochs"]
        assert ft["train_images"] == ft["train_limit_override"] == 256
        assert ft["batch_size"] == cfg["batch_size"]
        assert ft["learning_rate"] == pytest.approx(cfg["learning_rate"] * spec["learning_rate_factor"])
        assert ft["steps"] == -(-256 // cfg["batch_size"]) * spec["epochs"]
        assert 0.0 < ft["val_accuracy"] <= 1.0 and ft["seconds"] > 0


# ----------------------------------------------------------------- Core ML

def _mlmodel(run_dir, rid):
    import coremltools as ct

    return ct.models.MLModel(str(run_dir / "variants" / rid / "Model.mlpackage"), skip_model_load=True)


@pytest.mark.parametrize("r", COREML, ids=ids(COREML))
def test_coreml_is_app_ready(convert_run, r, tiny_model):
    from coremltools.proto import FeatureTypes_pb2

    run_dir, _ = convert_run
    v = variant(run_dir, r.id)
    spec = _mlmodel(run_dir, r.id).get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    d = spec.description
    (inp,) = d.input
    assert inp.name == "image" and inp.type.WhichOneof("Type") == "imageType"
    assert (inp.type.imageType.width, inp.type.imageType.height) == (28, 28)
    assert inp.type.imageType.colorSpace == FeatureTypes_pb2.ImageFeatureType.GRAYSCALE
    assert {o.name for o in d.output} == {"classLabel", "classLabel_probs"}
    assert (d.predictedFeatureName, d.predictedProbabilitiesName) == ("classLabel", "classLabel_probs")
    assert v["coreml"]["classifier"]["class_names"] == tiny_model[1]["dataset"]["class_names"]
    # Read back from the program's ops (mul by the scale after the input): pixels 0..255 -> [0, 1].
    rin = v["io"]["inputs"][0]
    assert rin["scale"] == pytest.approx(1 / 255, rel=1e-6) and rin["bias"] == 0.0
    assert rin["color_layout"] == "GRAYSCALE" and rin["shape"] == [1, 28, 28, 1]
    assert {o["name"]: o["role"] for o in v["io"]["outputs"]} == {"classLabel": "class_label",
                                                                  "classLabel_probs": "probabilities"}
    meta = d.metadata
    assert meta.author == "edgekit" and meta.license and meta.versionString
    assert "28x28" in meta.shortDescription and inp.shortDescription
    assert all(o.shortDescription for o in d.output)
    assert meta.userDefined["edgekit.source_model_sha256"] == v["source_model"]["sha256"]
    assert meta.userDefined["edgekit.variant"] == r.id
    ops = v["operators"]
    assert "classify" in ops and "conv" in ops and "softmax" in ops
    compressed = r.coreml["compression"] is not None
    assert v["deployment_target"] == ("iOS16" if compressed else "iOS15")
    assert any(o.startswith("constexpr_") for o in ops) == compressed


def _weights(mlmodel):
    from coremltools.optimize.coreml import decompress_weights, get_weights_metadata

    from edgekit.quiet import quiet

    with quiet():
        return {k: m.val for k, m in get_weights_metadata(decompress_weights(mlmodel), weight_threshold=2048).items()}


@pytest.mark.parametrize("nbits", [6, 4, 2])
def test_coreml_palettized_weights_have_at_most_2_pow_n_values(convert_run, nbits):
    run_dir, _ = convert_run
    weights = _weights(_mlmodel(run_dir, f"coreml-pal{nbits}"))
    big = {k: w for k, w in weights.items() if w.size >= 2048}
    assert len(big) == 2  # conv2 and the 1764x128 dense: the tensors above the threshold
    # Counted in float32: numpy 2.4.6's float16 sort (hence np.unique) misorders
    # some arrays on this CPU and reports duplicates.
    for name, w in big.items():
        assert np.unique(w.astype(np.float32)).size <= 2 ** nbits, name
    fp16 = _weights(_mlmodel(run_dir, "coreml-fp16"))
    assert min(np.unique(w.astype(np.float32)).size for w in fp16.values() if w.size >= 2048) > 2 ** 6


def test_coreml_pruned_reaches_target_sparsity(convert_run):
    run_dir, _ = convert_run
    target = variant(run_dir, "coreml-pruned")["recipe"]["coreml"]["compression"]["target_sparsity"]
    big = [w for w in _weights(_mlmodel(run_dir, "coreml-pruned")).values() if w.size >= 2048]
    assert len(big) == 2
    for w in big:
        assert np.mean(w == 0) >= target - 0.01


def test_coreml_w8_weights_are_int8_affine(convert_run):
    from coremltools.optimize.coreml import get_weights_metadata

    from edgekit.quiet import quiet

    run_dir, _ = convert_run
    with quiet():
        meta = get_weights_metadata(_mlmodel(run_dir, "coreml-w8"), weight_threshold=2048)
    quantized = [m.val for k, m in meta.items() if "quantized_data" in k]
    assert len(quantized) == 2 and all(q.dtype == np.int8 for q in quantized)


@pytest.mark.parametrize("r", COREML, ids=ids(COREML))
def test_coreml_variant_runs_in_mil_reference(convert_run, r, tiny_model, tiny_test_images):
    """What convert writes is what edgekit's Linux Core ML reader executes: the
    program runs, labels are the dataset's, and the answers are the model's."""
    from edgekit.runtime.mil.program import Program

    run_dir, _ = convert_run
    prog = Program(run_dir / "variants" / r.id / "Model.mlpackage")
    assert list(prog.class_labels) == tiny_model[1]["dataset"]["class_names"]
    x, _ = tiny_test_images
    probs = prog.predict(x)
    keras_probs = tiny_model[0].predict(x, verbose=0)
    if r.id == "coreml-fp32":
        # Same float32 graph; the 1/255 image scale is applied in float32 too.
        np.testing.assert_allclose(probs, keras_probs, atol=1e-5)
        return
    agreement = np.mean(probs.argmax(1) == keras_probs.argmax(1))
    comp = r.coreml["compression"]
    if comp is None or comp["method"] == "linear" or comp.get("nbits", 0) >= 4:
        assert agreement >= 0.95, agreement
    else:
        # 2-bit palettes and 75% magnitude pruning without retraining do lose answers
        # (pruned: 93.5% here); the checker measures how many. Still far above chance.
        assert agreement >= 0.5, agreement


def test_qat_activation_ranges_start_at_the_float_models_ranges(convert_run, tiny_model, tiny_test_images):
    """tfmot starts every activation range at [-6, 6] and an EMA of decay 0.999
    barely moves it in a one-epoch fine-tune; the ranges must be seeded from
    the float model (without it a trained cnn's int8 logits were clipped)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from edgekit.convert import finetune

    model, _ = tiny_model
    x, _ = tiny_test_images
    wrapped = tfmot.quantization.keras.quantize_model(finetune._clone(model))
    ranges = finetune._seed_activation_ranges(wrapped, model, x)
    assert set(ranges) == {"conv1", "conv2", "features", "logits"}
    for name, (lo, hi) in ranges.items():
        out = keras.Model(model.inputs, model.get_layer(name).output).predict(x, verbose=0)
        assert lo == pytest.approx(min(float(out.min()), 0.0)) and hi == pytest.approx(float(out.max()))
        wrapper = wrapped.get_layer(f"quant_{name}")
        got = {v.name.split("/")[-1].split(":")[0]: float(v.numpy()) for v in wrapper.weights if v.shape == ()}
        assert (got["post_activation_min"], got["post_activation_max"]) == pytest.approx((lo, hi))
    assert ranges["logits"] != [-6.0, 6.0]
    # and the converted QAT variant records them
    run_dir, _ = convert_run
    assert set(variant(run_dir, "tflite-qat-int8")["finetune"]["activation_ranges_seeded"]) == set(ranges)


def test_batched_calibration_gives_the_one_image_ranges(tiny_model, tiny_test_images, monkeypatch):
    """Calibration feeds CALIBRATION_BATCH images a step; every tensor's int8
    scale and zero point is what one image a step gives (min/max over the same
    values, up to the reduction's float rounding)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.convert import recipe, tflite

    model, _ = tiny_model
    images = tiny_test_images[0][:100]
    r = recipe.load("tflite-int8")

    def params(blob):
        it = Interpreter(model_content=blob)
        return {d["name"]: (d["quantization_parameters"]["scales"], d["quantization_parameters"]["zero_points"])
                for d in it.get_tensor_details() if d["quantization_parameters"]["scales"].size}

    batched = params(tflite.convert(model, r, images))
    monkeypatch.setattr(tflite, "CALIBRATION_BATCH", 1)
    single = params(tflite.convert(model, r, images))
    assert tflite.CALIBRATION_BATCH == 1 and batched.keys() == single.keys() and len(single) > 5
    for name, (scales, zeros) in single.items():
        np.testing.assert_allclose(batched[name][0], scales, rtol=1e-5, err_msg=name)
        np.testing.assert_array_equal(batched[name][1], zeros, err_msg=name)


def test_converting_with_a_variables_holder_gives_the_models_own_file(tiny_model):
    """tflite.convert hands the converter a module holding only the model's
    variables (saving the Keras model's whole object graph took most of a
    conversion's time); the file is the one the model itself gives."""
    import tensorflow as tf

    from edgekit.convert import recipe, tflite
    from edgekit.rundir import INPUT_NAME, OUTPUT_NAME

    model, _ = tiny_model

    @tf.function(input_signature=[tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name=INPUT_NAME)])
    def serve(image):
        return {OUTPUT_NAME: model(image, training=False)}

    own = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model).convert()
    assert tflite.convert(model, recipe.load("tflite-fp32"), None) == own
