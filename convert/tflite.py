"""TensorFlow Lite export: a tf_keras model and a tflite recipe in, ``.tflite`` bytes out.

``convert`` runs the real ``tf.lite.TFLiteConverter`` with the recipe's
optimizations, supported types, op sets, I/O types and (when the recipe asks
for calibration) a representative dataset of training images. ``describe``
reads a produced file back through the LiteRT interpreter: its signature's
input and output names, tensor names, shapes, dtypes and quantization
parameters, and the builtin operators the flatbuffer contains.
"""
from __future__ import annotations

import numpy as np

from edgekit.convert.recipe import Recipe
from edgekit.quiet import quiet
from edgekit.rundir import INPUT_NAME, OUTPUT_NAME

SIGNATURE = "serving_default"
# Calibration records each tensor's min and max over every sample, so a batch
# of 32 gives the ranges one image at a time gives (up to float rounding of
# the reduction: one scale in the cnn moves by 2e-7 relative) in 1/32 of the
# interpreter calls: on 96x96 colour photos, seconds instead of half a minute
# per calibrated recipe.
CALIBRATION_BATCH = 32


def convert(model, recipe: Recipe, calibration: np.ndarray | None) -> bytes:
    """``calibration``: float32 ``[N,H,W,C]`` model inputs (needed when the
    recipe says ``"representative": true``), fed CALIBRATION_BATCH images a step."""
    import tensorflow as tf

    t = recipe.tflite
    # A serving function with fixed names: the signature says "image" -> "probabilities"
    # whatever the layers are called (tfmot renames them, e.g. "quant_probabilities").
    shape = [None, *model.inputs[0].shape[1:]]

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)])
    def serve(image):
        return {OUTPUT_NAME: model(image, training=False)}

    # The converter saves the function with the object it is given, walking that
    # object's whole graph; a Keras model's holds its layers, tfmot's wrappers and
    # the fine-tune's optimizer (a QAT phone net: 70,000 nodes, 37 s). A module
    # holding just the variables the function reads gives the same file, byte for byte.
    holder = tf.Module()
    holder.weights = list(model.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)
    converter.optimizations = [getattr(tf.lite.Optimize, name) for name in t["optimizations"]]
    converter.target_spec.supported_types = [getattr(tf, name) for name in t["supported_types"]]
    converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, name) for name in t["ops"]]
    if t["representative"]:
        if calibration is None or len(calibration) == 0:
            raise ValueError("recipe asks for calibration but no calibration images were given")
        samples = np.asarray(calibration, dtype=np.float32)

        def representative():
            for i in range(0, len(samples), CALIBRATION_BATCH):
                yield [samples[i:i + CALIBRATION_BATCH]]

        converter.representative_dataset = representative
    if t["inference_input_type"] != "float32":
        converter.inference_input_type = getattr(tf, t["inference_input_type"])
    if t["inference_output_type"] != "float32":
        converter.inference_output_type = getattr(tf, t["inference_output_type"])
    with quiet():
        return converter.convert()


def _interpreter(model_content: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # No default delegate: XNNPACK would replace the ops it takes by one DELEGATE
    # node, and we want the operators the file itself contains.
    it = Interpreter(model_content=model_content,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def _tensor(detail: dict, name: str) -> dict:
    scales = np.asarray(detail["quantization_parameters"]["scales"])
    zeros = np.asarray(detail["quantization_parameters"]["zero_points"])
    quant = None
    if scales.size:
        # Per-tensor for I/O: one scale, one zero point.
        quant = {"scale": float(scales[0]), "zero_point": int(zeros[0])}
    shape = [None if d < 0 else int(d) for d in detail["shape_signature"]]
    return {"name": name, "tensor_name": detail["name"], "index": int(detail["index"]), "shape": shape,
            "dtype": np.dtype(detail["dtype"]).name, "quantization": quant}


def describe(model_content: bytes) -> dict:
    """{"io": {"inputs": [...], "outputs": [...]}, "operators": [...], "signature": name}
    read from the file through the LiteRT interpreter. I/O ``name`` is the
    signature key (``image``, ``probabilities``), ``tensor_name`` the tensor's
    own name in the flatbuffer."""
    it = _interpreter(model_content)
    signatures = it.get_signature_list()
    inputs, outputs = it.get_input_details(), it.get_output_details()
    by_index_in = {d["index"]: d for d in inputs}
    by_index_out = {d["index"]: d for d in outputs}
    if SIGNATURE in signatures:
        runner = it.get_signature_runner(SIGNATURE)
        ins = [_tensor(by_index_in[d["index"]], key) for key, d in runner.get_input_details().items()]
        outs = [_tensor(by_index_out[d["index"]], key) for key, d in runner.get_output_details().items()]
        sig = SIGNATURE
    else:
        ins = [_tensor(d, d["name"]) for d in inputs]
        outs = [_tensor(d, d["name"]) for d in outputs]
        sig = None
    ops = sorted({op["op_name"] for op in it._get_ops_details()})
    return {"io": {"inputs": ins, "outputs": outs}, "operators": ops, "signature": sig}


def add_metadata(model_content: bytes, entries: dict[str, str]) -> bytes:
    """The same model with ``entries`` (name -> UTF-8 text, e.g. the preprocessing
    as JSON) as flatbuffer ``metadata`` buffers, which LiteRT carries and ignores
    and an app reads with the flatbuffer schema (``Model.metadata``)."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
    model.metadata = list(model.metadata or [])
    for name, text in entries.items():
        buf = schema.BufferT()
        buf.data = np.frombuffer(text.encode("utf-8"), np.uint8)
        model.buffers.append(buf)
        meta = schema.MetadataT()
        meta.name = name
        meta.buffer = len(model.buffers) - 1
        model.metadata.append(meta)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(model_content: bytes) -> dict[str, bytes]:
    """name -> bytes of every metadata entry of a ``.tflite`` file."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
    out = {}
    for meta in model.metadata or []:
        name = meta.name.decode() if isinstance(meta.name, bytes) else str(meta.name)
        data = model.buffers[meta.buffer].data
        out[name] = bytes(bytearray(data)) if data is not None else b""
    return out
