"""Variants with one layer ruined on purpose, for the diagnose and tune tests:
a Core ML recipe that palettizes one layer to 2 bits (through the recipe's
per-layer ``layers``), and a TFLite kernel rounded to 4 levels in place."""
from __future__ import annotations

import numpy as np
from support.trees import rehash_variant

BAD_LAYER = "conv2"
TWO_BIT = {"method": "palettize", "nbits": 2, "mode": "kmeans", "granularity": "per_tensor", "weight_threshold": 0}


def two_bit_recipe(recipe_id: str = "coreml-conv2-2bit", layer: str = BAD_LAYER) -> dict:
    return {"schema": "edgekit.recipe/2", "id": recipe_id, "format": "coreml", "kind": "low-bit",
            "reference": "coreml-fp32", "description": f"test only: float32 program, {layer} palettized to 2 bits",
            "finetune": None,
            "coreml": {"compute_precision": "float32", "compression": None, "minimum_deployment_target": "iOS16",
                       "layers": {layer: TWO_BIT}}}


def damage_tflite_kernel(vdir, layer: str = BAD_LAYER) -> None:
    """Round the float32 kernel of ``layer`` in ``vdir/model.tflite`` to 4 levels
    (a 2-bit uniform grid per tensor), then rehash the variant."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    path = vdir / "model.tflite"
    model = fu.read_model_from_bytearray(bytearray(path.read_bytes()))
    sg = model.subgraphs[0]
    names = [t.name.decode() if isinstance(t.name, bytes) else t.name for t in sg.tensors]
    k = next(i for i, n in enumerate(names) if n.endswith(f"/{layer}/Conv2D") and len(sg.tensors[i].shape) == 4)
    buf = model.buffers[sg.tensors[k].buffer]
    w = np.frombuffer(bytes(buf.data), np.float32).copy()
    step = np.abs(w).max() / 2
    buf.data = (np.clip(np.round(w / step), -2, 1) * step).astype(np.float32).view(np.uint8)
    path.write_bytes(bytes(fu.convert_object_to_bytearray(model)))
    rehash_variant(vdir)
