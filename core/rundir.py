"""The run directory: every artifact edgekit writes, with its schema, path, reader and writer.

This module is the one place that spells a path inside a run directory or a
schema id. A stage asks it for what it needs (``RunDir(run).model_dir``,
``ModelArtifact.read(run)``, ``VariantIndex.read(run)``, …) and hands it
what it produced (``ModelArtifact.write(tmp, …)``, ``VariantIndex.write``,
…). Readers check the ``schema`` and the sections they rely on and refuse
anything else with one ``ArtifactError`` line naming the file (exit 2).

```
runs/<name>/
  model/manifest.json          ModelArtifact    edgekit.model/2 (typed I/O: ModelIO)
  variants/index.json          VariantIndex     edgekit.variant-index/1 (what convert wrote)
  variants/<id>/variant.json   VariantArtifact  edgekit.variant/2 (kind and reference declared by the recipe)
  check/results.json           CheckArtifact    edgekit.check/2 (records each prediction file)
  report/report.json                            edgekit.report/2
  golden/golden.json                            edgekit.golden/1
  pipeline.json                                 edgekit.pipeline/1
  diagnose/<id>.json                            edgekit.diagnose/1 (per-layer error of one variant)
  tune/<id>.json, tune/recipes/<id>.json        edgekit.tune/1 (the search), the tuned recipe
```
``CheckedRun`` is what report and golden read: a check with its model,
variants, predictions and the checked test images, cross-checked.

Writes go through ``edgekit.artifacts`` (atomic temp-then-rename); this
module adds only what each artifact is. docs/ARTIFACTS.md is checked against
``SCHEMAS`` and the dataclasses here (tests/core/test_rundir.py).
"""
from __future__ import annotations

import enum
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from edgekit import artifacts
from edgekit.errors import ArtifactError

# ------------------------------------------------------------------ schemas

MODEL_SCHEMA = "edgekit.model/2"
VARIANT_SCHEMA = "edgekit.variant/2"
INDEX_SCHEMA = "edgekit.variant-index/1"
CHECK_SCHEMA = "edgekit.check/2"
REPORT_SCHEMA = "edgekit.report/2"
GOLDEN_SCHEMA = "edgekit.golden/1"
PIPELINE_SCHEMA = "edgekit.pipeline/1"
DIAGNOSE_SCHEMA = "edgekit.diagnose/1"   # diagnose/<id>.json
TUNE_SCHEMA = "edgekit.tune/1"           # tune/<id>.json
RECIPE_SCHEMA = "edgekit.recipe/2"      # recipe files live outside runs, but their id lives here
SHARD_SCHEMA = "edgekit.shard/1"        # distributed/<task>-<index>.json

SCHEMAS = {
    "model/manifest.json": MODEL_SCHEMA,
    "variants/index.json": INDEX_SCHEMA,
    "variants/<id>/variant.json": VARIANT_SCHEMA,
    "check/results.json": CHECK_SCHEMA,
    "report/report.json": REPORT_SCHEMA,
    "golden/golden.json": GOLDEN_SCHEMA,
    "pipeline.json": PIPELINE_SCHEMA,
    "distributed/<task>-<index>.json": SHARD_SCHEMA,
    "diagnose/<id>.json": DIAGNOSE_SCHEMA,
    "tune/<id>.json": TUNE_SCHEMA,
}

# The I/O names every edgekit model and every converted variant use.
MODEL_MANIFEST = "manifest.json"          # inside model/
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"

FORMATS = ("tflite", "coreml")
PLATFORMS = {"tflite": "android", "coreml": "ios"}      # format -> platform


class Kind(str, enum.Enum):
    """What a variant changes relative to the original; decides its thresholds.
    Declared by its recipe (``"kind"``), never inferred from its id."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    QUANTIZED = "quantized"      # 8-bit (and 6-bit palettes): integer kernels or int8 weights
    LOW_BIT = "low-bit"          # 4 bits or fewer, sparse or clustered weights


class Color(str, enum.Enum):
    GRAYSCALE = "grayscale"
    RGB = "rgb"
    BGR = "bgr"


class VariantStatus(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"          # the recipe cannot apply to this model (the reason says why)


# ------------------------------------------------------------------ paths

@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory. Nothing outside this module joins them."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, run: "RunDir | str | os.PathLike") -> "RunDir":
        return run if isinstance(run, RunDir) else cls(Path(run))

    # model/
    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def model_manifest(self) -> Path:
        return self.model_dir / MODEL_MANIFEST

    @property
    def distributed_dir(self) -> Path:
        return self.root / "distributed"

    def shard_record(self, task_type: str, index: int) -> Path:
        return self.distributed_dir / f"{task_type}-{index}.json"

    # variants/
    @property
    def variants_dir(self) -> Path:
        return self.root / "variants"

    @property
    def variant_index(self) -> Path:
        return self.variants_dir / "index.json"

    def variant_dir(self, variant_id: str) -> Path:
        return self.variants_dir / variant_id

    def variant_manifest(self, variant_id: str) -> Path:
        return self.variant_dir(variant_id) / "variant.json"

    # check/
    @property
    def check_dir(self) -> Path:
        return self.root / "check"

    @property
    def check_results(self) -> Path:
        return self.check_dir / "results.json"

    @property
    def junit(self) -> Path:
        return self.check_dir / "junit.xml"

    # report/, golden/, diagnose/
    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def report_json(self) -> Path:
        return self.report_dir / "report.json"

    @property
    def report_html(self) -> Path:
        return self.report_dir / "report.html"

    @property
    def report_md(self) -> Path:
        return self.report_dir / "report.md"

    @property
    def golden_dir(self) -> Path:
        return self.root / "golden"

    @property
    def golden_json(self) -> Path:
        return self.golden_dir / "golden.json"

    @property
    def pipeline_json(self) -> Path:
        return self.root / "pipeline.json"

    @property
    def diagnose_dir(self) -> Path:
        return self.root / "diagnose"

    def diagnose_json(self, variant_id: str) -> Path:
        return self.diagnose_dir / f"{variant_id}.json"

    # tune/
    @property
    def tune_dir(self) -> Path:
        return self.root / "tune"

    def tune_json(self, variant_id: str) -> Path:
        """The search record of a tuned variant (``coreml-tuned``, ``tflite-tuned``)."""
        return self.tune_dir / f"{variant_id}.json"

    @property
    def tuned_recipes_dir(self) -> Path:
        """The recipe files tune wrote (``edgekit convert --recipes`` takes this folder)."""
        return self.tune_dir / "recipes"

    def tuned_recipe(self, variant_id: str) -> Path:
        return self.tuned_recipes_dir / f"{variant_id}.json"

    def relative(self, path: Path) -> str:
        """``path`` relative to the run root; either may be relative to the working
        directory or resolved (``artifacts.resolve_inside`` resolves, ``--run runs/x`` does not)."""
        p = Path(path)
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return p.resolve().relative_to(self.root.resolve()).as_posix()


# --------------------------------------------------------------- model I/O

@dataclass(frozen=True)
class PixelMapping:
    """How 8-bit pixels become model inputs, per channel: ``input = pixel * scale + bias``.

    Every way of stating it (``--input-range LO,HI`` for pixel 0 → LO and 255
    → HI, or ``--mean/--std`` on [0, 1] pixels) reduces to this, which is also
    exactly what a Core ML image input (scale and per-channel bias) and the
    golden kit carry.
    """

    scale: tuple[float, ...]
    bias: tuple[float, ...]

    @classmethod
    def from_range(cls, lo: float, hi: float, channels: int = 1) -> "PixelMapping":
        s = (float(hi) - float(lo)) / 255.0
        return cls((s,) * channels, (float(lo),) * channels)

    @classmethod
    def from_mean_std(cls, mean: Sequence[float], std: Sequence[float]) -> "PixelMapping":
        """(pixel / 255 - mean) / std, per channel."""
        return cls(tuple(1.0 / (255.0 * s) for s in std), tuple(-m / s for m, s in zip(mean, std)))

    @property
    def channels(self) -> int:
        return len(self.scale)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 ``[..., C]`` (or ``[N, H, W]`` for one channel) to float32 model inputs ``[..., C]``."""
        x = np.asarray(pixels)
        if x.ndim == 3 and self.channels == 1:
            x = x[..., None]
        # in float64, rounded once to float32: for [0, 1] this equals pixel / 255
        # computed in float32 exactly (a float32 multiply by 1/255 differs in 126 of 256 values)
        if x.dtype != np.uint8 or (self.channels > 1 and x.shape[-1] != self.channels):
            return (x.astype(np.float64) * np.asarray(self.scale) + np.asarray(self.bias)).astype(np.float32)
        # uint8: the same 256 values per channel, looked up (0.03 s instead of 0.7 s for the MNIST test set)
        table = (np.arange(256, dtype=np.float64)[:, None] * np.asarray(self.scale)
                 + np.asarray(self.bias)).astype(np.float32)   # [256, C]
        if self.channels == 1:
            return table[:, 0][x]
        out = np.empty(x.shape, np.float32)
        for c in range(self.channels):
            out[..., c] = table[:, c][x[..., c]]
        return out

    def value_range(self) -> list[float]:
        lo = min(b for b in self.bias)
        hi = max(b + 255.0 * s for s, b in zip(self.scale, self.bias))
        return [float(lo), float(hi)]

    def to_json(self) -> dict:
        return {"scale": list(self.scale), "bias": list(self.bias)}


@dataclass(frozen=True)
class ModelIO:
    """What a model takes and gives, typed: the contract every stage reads."""

    height: int
    width: int
    channels: int
    class_names: tuple[str, ...]
    color: Color = Color.GRAYSCALE
    pixels: PixelMapping = PixelMapping((1 / 255,), (0.0,))
    input_name: str = INPUT_NAME
    input_dtype: str = "float32"
    output_name: str = OUTPUT_NAME
    output_activation: str = "softmax"            # "softmax": probabilities; "none": logits
    resize: str = "bilinear"                       # whole image, no crop, to height x width

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def outputs_logits(self) -> bool:
        return self.output_activation != "softmax"

    def to_json(self) -> dict:
        """The manifest's ``io`` section."""
        return {
            "inputs": [{"name": self.input_name, "shape": [None, self.height, self.width, self.channels],
                        "dtype": self.input_dtype, "range": self.pixels.value_range(), "color": self.color.value,
                        "pixels": self.pixels.to_json(), "resize": self.resize}],
            "outputs": [{"name": self.output_name, "shape": [None, self.num_classes], "dtype": "float32",
                         "activation": self.output_activation}],
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_json(cls, io: Any, where: Path) -> "ModelIO":
        """Parse and validate a manifest's ``io`` section (one ArtifactError per problem)."""
        def bad(problem: str):
            raise ArtifactError(where, f"io: {problem}")

        if not isinstance(io, dict):
            bad("should be an object")
        ins, outs, names = io.get("inputs"), io.get("outputs"), io.get("class_names")
        if not (isinstance(ins, list) and len(ins) == 1 and isinstance(ins[0], dict)):
            bad("inputs should list exactly one image input")
        if not (isinstance(outs, list) and len(outs) == 1 and isinstance(outs[0], dict)):
            bad("outputs should list exactly one class vector")
        i, o = ins[0], outs[0]
        shape = i.get("shape")
        if not (isinstance(shape, list) and len(shape) == 4 and shape[0] is None
                and all(_int(d) and 1 <= d <= 4096 for d in shape[1:]) and shape[3] in (1, 3)):
            bad(f"inputs[0].shape should be [null, H, W, 1 or 3], got {shape!r}")
        if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(n, str) and n for n in names)):
            bad("class_names should be a list of at least two non-empty strings")
        if len(set(names)) != len(names):
            bad("class_names has duplicates (Core ML classifier labels must be unique)")
        oshape = o.get("shape")
        if oshape != [None, len(names)]:
            bad(f"outputs[0].shape {oshape!r} does not match {len(names)} class names")
        try:
            color = Color(i.get("color"))
        except ValueError:
            bad(f"inputs[0].color should be one of {', '.join(c.value for c in Color)}, got {i.get('color')!r}")
        px = i.get("pixels")
        if not (isinstance(px, dict) and all(isinstance(px.get(k), list) and len(px[k]) == shape[3]
                                             and all(_num(v) for v in px[k]) for k in ("scale", "bias"))
                and all(v != 0 for v in px["scale"])):
            bad(f"inputs[0].pixels should be {{scale: [{shape[3]} non-zero numbers], bias: [{shape[3]} numbers]}}")
        if (color is Color.GRAYSCALE) != (shape[3] == 1):
            bad(f"inputs[0].color {color.value!r} does not fit {shape[3]} channel(s)")
        activation = o.get("activation")
        if activation not in ("softmax", "none"):
            bad(f"outputs[0].activation should be 'softmax' or 'none', got {activation!r}")
        for key, obj in (("inputs[0].name", i), ("outputs[0].name", o)):
            if not isinstance(obj.get("name"), str) or not obj["name"]:
                bad(f"{key} should be a non-empty string")
        return cls(height=shape[1], width=shape[2], channels=shape[3], class_names=tuple(names), color=color,
                   pixels=PixelMapping(tuple(float(v) for v in px["scale"]), tuple(float(v) for v in px["bias"])),
                   input_name=i["name"], input_dtype=str(i.get("dtype", "float32")), output_name=o["name"],
                   output_activation=activation, resize=str(i.get("resize", "bilinear")))


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


# ------------------------------------------------------------------ model

MODEL_REQUIRED = {"config": dict, "dataset": dict, "files": dict, "model": dict, "io": dict}


@dataclass(frozen=True)
class ModelArtifact:
    """``model/``: the original model a run's variants are made from and compared with.

    ``manifest`` is the file as written (sections this module does not type,
    like ``metrics`` or ``plots``, pass through); ``sha256`` is the manifest
    file's hash, which every later artifact records as its source.
    """

    run: RunDir
    manifest: dict
    sha256: str
    io: ModelIO

    @property
    def dir(self) -> Path:
        return self.run.model_dir

    @property
    def path(self) -> Path:
        return self.run.model_manifest

    @property
    def name(self) -> str:
        return str(self.manifest["model"].get("name", "model"))

    def file(self, key: str) -> Path:
        """A produced file by its ``files`` key (``keras``, ``saved_model``), resolved inside model/."""
        rec = self.manifest["files"].get(key)
        if not isinstance(rec, dict) or not isinstance(rec.get("path"), str):
            raise ArtifactError(self.path, f"files.{key} is missing")
        return artifacts.resolve_inside(self.dir, rec["path"], f"model file {key!r}")

    def file_sha256(self, key: str) -> str | None:
        rec = self.manifest["files"].get(key)
        return rec.get("sha256") if isinstance(rec, dict) else None

    def files_intact(self) -> bool:
        """Every produced file still hashes as the manifest records."""
        for key, rec in self.manifest["files"].items():
            if not isinstance(rec, dict) or not rec.get("sha256"):
                continue
            path = self.file(key)
            if not path.exists() or artifacts.sha256_tree(path) != rec["sha256"]:
                return False
        return True

    def dataset(self):
        """The exact dataset and split the model was trained (or imported) with:
        the evaluation, calibration and fine-tuning data of every later stage."""
        from edgekit.train.data import load_from_manifest

        return load_from_manifest(self.manifest, self.dir)

    def load_keras(self):
        """The Keras model, loaded safely after checking its sha256."""
        from edgekit.train.models import load_model

        return load_model(self.dir, self.manifest)

    @classmethod
    def read(cls, run: "RunDir | str | os.PathLike") -> "ModelArtifact":
        run = RunDir.of(run)
        path = run.model_manifest
        if not path.is_file() and not run.root.is_dir():
            raise ArtifactError(run.root, "run directory not found")
        manifest = artifacts.read_manifest(path, MODEL_SCHEMA, MODEL_REQUIRED)
        io = ModelIO.from_json(manifest["io"], path)
        return cls(run=run, manifest=manifest, sha256=artifacts.sha256_file(path), io=io)

    @staticmethod
    def write(directory: Path, *, io: ModelIO, **sections: Any) -> Path:
        """Write ``manifest.json`` into ``directory`` (the temporary model/ of
        ``artifacts.atomic_dir``): the schema, ``io`` and the given sections."""
        missing = sorted(k for k in MODEL_REQUIRED if k != "io" and k not in sections)
        if missing:
            raise ValueError(f"model manifest sections missing: {missing}")
        path = Path(directory) / MODEL_MANIFEST
        artifacts.write_json(path, {"schema": MODEL_SCHEMA, "io": io.to_json(), **sections})
        return path


# ---------------------------------------------------------------- variants

VARIANT_REQUIRED = {"id": str, "format": str, "kind": str, "file": dict, "recipe": dict, "source_model": dict}


@dataclass(frozen=True)
class VariantArtifact:
    """``variants/<id>/``: one converted model file and what it is."""

    run: RunDir
    id: str
    format: str
    kind: Kind
    reference: str | None          # the variant this one is measured against for size; None: it is the reference
    manifest: dict
    sha256: str                    # of variant.json

    @property
    def dir(self) -> Path:
        return self.run.variant_dir(self.id)

    @property
    def path(self) -> Path:
        """The model file (``model.tflite`` or ``Model.mlpackage``)."""
        return artifacts.resolve_inside(self.dir, self.manifest["file"].get("path"), "variant model file")

    @property
    def manifest_path(self) -> Path:
        return self.run.variant_manifest(self.id)

    @property
    def platform(self) -> str:
        return PLATFORMS[self.format]

    @property
    def is_reference(self) -> bool:
        return self.reference is None

    @property
    def size_bytes(self) -> int:
        return int(self.manifest["file"].get("size_bytes") or 0)

    @property
    def source_sha256(self) -> str | None:
        return self.manifest["source_model"].get("sha256")

    def file_intact(self) -> bool:
        try:
            path = self.path
        except ArtifactError:
            return False
        return path.exists() and artifacts.sha256_tree(path) == self.manifest["file"].get("sha256")

    @classmethod
    def read(cls, run: "RunDir | str | os.PathLike", variant_id: str,
             model: "ModelArtifact | None" = None) -> "VariantArtifact":
        """Read and validate ``variants/<id>/variant.json``; with ``model``, also
        refuse a variant made from another model or whose file changed."""
        run = RunDir.of(run)
        mpath = run.variant_manifest(variant_id)
        if not mpath.is_file():
            d = run.variant_dir(variant_id)
            raise ArtifactError(d if d.is_dir() else mpath,
                                "variant directory has no variant.json (an interrupted or foreign conversion?); "
                                "rerun edgekit convert or remove it" if d.is_dir() else "variant manifest not found")
        man = artifacts.read_manifest(mpath, VARIANT_SCHEMA, VARIANT_REQUIRED)
        if man["id"] != variant_id:
            raise ArtifactError(mpath, f"id {man['id']!r} does not match its directory {variant_id!r}")
        if man["format"] not in FORMATS:
            raise ArtifactError(mpath, f"unknown format {man['format']!r} (expected {' or '.join(FORMATS)})")
        try:
            kind = Kind(man["kind"])
        except ValueError:
            raise ArtifactError(mpath, f"unknown kind {man['kind']!r} (expected one of "
                                       f"{', '.join(k.value for k in Kind)})") from None
        reference = man.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise ArtifactError(mpath, "reference should be a variant id or null")
        v = cls(run=run, id=variant_id, format=man["format"], kind=kind, reference=reference, manifest=man,
                sha256=artifacts.sha256_file(mpath))
        if model is not None:
            if v.source_sha256 not in (None, model.sha256):
                raise ArtifactError(mpath, "converted from another model (source_model sha256 differs from "
                                           "model/manifest.json); rerun edgekit convert")
            path = v.path
            if not path.exists():
                raise ArtifactError(path, "model file named by variant.json is missing")
            if "sha256" in man["file"] and artifacts.sha256_tree(path) != man["file"]["sha256"]:
                raise ArtifactError(path, "sha256 differs from variant.json: the model file was changed or "
                                          "replaced after conversion")
        return v

    @staticmethod
    def write(directory: Path, record: Mapping[str, Any]) -> Path:
        """Write ``variant.json`` into ``directory`` (the temporary variant dir)."""
        missing = sorted(k for k in VARIANT_REQUIRED if k not in record)
        if missing:
            raise ValueError(f"variant record missing: {missing}")
        Kind(record["kind"])
        path = Path(directory) / "variant.json"
        artifacts.write_json(path, {**record, "schema": VARIANT_SCHEMA})
        return path


@dataclass(frozen=True)
class IndexEntry:
    id: str
    format: str
    kind: Kind
    reference: str | None
    status: VariantStatus
    reason: str | None = None

    def to_json(self) -> dict:
        return {"format": self.format, "kind": self.kind.value, "reference": self.reference,
                "status": self.status.value, "reason": self.reason,
                "manifest": f"{self.id}/variant.json" if self.status is VariantStatus.OK else None}


@dataclass(frozen=True)
class VariantIndex:
    """``variants/index.json``: every variant convert made or tried for this model,
    with its format, kind, reference and status. Check reads this, not the folder."""

    run: RunDir
    source_sha256: str
    entries: dict[str, IndexEntry] = field(default_factory=dict)

    @property
    def ok_ids(self) -> list[str]:
        return [i for i, e in self.entries.items() if e.status is VariantStatus.OK]

    def reference_of(self, variant_id: str) -> str | None:
        """The id a variant's size ratio is taken against (itself for a reference)."""
        e = self.entries.get(variant_id)
        if e is None:
            return None
        return variant_id if e.reference is None else e.reference

    @classmethod
    def read(cls, run: "RunDir | str | os.PathLike") -> "VariantIndex":
        run = RunDir.of(run)
        path = run.variant_index
        if not path.is_file():
            raise ArtifactError(run.variants_dir, f"no variant index (variants/index.json); run "
                                                  f"`edgekit convert --run {run.root}` first")
        data = artifacts.read_manifest(path, INDEX_SCHEMA, {"variants": dict, "source_model_sha256": str})
        entries = {}
        for vid, e in data["variants"].items():
            try:
                entries[vid] = IndexEntry(id=vid, format=e["format"], kind=Kind(e["kind"]),
                                          reference=e.get("reference"), status=VariantStatus(e["status"]),
                                          reason=e.get("reason"))
            except (TypeError, KeyError, ValueError) as exc:
                raise ArtifactError(path, f"entry {vid!r} is malformed ({exc})") from None
            if entries[vid].format not in FORMATS:
                raise ArtifactError(path, f"entry {vid!r} has unknown format {entries[vid].format!r}")
        return cls(run=run, source_sha256=data["source_model_sha256"], entries=entries)

    def write(self) -> Path:
        """Write (atomically replace) ``variants/index.json``."""
        artifacts.check_writable_dir(self.run.variants_dir)
        artifacts.write_json(self.run.variant_index, {
            "schema": INDEX_SCHEMA, "source_model_sha256": self.source_sha256,
            "variants": {vid: e.to_json() for vid, e in sorted(self.entries.items())}})
        return self.run.variant_index

    def variants(self, model: "ModelArtifact | None" = None,
                 ids: Sequence[str] | None = None) -> list[VariantArtifact]:
        """The converted variants (all ``ok`` ones, or ``ids``), read and validated."""
        wanted = self.ok_ids if ids is None else list(ids)
        for vid in wanted:
            e = self.entries.get(vid)
            if e is None:
                raise ArtifactError(self.run.variant_index, f"no variant {vid!r} in the index; known: "
                                                            f"{', '.join(self.entries) or '(none)'}")
            if e.status is not VariantStatus.OK:
                raise ArtifactError(self.run.variant_index, f"variant {vid!r} is {e.status.value}: {e.reason}")
        return [VariantArtifact.read(self.run, vid, model) for vid in wanted]


# ------------------------------------------------------------------ check

CHECK_REQUIRED = {"variants": dict, "predictions": dict, "model_manifest": dict, "test_count": int}


def load_probabilities(path: Path, *, labels: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
    """``probabilities`` (finite N x C) of a predictions ``.npz`` (no pickle);
    with ``labels``, also its ``labels`` array (or None)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "probabilities" not in z.files:
                raise ArtifactError(path, f"has no 'probabilities' array (has {sorted(z.files)})")
            probs = np.asarray(z["probabilities"], np.float64)
            labs = np.asarray(z["labels"]) if labels and "labels" in z.files else None
    except FileNotFoundError:
        raise ArtifactError(path, "predictions file not found; rerun `edgekit check`") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ArtifactError(path, f"not a readable .npz predictions file ({e})") from None
    if probs.ndim != 2 or not np.all(np.isfinite(probs)):
        raise ArtifactError(path, f"probabilities must be a finite N x C array, got shape {probs.shape}")
    return (probs, labs) if labels else probs


@dataclass(frozen=True)
class CheckArtifact:
    """``check/``: results.json, junit.xml and the prediction files it names."""

    run: RunDir
    results: dict
    sha256: str

    ORIGINAL = "original"

    @property
    def dir(self) -> Path:
        return self.run.check_dir

    @property
    def variant_ids(self) -> list[str]:
        return list(self.results["variants"])

    def predictions_path(self, name: str) -> Path:
        """The predictions file of a variant id, or of ``"original"``, as results.json records it."""
        rel = self.results["predictions"].get(name)
        if not isinstance(rel, str):
            raise ArtifactError(self.run.check_results, f"records no predictions file for {name!r}")
        return artifacts.resolve_inside(self.dir, rel, "predictions")

    def probabilities(self, name: str) -> np.ndarray:
        return load_probabilities(self.predictions_path(name))

    def original(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(probabilities, labels) of the original model on the checked images."""
        return load_probabilities(self.predictions_path(self.ORIGINAL), labels=True)

    @classmethod
    def read(cls, run: "RunDir | str | os.PathLike") -> "CheckArtifact":
        run = RunDir.of(run)
        if not run.root.is_dir():
            raise ArtifactError(run.root, "run directory not found")
        data = artifacts.read_manifest(run.check_results, CHECK_SCHEMA, CHECK_REQUIRED)
        for vid, entry in data["variants"].items():
            if not isinstance(entry, dict):
                raise ArtifactError(run.check_results, f"variant {vid!r} entry is not an object")
        return cls(run=run, results=data, sha256=artifacts.sha256_file(run.check_results))

    @staticmethod
    def prediction_file(name: str) -> str:
        """Where a prediction file goes, relative to check/ (recorded in results.json)."""
        return f"predictions/{name}.npz"

    @classmethod
    def write(cls, directory: Path, results: Mapping[str, Any], predictions: Mapping[str, np.ndarray],
              labels: np.ndarray, junit: bytes) -> None:
        """Write a whole check/ into ``directory`` (the temporary dir of ``atomic_dir``):
        one ``.npz`` per entry of ``predictions`` (``"original"`` gets the labels too),
        results.json recording every prediction file, and junit.xml."""
        directory = Path(directory)
        (directory / "predictions").mkdir()
        files = {}
        for name, probs in predictions.items():
            rel = cls.prediction_file(name)
            extra = {"labels": np.asarray(labels)} if name == cls.ORIGINAL else {}
            np.savez(directory / rel, probabilities=np.asarray(probs, np.float32), **extra)
            files[name] = rel
        artifacts.write_json(directory / "results.json", {**results, "schema": CHECK_SCHEMA, "predictions": files})
        artifacts.write_bytes_atomic(directory / "junit.xml", junit)


# ------------------------------------------------------------- checked run

@dataclass
class CheckedRun:
    """A checked run as report and golden read it, loaded and cross-checked:
    results, model, each variant's manifest (None when its directory is gone),
    predictions, and the checked test images rebuilt from the model's dataset."""

    run: RunDir
    check: CheckArtifact
    model: ModelArtifact
    variants: dict[str, VariantArtifact | None]
    labels: np.ndarray                  # int64, N
    images: np.ndarray                  # uint8, N x H x W x C
    original_probs: np.ndarray          # float64, N x C
    variant_probs: dict[str, np.ndarray]

    @property
    def results(self) -> dict:
        return self.check.results

    @property
    def class_names(self) -> list[str]:
        return list(self.model.io.class_names)

    def input_hashes(self) -> dict[str, str]:
        return input_hashes(self.run)

    @classmethod
    def load(cls, run: "RunDir | str | os.PathLike") -> "CheckedRun":
        run = RunDir.of(run)
        check = CheckArtifact.read(run)
        model = ModelArtifact.read(run)
        variants: dict[str, VariantArtifact | None] = {}
        for vid in check.variant_ids:
            variants[vid] = VariantArtifact.read(run, vid) if run.variant_manifest(vid).is_file() else None
        original, saved_labels = check.original()
        if original.shape[1] != model.io.num_classes:
            raise ArtifactError(check.predictions_path(check.ORIGINAL),
                                f"{original.shape[1]} classes but the model has {model.io.num_classes}")
        probs = {}
        for vid in check.variant_ids:
            p = check.probabilities(vid)
            if p.shape != original.shape:
                raise ArtifactError(check.predictions_path(vid), f"shape {p.shape} differs from the original's "
                                                                 f"{original.shape}")
            probs[vid] = p
        ds = model.dataset()
        n = original.shape[0]
        if n > len(ds.y_test):
            raise ArtifactError(check.predictions_path(check.ORIGINAL),
                                f"{n} predictions but the model's test split has only {len(ds.y_test)} images; "
                                "rerun `edgekit check`")
        labels = np.asarray(ds.y_test[:n], np.int64)
        if saved_labels is not None and not np.array_equal(saved_labels, labels):
            raise ArtifactError(check.predictions_path(check.ORIGINAL),
                                "labels differ from the model's test split; rerun `edgekit check`")
        images = np.asarray(ds.x_test[:n])
        if images.ndim == 3:
            images = images[..., None]
        return cls(run=run, check=check, model=model, variants=variants, labels=labels, images=images,
                   original_probs=original, variant_probs=probs)


def input_hashes(run: "RunDir | str | os.PathLike") -> dict[str, str]:
    """sha256 of every file a checked run's report and golden kit are computed
    from (run-relative path -> hash), so a later run can tell they are stale."""
    run = RunDir.of(run)
    files = [run.check_results, run.model_manifest]
    pred = run.check_dir / "predictions"
    if pred.is_dir():
        files += sorted(pred.glob("*.npz"))
    return {run.relative(f): artifacts.sha256_file(f) for f in files if f.is_file()}


def recorded_inputs_current(manifest: Path, schema: str, run: "RunDir | str | os.PathLike") -> bool:
    """True if the manifest at ``manifest`` records the current ``input_hashes`` of the run."""
    try:
        data = artifacts.read_manifest(manifest, schema, {"inputs": dict})
    except ArtifactError:
        return False
    current = input_hashes(run)
    return bool(current) and data["inputs"] == current


def stage_manifests(run: "RunDir | str | os.PathLike", stage: str) -> list[Path]:
    """The manifests a stage wrote (those that exist): what ``edgekit run``
    hashes to tell whether a stage's output changed since it recorded it."""
    run = RunDir.of(run)
    if stage in ("train", "import"):
        files = [run.model_manifest]
    elif stage == "convert":
        files = [run.variant_index]
        try:
            files += [run.variant_manifest(vid) for vid in VariantIndex.read(run).ok_ids]
        except ArtifactError:
            pass
    elif stage == "check":
        files = [run.check_results]
    elif stage == "report":
        files = [run.report_json, run.report_html]
    elif stage == "golden":
        files = [run.golden_json]
    else:
        raise ValueError(f"unknown stage {stage!r}")
    return [f for f in files if f.is_file()]


def stage_outputs(run: "RunDir | str | os.PathLike", stage: str) -> dict[str, str]:
    """run-relative manifest path -> sha256, for every manifest ``stage`` wrote."""
    run = RunDir.of(run)
    return {run.relative(f): artifacts.sha256_file(f) for f in stage_manifests(run, stage)}


def iter_schema_ids() -> Iterator[str]:
    yield from SCHEMAS.values()
    yield RECIPE_SCHEMA
