"""convert and check on imported colour models: the TFLite float32 variant
gives the Keras model's answers, Core ML gets an RGB/BGR image input with the
recorded pixel mapping, classifier labels and the preprocessing in its
metadata (TFLite too); tfmot recipes that cannot wrap a model are skipped
with the reason."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit.apps.cli import main
from edgekit.rundir import ModelArtifact, RunDir, VariantIndex


def _copy(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("variants", "check"))
    return dst


@pytest.fixture(scope="module")
def converted(imported, tmp_path_factory):
    """{format: run} with tflite-fp32 (all three) and coreml-fp32 (keras3, h5) converted and tflite checked."""
    runs = {}
    for fmt, run in imported.items():
        dst = tmp_path_factory.mktemp(f"conv-{fmt}") / "run"
        shutil.copytree(run, dst)
        variants = "tflite-fp32" if fmt == "saved_model" else "tflite-fp32,coreml-fp32"
        assert main(["convert", "--run", str(dst), "--variants", variants]) == 0
        assert main(["check", "--run", str(dst), "--variants", "tflite-fp32", "--latency-runs", "3"]) == 0
        runs[fmt] = dst
    return runs


@pytest.mark.parametrize("fmt", ["keras3", "saved_model", "h5"])
def test_tflite_fp32_gives_the_imported_models_answers(fmt, converted):
    res = json.loads(RunDir(converted[fmt]).check_results.read_text())
    v = res["variants"]["tflite-fp32"]
    assert v["agreement"] == 1.0
    assert v["max_abs_diff"] <= 1e-5
    assert res["original"]["accuracy"] == ModelArtifact.read(converted[fmt]).manifest["metrics"]["test_accuracy"]


@pytest.mark.parametrize("fmt", ["keras3", "h5"])
def test_tflite_carries_the_preprocessing(fmt, converted):
    from edgekit.convert import tflite

    run = RunDir(converted[fmt])
    meta = tflite.read_metadata((run.variant_dir("tflite-fp32") / "model.tflite").read_bytes())
    pre = json.loads(meta["edgekit.preprocessing"])
    io = ModelArtifact.read(run).io
    assert pre["color"] == io.color.value and pre["resize"].startswith("bilinear, whole image")
    assert pre["pixels"]["scale"] == list(io.pixels.scale) and pre["pixels"]["bias"] == list(io.pixels.bias)


@pytest.mark.parametrize("fmt,layout", [("keras3", "RGB"), ("h5", "BGR")])
def test_coreml_image_input_is_the_recorded_preprocessing(fmt, layout, converted):
    from edgekit.convert import coreml

    run = RunDir(converted[fmt])
    io = ModelArtifact.read(run).io
    spec = coreml.load_spec(run.variant_dir("coreml-fp32") / coreml.FILE_NAME)
    info = coreml.describe(spec)
    inp = info["io"]["inputs"][0]
    assert inp["color_layout"] == layout and inp["shape"] == [1, 32, 32, 3]
    assert info["classifier"]["predicted_feature"] == coreml.LABEL_OUTPUT
    meta = dict(spec.description.metadata.userDefined)
    pre = json.loads(meta["edgekit.preprocessing"])
    assert pre["color"] == io.color.value
    assert "resized bilinear (whole image, no crop)" in spec.description.input[0].shortDescription
    # the image input (or, for per-channel scales, the program right after it) applies pixel * scale + bias
    if len(set(io.pixels.scale)) == 1:
        assert inp["scale"] == pytest.approx(io.pixels.scale[0], rel=1e-6)
        assert np.allclose(np.broadcast_to(inp["bias"], 3), io.pixels.bias, rtol=1e-6)
    else:
        assert inp["scale"] == 1.0 and inp["bias"] in (0.0, [0.0, 0.0, 0.0])
    v = json.loads((run.variant_manifest("coreml-fp32")).read_text())
    assert v["coreml"]["classifier"]["class_names"] == list(io.class_names)


@pytest.mark.parametrize("fmt", ["keras3", "h5"])
def test_mil_reference_runs_the_colour_program(fmt, converted):
    """fp32 Core ML within 1e-4 of Keras on mil-reference: an RGB image input with
    the folded Rescaling as its scale (keras3), and a BGR one whose per-channel
    mean/std is a multiply-add in the program (h5)."""
    from edgekit.runtime import backends as bk

    run = RunDir(converted[fmt])
    model = ModelArtifact.read(run)
    io = model.io
    backend = bk.open_backend("mil-reference", run.variant_dir("coreml-fp32") / "Model.mlpackage",
                              class_names=io.class_names, image_shape=io.image_shape, pixels=io.pixels)
    ds = model.dataset()
    x = io.pixels.apply(ds.x_test)
    want = model.load_keras().predict(x, verbose=0)
    got = backend.predict(x)
    assert np.array_equal(got.argmax(1), want.argmax(1))
    assert float(np.max(np.abs(got - want))) <= 1e-4


def test_a_tfmot_recipe_that_cannot_wrap_the_model_is_skipped_with_the_reason(imported, tmp_path, capsys,
                                                                             monkeypatch):
    """When tfmot refuses the model whole and layer by layer (here: made to, since
    every fixture has layers it wraps), the recipe is skipped (exit 0, not a
    failure), its reason in the index, the table and the report."""
    from edgekit.convert import finetune

    def refuse(method, model, **kwargs):
        raise ValueError("Layer hs:<class 'Multiply'> is not supported")

    monkeypatch.setattr(finetune, "_wrap_layers", refuse)
    run = tmp_path / "run"
    shutil.copytree(imported["keras3"], run)
    assert main(["convert", "--run", str(run), "--variants", "tflite-qat-int8", "--finetune-limit", "32"]) == 0
    monkeypatch.undo()
    entry = VariantIndex.read(run).entries["tflite-qat-int8"]
    assert entry.status.value == "skipped" and "tfmot qat" in entry.reason and "Multiply" in entry.reason
    assert not RunDir(run).variant_dir("tflite-qat-int8").exists()
    assert "skipped: tfmot qat" in capsys.readouterr().out
    # ... and the report says so (the variant is not in the checked table)
    assert main(["convert", "--run", str(run), "--variants", "tflite-fp32"]) == 0
    # naming the skipped variant (as `edgekit run --variants` does) checks the others
    assert main(["check", "--run", str(run), "--latency-runs", "3", "--variants", "tflite-fp32,tflite-qat-int8"]) == 0
    assert main(["report", "--run", str(run)]) == 0
    rj = json.loads(RunDir(run).report_json.read_text())
    assert [v["id"] for v in rj["not_converted"]] == ["tflite-qat-int8"]
    assert rj["not_converted"][0]["status"] == "skipped" and "tfmot qat" in rj["not_converted"][0]["reason"]
    html = RunDir(run).report_html.read_text()
    assert "Not converted, so not checked: <code>tflite-qat-int8</code> skipped: tfmot qat" in html


@pytest.mark.parametrize("fmt", ["keras3", "h5"])
def test_golden_kit_has_colour_samples_and_the_preprocessing(fmt, converted, photos):
    """The kit's samples are the photos as an app sees them (RGB PNG and RGB
    pixels, also for the BGR model), resized as edgekit resized them."""
    from support import colour

    from edgekit.runtime import golden

    run = RunDir(converted[fmt])
    assert main(["golden", "--run", str(run.root), "--count", "12"]) == 0
    kit = golden.load(run.golden_dir)
    spec = kit["model"]["input"]
    assert (spec["channels"], spec["sample_channel_order"]) == (3, "rgb")
    assert spec["model_channel_order"] == ("bgr" if fmt == "h5" else "rgb")
    assert spec["resize"].startswith("bilinear, whole image, no crop")
    io = ModelArtifact.read(run).io
    assert spec["pixels"] == io.pixels.to_json()
    inputs = golden.load_inputs(run.golden_dir, kit)        # RGB PNGs, checked against the JSON pixels
    x_ref, _ = colour.reference_inputs(photos)
    for s, img in zip(kit["samples"], inputs):
        assert np.array_equal(img, x_ref[s["test_index"]])
    assert np.array_equal(np.load(run.golden_dir / "inputs.npy"), inputs)


@pytest.mark.slow  # a QAT fine-tune: about a minute on 2 cores
@pytest.mark.parametrize("fmt", ["saved_model", "keras3"])
def test_qat_and_pruning_run_on_imported_models(fmt, imported, tmp_path):
    """The SavedModel's layers are all ones tfmot wraps; the Keras 3 model's
    hard-swish (Rescaling + Multiply) is not, so those layers stay float and
    the rest is wrapped layer by layer (recorded). Both fine-tune on their own
    pixel mapping."""
    run = tmp_path / "run"
    shutil.copytree(imported[fmt], run)
    assert main(["convert", "--run", str(run), "--variants", "tflite-qat-int8,tflite-pruned-int8",
                 "--finetune-limit", "96"]) == 0
    for vid in ("tflite-qat-int8", "tflite-pruned-int8"):
        entry = VariantIndex.read(run).entries[vid]
        assert entry.status.value == "ok", entry.reason
        ft = json.loads(RunDir(run).variant_manifest(vid).read_text())["finetune"]
        if fmt == "keras3" and vid == "tflite-qat-int8":
            assert "dw1_act_hswish" in ft["partial"]["left_float"]
        elif fmt == "saved_model":
            assert "partial" not in ft
