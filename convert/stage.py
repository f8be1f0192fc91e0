"""The conversion stage: ``<run>/model/`` in, ``<run>/variants/<id>/`` out.

``run(config)`` reads ``model/manifest.json`` (schema ``edgekit.model/1``),
loads the Keras model and (when a recipe calibrates or fine-tunes) the exact
dataset split it was trained on, and for each selected recipe writes
``variants/<id>/`` through ``artifacts.atomic_dir``: the model file
(``model.tflite`` or ``Model.mlpackage``) and ``variant.json`` (schema
``edgekit.variant/1``: recipe, source-model hashes, file hash and size,
zipped size, I/O names/shapes/dtypes/quantization, operators, fine-tune
record, calibration, deployment target, timings, library versions).

Problems found before any work (missing or foreign model artifact, unknown
id, invalid recipe, existing variant without ``overwrite``, unwritable
``variants/``) raise an EdgekitError. A variant whose conversion fails is
recorded as failed with its reason and leaves no directory; the others still
run. ``ConvertResult.ok`` is false if any variant failed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit import artifacts
from edgekit.convert import recipe as recipes
from edgekit.convert.config import ConvertConfig
from edgekit.quiet import quiet
from edgekit.errors import ArtifactError, ConfigError, OutputError
from edgekit.progress import bar

MODEL_SCHEMA = "edgekit.model/1"
VARIANT_SCHEMA = "edgekit.variant/1"
TFLITE_FILE = "model.tflite"


@dataclass(frozen=True)
class VariantOutcome:
    id: str
    format: str
    status: str                     # "ok" | "failed"
    reason: str | None = None
    path: Path | None = None        # the variant directory
    size_bytes: int | None = None
    zipped_bytes: int | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ConvertResult:
    run_dir: Path
    variants: list[VariantOutcome] = field(default_factory=list)
    seconds: float = 0.0
    # {format: size_bytes of its float32 reference variant of the same source model},
    # converted in this run or already on disk; the base of the "vs fp32" ratios.
    reference_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v.status == "ok" for v in self.variants)

    @property
    def failed(self) -> list[VariantOutcome]:
        return [v for v in self.variants if v.status != "ok"]

    def ratio(self, variant_id: str) -> float | None:
        """Size of ``variant_id`` over the float32 reference of its format (None if unknown)."""
        v = next((v for v in self.variants if v.id == variant_id), None)
        ref = self.reference_bytes.get(v.format) if v else None
        if not v or not v.size_bytes or not ref:
            return None
        return v.size_bytes / ref


@dataclass
class _Source:
    """What every variant is made from, loaded once."""

    model_dir: Path
    manifest: dict
    manifest_sha256: str
    model: object
    class_names: list[str]
    image_shape: tuple[int, int, int]
    data: object = None              # edgekit.train.data.Dataset, when a recipe needs it
    calibration: np.ndarray | None = None
    calibration_record: dict | None = None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {line[:300]}" if line else type(e).__name__


def read_model_manifest(model_dir: Path) -> tuple[dict, str]:
    """(manifest, its sha256) of ``model_dir/manifest.json``, checked for what
    conversion needs (schema, sections, class names, image shape)."""
    path = Path(model_dir) / "manifest.json"
    manifest = artifacts.read_manifest(path, MODEL_SCHEMA, {"config": dict, "dataset": dict, "files": dict,
                                                            "model": dict, "io": dict})
    ds = manifest["dataset"]
    names, shape = ds.get("class_names"), ds.get("image_shape")
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(n, str) and n for n in names)):
        raise ArtifactError(path, "dataset.class_names should be a list of at least two non-empty strings")
    if len(set(names)) != len(names):
        raise ArtifactError(path, "dataset.class_names has duplicates (Core ML classifier labels must be unique)")
    if not (isinstance(shape, list) and len(shape) == 3 and shape[2] == 1
            and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 4096 for d in shape)):
        raise ArtifactError(path, f"dataset.image_shape should be [H, W, 1], got {shape!r}")
    return manifest, artifacts.sha256_file(path)


_read_manifest = read_model_manifest  # the name other stages' tests already use


def _load_source(config: ConvertConfig, selected: list[recipes.Recipe]) -> _Source:
    from edgekit.train import data as train_data
    from edgekit.train import models

    model_dir = config.run_dir / "model"
    manifest, sha = read_model_manifest(model_dir)
    model = models.load_model(model_dir, manifest)
    ds = manifest["dataset"]
    src = _Source(model_dir=model_dir, manifest=manifest, manifest_sha256=sha, model=model,
                  class_names=list(ds["class_names"]), image_shape=tuple(ds["image_shape"]))
    in_shape = tuple(model.inputs[0].shape[1:])
    out_classes = model.outputs[0].shape[-1]
    if in_shape != src.image_shape or out_classes != len(src.class_names):
        raise ArtifactError(model_dir / "manifest.json",
                            f"model takes {list(in_shape)} and gives {out_classes} classes, but the manifest says "
                            f"{list(src.image_shape)} and {len(src.class_names)} classes")
    if any(r.finetune or (r.tflite and r.tflite["representative"]) for r in selected):
        src.data = train_data.load_from_manifest(manifest, model_dir)
        n = len(src.data.x_train)
        k = min(config.calibration_size, n)
        rng = np.random.default_rng(config.seed)
        idx = np.sort(rng.choice(n, size=k, replace=False))
        src.calibration = train_data.to_float(src.data.x_train[idx])
        src.calibration_record = {"split": "train", "images": int(k), "requested": config.calibration_size,
                                  "seed": config.seed,
                                  "indices_sha256": _sha256_bytes(idx.astype("<i8").tobytes())}
    return src


def _sha256_bytes(b: bytes) -> str:
    import hashlib

    return hashlib.sha256(b).hexdigest()


def _metadata(src: _Source, r: recipes.Recipe) -> dict:
    import edgekit

    m, ds = src.manifest, src.manifest["dataset"]
    model_name = m["model"].get("name", "model")
    h, w, _ = src.image_shape
    classes = ", ".join(src.class_names[:12]) + (", ..." if len(src.class_names) > 12 else "")
    return {
        "author": "edgekit",
        "license": f"Trained by edgekit on {ds.get('name', 'a dataset')}; the dataset's license applies to these weights.",
        "short_description": f"{model_name} image classifier for {h}x{w} grayscale images, "
                             f"{len(src.class_names)} classes ({classes}). {r.description}",
        "version": f"edgekit {edgekit.__version__}, model {src.manifest_sha256[:12]}, variant {r.id}",
        "input_description": f"{h}x{w} grayscale image; pixel values 0-255 are scaled by 1/255 to [0, 1] "
                             "as in training (white digit on black)",
        "output_descriptions": {
            "classLabel": "the most probable class",
            "classLabel_probs": "probability of each class (softmax), keyed by class name",
        },
        "user_defined": {
            "edgekit.variant": r.id,
            "edgekit.source_model_sha256": src.manifest_sha256,
            "edgekit.keras_sha256": str(m["files"].get("keras", {}).get("sha256", "")),
            "edgekit.model": str(model_name),
            "edgekit.version": edgekit.__version__,
        },
    }


def _make_variant(r: recipes.Recipe, src: _Source, out: Path, config: ConvertConfig) -> dict:
    """Write the model file into ``out`` and return the variant.json record."""
    t0 = time.perf_counter()
    ft_record = None
    model = src.model
    if r.finetune is not None:
        from edgekit.convert import finetune

        cfg = src.manifest["config"]
        data = finetune.TrainingData(src.data.x_train, src.data.y_train, src.data.x_val, src.data.y_val)
        model, ft_record = finetune.finetune(
            src.model, r.finetune, data, learning_rate=float(cfg.get("learning_rate", 1e-3)),
            batch_size=int(cfg.get("batch_size", 64)), seed=config.seed, limit=config.finetune_limit)
        if config.finetune_limit is not None:
            ft_record["train_limit_override"] = config.finetune_limit
    extra: dict = {}
    if r.format == "tflite":
        from edgekit.convert import tflite

        blob = tflite.convert(model, r, src.calibration if r.tflite["representative"] else None)
        path = out / TFLITE_FILE
        path.write_bytes(blob)
        info = tflite.describe(blob)
        extra["tflite"] = {"signature": info["signature"]}
        deployment_target = None
    else:
        from edgekit.convert import coreml

        mlmodel = coreml.convert(model, r, class_names=src.class_names, image_shape=src.image_shape,
                                 metadata=_metadata(src, r))
        path = out / coreml.FILE_NAME
        coreml.save(mlmodel, path)
        info = coreml.describe(coreml.load_spec(path))  # what the saved file says, not the object in memory
        deployment_target = info["deployment_target"]
        extra["coreml"] = {"specification_version": info["specification_version"],
                           "classifier": {**info["classifier"], "class_names": src.class_names},
                           "metadata": _metadata(src, r)}
    seconds = time.perf_counter() - t0
    keras_rec = src.manifest["files"].get("keras", {})
    return {
        "schema": VARIANT_SCHEMA,
        "id": r.id,
        "format": r.format,
        "platform": r.platform,
        "recipe": r.data,
        "source_model": {"manifest": "../../model/manifest.json", "sha256": src.manifest_sha256,
                         "keras_sha256": keras_rec.get("sha256"), "model": src.manifest["model"].get("name")},
        "file": artifacts.file_record(path, out),
        "zipped_bytes": artifacts.zipped_size(path),
        "io": info["io"],
        "operators": info["operators"],
        "finetune": ft_record,
        "calibration": src.calibration_record if (r.tflite and r.tflite["representative"]) else None,
        "deployment_target": deployment_target,
        "conversion_seconds": round(seconds, 3),
        "versions": artifacts.library_versions(),
        **extra,
    }


def run(config: ConvertConfig) -> ConvertResult:
    """Convert every selected variant; see the module docstring."""
    t_start = time.perf_counter()
    selected = config.recipes()
    variants_dir = config.run_dir / "variants"
    # Refuse before loading anything: bad input costs the user nothing.
    read_model_manifest(config.run_dir / "model")
    artifacts.check_can_create(variants_dir)  # created by the first variant written, not before
    if not config.overwrite:
        existing = [r.id for r in selected if (variants_dir / r.id).exists()]
        if existing:
            raise OutputError(variants_dir / existing[0],
                              f"already exists ({len(existing)} of the selected variants do); "
                              "pass --overwrite to replace them")
    with quiet():  # TensorFlow's import-time log lines; errors still raise
        src = _load_source(config, selected)
    outcomes = []
    progress = bar(selected, desc="convert", unit="variant")
    for r in progress:
        progress.set_postfix_str(r.id)  # the variant being made, beside the bar
        t0 = time.perf_counter()
        target = variants_dir / r.id
        try:
            with artifacts.atomic_dir(target, overwrite=config.overwrite) as tmp:
                with quiet():  # fine-tuning and import-time chatter; the table says what happened
                    record = _make_variant(r, src, tmp, config)
                artifacts.write_json(tmp / "variant.json", record)
            outcomes.append(VariantOutcome(r.id, r.format, "ok", None, target, record["file"]["size_bytes"],
                                           record["zipped_bytes"], record["conversion_seconds"]))
        except OutputError:  # the output cannot be written (disk full, permissions): every variant would fail
            raise
        except Exception as e:  # one variant's failure must not stop the others; the summary says why
            outcomes.append(VariantOutcome(r.id, r.format, "failed", _first_line(e), None, None, None,
                                           round(time.perf_counter() - t0, 3)))
    return ConvertResult(config.run_dir, outcomes, round(time.perf_counter() - t_start, 3),
                         reference_sizes(config, outcomes, src.manifest_sha256))


def reference_sizes(config: ConvertConfig, outcomes: list[VariantOutcome], model_sha256: str) -> dict[str, int]:
    """{format: size of its float32 reference variant}: from this run, else from
    ``variants/<id>/variant.json`` on disk if it was made from the same model."""
    by_id = {v.id: v for v in outcomes}
    out: dict[str, int] = {}
    for path in recipes.recipe_files(config.recipe_dir).values():
        try:
            r = recipes.parse(path)
        except ConfigError:
            continue  # a broken recipe that was not selected does not matter here
        if not r.is_float_reference or r.format in out:
            continue
        if r.id in by_id:
            if by_id[r.id].size_bytes:
                out[r.format] = by_id[r.id].size_bytes
            continue
        try:
            v = artifacts.read_manifest(config.run_dir / "variants" / r.id / "variant.json", VARIANT_SCHEMA,
                                        {"file": dict, "source_model": dict})
        except ArtifactError:
            continue
        size = v["file"].get("size_bytes")
        if v["source_model"].get("sha256") == model_sha256 and isinstance(size, int) and size > 0:
            out[r.format] = size
    return out


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f} KB"


def summary_table(result: ConvertResult) -> str:
    """The table the CLI prints: id, size, zipped, ratio to the fp32 of its format, seconds, status."""
    rows = [("variant", "size", "zipped", "vs fp32", "seconds", "status")]
    for v in result.variants:
        ratio = result.ratio(v.id)
        rows.append((v.id, _kb(v.size_bytes), _kb(v.zipped_bytes), "-" if ratio is None else f"{ratio:.3f}",
                     f"{v.seconds:.1f}", "ok" if v.status == "ok" else f"FAILED: {v.reason}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row[:5], widths)))
             + "  " + row[5] for row in rows]
    ok = sum(v.status == "ok" for v in result.variants)
    lines.append(f"{ok} of {len(result.variants)} variants converted in {result.seconds:.1f} s "
                 f"-> {result.run_dir / 'variants'}")
    return "\n".join(lines)
