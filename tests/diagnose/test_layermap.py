"""The layer map convert stores in variant.json, on untrained zoo models (no
training needed: the map depends on structure, not weights): fused
conv + batch norm + ReLU, a Dropout with no op, an unnamed Core ML max_pool,
and the weight ops per-layer Core ML compression keys on."""
from __future__ import annotations

import pytest


def _rows(layer_map):
    return {r["layer"]: r for r in layer_map["layers"]}


def _trained_like(model):
    """Non-trivial 1-D weights (biases, batch-norm statistics), as training leaves
    them: a converter drops an identity batch norm without a trace."""
    import numpy as np

    rng = np.random.default_rng(0)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([w + np.abs(rng.normal(0.1, 0.05, w.shape)).astype(w.dtype) if w.ndim == 1 else w
                               for w in ws])
    return model


@pytest.fixture(scope="module")
def mobile():
    from edgekit.train.models import build_model

    return _trained_like(build_model("mobile"))


def _tflite(model, recipe_id="tflite-fp32"):
    from edgekit.convert import recipe, tflite

    return tflite.convert(model, recipe.load(recipe_id), None)


def _coreml_spec(model, recipe_id="coreml-fp16"):
    from edgekit.convert import coreml, recipe

    meta = dict(author="t", license="t", short_description="t", version="t", input_description="t",
                output_descriptions={}, user_defined={})
    return coreml.convert(model, recipe.load(recipe_id), class_names=[str(i) for i in range(10)],
                          image_shape=(28, 28, 1), metadata=meta).get_spec()


def test_tflite_fused_conv_batchnorm_relu_is_one_op_and_the_rows_say_so(mobile):
    from edgekit.convert.layermap import tflite_map

    lm = tflite_map(_tflite(mobile), mobile)
    rows = _rows(lm)
    assert rows["conv1_relu"]["status"] == "op"
    assert set(rows["conv1_relu"]["fused_with"]) == {"conv1", "conv1_bn"}
    for name in ("conv1", "conv1_bn"):
        assert rows[name]["status"] == "fused" and rows[name]["into"] == "conv1_relu"
    group = lm["groups"][rows["conv1_relu"]["group"]]
    assert [op["type"] for op in group["ops"]] == ["CONV_2D"]
    assert group["inputs"][0]["from"] is None                 # the model input
    nxt = lm["groups"][rows["block1_dw_relu"]["group"]]
    assert nxt["inputs"][0]["from"] == "conv1_relu"          # fed by the fused group's float value
    assert rows["probabilities"]["status"] == "op"            # the unnamed output op is the output layer


def test_coreml_groups_an_unnamed_max_pool_and_records_channels_first(mobile):
    from edgekit.convert.layermap import coreml_map, weight_ops

    lm = coreml_map(_coreml_spec(mobile), mobile)
    rows = _rows(lm)
    pool = lm["groups"][rows["pool1"]["group"]]
    assert [op["type"] for op in pool["ops"]] == ["max_pool"] and pool["output"]["layout"] == "nchw"
    assert rows["conv1_bn"]["status"] == "op" and rows["conv1"]["status"] == "fused"   # BN folded into the conv
    assert weight_ops(lm, "conv1") == weight_ops(lm, "conv1_bn") and len(weight_ops(lm, "conv1")) == 1
    assert weight_ops(lm, "pool1") == []
    first = lm["groups"][0]
    assert first["inputs"][0]["name"] == lm["input"]["name"] and first["ops"][0]["type"] == "cast"


def test_a_dropout_has_no_op_and_every_other_layer_is_mapped():
    from edgekit.convert.layermap import tflite_map
    from edgekit.train.models import build_model

    deep = _trained_like(build_model("deep"))
    rows = _rows(tflite_map(_tflite(deep), deep))
    assert rows["dropout"]["status"] == "none" and "identity at inference" in rows["dropout"]["note"]
    assert all(r["status"] == "op" for name, r in rows.items() if name != "dropout")
