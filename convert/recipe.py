"""Conversion recipes: one JSON file per variant id in, a validated ``Recipe`` out.

A recipe (schema ``edgekit.recipe/2``) says how to make one variant and what
it is:

```jsonc
{"schema": "edgekit.recipe/2", "id": "tflite-int8", "format": "tflite" | "coreml",
 "kind": "float32" | "float16" | "quantized" | "low-bit",   # edgekit.rundir.Kind: decides check's bars
 "reference": "tflite-fp32" | null,   # the variant its size is measured against; null: it is a reference
 "description": "...",
 "finetune": null | {"method": "qat" | "prune" | "cluster", "epochs": 1, "train_limit": 10000,
                     "learning_rate": null, "batch_size": null,       # null: the model's training settings
                     "learning_rate_factor": 0.1,  # times the training rate, when learning_rate is null
                     "target_sparsity": 0.75, "schedule": "polynomial" | "constant",   # prune
                     "clusters": 16, "init": "kmeans_plus_plus" | "linear" | ...},     # cluster
 "tflite": {"optimizations": ["DEFAULT"], "supported_types": ["float16"], "representative": true,
            "inference_input_type": "float32" | "int8" | "uint8" | "int16",
            "inference_output_type": ..., "ops": ["TFLITE_BUILTINS_INT8", ...],
            "layers": {"<keras layer>": {"weights": "int8" | "int4", "symmetric": true,       # optional,
                                         "granularity": "channel" | "tensor"} | null, ...}},  # per layer
 "coreml": {"compute_precision": "float32" | "float16", "minimum_deployment_target": "iOS15",
            "compression": null | {"method": "linear", "dtype": "int8", "mode": ..., "granularity": ...}
                                  # (granularity "per_block" with "block_size": iOS18)
                                | {"method": "palettize", "nbits": 4, "mode": "kmeans", "granularity": ...,
                                   "group_size": 16, "enable_per_channel_scale": false}   # (both iOS18)
                                | {"method": "prune", "target_sparsity": 0.75},
            "layers": {"<keras layer>": <a compression object> | null, ...}}}   # optional, per layer
```

A Core ML recipe's optional ``layers`` overrides ``compression`` for the
weights of the named Keras layers (``null``: leave that layer's weights in
the program's precision). Convert finds each layer's weight ops through the
layer map (edgekit.convert.layermap) and hands them to coremltools as
``OptimizationConfig(op_name_configs=...)``; a name the model does not have
fails that variant. A TFLite recipe's optional ``layers`` quantizes the named
layers' weights of a float32 conversion to int8 or int4 (weight-only, per
channel, through ai-edge-quantizer: convert/tflite_layers.py). ``edgekit
tune`` writes such recipes.

The shipped recipes live in ``recipes/`` beside this module (package data);
``--recipes DIR`` points at another folder. Adding a variant is adding a
file: the converters branch on these fields, never on the id, and what a
variant is (its kind and reference) is what its recipe declares. Validation
needs no TensorFlow, and a recipe that does not validate is a ConfigError
naming the file and the field.
"""
from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit import artifacts
from edgekit.errors import ArtifactError, ConfigError
from edgekit.rundir import FORMATS, PLATFORMS, RECIPE_SCHEMA, Kind

SCHEMA = RECIPE_SCHEMA
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
KINDS = tuple(k.value for k in Kind)

# Names of tf.lite enum members; mapped to the real objects in tflite.py.
TFLITE_OPTIMIZATIONS = ("DEFAULT", "EXPERIMENTAL_SPARSITY")
TFLITE_SUPPORTED_TYPES = ("float16", "int8", "int16")
TFLITE_IO_TYPES = ("float32", "int8", "uint8", "int16")
TFLITE_LAYER_WEIGHTS = ("int8", "int4")   # per-layer weight-only (convert/tflite_layers.py)
TFLITE_LAYER_GRANULARITY = ("channel", "tensor")
TFLITE_OPS = ("TFLITE_BUILTINS", "TFLITE_BUILTINS_INT8",
              "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8", "SELECT_TF_OPS")

FINETUNE_METHODS = ("qat", "prune", "cluster")
PRUNE_SCHEDULES = ("polynomial", "constant")
CLUSTER_INITS = ("kmeans_plus_plus", "linear", "random", "density_based")

COREML_PRECISIONS = ("float32", "float16")
# Core ML ML Program needs iOS15; the constexpr ops compressed weights use need iOS16.
COREML_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18")
COMPRESSION_METHODS = ("linear", "palettize", "prune")
PALETTE_BITS = (1, 2, 3, 4, 6, 8)


@dataclass(frozen=True)
class Recipe:
    """A validated recipe; ``data`` is the file's content as written (recorded in variant.json)."""

    id: str
    format: str
    kind: Kind
    reference: str | None           # the variant id its size is measured against; None: it is a reference
    description: str
    finetune: dict | None
    tflite: dict | None
    coreml: dict | None
    data: dict
    path: Path

    @property
    def platform(self) -> str:
        return PLATFORMS[self.format]


def builtin_dir() -> Path:
    return Path(str(importlib.resources.files("edgekit.convert") / "recipes"))


def recipe_files(directory: Path | None = None) -> dict[str, Path]:
    """{id: path} for every ``*.json`` in ``directory`` (the shipped recipes by default)."""
    directory = Path(directory) if directory is not None else builtin_dir()
    if not directory.is_dir():
        raise ConfigError(directory, "recipe directory not found")
    return {p.stem: p for p in sorted(directory.glob("*.json"))}


def known_ids(directory: Path | None = None) -> list[str]:
    return sorted(recipe_files(directory))


def load(recipe_id: str, directory: Path | None = None) -> Recipe:
    """The recipe ``recipe_id``; an unknown id lists the known ones."""
    files = recipe_files(directory)
    if recipe_id not in files:
        raise ConfigError("--variants", f"unknown variant id {recipe_id!r}; known: {', '.join(sorted(files)) or '(none)'}")
    return parse(files[recipe_id])


def load_all(directory: Path | None = None) -> list[Recipe]:
    return [parse(p) for p in recipe_files(directory).values()]


# ------------------------------------------------------------- validation

class _Check:
    """Field checks that raise one ConfigError naming the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, field: str, problem: str):
        raise ConfigError(self.path, f"recipe field {field!r}: {problem}")

    def obj(self, data: Any, field: str, keys: dict[str, bool]) -> dict:
        """``keys``: name -> required. Unknown keys are refused (typos must not pass silently)."""
        if not isinstance(data, dict):
            self.fail(field, f"should be an object, got {type(data).__name__}")
        for k, required in keys.items():
            if required and k not in data:
                self.fail(f"{field}.{k}" if field else k, "missing")
        extra = sorted(set(data) - set(keys))
        if extra:
            self.fail(f"{field}.{extra[0]}" if field else extra[0], f"unknown field (allowed: {', '.join(keys)})")
        return data

    def choice(self, value: Any, field: str, choices) -> Any:
        if value not in choices or isinstance(value, bool):
            self.fail(field, f"{value!r} is not one of {', '.join(map(str, choices))}")
        return value

    def choices(self, value: Any, field: str, choices) -> list:
        if not isinstance(value, list):
            self.fail(field, f"should be a list, got {type(value).__name__}")
        for i, v in enumerate(value):
            self.choice(v, f"{field}[{i}]", choices)
        return value

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "should be a non-empty string")
        return value

    def integer(self, value: Any, field: str, lo: int, hi: int, optional: bool = False) -> int | None:
        if value is None and optional:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            self.fail(field, f"should be an integer in [{lo}, {hi}], got {value!r}")
        return value

    def number(self, value: Any, field: str, lo: float, hi: float, optional: bool = False) -> float | None:
        if value is None and optional:
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo < value < hi:
            self.fail(field, f"should be a number in ({lo}, {hi}), got {value!r}")
        return float(value)


def parse(path: Path) -> Recipe:
    """Read and validate one recipe file."""
    path = Path(path)
    try:
        data = artifacts.read_json(path, "recipe")
    except ArtifactError as e:
        raise ConfigError(e.where, e.problem) from None
    c = _Check(path)
    c.obj(data, "", {"schema": True, "id": True, "format": True, "kind": True, "reference": True,
                     "description": True, "finetune": True, "tflite": False, "coreml": False})
    if data["schema"] != SCHEMA:
        c.fail("schema", f"{data['schema']!r} is not {SCHEMA!r}")
    rid = c.string(data["id"], "id")
    if not ID_PATTERN.match(rid):
        c.fail("id", f"{rid!r} should be lowercase letters, digits and dashes")
    if rid != path.stem:
        c.fail("id", f"{rid!r} differs from the file name {path.name!r}")
    fmt = c.choice(data["format"], "format", FORMATS)
    kind = Kind(c.choice(data["kind"], "kind", KINDS))
    reference = data["reference"]
    if reference is not None:
        if not isinstance(reference, str) or not ID_PATTERN.match(reference):
            c.fail("reference", f"should be null (this recipe is a reference) or a variant id, got {reference!r}")
        if reference == rid:
            c.fail("reference", "a recipe is not its own reference (use null for a reference)")
    c.string(data["description"], "description")
    other = "coreml" if fmt == "tflite" else "tflite"
    if data.get(other) is not None:
        c.fail(other, f"a {fmt} recipe has no {other} section")
    if fmt not in data:
        c.fail(fmt, "missing")
    if fmt == "tflite":
        _tflite(c, data["tflite"])
    else:
        _coreml(c, data["coreml"])
    if data["finetune"] is not None:
        if fmt != "tflite":
            c.fail("finetune", "fine-tuning (tfmot) is only for tflite recipes; Core ML compression is post-training")
        _finetune(c, data["finetune"])
    return Recipe(id=rid, format=fmt, kind=kind, reference=reference, description=data["description"],
                  finetune=data["finetune"],
                  tflite=data.get("tflite"), coreml=data.get("coreml"), data=data, path=path)


def _tflite(c: _Check, t: Any) -> None:
    c.obj(t, "tflite", {"optimizations": True, "supported_types": True, "representative": True,
                        "inference_input_type": True, "inference_output_type": True, "ops": True,
                        "layers": False})
    layers = t.get("layers")
    if layers is not None:
        if not isinstance(layers, dict) or not layers:
            c.fail("tflite.layers", "should be an object of Keras layer name -> {\"weights\": \"int8\" | \"int4\"} or null")
        if t["optimizations"] or t["supported_types"] or t["representative"]:
            c.fail("tflite.layers", "per-layer weights apply to a float32 conversion (no optimizations, "
                                    "supported_types or calibration)")
        for name, setting in layers.items():
            if not name.strip():
                c.fail("tflite.layers", "layer names should be non-empty")
            if setting is not None:
                c.obj(setting, f"tflite.layers.{name}", {"weights": True, "symmetric": False, "granularity": False})
                c.choice(setting["weights"], f"tflite.layers.{name}.weights", TFLITE_LAYER_WEIGHTS)
                if not isinstance(setting.get("symmetric", True), bool):
                    c.fail(f"tflite.layers.{name}.symmetric", f"should be true or false, got {setting['symmetric']!r}")
                c.choice(setting.get("granularity", "channel"), f"tflite.layers.{name}.granularity",
                         TFLITE_LAYER_GRANULARITY)
    c.choices(t["optimizations"], "tflite.optimizations", TFLITE_OPTIMIZATIONS)
    c.choices(t["supported_types"], "tflite.supported_types", TFLITE_SUPPORTED_TYPES)
    if not isinstance(t["representative"], bool):
        c.fail("tflite.representative", "should be true or false")
    for k in ("inference_input_type", "inference_output_type"):
        c.choice(t[k], f"tflite.{k}", TFLITE_IO_TYPES)
    if not t["ops"]:
        c.fail("tflite.ops", "should name at least one op set")
    c.choices(t["ops"], "tflite.ops", TFLITE_OPS)
    # The converter quantizes I/O only with calibration data; catch it here, by field.
    integer_io = [k for k in ("inference_input_type", "inference_output_type") if t[k] != "float32"]
    if integer_io and not t["representative"]:
        c.fail(f"tflite.{integer_io[0]}", "integer I/O needs calibration (\"representative\": true)")
    if t["representative"] and not t["optimizations"]:
        c.fail("tflite.representative", "calibration needs an optimization (\"optimizations\": [\"DEFAULT\"])")


def _coreml(c: _Check, m: Any) -> None:
    c.obj(m, "coreml", {"compute_precision": True, "compression": True, "minimum_deployment_target": True,
                        "layers": False})
    c.choice(m["compute_precision"], "coreml.compute_precision", COREML_PRECISIONS)
    target = c.choice(m["minimum_deployment_target"], "coreml.minimum_deployment_target", COREML_TARGETS)
    layers = m.get("layers")
    if layers is not None:
        if not isinstance(layers, dict) or not layers:
            c.fail("coreml.layers", "should be an object of Keras layer name -> compression object or null")
        for name, comp in layers.items():
            if not name.strip():
                c.fail("coreml.layers", "layer names should be non-empty")
            if comp is not None:
                _compression(c, comp, f"coreml.layers.{name}", target)
    if m["compression"] is not None:
        _compression(c, m["compression"], "coreml.compression", target)


def _compression(c: _Check, comp: Any, f: str, target: str) -> None:
    if not isinstance(comp, dict):
        c.fail(f, f"should be null or an object, got {type(comp).__name__}")
    method = c.choice(comp.get("method"), f"{f}.method", COMPRESSION_METHODS)
    if method == "linear":
        c.obj(comp, f, {"method": True, "dtype": True, "mode": True, "granularity": True, "block_size": False,
                        "weight_threshold": False})
        c.choice(comp["dtype"], f"{f}.dtype", ("int8", "uint8", "int4", "uint4"))
        c.choice(comp["mode"], f"{f}.mode", ("linear", "linear_symmetric"))
        granularity = c.choice(comp["granularity"], f"{f}.granularity", ("per_tensor", "per_channel", "per_block"))
        _sized_granularity(c, comp, f, granularity == "per_block", "block_size", "per_block", target)
    elif method == "palettize":
        c.obj(comp, f, {"method": True, "nbits": True, "mode": True, "granularity": True, "group_size": False,
                        "enable_per_channel_scale": False, "weight_threshold": False})
        nbits = c.choice(comp["nbits"], f"{f}.nbits", PALETTE_BITS)
        c.choice(comp["mode"], f"{f}.mode", ("kmeans", "uniform"))
        granularity = c.choice(comp["granularity"], f"{f}.granularity", ("per_tensor", "per_grouped_channel"))
        _sized_granularity(c, comp, f, granularity == "per_grouped_channel", "group_size", "per_grouped_channel",
                           target)
        scale = comp.get("enable_per_channel_scale", False)
        if not isinstance(scale, bool):
            c.fail(f"{f}.enable_per_channel_scale", f"should be true or false, got {scale!r}")
        if scale and not _ios18(target):
            c.fail(f"{f}.enable_per_channel_scale", f"per-channel palette scales need iOS18's ops, not {target}")
        if nbits == 3 and not _ios18(target):
            c.fail(f"{f}.nbits", f"3-bit palettes need iOS18's ops, not {target}")
    else:
        c.obj(comp, f, {"method": True, "target_sparsity": True, "weight_threshold": False})
        c.number(comp["target_sparsity"], f"{f}.target_sparsity", 0.0, 1.0)
    c.integer(comp.get("weight_threshold"), f"{f}.weight_threshold", 0, 1 << 30, optional=True)
    if COREML_TARGETS.index(target) < COREML_TARGETS.index("iOS16"):
        c.fail("coreml.minimum_deployment_target", f"compressed weights need iOS16's constexpr ops, not {target}")


def _ios18(target: str) -> bool:
    return COREML_TARGETS.index(target) >= COREML_TARGETS.index("iOS18")


def _sized_granularity(c: _Check, comp: dict, f: str, sized: bool, size_key: str, granularity: str,
                       target: str) -> None:
    """``group_size``/``block_size`` belongs to (and is required by) its granularity,
    which only iOS18's constexpr ops can express."""
    if not sized:
        if size_key in comp:
            c.fail(f"{f}.{size_key}", f"only for granularity {granularity!r}")
        return
    c.integer(comp.get(size_key), f"{f}.{size_key}", 1, 1 << 16)
    if not _ios18(target):
        c.fail(f"{f}.granularity", f"{granularity} needs iOS18's ops, not {target}")


def _finetune(c: _Check, ft: Any) -> None:
    f = "finetune"
    common = {"method": True, "epochs": True, "train_limit": True, "learning_rate": True,
              "learning_rate_factor": True, "batch_size": True}
    method = c.choice(ft.get("method") if isinstance(ft, dict) else None, f"{f}.method", FINETUNE_METHODS)
    if method == "qat":
        c.obj(ft, f, common)
    elif method == "prune":
        c.obj(ft, f, {**common, "target_sparsity": True, "schedule": True})
        c.number(ft["target_sparsity"], f"{f}.target_sparsity", 0.0, 1.0)
        c.choice(ft["schedule"], f"{f}.schedule", PRUNE_SCHEDULES)
    else:
        c.obj(ft, f, {**common, "clusters": True, "init": True})
        c.integer(ft["clusters"], f"{f}.clusters", 2, 256)
        c.choice(ft["init"], f"{f}.init", CLUSTER_INITS)
    c.integer(ft["epochs"], f"{f}.epochs", 1, 100)
    c.integer(ft["train_limit"], f"{f}.train_limit", 1, 10**9, optional=True)
    c.number(ft["learning_rate"], f"{f}.learning_rate", 0.0, 1.0, optional=True)
    c.number(ft["learning_rate_factor"], f"{f}.learning_rate_factor", 0.0, 10.0)
    c.integer(ft["batch_size"], f"{f}.batch_size", 1, 1 << 16, optional=True)
