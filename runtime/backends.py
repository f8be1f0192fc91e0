"""Runtime backends: execute one variant file on a batch of images.

In: a model file (``model.tflite`` or ``Model.mlpackage``) and a batch of
model inputs, float32 ``[N, H, W, C]`` of the model's ``io`` shape (pixels
already mapped by ``rundir.PixelMapping``; a backend whose file takes an
image input maps them back to pixels with the same mapping). Out: probabilities, float32 ``[N, num_classes]``, in
class-index order.

Each backend is a thin class with one ``predict(x)`` method that first checks
``x`` against the spec the model file itself declares (shape and dtype; a
mismatch is a ``ShapeError`` naming the file), and a ``name`` that labels
every result it produces:

- ``litert``: the LiteRT interpreter (``ai_edge_litert``), batched, with
  int8/uint8 (de)quantization from each tensor's own parameters.
- ``coreml``: Apple's Core ML runtime through ``coremltools.MLModel.predict``
  (macOS only).
- ``mil-reference``: edgekit's numpy interpreter of the saved ML Program
  (``edgekit.runtime.mil``), for Linux. Never reported as Core ML.

A truncated, corrupt or foreign model file is a ``ModelFileError`` (one line),
never a crash.
"""
from __future__ import annotations

import enum
import os
import platform
from pathlib import Path
from typing import Sequence

import numpy as np

from edgekit import quiet
from edgekit.rundir import PixelMapping
from edgekit.errors import ConfigError, ModelFileError, ShapeError, first_line

# Images per interpreter call when predicting a large batch: big enough to
# amortize the per-call overhead, small enough to keep activations in cache.
DEFAULT_CHUNK = 256
# The machine has 2 cores; LiteRT uses both.
NUM_THREADS = 2


class BackendName(str, enum.Enum):
    AUTO = "auto"
    LITERT = "litert"
    COREML = "coreml"
    MIL_REFERENCE = "mil-reference"


def coreml_runtime_available() -> bool:
    """Core ML's runtime (``MLModel.predict``) exists only on macOS."""
    return platform.system() == "Darwin"


COREML_UNAVAILABLE = ("the Core ML runtime (MLModel.predict) exists only on macOS; on this "
                      f"{platform.system()} machine use --backend mil-reference (edgekit's reference "
                      "interpreter of the ML Program) or --backend auto")


def resolve(requested: BackendName | str, fmt: str) -> BackendName:
    """Which backend runs a variant of format ``fmt`` (``tflite`` | ``coreml``)."""
    requested = BackendName(requested)
    if fmt == "tflite":
        if requested in (BackendName.AUTO, BackendName.LITERT):
            return BackendName.LITERT
    elif fmt == "coreml":
        if requested == BackendName.AUTO:
            return BackendName.COREML if coreml_runtime_available() else BackendName.MIL_REFERENCE
        if requested == BackendName.COREML and not coreml_runtime_available():
            raise ConfigError("--backend coreml", COREML_UNAVAILABLE)
        if requested in (BackendName.COREML, BackendName.MIL_REFERENCE):
            return requested
    else:
        raise ConfigError("variant format", f"unknown model format {fmt!r}")
    raise ConfigError("--backend", f"backend {requested.value!r} cannot run {fmt} variants")


def can_run(requested: BackendName | str, fmt: str) -> bool:
    """Whether ``requested`` is meant for files of format ``fmt`` (availability
    on this machine is ``resolve``'s question)."""
    requested = BackendName(requested)
    if requested == BackendName.AUTO:
        return fmt in ("tflite", "coreml")
    return fmt == ("tflite" if requested == BackendName.LITERT else "coreml")


def verify_input(x: np.ndarray, image_shape: Sequence[int], where: str | os.PathLike) -> None:
    """The ml-stable-diffusion ``_verify_inputs`` idea: refuse, with the file
    named, an input the model was not built for, before the runtime sees it."""
    if not isinstance(x, np.ndarray):
        raise ShapeError(where, f"input must be a numpy array, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise ShapeError(where, f"input dtype is {x.dtype}, the model takes float32 inputs")
    expected = tuple(int(d) for d in image_shape)
    if x.ndim != 1 + len(expected) or tuple(x.shape[1:]) != expected:
        raise ShapeError(where, f"input shape {tuple(x.shape)} does not match the model's [N, {', '.join(map(str, expected))}]")
    if x.shape[0] == 0:
        raise ShapeError(where, "input batch is empty")


def to_pixels(x: np.ndarray, pixels: PixelMapping) -> np.ndarray:
    """Model inputs back to the uint8 pixels ``pixels`` maps them from (an
    image-input file applies the mapping itself): ``(x - bias) / scale``, rounded."""
    p = (np.asarray(x, np.float64) - np.asarray(pixels.bias)) / np.asarray(pixels.scale)
    return np.clip(np.round(p), 0, 255).astype(np.uint8)


_UNIT = PixelMapping.from_range(0.0, 1.0, 1)


def mil_feed(spec, x: np.ndarray, pixels: PixelMapping) -> np.ndarray:
    """What the mil-reference interpreter takes for the model inputs ``x`` of a
    program with input ``spec`` (``pixels``: how ``x`` was made from pixels):
    an image input takes pixels (the program applies its own mapping; pixel /
    255 floats go in as they are, no rounding), grayscale without a channel
    axis, and in RGB order: ``x`` is in the program's channel order, and the
    interpreter reverses RGB pixels itself for a BGR program, as Core ML
    does with an RGB image."""
    feed = x
    if spec.kind == "image" and pixels != _UNIT:
        feed = to_pixels(x, pixels)
        if spec.channels == 1:
            feed = feed[..., 0]
    if spec.color_layout == "BGR":
        feed = np.ascontiguousarray(feed[..., ::-1])
    return feed


class Backend:
    """Base: ``name``, ``path``, ``image_shape`` (H, W, C) and ``predict``."""

    name: str = ""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.image_shape: tuple[int, ...] = ()

    def predict(self, x: np.ndarray) -> np.ndarray:
        verify_input(x, self.image_shape, self.path)
        out = np.asarray(self._predict(x), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != x.shape[0]:
            raise ModelFileError(self.path, f"model returned shape {out.shape} for {x.shape[0]} images, expected [N, classes]")
        return out

    def _predict(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


# ------------------------------------------------------------------ LiteRT

TFLITE_IDENTIFIER = b"TFL3"
_INT_DTYPES = (np.int8, np.uint8, np.int16)


def _quantize(x: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.round(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


class LiteRTBackend(Backend):
    """A ``.tflite`` file in the LiteRT interpreter, 2 threads, batched."""

    name = BackendName.LITERT.value

    def __init__(self, path: str | os.PathLike, num_threads: int = NUM_THREADS, chunk: int = DEFAULT_CHUNK):
        super().__init__(path)

        try:
            with open(self.path, "rb") as f:
                head = f.read(8)
        except OSError as e:
            raise ModelFileError(self.path, f"cannot read model file: {e.strerror or e}") from None
        if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
            raise ModelFileError(self.path, "not a TensorFlow Lite model (no 'TFL3' identifier)")
        try:
            self._interp = quiet.litert_interpreter(model_path=str(self.path), num_threads=num_threads)
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(self.path, f"LiteRT cannot load this model (truncated or corrupt?): {first_line(e)}") from None
        ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise ModelFileError(self.path, f"expected one input and one output, found {len(ins)} and {len(outs)}")
        self._in, self._out = ins[0], outs[0]
        for d in (self._in, self._out):
            if d["dtype"] not in (np.float32, *_INT_DTYPES):
                raise ModelFileError(self.path, f"tensor {d['name']!r} has unsupported dtype {np.dtype(d['dtype']).name}")
            if d["dtype"] in _INT_DTYPES and not d["quantization"][0]:
                raise ModelFileError(self.path, f"integer tensor {d['name']!r} has no quantization scale")
        self.image_shape = tuple(int(v) for v in self._in["shape"][1:])
        signature = self._in.get("shape_signature", self._in["shape"])
        self.dynamic_batch = int(signature[0]) == -1
        self.fixed_batch = int(self._in["shape"][0])
        self.chunk = chunk if self.dynamic_batch else self.fixed_batch
        self._batch = self.fixed_batch
        self.input_dtype = np.dtype(self._in["dtype"])
        self.output_dtype = np.dtype(self._out["dtype"])

    def _set_batch(self, n: int) -> None:
        if n != self._batch:
            self._interp.resize_tensor_input(self._in["index"], [n, *self.image_shape], strict=True)
            self._interp.allocate_tensors()
            self._batch = n

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.input_dtype != np.float32:
            scale, zp = self._in["quantization"]
            x = _quantize(x, self.input_dtype, scale, zp)
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out["index"])
        if self.output_dtype != np.float32:
            scale, zp = self._out["quantization"]
            y = (y.astype(np.float32) - np.float32(zp)) * np.float32(scale)
        return y.reshape(y.shape[0], -1)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        try:
            return self._predict_chunks(x)
        except (ValueError, RuntimeError) as e:
            # a damaged file can load and still fail at run time ("Input tensor
            # 5 lacks data", found by the 1,000-example fuzz)
            raise ModelFileError(self.path, f"LiteRT cannot run this model (corrupt?): {first_line(e)}") from None

    def _predict_chunks(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        outs = []
        for start in range(0, n, self.chunk):
            part = x[start:start + self.chunk]
            m = part.shape[0]
            if self.dynamic_batch:
                self._set_batch(m)
            elif m < self.fixed_batch:  # fixed batch: pad the last chunk
                part = np.concatenate([part, np.zeros((self.fixed_batch - m, *self.image_shape), np.float32)])
            outs.append(self._run(np.ascontiguousarray(part))[:m])
        return np.concatenate(outs)


# ---------------------------------------------------------- Core ML (macOS)

class CoreMLBackend(Backend):
    """An ``.mlpackage`` in Apple's Core ML runtime (macOS only), on the CPU:
    the Neural Engine computes fp32 programs in fp16, which would blur the
    fp32 bar; ``compute_units`` can change that."""

    name = BackendName.COREML.value

    def __init__(self, path: str | os.PathLike, class_names: Sequence[str], image_shape: Sequence[int],
                 compute_units: str = "CPU_ONLY", pixels: PixelMapping | None = None):
        super().__init__(path)
        self.pixels = pixels or PixelMapping.from_range(0.0, 1.0, int(tuple(image_shape)[-1]))
        if not coreml_runtime_available():
            raise ConfigError("--backend coreml", COREML_UNAVAILABLE)
        ct = quiet.import_coremltools()

        try:
            self._model = ct.models.MLModel(str(self.path), compute_units=ct.ComputeUnit[compute_units])
            spec = self._model.get_spec()
        except Exception as e:  # coremltools raises bare Exceptions for bad packages
            raise ModelFileError(self.path, f"Core ML cannot load this package: {first_line(e)}") from None
        desc = spec.description
        if len(desc.input) != 1:
            raise ModelFileError(self.path, f"expected one input, found {len(desc.input)}")
        self._input = desc.input[0]
        self._is_image = self._input.type.WhichOneof("Type") == "imageType"
        self._bgr = self._is_image and self._input.type.imageType.colorSpace == 30  # ImageFeatureType.BGR
        self._probs_name = desc.predictedProbabilitiesName or desc.output[0].name
        self.class_names = [str(c) for c in class_names]
        self.image_shape = tuple(int(v) for v in image_shape)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        from PIL import Image

        if self._is_image:
            pixels = to_pixels(x, self.pixels)
            if pixels.shape[-1] == 1:
                pixels = pixels[..., 0]       # 2-D uint8: mode "L"
            elif self._bgr:                   # x is in the model's B, G, R order; a PIL image is RGB
                pixels = np.ascontiguousarray(pixels[..., ::-1])
            batch = [{self._input.name: Image.fromarray(p)} for p in pixels]
        else:
            batch = [{self._input.name: xi[None]} for xi in x]
        results = self._model.predict(batch)
        if isinstance(results, dict):
            results = [results]
        out = np.zeros((x.shape[0], len(self.class_names)), np.float32)
        for i, r in enumerate(results):
            value = r[self._probs_name]
            if isinstance(value, dict):  # classifier: {label: probability}
                out[i] = [value[_label_key(value, c)] for c in self.class_names]
            else:
                out[i] = np.asarray(value, np.float32).reshape(-1)
        return out


def _label_key(probs: dict, name: str):
    if name in probs:
        return name
    if name.lstrip("-").isdigit() and int(name) in probs:
        return int(name)
    raise KeyError(name)


# --------------------------------------------------- ML Program reference

class MilReferenceBackend(Backend):
    """An ``.mlpackage`` run by edgekit's numpy ML Program interpreter."""

    name = BackendName.MIL_REFERENCE.value

    def __init__(self, path: str | os.PathLike, class_names: Sequence[str], pixels: PixelMapping | None = None):
        super().__init__(path)
        from edgekit.runtime import mil

        self._program = mil.load(self.path)  # raises ModelFileError for a corrupt package
        spec = self._program.input_spec
        self.image_shape = (*spec.shape, spec.channels) if spec.kind == "image" else tuple(int(d) for d in spec.shape[1:])
        self.pixels = pixels or PixelMapping.from_range(0.0, 1.0, self.image_shape[-1])
        names = [str(c) for c in class_names]
        labels = self._program.class_labels
        self._order = None
        if labels is not None:
            labels = [str(v) for v in labels]
            if sorted(labels) != sorted(names):
                raise ModelFileError(self.path, f"classifier labels {labels[:12]} are not the dataset's classes {names[:12]}")
            if labels != names:  # reorder columns to the dataset's class-index order
                self._order = np.array([labels.index(n) for n in names])

    def _predict(self, x: np.ndarray) -> np.ndarray:
        try:
            out = self._program.predict(mil_feed(self._program.input_spec, x, self.pixels))
        except NotImplementedError as e:
            raise ModelFileError(self.path, f"mil-reference cannot run this program: {e}") from None
        return out if self._order is None else out[:, self._order]


def open_backend(name: BackendName | str, path: str | os.PathLike, *, class_names: Sequence[str],
                 image_shape: Sequence[int], pixels: PixelMapping | None = None) -> Backend:
    """Instantiate an already resolved (not ``auto``) backend for ``path``.
    ``pixels`` (the model's ``io.pixels``; default pixel / 255) is how the
    float inputs were made from pixels, for files that take an image input."""
    name = BackendName(name)
    if name == BackendName.LITERT:
        backend: Backend = LiteRTBackend(path)
    elif name == BackendName.COREML:
        backend = CoreMLBackend(path, class_names, image_shape, pixels=pixels)
    elif name == BackendName.MIL_REFERENCE:
        backend = MilReferenceBackend(path, class_names, pixels=pixels)
    else:
        raise ConfigError("--backend", f"resolve {name.value!r} to a concrete backend first")
    if tuple(backend.image_shape) != tuple(image_shape):
        raise ModelFileError(path, f"model input is {list(backend.image_shape)}, the dataset's images are {list(image_shape)}")
    return backend
