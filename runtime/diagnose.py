"""The diagnose stage: where a variant loses the original's answers, layer by layer.

In: a run directory with ``model/`` and a converted variant (``--variant
ID``) whose variant.json holds the layer map convert built
(``edgekit.convert.layermap``: which op and tensor of the file computes each
Keras layer), and the first ``limit`` test images of the model's dataset.
Out: ``<run>/diagnose/<id>.json`` (schema ``edgekit.diagnose/1``), the chart
``<run>/diagnose/<id>.png`` ("where the error comes from"), and a
``DiagnoseResult`` the CLI prints as a table.

For every layer of the original Keras model, by its Keras name:

- **accumulated error**: the variant run end to end on the test images, its
  tensor for that layer against the float Keras model's output of that layer;
- **local error**: the variant's op(s) for that layer alone, fed the float
  Keras model's inputs of that layer, against the same Keras output: what
  this layer's conversion costs by itself;

each as SNR in dB (float64 sums over every element of every image; ``inf``
when identical), mean per-image cosine similarity, and max abs difference.
Values of integer tensors are dequantized with the tensor's own scale and
zero point; ML Program values in channels-first order are transposed to
Keras' channels-last. A layer fused into another's op (a conv's ReLU, a
batch norm folded into a conv) has no tensor of its own: its row says which
op it is fused into, and the numbers are that op's. A layer with no op
(Dropout) has no numbers.

How each format is measured (the honest part):

- **TFLite** through LiteRT's interpreter with
  ``experimental_preserve_all_tensors=True`` and no delegate (XNNPACK would
  replace the ops by one DELEGATE node whose intermediates are not kept). For
  the local error, each layer's ops are cut out of the variant's own
  flatbuffer into a one-layer model (the same operators, weights, and
  quantization parameters; ``tensorflow.lite.tools.flatbuffer_utils``) and
  run in its own interpreter. Its inputs are the float Keras values,
  quantized with the variant's own scale and zero point of that input tensor
  when it is an integer tensor, exactly as the op would receive them from a
  perfect previous layer. So the local number is the real kernel on the real
  quantized weights, with only the input's own rounding to the variant's
  grid; nothing is re-converted or re-implemented.
- **Core ML** through edgekit's mil-reference interpreter
  (``Program.trace``), which rounds every op's output to its declared dtype,
  so fp16 programs behave as fp16. Local error runs only the layer's ops,
  with the input var set to the float Keras value (rounded to the var's
  dtype). Core ML's own runtime exposes no intermediate values, so this is
  labelled ``mil-reference``, never "Core ML", also on macOS.

The first jump is the first layer whose accumulated SNR lies ``JUMP_DB``
below the previous measured layer's (a layer above ``CEILING_DB`` counts as
``CEILING_DB``: below float32 rounding noise a difference is not a jump).
``worst_local`` names the layer whose local SNR is lowest.
"""
from __future__ import annotations

import dataclasses
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import artifacts, figures, quiet
from edgekit.errors import ArtifactError, ConfigError, ModelFileError, first_line
from edgekit.progress import bar
from edgekit.rundir import DIAGNOSE_SCHEMA, ModelArtifact, PixelMapping, RunDir, VariantArtifact, VariantIndex
from edgekit.runtime import backends as bk

# Test images by default: enough for SNR sums that are stable to a fraction
# of a dB on these layers (each image gives thousands of values), and quick.
DEFAULT_LIMIT = 500
# Images per interpreter call: bounds the kept intermediates (~3 MB an image for the cnn).
CHUNK = 100
# A jump is a rise of the accumulated noise power by 100x (20 dB) over the
# previous layer; 100 dB is far below what any quantization leaves (float16
# rounding lands near 60-70 dB) and above float32 summation-order noise.
JUMP_DB = 20.0
CEILING_DB = 100.0
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class DiagnoseConfig:
    """What to diagnose: one variant of a run, on the first ``limit`` test images."""

    run_dir: Path
    variant: str
    limit: int = DEFAULT_LIMIT

    def __post_init__(self):
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        if not isinstance(self.variant, str) or not ID_PATTERN.match(self.variant):
            raise ConfigError("--variant", f"give one variant id (lowercase letters, digits, dashes), got "
                                           f"{self.variant!r}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigError("--limit", f"must be a positive number of test images, got {self.limit!r}")


@dataclasses.dataclass(frozen=True)
class Error:
    """One comparison of a variant's values with the float model's."""

    snr_db: float               # inf when identical
    cosine: float               # mean over images
    max_abs_diff: float

    def to_json(self) -> dict:
        return {"snr_db": None if math.isinf(self.snr_db) else round(self.snr_db, 4),
                "identical": math.isinf(self.snr_db) and self.snr_db > 0,
                "cosine": self.cosine, "max_abs_diff": self.max_abs_diff}

    @classmethod
    def from_json(cls, d: dict | None) -> "Error | None":
        """The inverse of ``to_json`` (a null ``snr_db`` is +inf when identical, -inf otherwise)."""
        if d is None:
            return None
        snr = d["snr_db"]
        if snr is None:
            snr = math.inf if d["identical"] is True else -math.inf
        return cls(_real(snr), _real(d["cosine"]), _real(d["max_abs_diff"]))


def _real(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"expected a number, got {v!r}")
    return float(v)


def snr_text(e: Error | None, missing: str = "-") -> str:
    """An SNR for a table: one decimal, "exact" when bit-identical, ``missing`` for no measurement."""
    if e is None:
        return missing
    if math.isinf(e.snr_db):
        return "exact" if e.snr_db > 0 else "-inf"
    return f"{e.snr_db:.1f}"


class _Acc:
    """Running sums for an ``Error`` over chunks."""

    def __init__(self):
        self.signal = self.noise = self.cos = 0.0
        self.n = 0
        self.max_abs = 0.0

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        r = np.asarray(ref, np.float64).reshape(ref.shape[0], -1)
        g = np.asarray(got, np.float64).reshape(r.shape)
        d = r - g
        self.signal += float(np.sum(r * r))
        self.noise += float(np.sum(d * d))
        self.max_abs = max(self.max_abs, float(np.max(np.abs(d))) if d.size else 0.0)
        nr, ng = np.linalg.norm(r, axis=1), np.linalg.norm(g, axis=1)
        both = (nr > 0) & (ng > 0)
        cos = np.where(both, np.sum(r * g, axis=1) / np.where(both, nr * ng, 1.0), (nr == ng).astype(float))
        self.cos += float(np.sum(cos))
        self.n += r.shape[0]

    def result(self) -> Error:
        if self.noise == 0.0:
            snr = math.inf
        elif self.signal == 0.0:
            snr = -math.inf
        else:
            snr = 10.0 * math.log10(self.signal / self.noise)
        return Error(snr, self.cos / max(self.n, 1), self.max_abs)


@dataclasses.dataclass(frozen=True)
class LayerRow:
    layer: str
    cls: str
    status: str                    # "op" | "fused" | "none" (layermap)
    tensor: str | None             # the variant's tensor / var the numbers are read from
    fused_with: tuple[str, ...]
    into: str | None
    note: str | None
    accumulated: Error | None
    local: Error | None

    def to_json(self) -> dict:
        return {"layer": self.layer, "class": self.cls, "status": self.status, "tensor": self.tensor,
                "fused_with": list(self.fused_with), "into": self.into, "note": self.note,
                "accumulated": self.accumulated.to_json() if self.accumulated else None,
                "local": self.local.to_json() if self.local else None}

    @classmethod
    def from_json(cls, d: dict) -> "LayerRow":
        """The inverse of ``to_json``; a field of the wrong type raises KeyError, TypeError or ValueError."""
        texts = [d["layer"], d["class"], d["status"]]
        optional = [d["tensor"], d["into"], d["note"]]
        fused = d["fused_with"]
        if (not all(isinstance(t, str) for t in texts) or not all(t is None or isinstance(t, str) for t in optional)
                or not isinstance(fused, list) or not all(isinstance(f, str) for f in fused)):
            raise TypeError(f"malformed row {d.get('layer')!r}")
        return cls(layer=texts[0], cls=texts[1], status=texts[2], tensor=optional[0], fused_with=tuple(fused),
                   into=optional[1], note=optional[2], accumulated=Error.from_json(d["accumulated"]),
                   local=Error.from_json(d["local"]))


@dataclasses.dataclass(frozen=True)
class DiagnoseResult:
    run_dir: Path
    variant: str
    format: str
    backend: str
    images: int
    rows: list[LayerRow]
    first_jump: str | None
    worst_local: str | None
    path: Path
    chart: Path | None
    seconds: float

    ok = True

    def failure(self) -> str | None:
        return None

    def row(self, layer: str) -> LayerRow:
        return next(r for r in self.rows if r.layer == layer)


# ------------------------------------------------------------ the float model

class _KerasValues:
    """Each named layer's float output, by layer name (one multi-output model over the original)."""

    def __init__(self, keras, names: list[str]):
        keras_mod = quiet.import_keras()
        self.names = names
        self.probe = keras_mod.Model(keras.inputs, [keras.get_layer(n).output for n in names])

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        vals = self.probe(x, training=False)
        if len(self.names) == 1:
            vals = [vals]
        return {n: np.asarray(v, np.float32) for n, v in zip(self.names, vals)}


def _to_keras_layout(v: np.ndarray, layout: str) -> np.ndarray:
    return np.transpose(v, (0, 2, 3, 1)) if layout == "nchw" and v.ndim == 4 else v


def _from_keras_layout(v: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(v, (0, 3, 1, 2))) if layout == "nchw" and v.ndim == 4 else v


# ------------------------------------------------------------------ TFLite

def _quant(detail: dict) -> tuple[float, int] | None:
    if np.dtype(detail["dtype"]) in (np.float32, np.float16):
        return None
    scale, zp = detail["quantization"]
    if not scale:
        raise ValueError(f"integer tensor {detail['name']!r} has no quantization scale")
    return float(scale), int(zp)


def _to_tensor(x: np.ndarray, detail: dict) -> np.ndarray:
    q = _quant(detail)
    if q is None:
        return np.ascontiguousarray(x, np.float32)
    info = np.iinfo(np.dtype(detail["dtype"]))
    return np.clip(np.round(x / q[0]) + q[1], info.min, info.max).astype(detail["dtype"])


def _from_tensor(v: np.ndarray, detail: dict) -> np.ndarray:
    q = _quant(detail)
    if q is None:
        return np.asarray(v, np.float32)
    return (v.astype(np.float32) - np.float32(q[1])) * np.float32(q[0])


def _interpreter(content: bytes, preserve: bool):
    with quiet.quiet():
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        it = Interpreter(model_content=content, num_threads=bk.NUM_THREADS,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                         experimental_preserve_all_tensors=preserve)
        it.allocate_tensors()
    return it


def _resize(it, index: int, shape: tuple) -> None:
    it.resize_tensor_input(index, list(shape), strict=False)


class _TFLiteTracer:
    """The variant's tensors end to end, and each group's ops alone."""

    def __init__(self, path: Path, layer_map: dict):
        self.path = path
        self.content = path.read_bytes()
        self.map = layer_map
        try:
            self.full = _interpreter(self.content, preserve=True)
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(path, f"LiteRT cannot load this model: {first_line(e)}") from None
        self.input = self.full.get_input_details()[0]
        self.details = {int(d["index"]): d for d in self.full.get_tensor_details()}
        self.subs: dict[int, Any] = {}
        self._batch: dict[int, int] = {}

    def _sub(self, g: int):
        """The one-layer model of group ``g``: its ops (and the constant ops feeding
        them) cut out of the variant's flatbuffer, with the group's inputs and output."""
        if g not in self.subs:
            from tensorflow.lite.tools import flatbuffer_utils as fu

            grp = self.map["groups"][g]
            model = fu.read_model_from_bytearray(bytearray(self.content))
            sg = model.subgraphs[0]
            keep = set(grp.get("const_ops", [])) | {op["index"] for op in grp["ops"]}
            sg.operators = [op for k, op in enumerate(sg.operators) if k in keep]
            sg.inputs = np.array([i["index"] for i in grp["inputs"]], np.int32)
            sg.outputs = np.array([grp["output"]["index"]], np.int32)
            model.signatureDefs = []
            content = bytes(fu.convert_object_to_bytearray(model))
            self.subs[g] = _interpreter(content, preserve=False)
        return self.subs[g]

    def full_values(self, x: np.ndarray) -> dict[int, np.ndarray]:
        it = self.full
        if self._batch.get(-1) != len(x):
            _resize(it, self.input["index"], (len(x), *self.input["shape"][1:]))
            it.allocate_tensors()
            self._batch[-1] = len(x)
        it.set_tensor(self.input["index"], _to_tensor(x, self.input))
        it.invoke()
        out = {}
        for grp in self.map["groups"]:
            idx = grp["output"]["index"]
            out[idx] = _from_tensor(it.get_tensor(idx), self.details[idx])
        return out

    def local_value(self, g: int, feeds: list[np.ndarray]) -> np.ndarray:
        it = self._sub(g)
        grp = self.map["groups"][g]
        if self._batch.get(g) != len(feeds[0]):
            shapes = {int(d["index"]): d["shape"] for d in it.get_input_details()}
            for i, f in zip(grp["inputs"], feeds):
                _resize(it, i["index"], (len(f), *shapes[i["index"]][1:]))
            it.allocate_tensors()
            self._batch[g] = len(feeds[0])
        by_index = {int(d["index"]): d for d in it.get_input_details()}
        for i, f in zip(grp["inputs"], feeds):
            d = by_index[i["index"]]
            it.set_tensor(d["index"], _to_tensor(f.reshape(d["shape"]), d))
        it.invoke()
        out = it.get_output_details()[0]
        return _from_tensor(it.get_tensor(out["index"]), out)


# ---------------------------------------------------------------- Core ML

class _MilTracer:
    def __init__(self, path: Path, layer_map: dict, pixels):
        from edgekit.runtime import mil

        self.program = mil.load(path)
        self.map = layer_map
        self.pixels = pixels

    def full_values(self, x: np.ndarray) -> dict[str, np.ndarray]:
        values = self.program.trace(bk.mil_feed(self.program.input_spec, x, self.pixels))
        return {grp["output"]["name"]: values[grp["output"]["name"]] for grp in self.map["groups"]}

    def local_value(self, g: int, feeds: list[np.ndarray]) -> np.ndarray:
        grp = self.map["groups"][g]
        spec = self.program.input_spec
        images, fed = None, {}
        for i, f in zip(grp["inputs"], feeds):
            if i["name"] == spec.name:  # the image input itself (no scaling op in front): pixels, as predict takes
                images = bk.mil_feed(spec, f, self.pixels)
            else:
                fed[i["name"]] = _from_keras_layout(f, i["layout"])
        values = self.program.trace(images, feeds=fed, only={op["name"] for op in grp["ops"]})
        return values[grp["output"]["name"]]


# ------------------------------------------------------------------ run

def _layer_map(v: VariantArtifact, run: RunDir) -> dict:
    lm = v.manifest.get("layers")
    redo = f"rerun `edgekit convert --run {run.root} --variants {v.id} --overwrite`"
    if lm is None:
        raise ArtifactError(v.manifest_path, f"has no layer map (converted by an older edgekit); {redo}")
    if not isinstance(lm, dict) or "error" in lm:
        err = lm.get("error") if isinstance(lm, dict) else "not an object"
        raise ArtifactError(v.manifest_path, f"layer map could not be built at convert time ({err}); {redo}")
    ok = (isinstance(lm.get("groups"), list) and isinstance(lm.get("layers"), list)
          and lm.get("format") == v.format
          and all(isinstance(g, dict) and isinstance(g.get("output"), dict) and isinstance(g.get("inputs"), list)
                  and isinstance(g.get("ops"), list) and g.get("layers") for g in lm["groups"])
          and all(isinstance(r, dict) and isinstance(r.get("layer"), str) for r in lm["layers"]))
    if ok:
        n = len(lm["groups"])
        ok = all(r.get("group") is None or (isinstance(r["group"], int) and 0 <= r["group"] < n)
                 for r in lm["layers"])
    if not ok:
        raise ArtifactError(v.manifest_path, f"layer map is malformed; {redo}")
    return lm


def _variant(config: DiagnoseConfig, run: RunDir, model: ModelArtifact) -> VariantArtifact:
    index = VariantIndex.read(run)
    if config.variant not in index.entries:
        raise ConfigError("--variant", f"no variant {config.variant!r} in {run.variant_index}; found: "
                                       f"{', '.join(index.ok_ids) or '(none)'}")
    return index.variants(model, [config.variant])[0]


def first_jump(rows: list[LayerRow]) -> str | None:
    """The first measured layer whose accumulated SNR lies JUMP_DB below the
    previous measured layer's (capped at CEILING_DB); see the module docstring."""
    prev = CEILING_DB
    for r in rows:
        if r.status != "op" or r.accumulated is None:
            continue
        snr = min(r.accumulated.snr_db, CEILING_DB)
        if snr <= prev - JUMP_DB:
            return r.layer
        prev = snr
    return None


def worst_local(rows: list[LayerRow]) -> str | None:
    measured = [r for r in rows if r.status == "op" and r.local is not None]
    if not measured:
        return None
    worst = min(measured, key=lambda r: r.local.snr_db)
    return None if math.isinf(worst.local.snr_db) else worst.layer


BACKENDS = {"tflite": bk.BackendName.LITERT.value, "coreml": bk.BackendName.MIL_REFERENCE.value}


def measure(path: Path, fmt: str, lm: dict, keras, x: np.ndarray, pixels: PixelMapping, *,
            desc: str = "diagnose") -> list[LayerRow]:
    """One row per layer of the layer map ``lm``: the accumulated and local
    error of the model file at ``path`` (format ``fmt``) against ``keras`` on
    the model inputs ``x`` (``pixels``: how they were made from pixels)."""
    if fmt == "tflite":
        tracer: Any = _TFLiteTracer(path, lm)
        key = lambda grp: grp["output"]["index"]  # noqa: E731
    else:
        tracer = _MilTracer(path, lm, pixels)
        key = lambda grp: grp["output"]["name"]  # noqa: E731
    groups = lm["groups"]
    reps = [max(g["layers"], key=[r["layer"] for r in lm["layers"]].index) for g in groups]
    wanted = sorted({*reps, *(i["from"] for g in groups for i in g["inputs"] if i["from"])})
    with quiet.quiet():
        keras_values = _KerasValues(keras, wanted)
    acc = [_Acc() for _ in groups]
    loc = [_Acc() for _ in groups]
    progress = bar(range(0, len(x), CHUNK), desc=desc, unit="chunk")
    try:
        for start in progress:
            xc = x[start:start + CHUNK]
            with quiet.quiet():
                ref = keras_values(xc)
            full = tracer.full_values(xc)
            for g, grp in enumerate(groups):
                expect = ref[reps[g]]
                got = _to_keras_layout(full[key(grp)], grp["output"]["layout"]).reshape(expect.shape)
                acc[g].add(expect, got)
                feeds = [xc if i["from"] is None else ref[i["from"]] for i in grp["inputs"]]
                if not feeds:
                    continue
                alone = tracer.local_value(g, feeds)
                loc[g].add(expect, _to_keras_layout(alone, grp["output"]["layout"]).reshape(expect.shape))
    except (ValueError, RuntimeError) as e:
        raise ModelFileError(path, f"cannot trace this model's layers: {first_line(e)}") from None
    rows = []
    for r in lm["layers"]:
        g = r.get("group")
        grp = groups[g] if g is not None else None
        rows.append(LayerRow(
            layer=r["layer"], cls=str(r.get("class", "")), status=str(r.get("status", "none")),
            tensor=grp["output"]["name"] if grp else None, fused_with=tuple(r.get("fused_with") or ()),
            into=r.get("into"), note=r.get("note"),
            accumulated=acc[g].result() if grp else None,
            local=loc[g].result() if grp and grp["inputs"] else None))
    return rows


@dataclasses.dataclass(frozen=True)
class Source:
    """What every diagnosis of one run reads, loaded once (``Source.load``) when
    several variants are diagnosed: the model manifest, the float Keras model
    and the test images (as stored; each diagnosis maps its first ``limit``)."""

    model: ModelArtifact
    keras: Any
    images: np.ndarray

    @classmethod
    def load(cls, model: ModelArtifact) -> "Source":
        with quiet.quiet():
            return cls(model, model.load_keras(), model.dataset().x_test)


def run(config: DiagnoseConfig, source: Source | None = None) -> DiagnoseResult:
    """Diagnose one variant; see the module docstring. ``source``: the run's
    model and test images already loaded (the report diagnoses several variants)."""
    t0 = time.perf_counter()
    run_dir = RunDir(config.run_dir)
    if not run_dir.root.is_dir():
        raise ArtifactError(run_dir.root, "run directory not found")
    model = ModelArtifact.read(run_dir) if source is None else source.model
    v = _variant(config, run_dir, model)
    lm = _layer_map(v, run_dir)
    artifacts.check_can_create(run_dir.diagnose_dir)
    io = model.io
    source = source or Source.load(model)
    keras = source.keras
    x = io.pixels.apply(source.images[:config.limit])
    if tuple(x.shape[1:]) != io.image_shape:
        raise ArtifactError(model.path, f"dataset images {list(x.shape[1:])} do not match io's {list(io.image_shape)}")
    known = {layer.name for layer in keras.layers}
    missing = sorted({r["layer"] for r in lm["layers"]} - known)
    if missing:
        raise ArtifactError(v.manifest_path, f"layer map names layers the model does not have: {', '.join(missing[:5])}")
    rows = measure(v.path, v.format, lm, keras, x, io.pixels, desc=f"diagnose {v.id}")
    backend = BACKENDS[v.format]
    jump, worst = first_jump(rows), worst_local(rows)
    seconds = time.perf_counter() - t0
    record = {
        "schema": DIAGNOSE_SCHEMA, "variant": v.id, "format": v.format, "backend": backend,
        "images": int(len(x)), "limit": config.limit,
        "rows": [r.to_json() for r in rows], "first_jump": jump, "worst_local": worst,
        "jump_db": JUMP_DB, "ceiling_db": CEILING_DB,
        "variant_manifest_sha256": v.sha256, "model_manifest_sha256": model.sha256,
        "chart": f"{v.id}.png", "seconds": round(seconds, 3), "versions": artifacts.library_versions(),
    }
    png = chart(v.id, rows, jump)
    run_dir.diagnose_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir.diagnose_json(v.id)
    chart_path = run_dir.diagnose_dir / record["chart"]
    artifacts.write_bytes_atomic(chart_path, png)
    artifacts.write_json(out, record)
    return DiagnoseResult(run_dir=run_dir.root, variant=v.id, format=v.format, backend=backend, images=int(len(x)),
                          rows=rows, first_jump=jump, worst_local=worst, path=out, chart=chart_path,
                          seconds=seconds)


def chart(variant_id: str, rows: list[LayerRow], jump: str | None) -> bytes:
    """"Where the error comes from": accumulated and local SNR per layer (capped at CEILING_DB)."""
    measured = [r for r in rows if r.status == "op"]
    names = [r.layer for r in measured]

    def capped(e: Error | None) -> float:
        return float("nan") if e is None else min(e.snr_db, CEILING_DB)

    fig = figures.figure(max(6.0, 0.55 * len(names) + 2), 4)
    ax = fig.add_subplot()
    xs = np.arange(len(names))
    ax.plot(xs, [capped(r.accumulated) for r in measured], marker="o", color="#d62728",
            label="accumulated (variant end to end)")
    ax.bar(xs, [capped(r.local) for r in measured], color="#1f77b4", alpha=0.45,
           label="local (the layer alone, float inputs)")
    if jump in names:
        ax.axvline(names.index(jump), color="#555555", ls="--", lw=1, label=f"first jump: {jump}")
    ax.set_xticks(xs)
    ax.set_xticklabels([n.replace("$", r"\$") for n in names], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"SNR dB (higher is closer; capped at {CEILING_DB:g})")
    ax.set_title(f"Where the error comes from: {variant_id}".replace("$", r"\$"))
    ax.legend(fontsize=7, loc="best")
    ax.grid(axis="y", alpha=0.3)
    return figures.png(fig)


def _current_record(rd: RunDir, path: Path, model_sha256: str) -> dict | None:
    """The record at ``path`` if it was made from the variant's manifest and
    the model manifest as they are now (by sha256); None when stale or unreadable."""
    try:
        data = artifacts.read_manifest(path, DIAGNOSE_SCHEMA, {"variant": str, "variant_manifest_sha256": str})
        mpath = rd.variant_manifest(data["variant"])
        fresh = (mpath.is_file() and artifacts.sha256_file(mpath) == data["variant_manifest_sha256"]
                 and data.get("model_manifest_sha256") == model_sha256)
    except (ArtifactError, OSError):
        return None
    return data if fresh else None


def is_current(run_dir: Path) -> bool:
    """Every diagnose/<id>.json exists for a variant whose manifest and model are unchanged (and there is one)."""
    rd = RunDir(Path(run_dir))
    files = sorted(rd.diagnose_dir.glob("*.json")) if rd.diagnose_dir.is_dir() else []
    if not files:
        return False
    try:
        model_sha256 = ModelArtifact.read(rd).sha256
    except (ArtifactError, OSError):
        return False
    return all(_current_record(rd, f, model_sha256) is not None for f in files)


def reusable(config: DiagnoseConfig) -> DiagnoseResult | None:
    """The result ``diagnose/<id>.json`` holds when ``run(config)`` need not
    be redone: current by ``is_current``'s rules, measured with a limit of at
    least ``config.limit`` images, its rows readable and its chart a PNG
    beside it. None otherwise (then run it)."""
    rd = RunDir(config.run_dir)
    path = rd.diagnose_json(config.variant)
    try:
        data = _current_record(rd, path, ModelArtifact.read(rd).sha256) if path.is_file() else None
        limit = None if data is None else data.get("limit")
        if data is None or data["variant"] != config.variant or type(limit) is not int or limit < config.limit:
            return None
        rows = [LayerRow.from_json(r) for r in data["rows"]]
        names = {r.layer for r in rows} | {None}
        chart_path = artifacts.resolve_inside(rd.diagnose_dir, data["chart"], "chart")
        if (data["first_jump"] not in names or data["worst_local"] not in names
                or not chart_path.read_bytes().startswith(figures.PNG_MAGIC)):
            return None
        return DiagnoseResult(run_dir=rd.root, variant=config.variant, format=str(data["format"]),
                              backend=str(data["backend"]), images=int(data["images"]), rows=rows,
                              first_jump=data["first_jump"], worst_local=data["worst_local"], path=path,
                              chart=chart_path, seconds=_real(data["seconds"]))
    except (KeyError, TypeError, ValueError, ArtifactError, OSError):
        return None
