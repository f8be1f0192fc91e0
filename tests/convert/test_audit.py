"""The compression audit reads what each converted file really holds, per
weight tensor, from the file (TFLite flatbuffer tensors, Core ML constexpr
ops), not from the recipe."""
from __future__ import annotations

import json

import pytest

from edgekit.convert import audit, recipe as recipes
from edgekit.rundir import ModelArtifact, VariantIndex


@pytest.fixture(scope="module")
def audits(convert_run):
    run_dir, _ = convert_run
    model = ModelArtifact.read(run_dir)
    weights = audit.keras_weights(model.load_keras())
    out = {v.id: audit.audit(v.path, v.format, recipes.load(v.id), weights)
           for v in VariantIndex.read(run_dir).variants(model)}
    return model, weights, out


def _rows(a: audit.Audit) -> dict[str, audit.WeightRow]:
    return {r.name: r for r in a.rows}


def test_rows_of_every_variant_add_up_to_the_parameter_count(audits):
    model, weights, out = audits
    params = model.manifest["model"]["params"]
    assert sum(w.elements for w in weights) == params
    assert sorted(out) == sorted(recipes.known_ids()), "every shipped (default) recipe is audited"
    for vid, a in out.items():
        assert a.elements == params, vid
        assert [r.name for r in a.rows] == [w.name for w in weights], vid
        assert all(r.bits is not None for r in a.rows), f"{vid}: the cnn has nothing to fold"


def test_float_variants_store_float(audits):
    _, _, out = audits
    assert out["tflite-fp32"].bits_per_weight == pytest.approx(32.0)
    assert out["coreml-fp32"].bits_per_weight == pytest.approx(32.0)
    for vid in ("tflite-fp16", "coreml-fp16"):
        assert out[vid].bits_per_weight == pytest.approx(16.0), vid
        assert out[vid].compressed_share == 0.0, vid


KERNELS = ("conv1/kernel", "conv2/kernel", "features/kernel", "logits/kernel")
COMPRESSED_COREML = ("coreml-w8", "coreml-pal6", "coreml-pal4", "coreml-pal2")


def test_default_coreml_recipes_compress_every_kernel_and_say_why_biases_stay(audits):
    """weight_threshold 0 in the shipped quantizing and palettizing recipes: the
    400-weight first conv and the 1,280-weight last dense are compressed too
    (coremltools' default 2048 skipped them); what stays float16 is the 1-D
    biases, and the audit says why. coreml-pruned keeps 2048 on purpose (pruning
    75% of those two layers cost 21 points on MNIST) and its audit says so."""
    _, _, out = audits
    pruned = _rows(out["coreml-pruned"])
    for name in ("conv1/kernel", "logits/kernel"):
        assert not pruned[name].compressed and "weight_threshold (2048)" in pruned[name].note, name
    assert pruned["features/kernel"].compressed and pruned["conv2/kernel"].compressed
    for vid in COMPRESSED_COREML:
        rows = _rows(out[vid])
        for name in KERNELS:
            assert rows[name].compressed and rows[name].note is None, (vid, name, rows[name])
        for r in out[vid].rows:
            if not r.compressed:
                assert r.name.endswith("/bias") and "1-D" in r.note, (vid, r)
    rows = _rows(out["coreml-pal4"])
    assert rows["features/kernel"].stored == "4-bit palette (16 values)" and 4.0 <= rows["features/kernel"].bits < 4.01
    assert rows["conv1/kernel"].stored == "4-bit palette (16 values)"
    # the 16-entry float16 table costs 256 bits over 400 weights: 4.64 bits each
    assert 4.6 < rows["conv1/kernel"].bits < 4.7
    # effective bits: ~4 for every kernel, 16 for the 190 bias values, tables included
    assert 4.0 < out["coreml-pal4"].bits_per_weight < 4.05
    assert out["coreml-pal4"].compressed_share > 0.999
    pal2 = _rows(out["coreml-pal2"])["features/kernel"]
    assert pal2.stored == "2-bit palette (4 values)" and 2.0 <= pal2.bits < 2.01


def test_sparsity_is_measured_in_the_file(audits):
    _, _, out = audits
    pruned = _rows(out["coreml-pruned"])["features/kernel"]
    assert pruned.stored.startswith("sparse") and pruned.sparsity == pytest.approx(0.75, abs=0.01)
    assert 4.9 < pruned.bits < 5.1  # a 1-bit mask plus float16 for a quarter of the weights
    tfl = _rows(out["tflite-pruned-int8"])["features/kernel"]
    assert tfl.stored.startswith("int8") and tfl.sparsity > 0.7  # zeros kept, but not saved: 8 bits each
    assert 8.0 <= tfl.bits < 8.1


def test_tflite_quantization_per_tensor(audits):
    _, _, out = audits
    int8 = _rows(out["tflite-int8"])
    for name in ("conv1/kernel", "conv2/kernel", "features/kernel", "logits/kernel"):
        assert int8[name].compressed and int8[name].stored.startswith("int8 (per-channel scales"), name
    assert int8["features/bias"].stored.startswith("int32") and not int8["features/bias"].compressed
    dyn = _rows(out["tflite-dynamic-int8"])
    assert dyn["conv1/kernel"].stored == "float32" and "TFLite converter" in dyn["conv1/kernel"].note
    assert dyn["features/kernel"].compressed


def test_a_recipe_weight_threshold_skips_the_small_layers_and_the_audit_says_so(fresh_run, tmp_path):
    """The audit follows the file: with coremltools' own default weight_threshold
    (2048) the 400- and 1,280-weight kernels stay float16, and their rows say why."""
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run

    src = json.loads(recipes.builtin_dir().joinpath("coreml-pal4.json").read_text())
    src["coreml"]["compression"]["weight_threshold"] = 2048
    src["reference"] = None  # this folder has no coreml-fp32
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "coreml-pal4.json").write_text(json.dumps(src))
    result = run(ConvertConfig(run_dir=fresh_run, variants=("coreml-pal4",), recipe_dir=folder))
    assert result.ok, result.failure()
    model = ModelArtifact.read(fresh_run)
    (v,) = VariantIndex.read(fresh_run).variants(model)
    a = audit.audit(v.path, v.format, recipes.parse(folder / "coreml-pal4.json"), audit.keras_weights(model.load_keras()))
    rows = _rows(a)
    for name in ("conv1/kernel", "logits/kernel"):
        assert not rows[name].compressed and rows[name].stored == "float16" and rows[name].bits == 16.0, name
        assert "weight_threshold (2048)" in rows[name].note, name
    assert rows["features/kernel"].stored == "4-bit palette (16 values)" and rows["features/kernel"].note is None
    assert 4.05 < a.bits_per_weight < 4.3  # the two float16 kernels cost ~0.08 bits per weight


def test_variant_json_records_the_audit(convert_run, audits):
    run_dir, _ = convert_run
    _, _, out = audits
    model = ModelArtifact.read(run_dir)
    for v in VariantIndex.read(run_dir).variants(model):
        recorded = v.manifest["weights"]
        assert recorded == json.loads(json.dumps(out[v.id].to_json())), v.id
        assert sum(r["elements"] for r in recorded["rows"]) == model.manifest["model"]["params"]
