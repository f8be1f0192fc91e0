"""Load a saved ML Program (``.mlpackage``) and run it in numpy.

In: an ``.mlpackage`` directory (``Manifest.json``,
``Data/com.apple.CoreML/model.mlmodel`` and ``weights/weight.bin``).
Out: a ``Program`` whose ``predict(images)`` returns float32 probabilities
[N, C] in class-label order, computed by executing the main function's ops
one by one (ops.py) with every op's result rounded to its declared dtype, so
an fp16 program behaves as fp16.

The protobuf is parsed with coremltools' generated classes (protobuf
parsing, no pickle); the weights with edgekit's own reader (blob.py). Every
constant and constexpr op is decoded once, at load. Anything the
interpreter does not know (an op, a dtype, an input kind) is refused by name
with a ``ModelFileError``; it never guesses.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import quiet
from edgekit.errors import ArtifactError, ModelFileError, ShapeError
from edgekit.runtime.mil import ops
from edgekit.runtime.mil.blob import WeightFile, unpack_bits

# A model.mlmodel (protobuf with weights outside) larger than this is not one
# of ours; refuse before reading it into memory.
MAX_MODEL_BYTES = 64 * 1024 * 1024
# Images per internal chunk: at most CHUNK, and fewer when one image's
# largest activation is big, so a chunk's activations stay near CHUNK_BYTES:
# fresh multi-megabyte temporaries per op cost page faults and cache misses
# (measured on the 96x96 phone net: 128-image chunks 57 images/s, 8-16
# image chunks 95-103 images/s). A conv's im2col matrix counts as an
# activation: the 28x28 cnn's 5x5 conv2 builds 313 KB an image, so it runs
# 26-image chunks, 1.4x the images/s of 128 on 2 threads (8.7k vs 6.1k).
CHUNK = 128
CHUNK_BYTES = 8 * 1024 * 1024
# Chunks run on this many threads (numpy releases the GIL in its kernels)...
WORKERS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)))
# ...each with a single-threaded BLAS: OpenBLAS's own threads on these small
# GEMMs were measured 4-10x slower on a shared 2-core machine.
_blas_controller = None


def _single_threaded_blas():
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController  # scikit-learn's dependency
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")

# MIL DataType enum value -> (name, numpy dtype used to store decoded values).
MIL_DTYPES = {
    1: ("bool", np.bool_), 2: ("string", np.object_), 10: ("fp16", np.float16), 11: ("fp32", np.float32),
    12: ("fp64", np.float64), 21: ("int8", np.int8), 22: ("int16", np.int16), 23: ("int32", np.int32),
    24: ("int64", np.int64), 25: ("int4", np.int8), 31: ("uint8", np.uint8), 32: ("uint16", np.uint16),
    33: ("uint32", np.uint32), 34: ("uint64", np.uint64), 35: ("uint4", np.uint8), 36: ("uint2", np.uint8),
    37: ("uint1", np.uint8), 38: ("uint6", np.uint8), 39: ("uint3", np.uint8),
}
NUMPY_DTYPES = {name: np_dtype for name, np_dtype in MIL_DTYPES.values()}
SUB_BYTE_BITS = {"int4": 4, "uint4": 4, "uint2": 2, "uint1": 1, "uint6": 6, "uint3": 3}

# Test-only switches that break the decoding on purpose (see tests/mil):
# each must be caught by the honesty checks, or those checks prove nothing.
MUTATIONS = ("bit-order", "ignore-zero-point", "skip-transpose", "no-fp16-rounding", "one-palette")

# Ops whose result is exactly representable in fp16 when every float input
# is: rounding their fp16 outputs again would change nothing, so it is skipped.
# Ops whose result is a new array (or a view of one nobody else holds): a
# later in-place op may overwrite it once it is dead (Program._lifetimes).
FRESH_OUTPUT = frozenset({"conv", "linear", "matmul", "batch_norm", "pad", "concat", "max_pool", "avg_pool",
                          "softmax", "reduce_mean", "reduce_max", "reduce_sum"}) | frozenset(ops.BINARY) | frozenset(
    ops.UNARY) | frozenset(ops.ACTIVATIONS)

EXACT_ON_FP16 = frozenset({"relu", "relu6", "max_pool", "reduce_max", "transpose", "reshape", "squeeze",
                           "expand_dims", "concat", "space_to_batch", "batch_to_space", "identity"})

SUPPORTED_OPS = frozenset({
    "const", "constexpr_affine_dequantize", "constexpr_lut_to_dense", "constexpr_sparse_to_dense",
    "constexpr_blockwise_shift_scale", "constexpr_cast", "conv", "max_pool", "avg_pool", "matmul",
    "linear", "softmax", "batch_norm", "reduce_mean", "reduce_max", "reduce_sum", "transpose", "reshape",
    "squeeze", "expand_dims", "concat", "cast", "space_to_batch", "batch_to_space", "pad",
    "identity", "classify",
}) | frozenset(ops.BINARY) | frozenset(ops.UNARY) | frozenset(ops.ACTIVATIONS)

# Core ML image colour spaces the interpreter feeds: channel order of the
# program's input tensor. ``predict`` takes pixels in RGB order (as a photo,
# a PIL image or Core ML's own image conversion holds them) and reorders.
COLOR_CHANNELS = {"GRAYSCALE": 1, "RGB": 3, "BGR": 3}


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What ``predict`` accepts. ``kind`` is "image" (uint8 pixels
    [N, H, W, C] in RGB order, [N, H, W] for grayscale, or float32
    [N, H, W, C] in [0, 1]) or "tensor" (float32 of ``shape`` with any leading
    batch). ``shape`` is (H, W) for images; ``channels`` is C (1 for
    GRAYSCALE, 3 for RGB and BGR); ``color_layout`` is the channel order the
    program sees. ``scale``/``bias`` are the preprocessing the converter put in
    the program (pixel * scale + bias; ``bias`` one value per channel, in the
    program's channel order), for reporting."""
    name: str
    kind: str
    shape: tuple[int, ...]
    color_layout: str | None
    scale: float | None
    bias: tuple[float, ...] | None
    channels: int = 1


@dataclasses.dataclass
class _Var:
    dtype: str | None            # MIL dtype name of the declared type, None for non-tensors
    shape: tuple[int | None, ...] | None


@dataclasses.dataclass
class _Op:
    type: str
    name: str
    args: dict[str, Any]         # param -> ("var", name) | ("value", ndarray) | list of those
    outputs: list[tuple[str, _Var]]


def _dims(tensor_type) -> tuple[int | None, ...]:
    return tuple(d.constant.size if d.WhichOneof("dimension") == "constant" else None for d in tensor_type.dimensions)


class _Parser:
    """Turns proto values (immediate or blob) into numpy arrays."""

    def __init__(self, package: Path, model_dir: Path, mutation: str | None):
        self.package = package
        self.model_dir = model_dir
        self.lsb_first = mutation != "bit-order"
        self.files: dict[Path, WeightFile] = {}

    def var_type(self, value_type) -> _Var:
        if value_type.WhichOneof("type") != "tensorType":
            return _Var(None, None)
        t = value_type.tensorType
        if t.dataType not in MIL_DTYPES:
            raise ModelFileError(self.package, f"unknown MIL data type {t.dataType}")
        return _Var(MIL_DTYPES[t.dataType][0], _dims(t))

    def value(self, value, where: str) -> Any:
        vt = value.type
        kind = vt.WhichOneof("type")
        if kind == "listType" and value.WhichOneof("value") == "immediateValue":
            return [self.value(v, where) for v in value.immediateValue.list.values]
        if kind != "tensorType":
            raise ModelFileError(self.package, f"{where}: value of type {kind!r} is not supported by the mil-reference interpreter")
        var = self.var_type(vt)
        if any(d is None for d in var.shape):
            raise ModelFileError(self.package, f"{where}: constant with an unknown dimension")
        count = math.prod(var.shape)
        which = value.WhichOneof("value")
        if which == "blobFileValue":
            wf = self._weight_file(value.blobFileValue.fileName, where)
            flat = wf.read(int(value.blobFileValue.offset), var.dtype, count)
        elif which == "immediateValue":
            flat = self._immediate(value.immediateValue.tensor, var, count, where)
        else:
            raise ModelFileError(self.package, f"{where}: constant has no value")
        return flat.reshape(var.shape)

    def _weight_file(self, file_name: str, where: str) -> WeightFile:
        prefix = "@model_path/"
        if not file_name.startswith(prefix):
            raise ModelFileError(self.package, f"{where}: weight file {file_name!r} is not under @model_path/")
        try:
            from edgekit.artifacts import resolve_inside
            path = resolve_inside(self.model_dir, file_name[len(prefix):], "weight file")
        except ArtifactError as e:
            raise ModelFileError(self.package, f"{where}: {e.problem}") from None
        if path not in self.files:
            self.files[path] = WeightFile(path, lsb_first=self.lsb_first)
        return self.files[path]

    def _immediate(self, tensor, var: _Var, count: int, where: str) -> np.ndarray:
        field = tensor.WhichOneof("value")
        np_dtype = NUMPY_DTYPES[var.dtype]
        if field == "bytes":
            raw = np.frombuffer(tensor.bytes.values, dtype=np.uint8)
            if var.dtype in SUB_BYTE_BITS:
                bits = SUB_BYTE_BITS[var.dtype]
                if raw.size * 8 < count * bits:
                    raise ModelFileError(self.package, f"{where}: {raw.size} bytes cannot hold {count} {var.dtype} values")
                return unpack_bits(raw, bits, count, var.dtype.startswith("int"), self.lsb_first)
            size = np.dtype(np_dtype).itemsize
            if raw.size != count * size:
                raise ModelFileError(self.package, f"{where}: {raw.size} bytes for {count} {var.dtype} values")
            return raw.view(np.dtype(np_dtype).newbyteorder("<")).astype(np_dtype)
        values = {"floats": tensor.floats.values, "ints": tensor.ints.values, "bools": tensor.bools.values,
                  "strings": tensor.strings.values, "longInts": tensor.longInts.values,
                  "doubles": tensor.doubles.values}.get(field)
        if values is None or len(values) != count:
            raise ModelFileError(self.package, f"{where}: immediate value holds {0 if values is None else len(values)} values, its type declares {count}")
        if var.dtype == "string":
            return np.array(list(values), dtype=object)
        return np.array(list(values)).astype(np_dtype)


def _find_model_file(package: Path) -> Path:
    """The root model of an .mlpackage, as its Manifest.json names it."""
    manifest = package / "Manifest.json"
    default = package / "Data" / "com.apple.CoreML" / "model.mlmodel"
    if not manifest.is_file():
        return default
    from edgekit.artifacts import read_json, resolve_inside
    try:
        data = read_json(manifest, "package manifest")
        entry = data["itemInfoEntries"][data["rootModelIdentifier"]]
        return resolve_inside(package / "Data", entry["path"], "root model")
    except ArtifactError as e:
        raise ModelFileError(e.where, e.problem) from None
    except (KeyError, TypeError):
        raise ModelFileError(manifest, "package manifest does not name a root model") from None


class Program:
    """A loaded ML Program: ``predict`` runs it on a batch of images."""

    def __init__(self, package: str | os.PathLike, *, _mutation: str | None = None):
        if _mutation is not None and _mutation not in MUTATIONS:
            raise ValueError(f"unknown mutation {_mutation!r}; one of {MUTATIONS}")
        self.package = Path(package)
        self._mutation = _mutation
        if not self.package.is_dir():
            raise ModelFileError(self.package, "not an .mlpackage directory")
        model_file = _find_model_file(self.package)
        spec = self._parse_spec(model_file)
        self.specification_version = spec.specificationVersion
        parser = _Parser(self.package, model_file.parent, _mutation)
        func = spec.mlProgram.functions.get("main") if "main" in spec.mlProgram.functions else None
        if func is None:
            raise ModelFileError(model_file, "ML Program has no 'main' function")
        if func.opset not in func.block_specializations:
            raise ModelFileError(model_file, f"main function has no block for its opset {func.opset!r}")
        self.opset = func.opset
        block = func.block_specializations[func.opset]
        self._block_where = f"main/{func.opset}"
        self._func_inputs = {i.name: parser.var_type(i.type) for i in func.inputs}
        if len(self._func_inputs) != 1:
            raise ModelFileError(model_file, f"program has {len(self._func_inputs)} inputs; the mil-reference interpreter runs single-input classifiers")
        self._input_name = next(iter(self._func_inputs))
        self._outputs = list(block.outputs)
        self._ops = self._parse_ops(block, parser)
        self._consts: dict[str, np.ndarray] = {}
        self._decode_constants()
        self._steps = [op for op in self._ops if op.name not in self._consts]
        self._already_fp16 = self._fp16_exact_steps()
        self._free_after, self._in_place = self._lifetimes()
        # what the ops compute with: fp16 constants widened once (exactly) to float32
        self._env0 = {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in self._consts.items()}
        self.class_labels = self._find_labels()
        self.input_spec = self._make_input_spec(spec)
        self.chunk = self._chunk_size()

    # ----------------------------------------------------------- parsing

    def _parse_spec(self, model_file: Path):
        try:
            size = model_file.stat().st_size
        except FileNotFoundError:
            raise ModelFileError(model_file, "model.mlmodel is missing (the package is incomplete)") from None
        if size > MAX_MODEL_BYTES:
            raise ModelFileError(model_file, f"{size} bytes, more than the {MAX_MODEL_BYTES} a model spec may be")
        from google.protobuf.message import DecodeError
        Model_pb2 = quiet.import_module("coremltools.proto.Model_pb2")  # coremltools' import-time warnings held

        spec = Model_pb2.Model()
        try:
            spec.ParseFromString(model_file.read_bytes())
        except (DecodeError, RuntimeError, ValueError) as e:
            raise ModelFileError(model_file, f"not a Core ML model (protobuf parse failed: {e})") from None
        kind = spec.WhichOneof("Type")
        if kind != "mlProgram":
            raise ModelFileError(model_file, f"not an ML Program (model type: {kind or 'none'}); the mil-reference interpreter runs ML Programs only")
        return spec

    def _parse_ops(self, block, parser: _Parser) -> list[_Op]:
        out = []
        for op in block.operations:
            where = f"op '{op.type}' (in block {self._block_where})"
            if op.type not in SUPPORTED_OPS:
                raise ModelFileError(self.package, f"{where} is not supported by the mil-reference interpreter")
            if len(op.blocks):
                raise ModelFileError(self.package, f"{where} has nested blocks, which the mil-reference interpreter does not run")
            args: dict[str, Any] = {}
            for key, binding in op.inputs.items():
                items = []
                for a in binding.arguments:
                    if a.WhichOneof("binding") == "name":
                        items.append(("var", a.name))
                    else:
                        items.append(("value", parser.value(a.value, f"{where} input {key!r}")))
                args[key] = items
            for key, value in op.attributes.items():
                if key != "name":
                    args[key] = [("value", parser.value(value, f"{where} attribute {key!r}"))]
            outputs = [(o.name, parser.var_type(o.type)) for o in op.outputs]
            if not outputs:
                raise ModelFileError(self.package, f"{where} has no outputs")
            out.append(_Op(op.type, outputs[0][0], args, outputs))
        return out

    def _decode_constants(self) -> None:
        """Evaluate const and constexpr ops once (in program order, so chained
        constexpr ops see their decoded inputs)."""
        for op in self._ops:
            if op.type != "const" and not op.type.startswith("constexpr_"):
                continue
            try:
                value = self._constexpr(op)
            except KeyError as e:
                raise ModelFileError(self.package, f"op '{op.type}' {op.name!r}: missing or non-constant input {e}") from None
            except (ValueError, IndexError, TypeError, NotImplementedError) as e:
                raise ModelFileError(self.package, f"op '{op.type}' {op.name!r}: cannot decode ({e})") from None
            declared = op.outputs[0][1]
            if declared.shape is not None and tuple(np.shape(value)) != declared.shape:
                raise ModelFileError(self.package, f"op '{op.type}' {op.name!r}: decoded shape {np.shape(value)}, declared {declared.shape}")
            self._consts[op.name] = value

    def _const_arg(self, op: _Op, key: str, default=KeyError):
        if key not in op.args:
            if default is KeyError:
                raise KeyError(key)
            return default
        kind, v = op.args[key][0]
        if kind == "var":
            if v not in self._consts:
                raise KeyError(key)
            return self._consts[v]
        return v

    def _constexpr(self, op: _Op) -> np.ndarray:
        a = lambda k, d=KeyError: self._const_arg(op, k, d)  # noqa: E731
        mut = self._mutation
        if op.type == "const":
            return a("val")
        if op.type == "constexpr_affine_dequantize":
            return ops.affine_dequantize(a("quantized_data"), a("zero_point"), a("scale"), a("axis"),
                                         use_zero_point=mut != "ignore-zero-point")
        if op.type == "constexpr_blockwise_shift_scale":
            return ops.blockwise_shift_scale(a("data"), a("scale"), a("offset", None),
                                             use_offset=mut != "ignore-zero-point")
        if op.type == "constexpr_cast":
            return a("source_val").astype(np.float32)
        if op.type == "constexpr_lut_to_dense":
            lut, indices = a("lut"), a("indices")
            if "shape" in op.args:  # iOS16: packed uint8 index bytes, flat lut
                shape = tuple(int(s) for s in a("shape"))
                count = math.prod(shape)
                nbits = int(round(math.log2(lut.size)))
                if 2 ** nbits != lut.size or nbits not in (1, 2, 4, 6, 8):
                    raise ValueError(f"lut of {lut.size} entries")
                if indices.size * 8 < count * nbits:
                    raise ValueError(f"{indices.size} index bytes cannot hold {count} {nbits}-bit indices")
                idx = unpack_bits(indices.astype(np.uint8), nbits, count, False, mut != "bit-order")
                return lut[idx.astype(np.intp)].reshape(shape)
            return ops.lut_to_dense_ios18(indices, lut, a("vector_axis", None), per_block=mut != "one-palette")
        if op.type == "constexpr_sparse_to_dense":
            data, mask = a("nonzero_data"), a("mask")
            if "shape" in op.args:  # iOS16: packed bitmask bytes
                shape = tuple(int(s) for s in a("shape"))
                count = math.prod(shape)
                if mask.size * 8 < count:
                    raise ValueError(f"{mask.size} mask bytes cannot cover {count} values")
                bits = np.unpackbits(mask.astype(np.uint8), bitorder="little" if mut != "bit-order" else "big")[:count]
            else:  # iOS18: mask is a uint1 tensor of the output's shape
                shape, bits = mask.shape, mask.reshape(-1)
            if int(np.count_nonzero(bits)) != data.size:
                raise ValueError(f"mask sets {int(np.count_nonzero(bits))} values, nonzero_data holds {data.size}")
            return ops.sparse_to_dense(data, bits, shape)
        raise ModelFileError(self.package, f"op '{op.type}' (in block {self._block_where}) is not supported by the mil-reference interpreter")

    def _fp16_exact_steps(self) -> set[str]:
        """Names of steps whose fp16 output needs no rounding (EXACT_ON_FP16
        applied to inputs that are all declared fp16, hence already rounded)."""
        declared = {name: var.dtype for op in self._ops for name, var in op.outputs}
        declared.update({k: v.dtype for k, v in self._func_inputs.items()})
        exact = set()
        for op in self._steps:
            float_inputs = [declared.get(v) for items in op.args.values() for kind, v in items
                            if kind == "var" and declared.get(v) in ("fp16", "fp32")]
            if op.type in EXACT_ON_FP16 and op.outputs[0][1].dtype == "fp16" and float_inputs and all(
                    d == "fp16" for d in float_inputs):
                exact.add(op.name)
        return exact

    def _lifetimes(self) -> tuple[list[tuple[str, ...]], set[str]]:
        """Per step, the vars no later step reads (``_run`` drops them, so a
        chunk's memory is reused while warm instead of growing by every
        activation), and the steps that may write their result over their
        dying ``x`` (IN_PLACE ops whose ``x`` was made fresh by one of
        FRESH_OUTPUT, so no other live value is a view of its memory, and is
        not a block output)."""
        reads = [{v for items in op.args.values() for kind, v in items if kind == "var"} for op in self._steps]
        keep = set(self._outputs) | set(self._consts)
        last: dict[str, int] = {}
        for i, names in enumerate(reads):
            for v in names:
                last[v] = i
        free: list[list[str]] = [[] for _ in self._steps]
        for v, i in last.items():
            if v not in keep:
                free[i].append(v)
        producer = {op.name: op.type for op in self._steps}
        in_place = set()
        for i, op in enumerate(self._steps):
            xs = [v for kind, v in op.args.get("x", []) if kind == "var"]
            if (op.type in ops.IN_PLACE and len(xs) == 1 and last.get(xs[0]) == i and xs[0] not in keep
                    and producer.get(xs[0]) in FRESH_OUTPUT):
                in_place.add(op.name)
        return [tuple(f) for f in free], in_place

    def _find_labels(self) -> list | None:
        for op in self._ops:
            if op.type == "classify":
                classes = self._const_arg(op, "classes")
                labels = [c.item() if hasattr(c, "item") else c for c in (np.asarray(x).reshape(()) for x in classes)]
                return [str(v) if isinstance(v, bytes) else v for v in labels]
        return None

    def _make_input_spec(self, spec) -> InputSpec:
        name = self._input_name
        desc = {f.name: f for f in spec.description.input}.get(name)
        var = self._func_inputs[name]
        if desc is None:
            raise ModelFileError(self.package, f"input {name!r} is not described in the model")
        kind = desc.type.WhichOneof("Type")
        if kind == "imageType":
            from coremltools.proto import FeatureTypes_pb2
            layout = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(desc.type.imageType.colorSpace)
            if layout not in COLOR_CHANNELS:
                raise ModelFileError(self.package, f"image input with color layout {layout}: the mil-reference interpreter runs GRAYSCALE, RGB and BGR images")
            c = COLOR_CHANNELS[layout]
            h, w = desc.type.imageType.height, desc.type.imageType.width
            if var.shape != (1, c, h, w):
                raise ModelFileError(self.package, f"{layout} image input declared {h}x{w} but the program takes {var.shape}")
            scale, bias = self._image_preprocessing(name, c)
            return InputSpec(name, "image", (h, w), layout, scale, bias, c)
        if kind == "multiArrayType":
            if var.dtype != "fp32" or not var.shape or None in var.shape:
                raise ModelFileError(self.package, f"tensor input {name!r} of type {var.dtype} {var.shape} is not supported")
            return InputSpec(name, "tensor", tuple(var.shape), None, None, None)
        raise ModelFileError(self.package, f"input {name!r} of kind {kind} is not supported by the mil-reference interpreter")

    def _image_preprocessing(self, name: str, channels: int) -> tuple[float, tuple[float, ...]]:
        """The converter's ImageType preprocessing as the program holds it:
        ``mul`` by a scalar scale, then ``add`` of a scalar or per-channel
        [1, C, 1, 1] bias (either may be absent). Only read for reporting: the
        program's own ops apply it."""
        scale, bias = 1.0, (0.0,) * channels
        current = name
        for op in self._steps:
            xs = [v for k, v in op.args.get("x", []) if k == "var"]
            if op.type not in ("mul", "add") or xs != [current]:
                continue
            ys = [self._consts.get(v) if k == "var" else v for k, v in op.args.get("y", [])]
            if not ys or ys[0] is None:
                break
            y = np.asarray(ys[0], np.float64).reshape(-1)
            if op.type == "mul" and y.size == 1 and current == name:
                scale = float(y[0])
            elif op.type == "add" and y.size in (1, channels):
                bias = tuple(float(b) for b in np.broadcast_to(y, (channels,)))
                break
            else:
                break
            current = op.name
        return scale, bias

    def _chunk_size(self) -> int:
        """Images per chunk (see CHUNK_BYTES), from the declared batch-1 shapes:
        the largest activation, or the largest im2col matrix a conv builds
        (ops.conv: [Ho * Wo, kH * kW * C] float32 an image, 1x1 and depthwise
        kernels build none)."""
        largest = 0
        for op in self._steps:
            for _, var in op.outputs:
                if var.shape and None not in var.shape:
                    largest = max(largest, math.prod(var.shape) * 4)
            if op.type == "conv":
                largest = max(largest, self._im2col_bytes(op))
        return max(1, min(CHUNK, CHUNK_BYTES // max(largest, 1)))

    def _im2col_bytes(self, op: _Op) -> int:
        """Bytes of one image's im2col matrix in ``op`` (a conv), 0 when it builds none or the shapes are unknown."""
        def const(param):
            kind, v = (op.args.get(param) or [(None, None)])[0]
            return self._consts.get(v) if kind == "var" else v if kind == "value" else None

        weight, groups, out = const("weight"), const("groups"), op.outputs[0][1].shape
        if not isinstance(weight, np.ndarray) or weight.ndim != 4 or not out or len(out) != 4 or None in out[2:]:
            return 0
        o, cg, kh, kw = weight.shape
        groups = 1 if groups is None else int(np.asarray(groups).reshape(-1)[0])
        if (kh * kw == 1 and groups == 1) or (cg == 1 and groups > 1):  # ops.conv's GEMM on the input, or its depthwise path
            return 0
        return int(out[2] * out[3] * kh * kw * cg * groups * 4)

    # ------------------------------------------------------------ public

    @property
    def op_types(self) -> list[str]:
        """Op types of the main block, in program order, with repeats."""
        return [op.type for op in self._ops]

    def weights(self) -> dict[str, np.ndarray]:
        """Decoded value of every const and constexpr op (by output name), in
        its declared dtype: what the interpreter computes with."""
        return {k: v for k, v in self._consts.items() if isinstance(v, np.ndarray) and v.dtype != object}

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities float32 [N, C] (class-label order) for a batch."""
        x = self._prepare(images)
        chunks = [x[i:i + self.chunk] for i in range(0, x.shape[0], self.chunk)]
        with _single_threaded_blas():
            if len(chunks) > 1 and WORKERS > 1:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(WORKERS) as pool:
                    parts = list(pool.map(self._run, chunks))
            else:
                parts = [self._run(c) for c in chunks]
        return np.concatenate(parts, axis=0)

    def trace(self, images: np.ndarray | None = None, *, feeds: dict[str, np.ndarray] | None = None,
              only: set[str] | None = None) -> dict[str, np.ndarray]:
        """Every op's output by MIL var name, for one batch (edgekit diagnose reads a
        program's intermediate values through this). ``images`` as ``predict`` takes
        them; ``feeds`` (var name -> value, batch first, in the var's own layout) set
        vars before any op runs, rounded to their declared dtype; ``only``: run just
        the ops whose output is named there (in program order), so a part of the
        program runs alone on values from elsewhere. Unlike ``predict``, no chunking."""
        env: dict[str, Any] = dict(self._env0)
        n = None
        if images is not None:
            x = self._prepare(images)
            env[self._input_name], n = x, x.shape[0]
        declared = {name: var for op in self._ops for name, var in op.outputs}
        for name, value in (feeds or {}).items():
            value = np.asarray(value, np.float32)
            if name in declared and declared[name].dtype == "fp16":
                value = ops.round_f16(value)
            env[name], n = value, value.shape[0] if n is None else n
        if n is None:
            raise ValueError("trace needs images or feeds")
        out: dict[str, np.ndarray] = {}
        with _single_threaded_blas():
            for op in self._steps:
                if op.type == "classify" or (only is not None and op.name not in only):
                    continue
                try:
                    values = {k: (env[v] if kind == "var" else v) for k, items in op.args.items()
                              for kind, v in items[:1]}
                    lists = {k: [env[v] if kind == "var" else v for kind, v in items] for k, items in op.args.items()}
                except KeyError as e:
                    raise ModelFileError(self.package, f"op '{op.type}' {op.name!r} reads {e}, which is neither "
                                                       "computed nor fed") from None
                try:
                    result = self._execute(op, values, lists, n)
                except (KeyError, ValueError, IndexError, TypeError, NotImplementedError) as e:
                    raise ModelFileError(self.package, f"op '{op.type}' {op.name!r} failed: {e}") from None
                name, var = op.outputs[0]
                env[name] = out[name] = self._round(result, var, op, n)
        return out

    def _prepare(self, images) -> np.ndarray:
        spec = self.input_spec
        if not isinstance(images, np.ndarray):
            raise ShapeError("images", f"expected a numpy array, got {type(images).__name__}")
        if spec.kind == "image":
            h, w = spec.shape
            c = spec.channels
            if c == 1 and images.ndim == 3 and images.dtype == np.uint8:
                images = images[..., None]  # grayscale pixels may come without a channel axis
            shape = f"[N, {h}, {w}]" if c == 1 else f"[N, {h}, {w}, {c}]"
            if images.dtype == np.uint8:
                if images.ndim != 4 or images.shape[1:] != (h, w, c):
                    raise ShapeError("images", f"uint8 images must be {shape}, got {list(images.shape)}")
                pixels = images.astype(np.float32)
            elif images.dtype == np.float32:
                if images.ndim != 4 or images.shape[1:] != (h, w, c):
                    raise ShapeError("images", f"float32 images must be [N, {h}, {w}, {c}], got {list(images.shape)}")
                if not np.isfinite(images).all() or images.min(initial=0) < 0 or images.max(initial=0) > 1:
                    raise ShapeError("images", "float32 images must hold values in [0, 1] (pixels / 255)")
                # the Core ML image input takes pixel values 0..255
                pixels = images * np.float32(255)
            else:
                raise ShapeError("images", f"dtype {images.dtype} is neither uint8 pixels nor float32 in [0, 1]")
            if spec.color_layout == "BGR":  # pixels come in RGB order; the program reads B, G, R
                pixels = np.ascontiguousarray(pixels[..., ::-1])
            if pixels.shape[0] == 0:
                raise ShapeError("images", "empty batch")
            # NCHW view of the NHWC pixels: the first conv reads them channels-last without a copy
            return pixels.transpose(0, 3, 1, 2)
        if images.dtype != np.float32 or images.shape[1:] != spec.shape[1:]:
            raise ShapeError("images", f"expected float32 [N, {', '.join(map(str, spec.shape[1:]))}], got {images.dtype} {list(images.shape)}")
        if images.shape[0] == 0:
            raise ShapeError("images", "empty batch")
        return np.ascontiguousarray(images, dtype=np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        env: dict[str, Any] = dict(self._env0)
        env[self._input_name] = x
        result = None
        for op, dead in zip(self._steps, self._free_after):
            try:
                values = {k: (env[v] if kind == "var" else v) for k, items in op.args.items()
                          for kind, v in items[:1]}
                lists = {k: [env[v] if kind == "var" else v for kind, v in items] for k, items in op.args.items()}
            except KeyError as e:  # a damaged program names a variable nothing defines
                raise ModelFileError(self.package, f"op '{op.type}' {op.name!r} reads {e}, which no earlier op or constant defines") from None
            for v in dead:
                del env[v]
            try:
                out = None
                if op.name in self._in_place:
                    out = ops.in_place(op.type, values)
                if out is None:
                    out = self._execute(op, values, lists, n)
            except KeyError as e:
                raise ModelFileError(self.package, f"op '{op.type}' {op.name!r} lacks its required input {e}") from None
            except (ValueError, IndexError, TypeError, NotImplementedError) as e:
                raise ModelFileError(self.package, f"op '{op.type}' {op.name!r} failed: {e}") from None
            if op.type == "classify":
                result = out
                continue
            name, var = op.outputs[0]
            env[name] = self._round(out, var, op, n)
        if result is None:
            if not self._outputs or self._outputs[0] not in env:
                raise ModelFileError(self.package, "the main block's output is not computed by any op")
            result = env[self._outputs[0]]
        return np.asarray(result, dtype=np.float32)

    def _round(self, out: np.ndarray, var: _Var, op: _Op, n: int) -> np.ndarray:
        out = np.asarray(out)
        if var.shape is not None and len(var.shape) > 0:
            declared = var.shape
            ok = out.ndim == len(declared) and (declared[0] is None or out.shape[0] == declared[0] * n) and all(
                d is None or d == s for d, s in zip(declared[1:], out.shape[1:]))
            if not ok:
                raise ModelFileError(self.package, f"op '{op.type}' {op.name!r}: computed shape {list(out.shape)} for batch {n}, the program declares {list(declared)} for batch 1")
        if var.dtype == "fp16":
            if self._mutation == "no-fp16-rounding" or op.name in self._already_fp16:
                return out
            if op.type in FRESH_OUTPUT and out.dtype == np.float32 and out.flags.writeable:
                return ops.round_f16_in_place(out)  # nobody else holds this array
            return ops.round_f16(out.astype(np.float32, copy=False))
        if var.dtype == "fp32":
            return out.astype(np.float32, copy=False)
        if var.dtype in ("int32", "int64", "int16", "int8", "uint8", "uint16", "bool"):
            return out.astype(NUMPY_DTYPES[var.dtype], copy=False)
        return out

    def _execute(self, op: _Op, v: dict, lists: dict, n: int):
        t = op.type
        if t in ops.BINARY:
            return ops.BINARY[t](v["x"], v["y"])
        if t in ops.UNARY:
            return ops.UNARY[t](v["x"])
        if t == "conv":
            return ops.conv(v["x"], v["weight"], v.get("bias"), v.get("strides"), v.get("pad_type", "valid"),
                            v.get("pad"), v.get("dilations"), v.get("groups", 1))
        if t == "max_pool":
            return ops.max_pool(v["x"], v["kernel_sizes"], v["strides"], v["pad_type"], v.get("pad"), v.get("ceil_mode", False))
        if t == "avg_pool":
            return ops.avg_pool(v["x"], v["kernel_sizes"], v["strides"], v["pad_type"], v.get("pad"),
                                v.get("exclude_padding_from_average", False), v.get("ceil_mode", False))
        if t == "matmul":
            return ops.matmul(v["x"], v["y"], v.get("transpose_x", False), v.get("transpose_y", False))
        if t == "linear":
            return ops.linear(v["x"], v["weight"], v.get("bias"))
        if t == "softmax":
            return ops.softmax(v["x"], v.get("axis", -1))
        if t == "batch_norm":
            return ops.batch_norm(v["x"], v["mean"], v["variance"], v.get("gamma"), v.get("beta"), v.get("epsilon", 1e-5))
        if t in ("reduce_mean", "reduce_max", "reduce_sum"):
            fn = {"reduce_mean": np.mean, "reduce_max": np.max, "reduce_sum": np.sum}[t]
            return ops.reduce(fn, v["x"], v.get("axes"), v.get("keep_dims", False))
        if t == "transpose":
            perm = [int(p) for p in v["perm"]]
            if self._mutation == "skip-transpose":  # right shape, data not moved
                return np.ascontiguousarray(v["x"]).reshape([v["x"].shape[p] for p in perm])
            return np.transpose(v["x"], perm)
        if t == "reshape":
            return self._reshape(op, v["x"], v["shape"], n)
        if t == "squeeze":
            axes = v.get("axes")
            if axes is None:
                raise NotImplementedError("squeeze without axes would drop the batch axis")
            return np.squeeze(v["x"], axis=tuple(int(a) for a in np.asarray(axes).reshape(-1)))
        if t == "expand_dims":
            return np.expand_dims(v["x"], tuple(int(a) for a in np.asarray(v["axes"]).reshape(-1)))
        if t == "concat":
            if bool(v.get("interleave", False)):
                raise NotImplementedError("interleaved concat")
            return np.concatenate(lists["values"], axis=int(v["axis"]))
        if t == "cast":
            return v["x"]  # the declared output dtype does the rounding (_round)
        if t == "space_to_batch":
            return ops.space_to_batch(v["x"], v["block_shape"], v["paddings"])
        if t == "batch_to_space":
            return ops.batch_to_space(v["x"], v["block_shape"], v["crops"])
        if t == "pad":
            return ops.pad_op(v["x"], v["pad"], v.get("mode", "constant"), v.get("constant_val", 0.0))
        if t in ops.ACTIVATIONS:
            fn, params = ops.ACTIVATIONS[t]
            return fn(v["x"], *(v[p] for p in params))
        if t == "identity":
            return v["x"]
        if t == "classify":
            return v["probabilities"]
        raise ModelFileError(self.package, f"op '{t}' (in block {self._block_where}) is not supported by the mil-reference interpreter")

    def _reshape(self, op: _Op, x: np.ndarray, shape, n: int) -> np.ndarray:
        """The program was traced at batch 1: a literal leading 1 (or -1) is the batch."""
        shape = [int(s) for s in np.asarray(shape).reshape(-1)]
        if not shape or shape[0] not in (1, -1) or x.shape[0] != n:
            raise NotImplementedError(f"reshape to {shape} moves the batch axis; the interpreter only batches reshapes that keep it leading")
        return x.reshape([n] + shape[1:])


def load(package_path: str | os.PathLike) -> Program:
    """Parse an .mlpackage and decode its weights; see ``Program``."""
    return Program(package_path)
