"""The layer map: which op and tensor of a converted file computes each Keras layer.

In: the original tf_keras model and a converted file (``.tflite`` bytes, or
the protobuf spec of an ML Program). Out: one JSON-ready table, stored in the
variant's ``variant.json`` under ``layers`` at convert time and read by
``edgekit diagnose`` (and ``edgekit tune``), so that nothing later guesses
from names again:

```jsonc
{"format": "tflite" | "coreml", "model": "cnn",
 "input": {"name": "serving_default_image:0", "index": 0},      // the file's image input (Core ML: the
                                                                // var after the program's pixel scaling)
 "groups": [{"layers": ["conv1"],                               // Keras layers this run of ops computes
             "ops": [{"index": 0, "type": "CONV_2D", "name": "..."}],   // in execution order
             "output": {"name": "...", "index": 8, "layout": "same" | "nchw"},
             "inputs": [{"name": "...", "index": 0, "from": null | "<layer>", "layout": ...}]}],
 "layers": [{"layer": "conv1", "class": "Conv2D", "status": "op" | "fused" | "none",
             "group": 0 | null, "fused_with": [...], "into": "<layer>" | null, "note": "..."}]}
```

How ops are matched to layers: TensorFlow names every tensor (TFLite) and op
(ML Program var, ``/`` turned into ``_``) after the Keras layer that made it
(``cnn/conv1/Relu;cnn/conv1/Conv2D``, ``cnn_conv1_Relu``); a fused op names
every layer it absorbed. An op named after no layer (a renamed ``max_pool``,
a ``softmax`` named ``Identity``, a cast, a quantize) joins the Keras layer
that no op claims between its named neighbours; with no such layer it joins
the next named group (the casts and layout transposes before an op belong
to that op), or the previous one at the end. Consecutive ops naming the same
layers form one group; the group's output is its last op's output and
stands for the last of its layers in Keras order (``status: "op"``); the
other layers of a fused group (a conv whose bias and ReLU were fused, a
batch norm folded into a conv) say ``status: "fused"`` and ``into`` that
layer. A layer without any op (Dropout at inference) says ``status:
"none"``. ``layout: "nchw"`` marks an ML Program value in channels-first
order where Keras has channels-last.

Each group's ``inputs`` are the values its ops read that no op of the group
makes and that are not constants, with ``from``: the layer whose float
output stands for that value (``null``: the model's input), which is what
diagnose feeds to measure the group alone.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

# Keras layer classes that compute nothing at inference.
IDENTITY_AT_INFERENCE = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise",
                                   "GaussianDropout", "AlphaDropout", "ActivityRegularization"})
# Wrapper prefixes tfmot gives the layers of a quantization-aware, pruned or clustered model.
TFMOT_PREFIXES = ("quant_", "prune_low_magnitude_", "cluster_")


def keras_layers(model) -> list[tuple[str, str, tuple]]:
    """(name, class, output shape without batch) of every layer but the input, in model order."""
    out = []
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "InputLayer":
            continue
        shape = layer.output_shape
        if isinstance(shape, list):
            shape = shape[0]
        out.append((layer.name, cls, tuple(int(d) for d in shape[1:])))
    return out


# ------------------------------------------------------------ the grouping

def _layer_index(layers: Sequence[tuple[str, str, tuple]]) -> dict[str, int]:
    return {name: i for i, (name, _, _) in enumerate(layers)}


def _group(ops: list[dict], named: list[set[str]], layers, *, output_op: int | None) -> list[dict]:
    """Group ``ops`` (execution order) by the layers each names; see the module docstring.
    ``named[i]``: the layers op i names. Returns groups {"layers", "op_positions"}."""
    index = _layer_index(layers)
    names = [set(s) for s in named]
    claimed = set().union(*names) if names else set()
    last = layers[-1][0] if layers else None
    if output_op is not None and not names[output_op] and last is not None and last not in claimed:
        names[output_op] = {last}   # the op making the graph output is the output layer (softmax 'Identity')
        claimed.add(last)
    # unnamed ops: the unclaimed, computing layers between their named neighbours, else the next group
    i = 0
    while i < len(ops):
        if names[i]:
            i += 1
            continue
        j = i
        while j < len(ops) and not names[j]:
            j += 1
        prev = max((index[n] for n in names[i - 1]), default=-1) if i > 0 else -1
        nxt = min((index[n] for n in names[j]), default=len(layers)) if j < len(ops) else len(layers)
        gap = {layers[k][0] for k in range(prev + 1, nxt)
               if layers[k][0] not in claimed and layers[k][1] not in IDENTITY_AT_INFERENCE}
        for k in range(i, j):
            if gap:
                names[k] = set(gap)
            elif j < len(ops):
                names[k] = set(names[j])
            elif i > 0:
                names[k] = set(names[i - 1])
        claimed |= gap
        i = j
    groups: list[dict] = []
    for pos, s in enumerate(names):
        if not s:
            continue
        if groups and s & groups[-1]["layers"]:
            groups[-1]["layers"] |= s
            groups[-1]["op_positions"].append(pos)
        else:
            groups.append({"layers": set(s), "op_positions": [pos]})
    return groups


def _layer_rows(layers, groups: list[dict]) -> list[dict]:
    index = _layer_index(layers)
    owner: dict[str, int] = {}
    for g, grp in enumerate(groups):
        for name in grp["layers"]:
            owner.setdefault(name, g)
    rows = []
    for name, cls, _ in layers:
        g = owner.get(name)
        if g is None:
            note = ("no op: identity at inference" if cls in IDENTITY_AT_INFERENCE
                    else "no op in the converted file (folded away by the converter)")
            rows.append({"layer": name, "class": cls, "status": "none", "group": None, "fused_with": [],
                         "into": None, "note": note})
            continue
        members = sorted(groups[g]["layers"], key=index.__getitem__)
        rep = members[-1]
        others = [m for m in members if m != name]
        if name == rep:
            note = f"fused op: {', '.join(members)}" if others else None
            rows.append({"layer": name, "class": cls, "status": "op", "group": g, "fused_with": others,
                         "into": None, "note": note})
        else:
            rows.append({"layer": name, "class": cls, "status": "fused", "group": g, "fused_with": others,
                         "into": rep, "note": f"fused into the op of {rep} ({', '.join(members)})"})
    return rows


def _representative(layers, group_layers: Iterable[str]) -> str:
    index = _layer_index(layers)
    return max(group_layers, key=index.__getitem__)


def _layout(var_shape: Sequence[int] | None, keras_shape: Sequence[int], channels_first: bool = False) -> str:
    """"same" when the value is in Keras' order, "nchw" when it is channels-first of a channels-last one.
    ``channels_first``: the file holds its image tensors channels-first (an ML Program converted from
    TensorFlow transposes the input once and keeps NCHW), so a shape both orders fit (H = W = C, e.g.
    16x16x16) is NCHW; by shape alone it would be read in Keras' order, transposed wrong."""
    if var_shape is None:
        return "same"
    v = tuple(int(d) for d in var_shape[1:])
    k = tuple(keras_shape)
    if len(k) != 3:
        return "same"
    if v == (k[2], k[0], k[1]) and (channels_first or v != k):
        return "nchw"
    return "same"


# ------------------------------------------------------------------ TFLite

def _tflite_layers_in(name: str, known: set[str]) -> set[str]:
    found = set()
    for part in name.split(";"):
        for seg in part.split("/"):
            for prefix in ("",) + TFMOT_PREFIXES:
                if seg.startswith(prefix) and seg[len(prefix):] in known:
                    found.add(seg[len(prefix):])
    return found


def tflite_map(model_content: bytes, keras_model) -> dict[str, Any]:
    """The layer map of a ``.tflite`` file (read through the LiteRT interpreter, no delegates)."""
    from edgekit import quiet

    with quiet.quiet():
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        it = Interpreter(model_content=model_content,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    layers = keras_layers(keras_model)
    known = {n for n, _, _ in layers}
    tensors = {int(d["index"]): d for d in it.get_tensor_details()}
    graph_inputs = [int(d["index"]) for d in it.get_input_details()]
    graph_outputs = {int(d["index"]) for d in it.get_output_details()}
    all_ops = list(it._get_ops_details())
    produced = {int(t): k for k, op in enumerate(all_ops) for t in op["outputs"]}

    def is_const(t: int, seen=()) -> bool:
        """A constant tensor, or one computed from constants only (a float16 weight's DEQUANTIZE)."""
        if t in graph_inputs:
            return False
        if t not in produced:
            return True
        op = all_ops[produced[t]]
        return all(int(i) < 0 or is_const(int(i)) for i in op["inputs"])

    const_ops = [k for k, op in enumerate(all_ops) if all(is_const(int(t)) for t in op["outputs"])]
    ops = [op for k, op in enumerate(all_ops) if k not in const_ops]
    named = [_tflite_layers_in(tensors[int(op["outputs"][0])]["name"], known) for op in ops]
    out_pos = next((p for p, op in enumerate(ops) if int(op["outputs"][0]) in graph_outputs), None)
    groups = _group(ops, named, layers, output_op=out_pos)
    shapes = {n: s for n, _, s in layers}
    rep_of_tensor: dict[int, str | None] = {t: None for t in graph_inputs}
    out_groups = []
    for grp in groups:
        members = [ops[p] for p in grp["op_positions"]]
        made = {int(t) for op in members for t in op["outputs"]}
        feeders = sorted({produced[int(t)] for op in members for t in op["inputs"]
                          if int(t) >= 0 and int(t) in produced and produced[int(t)] in const_ops})
        ins = []
        for op in members:
            for t in (int(t) for t in op["inputs"]):
                if t < 0 or t in made or is_const(t) or any(i["index"] == t for i in ins):
                    continue
                ins.append({"name": tensors[t]["name"], "index": t, "from": rep_of_tensor.get(t, None),
                            "layout": "same"})
        rep = _representative(layers, grp["layers"])
        out_t = int(members[-1]["outputs"][0])
        rep_of_tensor[out_t] = rep
        out_groups.append({
            "layers": sorted(grp["layers"], key=_layer_index(layers).__getitem__),
            "ops": [{"index": int(op["index"]), "type": op["op_name"], "name": tensors[int(op["outputs"][0])]["name"]}
                    for op in members],
            "const_ops": [int(all_ops[k]["index"]) for k in feeders],
            "output": {"name": tensors[out_t]["name"], "index": out_t,
                       "layout": _layout(list(tensors[out_t]["shape"]), shapes[rep])},
            "inputs": ins,
        })
    return {"format": "tflite", "model": getattr(keras_model, "name", None),
            "input": {"name": tensors[graph_inputs[0]]["name"], "index": graph_inputs[0]},
            "groups": out_groups, "layers": _layer_rows(layers, groups)}


# --------------------------------------------------------------- Core ML

def _mil_layers_in(names: Iterable[str], known: Sequence[str]) -> set[str]:
    """Per name, the longest layer name it contains as a ``_``-delimited run (``mobile_s1_bn_Fused…`` is s1_bn)."""
    found = set()
    for n in names:
        best = None
        for layer in known:
            for prefix in ("",) + TFMOT_PREFIXES:
                pat = re.escape(prefix + layer)
                if re.search(rf"(?:^|_){pat}(?:_|$)", n) and (best is None or len(layer) > len(best)):
                    best = layer
        if best is not None:
            found.add(best)
    return found


def _dims(value_type) -> list[int] | None:
    if value_type.WhichOneof("type") != "tensorType":
        return None
    dims = []
    for d in value_type.tensorType.dimensions:
        dims.append(int(d.constant.size) if d.WhichOneof("dimension") == "constant" else -1)
    return dims


def coreml_map(spec, keras_model) -> dict[str, Any]:
    """The layer map of an ML Program spec (``MLModel.get_spec()`` or the saved file's)."""
    fn = spec.mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset]
    layers = keras_layers(keras_model)
    known = [n for n, _, _ in layers]
    func_input = fn.inputs[0].name
    consts = {o.name for op in block.operations if op.type == "const" or op.type.startswith("constexpr_")
              for o in op.outputs}
    var_shape = {o.name: _dims(o.type) for op in block.operations for o in op.outputs}
    # the program's own pixel scaling (mul, then add, by scalars on the input) stands for the model input
    model_input = func_input
    compute = []
    for op in block.operations:
        if op.type == "const" or op.type.startswith("constexpr_") or op.type == "classify":
            continue
        xs = [a.name for a in op.inputs["x"].arguments] if "x" in op.inputs else []
        if op.type in ("mul", "add") and xs == [model_input] and not compute:
            model_input = op.outputs[0].name
            continue
        compute.append(op)

    def arg_names(op) -> list[str]:
        return [a.name for b in op.inputs.values() for a in b.arguments if a.name in consts and a.name]

    named = [_mil_layers_in([op.outputs[0].name, *arg_names(op)], known) for op in compute]
    outputs = set(block.outputs)
    out_pos = None
    for p, op in enumerate(compute):   # the op whose value becomes the block output (through casts)
        if op.outputs[0].name in outputs or any(op.outputs[0].name == a.name for c in block.operations
                                                 if c.type == "classify" for b in c.inputs.values()
                                                 for a in b.arguments):
            out_pos = p
    if out_pos is not None:            # a trailing cast is not the output layer; the op before it is
        while out_pos > 0 and compute[out_pos].type == "cast":
            out_pos -= 1
    groups = _group(compute, named, layers, output_op=out_pos)
    shapes = {n: s for n, _, s in layers}
    rep_of_var: dict[str, str | None] = {model_input: None}
    out_groups = []
    index = _layer_index(layers)
    for grp in groups:
        members = [compute[p] for p in grp["op_positions"]]
        made = {o.name for op in members for o in op.outputs}
        ins = []
        for op in members:
            for b in op.inputs.values():
                for a in b.arguments:
                    v = a.name
                    if not v or v in made or v in consts or any(i["name"] == v for i in ins):
                        continue
                    src = rep_of_var.get(v)
                    ins.append({"name": v, "from": src,
                                "layout": _layout(var_shape.get(v), shapes[src] if src else keras_input_shape(keras_model),
                                                  channels_first=True)})
        rep = _representative(layers, grp["layers"])
        out_v = members[-1].outputs[0].name
        rep_of_var[out_v] = rep
        out_groups.append({
            "layers": sorted(grp["layers"], key=index.__getitem__),
            "ops": [{"type": op.type, "name": op.outputs[0].name} for op in members],
            "output": {"name": out_v, "layout": _layout(var_shape.get(out_v), shapes[rep], channels_first=True)},
            "inputs": ins,
        })
    return {"format": "coreml", "model": getattr(keras_model, "name", None),
            "input": {"name": model_input}, "groups": out_groups, "layers": _layer_rows(layers, groups)}


def keras_input_shape(model) -> tuple:
    return tuple(int(d) for d in model.inputs[0].shape[1:])


def weight_ops(layer_map: dict, layer: str) -> list[str]:
    """The ML Program ops that hold the weights of ``layer`` (conv, linear, matmul, ...), by
    name: what coremltools' ``OptimizationConfig(op_name_configs=...)`` keys on."""
    row = next((r for r in layer_map["layers"] if r["layer"] == layer), None)
    if row is None or row["group"] is None:
        return []
    group = layer_map["groups"][row["group"]]
    return [op["name"] for op in group["ops"] if op["type"] in WEIGHT_OP_TYPES]


def layers_with_weights(layer_map: dict) -> list[str]:
    """The layers (group representatives) whose group holds a weight op, in model order."""
    out = []
    for grp in layer_map["groups"]:
        if any(op["type"] in WEIGHT_OP_TYPES for op in grp["ops"]):
            out.extend(grp["layers"])
    return out


WEIGHT_OP_TYPES = frozenset({"conv", "conv_transpose", "linear", "matmul", "CONV_2D", "DEPTHWISE_CONV_2D",
                             "FULLY_CONNECTED", "TRANSPOSE_CONV"})
