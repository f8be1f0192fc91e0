"""Core ML export: a tf_keras model and a coreml recipe in, an app-ready ML Program out.

``convert`` runs ``coremltools.convert`` to an ML Program with an image input
(``image``, ``(1,H,W,C)``, grayscale, RGB or BGR as the model's ``io.color``,
with the scale and per-channel bias of its ``io.pixels``; see ``image_input``) and a classifier
output (``classLabel`` and the probabilities dictionary ``classLabel_probs``,
keyed by the dataset's class names), at the recipe's compute precision and
minimum deployment target; then applies the recipe's weight compression
(``coremltools.optimize.coreml``: linear_quantize_weights, palettize_weights
or prune_weights) and the metadata Xcode shows (author, license,
description, version, per-feature descriptions, and the edgekit source-model
hash in ``user_defined_metadata``). ``describe`` reads the I/O, the MIL op
types and the deployment target back from the model's spec.

Only the standard coremltools pipeline is used: edgekit's own numpy reader
(``edgekit.runtime.mil``) executes exactly these files.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator

from edgekit.convert.recipe import Recipe
from edgekit.quiet import quiet
from edgekit.rundir import INPUT_NAME, PixelMapping

FILE_NAME = "Model.mlpackage"
LABEL_OUTPUT = "classLabel"
PROBS_OUTPUT = "classLabel_probs"
# specificationVersion -> the oldest OS that runs it (coremltools' _SPECIFICATION_VERSION_IOS_*).
SPEC_TARGETS = {6: "iOS15", 7: "iOS16", 8: "iOS17", 9: "iOS18"}


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Conversions inside pay no garbage-collector walks over what existed
    before them. coremltools calls ``gc.collect()`` three times per
    conversion, and each walks every object TensorFlow, Keras and the loaded
    model made (about 380,000; 0.3-0.6 s a walk on this 2-core machine, 7 s
    of a default convert). ``gc.freeze`` moves those objects out of the
    collector's generations; the conversions' own garbage is still collected,
    and ``gc.unfreeze`` at the end gives the older objects back."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _op_config(comp: dict):
    """coremltools' op config for one compression object of a recipe."""
    from coremltools.optimize import coreml as cto

    threshold = comp.get("weight_threshold", 2048)
    if comp["method"] == "linear":
        sized = {"block_size": comp["block_size"]} if "block_size" in comp else {}
        return cto.OpLinearQuantizerConfig(mode=comp["mode"], dtype=comp["dtype"], granularity=comp["granularity"],
                                           weight_threshold=threshold, **sized)
    if comp["method"] == "palettize":
        sized = {"group_size": comp["group_size"]} if "group_size" in comp else {}
        return cto.OpPalettizerConfig(mode=comp["mode"], nbits=comp["nbits"], granularity=comp["granularity"],
                                      enable_per_channel_scale=comp.get("enable_per_channel_scale", False),
                                      weight_threshold=threshold, **sized)
    return cto.OpMagnitudePrunerConfig(target_sparsity=comp["target_sparsity"], weight_threshold=threshold)


_COMPRESSORS = {"palettize": "palettize_weights", "linear": "linear_quantize_weights", "prune": "prune_weights"}


def _compress(mlmodel, comp: dict | None, layers: dict | None = None, keras=None):
    """Apply the recipe's ``compression`` to every weight, and its per-layer
    ``layers`` to the named Keras layers' weight ops (found through the layer
    map), one coremltools pass per method used, each with
    ``OptimizationConfig(op_name_configs=...)``: an op another method (or
    ``null``) owns is set to None in the passes that must leave it alone."""
    from coremltools.optimize import coreml as cto

    per_op: dict[str, dict | None] = {}
    layer_of: dict[str, str] = {}
    if layers:
        from edgekit.convert import layermap

        lm = layermap.coreml_map(mlmodel.get_spec(), keras)
        for name, layer_comp in layers.items():
            ops = layermap.weight_ops(lm, name)
            if not ops:
                raise ValueError(f"recipe coreml.layers names {name!r}, which has no weight op in the program "
                                 f"(layers with weights: {', '.join(layermap.layers_with_weights(lm)) or 'none'})")
            per_op.update({op: layer_comp for op in ops})
            layer_of.update({op: name for op in ops})
    used = {comp["method"]} if comp else set()
    used |= {v["method"] for v in per_op.values() if v}
    for method in (m for m in _COMPRESSORS if m in used):
        glob = _op_config(comp) if comp and comp["method"] == method else None
        names = {op: (_op_config(v) if v and v["method"] == method else None) for op, v in per_op.items()}
        config = cto.OptimizationConfig(global_config=glob, op_name_configs=names or None)
        mlmodel = getattr(cto, _COMPRESSORS[method])(mlmodel, config)
    # read back: coremltools skips with a log line (not an error) an op it cannot compress as asked,
    # e.g. a group or block size the weight's shape does not divide; a layer asked for must be compressed
    left = sorted({layer_of[op] for op in uncompressed(mlmodel.get_spec(), [op for op, v in per_op.items() if v])})
    if left:
        raise ValueError(f"coremltools left the weights of {', '.join(map(repr, left))} uncompressed "
                         f"(recipe coreml.layers asks for {', '.join(str(layers[n]) for n in left)})")
    return mlmodel


def uncompressed(spec, op_names) -> list[str]:
    """The ops of ``op_names`` (by output name) none of whose inputs a constexpr op makes:
    their weights are stored as they were."""
    fn = spec.mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset]
    made_by_constexpr = {o.name for op in block.operations if op.type.startswith("constexpr_") for o in op.outputs}
    wanted = set(op_names)
    found = {}
    for op in block.operations:
        if op.outputs and op.outputs[0].name in wanted:
            found[op.outputs[0].name] = any(a.name in made_by_constexpr for b in op.inputs.values()
                                            for a in b.arguments)
    return [name for name in op_names if not found.get(name, False)]


def image_input(model, image_shape: tuple[int, int, int], color: str, pixels: PixelMapping | None):
    """(the model to convert, its ``ct.ImageType``): an image input in the
    model's colour layout whose scale and per-channel bias are the recorded
    pixel mapping (``input = pixel * scale + bias``). Core ML's image input
    has one scale for all channels; a mapping with per-channel scales (a
    --std that differs by channel) is put into the program instead, as a
    per-channel multiply-add in front of the model, under an image input of
    scale 1 and bias 0 (the same arithmetic, still fed plain pixels)."""
    import coremltools as ct

    h, w, ch = image_shape
    pixels = pixels or PixelMapping.from_range(0.0, 1.0, ch)
    layout = {"grayscale": ct.colorlayout.GRAYSCALE, "rgb": ct.colorlayout.RGB, "bgr": ct.colorlayout.BGR}[color]
    if len(set(pixels.scale)) == 1:
        bias = pixels.bias[0] if ch == 1 else list(pixels.bias)
        return model, ct.ImageType(name=INPUT_NAME, shape=(1, h, w, ch), scale=pixels.scale[0], bias=bias,
                                   color_layout=layout)
    import numpy as np
    import tf_keras as keras

    inp = keras.Input(shape=(h, w, ch), name=INPUT_NAME)
    x = keras.layers.Rescaling(np.asarray(pixels.scale, np.float32), np.asarray(pixels.bias, np.float32),
                               name="edgekit_pixels")(inp)
    wrapped = keras.Model(inp, model(x), name=f"{model.name}_pixels")
    return wrapped, ct.ImageType(name=INPUT_NAME, shape=(1, h, w, ch), scale=1.0,
                                 bias=0.0 if ch == 1 else [0.0] * ch, color_layout=layout)


def compress_layers(mlmodel, layers: dict, keras):
    """``mlmodel`` with each named Keras layer's weights compressed as ``layers``
    says (a recipe's ``coreml.layers``); the input model is not changed.
    What ``edgekit tune`` builds its candidates with."""
    with quiet():
        return _compress(mlmodel, None, layers, keras)


def convert(model, recipe: Recipe, *, class_names: list[str], image_shape: tuple[int, int, int],
            metadata: dict, color: str = "grayscale", pixels: PixelMapping | None = None,
            bases: dict | None = None):
    """The compressed, annotated ``MLModel`` (not yet saved). ``metadata``:
    author, license, short_description, version, user_defined (str -> str),
    input_description, output_descriptions {name: text}. ``color`` and
    ``pixels``: the model's ``io.color`` and ``io.pixels`` (default grayscale, pixel / 255).
    ``bases``: a dict the caller keeps across recipes: the uncompressed
    program of each (model, precision, deployment target) is converted once
    and every recipe compressing it starts from that one (the default
    matrix: 3 conversions instead of 7; the compression passes never change
    their input)."""
    c = recipe.coreml
    with quiet():
        import coremltools as ct

        key = (id(model), c["compute_precision"], c["minimum_deployment_target"], tuple(class_names),
               tuple(image_shape), color, pixels)
        cached = bases.get(key) if bases is not None else None
        if cached is not None and cached[0] is model:
            mlmodel = cached[1]
        else:
            source, image = image_input(model, image_shape, color, pixels)
            mlmodel = ct.convert(
                source,
                source="tensorflow",
                convert_to="mlprogram",
                inputs=[image],
                classifier_config=ct.ClassifierConfig(list(class_names)),
                compute_precision=getattr(ct.precision, c["compute_precision"].upper()),
                minimum_deployment_target=getattr(ct.target, c["minimum_deployment_target"]),
            )
            if bases is not None:
                bases[key] = (model, mlmodel)
        if c["compression"] is not None or c.get("layers"):
            mlmodel = _compress(mlmodel, c["compression"], c.get("layers"), model)   # a new model
        elif bases is not None:   # the metadata below must not land on the shared base
            mlmodel = ct.models.MLModel(mlmodel.get_spec(), weights_dir=mlmodel.weights_dir)
    mlmodel.author = metadata["author"]
    mlmodel.license = metadata["license"]
    mlmodel.short_description = metadata["short_description"]
    mlmodel.version = metadata["version"]
    mlmodel.input_description[INPUT_NAME] = metadata["input_description"]
    for name, text in metadata["output_descriptions"].items():
        mlmodel.output_description[name] = text
    for key, value in metadata["user_defined"].items():
        mlmodel.user_defined_metadata[key] = value
    return mlmodel


def save(mlmodel, path) -> None:
    with quiet():
        mlmodel.save(str(path))


def load_spec(path):
    """The protobuf spec of a saved ``.mlpackage`` (works on Linux: no model load)."""
    with quiet():
        import coremltools as ct

        return ct.models.MLModel(str(path), skip_model_load=True).get_spec()


def program_ops(spec) -> list[str]:
    """Sorted MIL op types of every function and block of the ML Program."""
    found: set[str] = set()

    def walk(block):
        for op in block.operations:
            found.add(op.type)
            for inner in op.blocks:
                walk(inner)

    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            walk(block)
    return sorted(found)


def _scalar_consts(block) -> dict[str, float | list[float]]:
    """{output name: value} of the block's float consts with an immediate value:
    a float for a scalar, a list for a per-channel vector (3 values)."""
    out = {}
    for op in block.operations:
        if op.type == "const" and "val" in op.attributes:
            t = op.attributes["val"].immediateValue.tensor
            vals = list(t.floats.values)
            if len(vals) == 1:
                out[op.outputs[0].name] = float(vals[0])
            elif len(vals) == 3:
                out[op.outputs[0].name] = [float(v) for v in vals]
    return out


def image_preprocessing(spec, input_name: str = INPUT_NAME) -> dict:
    """The scale and bias the program applies to the image input, read from
    its ops (``mul`` by the scale, then ``add`` of the bias, as coremltools
    emits for ``ImageType``); 1 and 0 when there are none."""
    fn = spec.mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset]
    consts = _scalar_consts(block)

    def consumer(op_type: str, var: str):
        # coremltools' insert_image_preprocessing_op names them <input>__scaled__ and
        # <input>__biased__: a model's own first multiply (a Rescaling layer) is not the image input's
        suffix = "__scaled__" if op_type == "mul" else "__biased__"
        for op in block.operations:
            if op.type == op_type and "x" in op.inputs and op.outputs[0].name == f"{input_name}{suffix}":
                args = op.inputs["x"].arguments
                if len(args) == 1 and args[0].name == var:
                    y = op.inputs["y"].arguments
                    if len(y) == 1 and y[0].name in consts:
                        return op.outputs[0].name, consts[y[0].name]
        return None

    scale, bias, var = 1.0, 0.0, input_name
    if found := consumer("mul", var):
        var, scale = found
    if found := consumer("add", var):
        var, bias = found
    return {"scale": scale, "bias": bias}


def describe(spec) -> dict:
    """{"io", "operators", "deployment_target", "specification_version", "classifier"} from a spec."""
    from coremltools.proto import FeatureTypes_pb2

    d = spec.description
    inputs = []
    for f in d.input:
        kind = f.type.WhichOneof("Type")
        if kind == "imageType":
            it = f.type.imageType
            space = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(it.colorSpace)
            pre = image_preprocessing(spec, f.name)
            channels = 1 if space.startswith("GRAYSCALE") else 3
            inputs.append({"name": f.name, "dtype": "image", "shape": [1, int(it.height), int(it.width), channels],
                           "color_layout": space, "scale": pre["scale"], "bias": pre["bias"], "quantization": None,
                           "description": f.shortDescription})
        else:
            shape = [int(s) for s in f.type.multiArrayType.shape]
            inputs.append({"name": f.name, "dtype": kind, "shape": shape, "quantization": None,
                           "description": f.shortDescription})
    outputs = []
    for f in d.output:
        kind = f.type.WhichOneof("Type")
        dtype = {"stringType": "string", "int64Type": "int64", "dictionaryType": "dict[string,float64]"}.get(kind, kind)
        role = "class_label" if f.name == d.predictedFeatureName else (
            "probabilities" if f.name == d.predictedProbabilitiesName else "other")
        outputs.append({"name": f.name, "dtype": dtype, "shape": None, "role": role, "quantization": None,
                        "description": f.shortDescription})
    return {
        "io": {"inputs": inputs, "outputs": outputs},
        "operators": program_ops(spec),
        "specification_version": int(spec.specificationVersion),
        "deployment_target": SPEC_TARGETS.get(int(spec.specificationVersion), f"spec{spec.specificationVersion}"),
        "classifier": {"predicted_feature": d.predictedFeatureName,
                       "probabilities_feature": d.predictedProbabilitiesName},
    }
