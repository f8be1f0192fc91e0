"""Per-layer weight precision for TFLite: a float32 ``.tflite`` and a recipe's
``tflite.layers`` in, the same model with the named Keras layers' weights
quantized out.

``quantize(model_content, layers, keras)`` finds each layer's weight op
(CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) through the layer map
(edgekit.convert.layermap) and hands ai-edge-quantizer (Google's LiteRT
quantizer, pinned 0.10.0, which works with the pinned TensorFlow 2.21 and
ai-edge-litert 2.3) one recipe entry per op, keyed by the op's exact output
tensor name: weight-only, ``int8`` or ``int4`` (``{"weights": "int4"}``),
symmetric per output channel unless the setting says ``"symmetric": false``
(a zero point per channel) or ``"granularity": "tensor"`` (one scale for the
layer); ``null`` leaves the layer float32. The
weights are stored as integers and dequantized by DEQUANTIZE ops (read back
from the result: a layer left float is an error); the
arithmetic stays float32 (the most accurate of the quantizer's modes, same
file size as its integer-compute mode). Why not the TFLiteConverter's own
options: they quantize a whole model at once (no per-layer choice besides a
debugger's deny list) and have no 4-bit weights.
"""
from __future__ import annotations

import re

from edgekit.quiet import quiet

WEIGHT_BITS = {"int8": 8, "int4": 4}
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


GRANULARITY = {"channel": "CHANNELWISE", "tensor": "TENSORWISE"}


def _entry(op_name: str, op_type: str, setting: dict) -> dict:
    weights = {"num_bits": WEIGHT_BITS[setting["weights"]], "symmetric": setting.get("symmetric", True),
               "granularity": GRANULARITY[setting.get("granularity", "channel")], "dtype": "INT"}
    return {"regex": re.escape(op_name), "operation": op_type, "algorithm_key": "min_max_uniform_quantize",
            "op_config": {"weight_tensor_config": weights,
                          "compute_precision": "FLOAT", "explicit_dequantize": True, "skip_checks": False,
                          "min_weight_elements": 0}}


def quantize(model_content: bytes, layers: dict, keras) -> bytes:
    """``model_content`` with each named layer's weights quantized as ``layers`` says."""
    from edgekit.convert import layermap

    lm = layermap.tflite_map(model_content, keras)
    entries = []
    for name, setting in layers.items():
        ops = [op for op in _group_ops(lm, name) if op["type"] in WEIGHT_OPS]
        if not ops:
            raise ValueError(f"recipe tflite.layers names {name!r}, which has no weight op in the model "
                             f"(layers with weights: {', '.join(layermap.layers_with_weights(lm)) or 'none'})")
        if setting is not None:
            entries += [_entry(op["name"], op["type"], setting) for op in ops]
    if not entries:
        return model_content
    with quiet():
        from ai_edge_quantizer import quantizer

        qt = quantizer.Quantizer(bytearray(model_content))
        qt.load_quantization_recipe(entries)
        out = bytes(qt.quantize().quantized_model)
    # read back: every layer asked for integer weights now has them (a DEQUANTIZE feeding its op)
    after = layermap.tflite_map(out, keras)
    for name, setting in layers.items():
        row = next((r for r in after["layers"] if r["layer"] == name), None)
        if setting is not None and (row is None or row["group"] is None
                                    or not after["groups"][row["group"]].get("const_ops")):
            raise ValueError(f"ai-edge-quantizer left the weights of {name!r} in float32")
    return out


def _group_ops(lm: dict, layer: str) -> list[dict]:
    row = next((r for r in lm["layers"] if r["layer"] == layer), None)
    if row is None or row["group"] is None:
        return []
    return lm["groups"][row["group"]]["ops"]
