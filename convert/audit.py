"""The compression audit: what a converted file really holds, weight tensor by weight tensor.

A recipe says what it asks for ("4-bit palettized"); the converter decides
what it does (coremltools leaves every tensor under ``weight_threshold``
elements in float16, TFLite's dynamic-range quantizer leaves small tensors in
float32). This module reads the answer back from the file itself:

- TFLite: the flatbuffer's constant tensors feeding CONV_2D,
  DEPTHWISE_CONV_2D and FULLY_CONNECTED (through a DEQUANTIZE for float16
  weights), their dtype and quantization parameters;
- Core ML: the ML Program's const and constexpr ops feeding ``conv`` and
  ``linear`` (palette look-up tables, affine int8, sparse masks, chained).

Each weight of the original Keras model gets one ``WeightRow``: its name and
element count, what the recipe requested, what the file stores (dtype and
bits, palette size, sparsity) and the bits per weight it costs there
(everything stored for it: values, indices, tables, masks, scales), or why
it was left alone. ``audit`` returns the rows and the effective bits per
weight of the whole model; convert records them in variant.json
(``weights``), the report shows them.

The file's weighted ops are matched to the Keras layers in order (both are
the forward order of the network), checked by element count; a Keras weight
the converter folded into another tensor (batch normalisation) gets a row
that says so, so the rows always add up to the model's parameter count.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

# Keras layer classes whose kernels become a conv or a matmul in the file.
WEIGHTED_LAYERS = ("Conv2D", "DepthwiseConv2D", "Dense", "SeparableConv2D", "Conv1D")
COREML_DEFAULT_WEIGHT_THRESHOLD = 2048  # coremltools.optimize.coreml OpCompressorConfig's default


@dataclass(frozen=True)
class KerasWeight:
    """One weight array of the original model, in model order."""

    layer: str
    role: str           # kernel, bias, depthwise_kernel, pointwise_kernel, gamma, moving_mean, ...
    layer_type: str
    elements: int

    @property
    def name(self) -> str:
        return f"{self.layer}/{self.role}"


@dataclass(frozen=True)
class WeightRow:
    name: str
    elements: int
    requested: str
    stored: str               # e.g. "float16", "int8 (per-channel scales)", "4-bit palette (16 values)"
    bits: float | None        # stored bits per weight in the file; None: not stored on its own
    sparsity: float | None    # share of exact zeros in the decoded values
    compressed: bool          # stored in fewer than 16 bits per value (quantized, palettized, sparse)
    note: str | None = None   # why it was left alone, or where it went

    def to_json(self) -> dict:
        d = asdict(self)
        d["bits"] = None if self.bits is None else round(self.bits, 3)
        d["sparsity"] = None if self.sparsity is None else round(self.sparsity, 4)
        return d


@dataclass(frozen=True)
class Audit:
    rows: list[WeightRow]

    @property
    def elements(self) -> int:
        return sum(r.elements for r in self.rows)

    @property
    def bits_per_weight(self) -> float | None:
        """Stored bits per weight over the weights stored on their own."""
        stored = [r for r in self.rows if r.bits is not None]
        n = sum(r.elements for r in stored)
        return sum(r.bits * r.elements for r in stored) / n if n else None

    @property
    def compressed_share(self) -> float:
        """Share of the model's weights (by element) stored compressed."""
        return sum(r.elements for r in self.rows if r.compressed) / self.elements if self.elements else 0.0

    def to_json(self) -> dict:
        return {"bits_per_weight": None if self.bits_per_weight is None else round(self.bits_per_weight, 3),
                "compressed_share": round(self.compressed_share, 4), "elements": self.elements,
                "rows": [r.to_json() for r in self.rows]}


def keras_weights(model) -> list[KerasWeight]:
    """Every weight of a Keras model (trainable or not), in layer order."""
    out = []
    for layer in model.layers:
        for w in layer.weights:
            role = w.name.split("/")[-1].split(":")[0]
            out.append(KerasWeight(layer=layer.name, role=role, layer_type=type(layer).__name__,
                                   elements=int(np.prod(w.shape))))
    return out


# ------------------------------------------------------------------ requested

def requested(recipe) -> tuple[str, dict]:
    """(what the recipe asks of every weight, the knobs that decide skips)."""
    ft = (recipe.finetune or {})
    prefix = {"prune": f"pruned to {ft.get('target_sparsity', 0):.0%} zeros, ",
              "cluster": f"clustered to {ft.get('clusters')} values, ",
              "qat": "quantization-aware trained, "}.get(ft.get("method"), "")
    if recipe.format == "tflite":
        t = recipe.tflite or {}
        types = t.get("supported_types") or []
        if not t.get("optimizations"):
            what = "float32"
        elif "float16" in types:
            what = "float16"
        elif "int16" in (t.get("inference_input_type"), *types) or any("INT16" in o for o in t.get("ops", [])):
            what = "int8 weights, int16 activations"
        elif t.get("representative"):
            what = "int8"
        else:
            what = "int8 (dynamic range)"
        return prefix + what, {}
    c = recipe.coreml or {}
    comp = c.get("compression")
    base = c.get("compute_precision", "float32")
    if not comp:
        return prefix + base, {}
    threshold = int(comp.get("weight_threshold", COREML_DEFAULT_WEIGHT_THRESHOLD))
    what = {"palettize": f"{comp.get('nbits')}-bit palette", "linear": f"{comp.get('dtype', 'int8')} linear",
            "prune": f"pruned to {comp.get('target_sparsity', 0):.0%} zeros"}.get(comp["method"], comp["method"])
    return prefix + what, {"weight_threshold": threshold}


# ---------------------------------------------------------------- the file

@dataclass(frozen=True)
class _Stored:
    """One weight tensor as the file holds it."""

    elements: int
    bits_total: float
    stored: str
    sparsity: float
    compressed: bool


def _match(keras: Sequence[KerasWeight], found: list[tuple[str, list[_Stored | None]]],
           request: str, knobs: dict, fmt: str) -> list[WeightRow]:
    """Rows for every Keras weight: the file's weighted ops, in order, against the
    Keras layers that have a kernel; their (kernel, bias) in that order."""
    layers: list[tuple[str, list[KerasWeight]]] = []
    for w in keras:
        if not layers or layers[-1][0] != w.layer:
            layers.append((w.layer, []))
        layers[-1][1].append(w)
    rows: list[WeightRow] = []
    ops = iter(found)
    for layer, weights in layers:
        if weights[0].layer_type not in WEIGHTED_LAYERS:
            rows += [WeightRow(w.name, w.elements, request, "folded", None, None, False,
                               "not stored on its own: the converter folded it into a neighbouring "
                               "layer's weights") for w in weights]
            continue
        kernels = [w for w in weights if w.role != "bias"]
        bias = next((w for w in weights if w.role == "bias"), None)
        # one op in the file per kernel (a separable conv is two); the bias is the last op's
        taken = [next(ops, None) for _ in kernels]
        for w, op in zip(kernels, taken):
            rows.append(_row(w, op[1][0] if op else None, request, knobs, fmt))
        if bias is not None:
            last = taken[-1] if taken else None
            rows.append(_row(bias, last[1][1] if last else None, request, knobs, fmt))
    return rows


def _row(w: KerasWeight, s: _Stored | None, request: str, knobs: dict, fmt: str) -> WeightRow:
    if s is None or s.elements != w.elements:
        return WeightRow(w.name, w.elements, request, "folded", None, None, False,
                         "not found on its own in the file (folded or fused by the converter)")
    note = None
    if not s.compressed and not request.endswith(("float32", "float16")) and "int16" not in s.stored:
        threshold = knobs.get("weight_threshold")
        if threshold is not None and w.elements <= threshold:
            note = (f"left {s.stored}: {w.elements} elements, not more than the recipe's weight_threshold "
                    f"({threshold}); coremltools skips smaller tensors")
        elif w.role == "bias" and fmt == "coreml":
            # coremltools' compressors refuse every rank-1 const (need_compress_const:
            # "Disable 1D tensor compression due to MIL 1D Tensor bug"), whatever the threshold
            note = "biases are not compressed: coremltools never compresses 1-D tensors"
        elif w.role == "bias":
            note = "biases are not compressed"
        else:
            note = f"left {s.stored} by the {'TFLite' if fmt == 'tflite' else 'Core ML'} converter"
    return WeightRow(w.name, w.elements, request, s.stored, s.bits_total / s.elements, s.sparsity, s.compressed, note)


# ------------------------------------------------------------------ TFLite

_TFL_BITS = {"FLOAT32": 32, "FLOAT16": 16, "INT8": 8, "UINT8": 8, "INT16": 16, "INT32": 32, "INT64": 64, "INT4": 4}
_TFL_NP = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16,
           "INT32": np.int32, "INT64": np.int64}
_TFL_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def _tflite_found(path: Path) -> list[tuple[str, list[_Stored | None]]]:
    from ai_edge_litert import schema_py_generated as fb

    buf = Path(path).read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(buf, 0))
    type_names = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    op_names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    sub = model.subgraphs[0]
    producers = {}
    for op in sub.operators:
        for o in op.outputs:
            producers[o] = op

    def code(op) -> str:
        c = model.operatorCodes[op.opcodeIndex]
        return op_names.get(max(c.builtinCode, c.deprecatedBuiltinCode), "?")

    def stored(index: int) -> _Stored | None:
        if index < 0:
            return None
        t = sub.tensors[index]
        data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
        if data is None or len(data) == 0:  # computed: a float16 weight goes through DEQUANTIZE
            op = producers.get(index)
            return stored(op.inputs[0]) if op is not None and code(op) == "DEQUANTIZE" else None
        tname = type_names.get(t.type, "?")
        elements = int(np.prod(t.shape)) if t.shape is not None and len(t.shape) else 1
        raw = np.asarray(data, np.uint8)
        values = raw.view(_TFL_NP[tname]) if tname in _TFL_NP else raw
        q = t.quantization
        scales = 0 if q is None or q.scale is None else len(q.scale)
        zp = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [0], np.int64)
        if tname in ("FLOAT32", "FLOAT16") or not zp.any():
            zero = int(np.count_nonzero(values == 0))
        elif zp.size == 1:
            zero = int(np.count_nonzero(values == zp[0]))
        else:  # per-channel zero points along the quantized dimension
            v = np.moveaxis(values.reshape(t.shape), q.quantizedDimension, 0).reshape(zp.size, -1)
            zero = int(np.count_nonzero(v == zp[:, None]))
        bits_total = len(raw) * 8 + scales * (32 + 64)  # values; float32 scale + int64 zero point per channel
        desc = tname.lower()
        if scales > 1:
            desc += f" (per-channel scales, {scales})"
        elif scales == 1 and tname not in ("FLOAT32", "FLOAT16"):
            desc += " (one scale)"
        distinct = len(np.unique(values)) if tname in ("FLOAT32", "FLOAT16") else None
        if distinct is not None and distinct <= 256 and elements > 256:
            desc += f", {distinct} distinct values"
        return _Stored(elements=elements, bits_total=bits_total, stored=desc, sparsity=zero / max(elements, 1),
                       compressed=_TFL_BITS.get(tname, 32) < 16)

    found = []
    for op in sub.operators:
        name = code(op)
        if name in _TFL_WEIGHTED:
            w = 2 if name == "TRANSPOSE_CONV" else 1
            b = 3 if name == "TRANSPOSE_CONV" else 2
            found.append((name, [stored(op.inputs[w]), stored(op.inputs[b]) if len(op.inputs) > b else None]))
    return found


# ------------------------------------------------------------------ Core ML

_MIL_WEIGHTED = {"conv": ("weight", "bias"), "linear": ("weight", "bias"), "conv_transpose": ("weight", "bias")}
_SKIP_ARGS = {"shape", "axis", "vector_axis", "name"}


def _mil_bits(dtype: str | None, arr: np.ndarray) -> int:
    m = re.search(r"(\d+)$", dtype or "")
    if m:
        return int(m.group(1))
    return arr.dtype.itemsize * 8


def _coreml_found(path: Path) -> list[tuple[str, list[_Stored | None]]]:
    from edgekit.runtime.mil.program import load

    prog = load(path)
    producer = {op.name: op for op in prog._ops}
    consts = prog._consts

    def total_bits(name: str) -> float:
        op = producer[name]
        if op.type == "const":
            return consts[name].size * _mil_bits(op.outputs[0][1].dtype, consts[name])
        bits = 0.0
        for key, items in op.args.items():
            if key in _SKIP_ARGS:
                continue
            for kind, v in items:
                if kind == "var" and v in producer:
                    bits += total_bits(v)
                elif kind == "value" and isinstance(v, np.ndarray) and v.dtype != object:
                    bits += v.size * v.dtype.itemsize * 8
        return bits

    def describe(name: str) -> tuple[str, bool]:
        op = producer[name]
        if op.type == "const":
            dtype = op.outputs[0][1].dtype or str(consts[name].dtype)
            return {"fp16": "float16", "fp32": "float32"}.get(dtype, dtype), False
        if op.type == "constexpr_lut_to_dense":
            lut = prog._const_arg(op, "lut")
            entries = lut.size if "shape" in op.args else lut.shape[-2] if lut.ndim >= 2 else lut.size
            nbits = int(round(math.log2(max(entries, 2))))
            return f"{nbits}-bit palette ({entries} values)", True
        if op.type == "constexpr_affine_dequantize":
            q = prog._const_arg(op, "quantized_data")
            scale = np.asarray(prog._const_arg(op, "scale"))
            return f"{q.dtype} linear ({'per-channel' if scale.size > 1 else 'one'} scale)", True
        if op.type == "constexpr_blockwise_shift_scale":
            d = prog._const_arg(op, "data")
            return f"{d.dtype} blockwise", True
        if op.type == "constexpr_sparse_to_dense":
            inner = next((v for k, items in op.args.items() if k == "nonzero_data"
                          for kind, v in items if kind == "var" and v in producer), None)
            what = describe(inner)[0] if inner else "float16"
            return f"sparse ({what} non-zeros, 1-bit mask)", True
        if op.type == "constexpr_cast":
            return "float16 cast", False
        return op.type, True

    def stored(items) -> _Stored | None:
        if not items or items[0][0] != "var" or items[0][1] not in producer:
            return None
        name = items[0][1]
        value = consts.get(name)
        if value is None:
            return None
        desc, compressed = describe(name)
        return _Stored(elements=int(value.size), bits_total=total_bits(name), stored=desc,
                       sparsity=float(np.count_nonzero(value == 0)) / max(value.size, 1), compressed=compressed)

    found = []
    for op in prog._ops:
        if op.type in _MIL_WEIGHTED:
            w, b = _MIL_WEIGHTED[op.type]
            found.append((op.type, [stored(op.args.get(w)), stored(op.args.get(b))]))
    return found


def audit(path: str | Path, fmt: str, recipe, keras: Sequence[KerasWeight]) -> Audit:
    """The audit of one converted file against the original model's weights."""
    request, knobs = requested(recipe)
    found = _tflite_found(Path(path)) if fmt == "tflite" else _coreml_found(Path(path))
    return Audit(_match(keras, found, request, knobs, fmt))


def summary(audit_json: dict[str, Any]) -> str:
    """One line for tables: effective bits per weight and the share compressed."""
    bpw = audit_json.get("bits_per_weight")
    share = audit_json.get("compressed_share", 0.0)
    return f"{bpw:.2f} bits/weight, {share:.0%} compressed" if bpw is not None else "n/a"
