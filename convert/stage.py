"""The conversion stage: ``<run>/model/`` in, ``<run>/variants/`` out.

``run(config)`` reads the model (``edgekit.rundir.ModelArtifact``: schema
``edgekit.model/2``), loads the Keras model and (when a recipe calibrates or
fine-tunes) the exact dataset split it was trained on, and for each selected
recipe writes ``variants/<id>/`` through ``artifacts.atomic_dir``: the model
file (``model.tflite`` or ``Model.mlpackage``) and ``variant.json``
(``VariantArtifact``, schema ``edgekit.variant/2``: the kind and reference
its recipe declares, recipe, source-model hashes, file hash and size, zipped
size, I/O names/shapes/dtypes/quantization, operators, fine-tune record,
calibration, deployment target, timings, library versions). Then it writes
``variants/index.json`` (``VariantIndex``): every variant this invocation
tried, ok or failed with its reason, plus the variants of the same model
already on disk that it did not touch.

Problems found before any work (missing or foreign model artifact, unknown
id, invalid recipe, existing variant without ``overwrite``, unwritable
``variants/``) raise an EdgekitError. A variant whose conversion fails is
recorded as failed with its reason and leaves no directory; the others still
run. ``ConvertResult.ok`` is false if any variant failed.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit import artifacts, spare
from edgekit.convert import recipe as recipes
from edgekit.convert.config import ConvertConfig
from edgekit.convert.finetune import NotApplicable
from edgekit.errors import ArtifactError, EdgekitError, OutputError, first_line
from edgekit.handoff import Handoff
from edgekit.progress import bar
from edgekit.quiet import quiet
from edgekit.rundir import (IndexEntry, Kind, ModelArtifact, ModelIO, RunDir, VariantArtifact, VariantIndex,
                            VariantStatus)

TFLITE_FILE = "model.tflite"


@dataclass(frozen=True)
class VariantOutcome:
    id: str
    format: str
    status: VariantStatus           # OK | FAILED (a str enum: == "ok" holds)
    reason: str | None = None
    path: Path | None = None        # the variant directory
    size_bytes: int | None = None
    zipped_bytes: int | None = None
    seconds: float = 0.0
    kind: Kind | None = None        # as its recipe declares
    reference: str | None = None    # the variant its size is measured against; None: it is a reference

    @property
    def reference_id(self) -> str:
        return self.id if self.reference is None else self.reference


@dataclass(frozen=True)
class ConvertResult:
    run_dir: Path
    variants: list[VariantOutcome] = field(default_factory=list)
    seconds: float = 0.0
    # {reference variant id: size_bytes} of the references the variants declare,
    # converted in this run or already on disk from the same model; the base of the "vs fp32" ratios.
    reference_bytes: dict[str, int] = field(default_factory=dict)
    index_path: Path | None = None

    @property
    def ok(self) -> bool:
        """No variant failed (a skipped one, whose recipe cannot apply to this model, is not a failure)."""
        return not self.failed

    @property
    def failed(self) -> list[VariantOutcome]:
        return [v for v in self.variants if v.status is VariantStatus.FAILED]

    @property
    def skipped(self) -> list[VariantOutcome]:
        return [v for v in self.variants if v.status is VariantStatus.SKIPPED]

    def failure(self) -> str | None:
        if self.ok:
            return None
        return (f"{len(self.failed)} variant(s) failed: "
                + "; ".join(f"{v.id}: {v.reason}" for v in self.failed))

    def ratio(self, variant_id: str) -> float | None:
        """Size of ``variant_id`` over the size of its declared reference (None if unknown)."""
        v = next((v for v in self.variants if v.id == variant_id), None)
        ref = self.reference_bytes.get(v.reference_id) if v else None
        if not v or not v.size_bytes or not ref:
            return None
        return v.size_bytes / ref


@dataclass
class _Source:
    """What every variant is made from, loaded once."""

    model: ModelArtifact
    keras: object
    data: object = None              # edgekit.train.data.Dataset, when a recipe needs it
    calibration: np.ndarray | None = None
    calibration_record: dict | None = None
    coreml_bases: dict = field(default_factory=dict)   # coreml.convert's converted programs, shared by recipes

    @property
    def manifest(self) -> dict:
        return self.model.manifest

    @property
    def manifest_sha256(self) -> str:
        return self.model.sha256

    @property
    def io(self) -> ModelIO:
        return self.model.io

    @property
    def class_names(self) -> list[str]:
        return list(self.io.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.io.image_shape


def read_model(run_dir: Path) -> ModelArtifact:
    """The model artifact, checked for what conversion needs: one image input,
    grayscale [H, W, 1] or RGB/BGR [H, W, 3] (ModelIO validates the rest)."""
    model = ModelArtifact.read(run_dir)
    io = model.io
    if io.channels not in (1, 3):
        raise ArtifactError(model.path, f"io: convert takes [H, W, 1] or [H, W, 3] image models; this one takes "
                                        f"{list(io.image_shape)}")
    return model


def _load_source(config: ConvertConfig, model: ModelArtifact, selected: list[recipes.Recipe]) -> _Source:
    keras = model.load_keras()
    src = _Source(model=model, keras=keras)
    in_shape = tuple(keras.inputs[0].shape[1:])
    out_classes = keras.outputs[0].shape[-1]
    if in_shape != src.image_shape or out_classes != len(src.class_names):
        raise ArtifactError(model.path,
                            f"model takes {list(in_shape)} and gives {out_classes} classes, but the manifest says "
                            f"{list(src.image_shape)} and {len(src.class_names)} classes")
    if any(r.finetune or (r.tflite and r.tflite["representative"]) for r in selected):
        src.data = model.dataset()
        n = len(src.data.x_train)
        k = min(config.calibration_size, n)
        rng = np.random.default_rng(config.calibration_seed)
        idx = np.sort(rng.choice(n, size=k, replace=False))
        src.calibration = model.io.pixels.apply(src.data.x_train[idx])   # the model's own pixel mapping
        src.calibration_record = {"split": "train", "images": int(k), "requested": config.calibration_size,
                                  "seed": config.calibration_seed,
                                  "indices_sha256": artifacts.sha256_bytes(idx.astype("<i8").tobytes())}
    return src


def _metadata(src: _Source, r: recipes.Recipe) -> dict:
    import edgekit

    m, ds = src.manifest, src.manifest["dataset"]
    model_name = m["model"].get("name", "model")
    h, w, _ = src.image_shape
    classes = ", ".join(src.class_names[:12]) + (", ..." if len(src.class_names) > 12 else "")
    imported = isinstance(m.get("source"), dict)
    made = (f"Imported by edgekit from {Path(str(m['source'].get('path', 'a model'))).name}, evaluated on"
            if imported else "Trained by edgekit on")
    return {
        "author": "edgekit",
        "license": f"{made} {ds.get('name', 'a dataset')}; the dataset's and the model's licenses apply to "
                   "these weights.",
        "short_description": f"{model_name} image classifier for {h}x{w} {src.io.color.value} images, "
                             f"{len(src.class_names)} classes ({classes}). {r.description}",
        "version": f"edgekit {edgekit.__version__}, model {src.manifest_sha256[:12]}, variant {r.id}",
        "input_description": preprocessing_text(src.io),
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
            "edgekit.preprocessing": preprocessing_json(src.io),
        },
    }


def preprocessing(io: ModelIO) -> dict:
    """What an app does to a photo before the model sees it: the same in the
    Core ML and TFLite metadata, the golden kit and the checker."""
    return {"height": io.height, "width": io.width, "color": io.color.value,
            "resize": f"{io.resize}, whole image, no crop (aspect ratio not kept)",
            "pixels": {**io.pixels.to_json(), "formula": "input[c] = pixel[c] * scale[c] + bias[c], pixel in 0..255"}}


def preprocessing_json(io: ModelIO) -> str:
    import json

    return json.dumps(preprocessing(io), sort_keys=True)


def preprocessing_text(io: ModelIO) -> str:
    """The input description Xcode shows."""
    order = {"grayscale": "grayscale", "rgb": "RGB", "bgr": "BGR (channels in blue, green, red order)"}
    px = io.pixels
    if len(set(px.scale)) == 1 and len(set(px.bias)) == 1:
        lo, hi = px.value_range()
        mapping = f"pixel values 0-255 map linearly to [{lo:g}, {hi:g}]"
    else:
        mapping = ("pixel values 0-255 map per channel to pixel * scale + bias, scale "
                   f"{', '.join(f'{v:.6g}' for v in px.scale)}, bias {', '.join(f'{v:.6g}' for v in px.bias)}")
    return (f"{io.height}x{io.width} {order[io.color.value]} image, resized {io.resize} (whole image, no crop); "
            f"{mapping}, as in training")


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _make_variant(r: recipes.Recipe, src: _Source, out: Path, config: ConvertConfig) -> dict:
    """Write the model file into ``out`` and return the variant.json record."""
    t0 = time.perf_counter()
    ft_record = None
    model = src.keras
    if r.finetune is not None:
        from edgekit.convert import finetune

        cfg = src.manifest["config"]
        data = finetune.TrainingData(src.data.x_train, src.data.y_train, src.data.x_val, src.data.y_val)
        model, ft_record = finetune.finetune(
            src.keras, r.finetune, data, learning_rate=float(cfg.get("learning_rate", 1e-3)),
            batch_size=int(cfg.get("batch_size", 64)), seed=config.calibration_seed, limit=config.finetune_limit,
            to_input=src.io.pixels.apply)
        if config.finetune_limit is not None:
            ft_record["train_limit_override"] = config.finetune_limit
    extra: dict = {}
    if r.format == "tflite":
        from edgekit.convert import tflite

        blob = tflite.convert(model, r, src.calibration if r.tflite["representative"] else None)
        if r.tflite.get("layers"):  # per-layer weight precision (edgekit tune writes such recipes)
            from edgekit.convert import tflite_layers

            blob = tflite_layers.quantize(blob, r.tflite["layers"], src.keras)
        blob = tflite.add_metadata(blob, {"edgekit.preprocessing": preprocessing_json(src.io)})
        path = out / TFLITE_FILE
        path.write_bytes(blob)
        info = tflite.describe(blob)
        extra["tflite"] = {"signature": info["signature"]}
        deployment_target = None
    else:
        from edgekit.convert import coreml

        mlmodel = coreml.convert(model, r, class_names=src.class_names, image_shape=src.image_shape,
                                 metadata=_metadata(src, r), color=src.io.color.value, pixels=src.io.pixels,
                                 bases=src.coreml_bases)
        path = out / coreml.FILE_NAME
        coreml.save(mlmodel, path)
        info = coreml.describe(coreml.load_spec(path))  # what the saved file says, not the object in memory
        deployment_target = info["deployment_target"]
        extra["coreml"] = {"specification_version": info["specification_version"],
                           "classifier": {**info["classifier"], "class_names": src.class_names},
                           "metadata": _metadata(src, r)}
    seconds = time.perf_counter() - t0
    keras_rec = src.manifest["files"].get("keras", {})
    try:  # what the file really holds per weight tensor, read back from it
        from edgekit.convert import audit

        weights = audit.audit(path, r.format, r, audit.keras_weights(src.keras)).to_json()
    except Exception as e:  # an audit that cannot read a layout must not cost the user the variant
        weights = {"error": first_line(e, with_type=True)}
    layers = layer_map(path, r.format, src.keras)
    return {
        "id": r.id,
        "format": r.format,
        "kind": r.kind.value,
        "reference": r.reference,
        "platform": r.platform,
        "recipe": r.data,
        "source_model": {"manifest": _relative(src.model.path, src.model.run.variant_dir(r.id)),
                         "sha256": src.manifest_sha256,
                         "keras_sha256": keras_rec.get("sha256"), "model": src.manifest["model"].get("name")},
        "file": artifacts.file_record(path, out),
        "zipped_bytes": artifacts.zipped_size(path),
        "io": info["io"],
        "operators": info["operators"],
        "weights": weights,
        "layers": layers,
        "finetune": ft_record,
        "calibration": src.calibration_record if (r.tflite and r.tflite["representative"]) else None,
        "deployment_target": deployment_target,
        "conversion_seconds": round(seconds, 3),
        "versions": artifacts.library_versions(),
        **extra,
    }


def layer_map(path: Path, fmt: str, keras) -> dict:
    """variant.json's ``layers``: which op and tensor of the file computes each Keras layer
    (edgekit.convert.layermap), read from the file written; ``{"error": ...}`` if it cannot be built."""
    try:
        from edgekit.convert import layermap

        if fmt == "tflite":
            return layermap.tflite_map(Path(path).read_bytes(), keras)
        from edgekit.convert import coreml

        return layermap.coreml_map(coreml.load_spec(path), keras)
    except Exception as e:  # diagnose says the map is missing; the variant itself is fine
        return {"error": first_line(e, with_type=True)}


def run(config: ConvertConfig) -> ConvertResult:
    """Convert every selected variant and write the index; see the module docstring."""
    t_start = time.perf_counter()
    selected = config.recipes()
    run_dir = RunDir(config.run_dir)
    # Refuse before loading anything: bad input costs the user nothing.
    model = read_model(run_dir.root)
    artifacts.check_can_create(run_dir.variants_dir)  # created by the first variant written, not before
    if not config.overwrite:
        existing = [r.id for r in selected if run_dir.variant_dir(r.id).exists()]
        if existing:
            raise OutputError(run_dir.variant_dir(existing[0]),
                              f"already exists ({len(existing)} of the selected variants do); "
                              "pass --overwrite to replace them")
    # The fine-tunes (each a tfmot wrap, a training epoch and a conversion) are
    # shared with a second process when there is other work to do meanwhile:
    # it takes them one at a time, this one takes what is left once its own
    # conversions are done (_handoff).
    elsewhere = [r for r in selected if r.finetune is not None] if config.jobs > 1 else []
    if len(elsewhere) == len(selected):
        elsewhere = []
    here = [r for r in selected if r not in elsewhere]
    done: dict[str, VariantOutcome] = {}
    progress = bar(total=len(selected), desc="convert", unit="variant")
    with contextlib.ExitStack() as stack:
        handoff = _handoff(config, elsewhere, stack) if elsewhere else None
        with quiet():  # TensorFlow's import-time log lines; errors still raise
            src = _load_source(config, model, here)
        from edgekit.convert.coreml import frozen_heap

        with frozen_heap():
            for r in here:
                done[r.id] = _attempt(r, src, run_dir, config, progress)
                progress.update()
            if handoff is not None:
                def finetune_here(r: recipes.Recipe) -> None:
                    nonlocal src
                    if src.data is None:
                        with quiet():
                            src = _load_source(config, model, selected)   # with the training data fine-tunes need
                    done[r.id] = _attempt(r, src, run_dir, config, progress)
                    progress.update()

                while (r := handoff.claim()) is not None:   # what the worker has not started
                    finetune_here(r)
                for _, made in handoff.finish():
                    done.update(made)
                    progress.update(len(made))
                for r in [r for r in elsewhere if r.id not in done]:   # the worker died or could not make them
                    finetune_here(r)
    progress.close()
    outcomes = [done[r.id] for r in selected]
    index = write_index(run_dir, model, outcomes)
    return ConvertResult(config.run_dir, outcomes, round(time.perf_counter() - t_start, 3),
                         reference_sizes(run_dir, outcomes, model), index)


def _handoff(config: ConvertConfig, finetunes: list[recipes.Recipe], stack: contextlib.ExitStack) -> Handoff:
    """The fine-tunes shared with the spare process (edgekit.spare) through
    edgekit.handoff: it is handed one at a time, the costliest first in the
    order given; this process claims the next once its own conversions are
    done. A recipe the worker could not even attempt stops the handing out:
    this process makes it and the rest, and raises its own error."""
    return stack.enter_context(Handoff(
        finetunes, lambda r: spare.submit(_attempt_in_worker, config, [r.id]).result(), claim_from_back=False,
        usable=lambda r, made: r.id in made, name="edgekit-convert-handoff"))


# The worker's source (Keras model, training data, calibration images), loaded
# by its first recipe and kept for the next (the spare process outlives a convert run:
# the key says which run's source it is).
_worker_source: dict[tuple, _Source] = {}


def _attempt_in_worker(config: ConvertConfig, ids: list[str]) -> dict[str, VariantOutcome]:
    """In the second process: load the source (once) and make the variants
    ``ids``, in order, until one cannot be attempted at all; the main
    process makes the rest itself and raises its own one-line error
    (edgekit's errors do not cross a process boundary)."""
    done: dict[str, VariantOutcome] = {}
    try:
        run_dir = RunDir(config.run_dir)
        model = read_model(run_dir.root)
        chosen = [r for r in config.recipes() if r.id in ids]
        key = (str(config.run_dir), model.sha256, config.calibration_size, config.calibration_seed)
        if key not in _worker_source:
            with quiet():
                _worker_source.clear()
                _worker_source[key] = _load_source(config, model, [r for r in config.recipes() if r.finetune])
        for r in chosen:
            done[r.id] = _attempt(r, _worker_source[key], run_dir, config)
    except Exception:  # e.g. an OutputError: the main process meets it again and says it
        pass
    return done


def _attempt(r: recipes.Recipe, src: _Source, run_dir: RunDir, config: ConvertConfig,
             progress=None) -> VariantOutcome:
    """Make one variant; its outcome (ok, skipped with the reason, or failed with the reason)."""
    if progress is not None:
        progress.set_postfix_str(r.id)  # the variant being made, beside the bar
    t0 = time.perf_counter()
    target = run_dir.variant_dir(r.id)
    try:
        with artifacts.atomic_dir(target, overwrite=config.overwrite) as tmp:
            with quiet():  # fine-tuning and import-time chatter; the table says what happened
                record = _make_variant(r, src, tmp, config)
            VariantArtifact.write(tmp, record)
        return VariantOutcome(r.id, r.format, VariantStatus.OK, None, target, record["file"]["size_bytes"],
                              record["zipped_bytes"], record["conversion_seconds"], r.kind, r.reference)
    except OutputError:  # the output cannot be written (disk full, permissions): every variant would fail
        raise
    except NotApplicable as e:  # the recipe cannot apply to this model (tfmot refuses a layer): skipped, said why
        return VariantOutcome(r.id, r.format, VariantStatus.SKIPPED, str(e), None, None, None,
                              round(time.perf_counter() - t0, 3), r.kind, r.reference)
    except Exception as e:  # one variant's failure must not stop the others; the summary says why
        return VariantOutcome(r.id, r.format, VariantStatus.FAILED, first_line(e, with_type=True), None, None,
                              None, round(time.perf_counter() - t0, 3), r.kind, r.reference)


def _on_disk(run_dir: RunDir, model: ModelArtifact, variant_id: str) -> VariantArtifact | None:
    """The intact variant ``variant_id`` made from ``model``, or None."""
    try:
        return VariantArtifact.read(run_dir, variant_id, model)
    except EdgekitError:
        return None


def write_index(run_dir: RunDir, model: ModelArtifact, outcomes: list[VariantOutcome]) -> Path:
    """``variants/index.json``: the variants tried now, plus those of the same
    model still on disk from earlier invocations (a partial ``--variants a,b``
    run keeps the others)."""
    entries: dict[str, IndexEntry] = {}
    try:
        old = VariantIndex.read(run_dir)
    except EdgekitError:
        old = None
    if old is not None and old.source_sha256 == model.sha256:
        for vid, e in old.entries.items():
            if e.status is not VariantStatus.OK or _on_disk(run_dir, model, vid) is not None:
                entries[vid] = e
    if run_dir.variants_dir.is_dir():  # intact variants of this model the old index does not list
        for d in sorted(run_dir.variants_dir.iterdir()):
            if d.is_dir() and d.name not in entries and (v := _on_disk(run_dir, model, d.name)) is not None:
                entries[d.name] = IndexEntry(d.name, v.format, v.kind, v.reference, VariantStatus.OK)
    for o in outcomes:
        entries[o.id] = IndexEntry(o.id, o.format, o.kind, o.reference, o.status, o.reason)
    return VariantIndex(run_dir, source_sha256=model.sha256, entries=entries).write()


def reference_sizes(run_dir: RunDir, outcomes: list[VariantOutcome], model: ModelArtifact) -> dict[str, int]:
    """{reference id: size} for every reference the outcomes declare: from this
    run, else from its variant.json on disk if it was made from the same model."""
    by_id = {v.id: v for v in outcomes}
    out: dict[str, int] = {}
    for ref in dict.fromkeys(v.reference_id for v in outcomes):
        if ref in by_id:
            if by_id[ref].size_bytes:
                out[ref] = by_id[ref].size_bytes
            continue
        v = _on_disk(run_dir, model, ref)
        if v is not None and v.size_bytes > 0:
            out[ref] = v.size_bytes
    return out


def is_current(run_dir: Path) -> bool:
    """The index exists and was made from the current model, and every ok
    variant's variant.json reads and its file hashes as recorded."""
    try:
        run = RunDir(run_dir)
        model = ModelArtifact.read(run)
        index = VariantIndex.read(run)
        if index.source_sha256 != model.sha256:
            return False
        return all(v.file_intact() for v in index.variants(model))
    except EdgekitError:
        return False


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f} KB"


def summary_table(result: ConvertResult) -> str:
    """The table the CLI prints: id, size, zipped, ratio to its declared reference, seconds, status."""
    rows = [("variant", "size", "zipped", "vs fp32", "seconds", "status")]
    for v in result.variants:
        ratio = result.ratio(v.id)
        rows.append((v.id, _kb(v.size_bytes), _kb(v.zipped_bytes), "-" if ratio is None else f"{ratio:.3f}",
                     f"{v.seconds:.1f}", "ok" if v.status == "ok" else
                     (f"skipped: {v.reason}" if v.status == "skipped" else f"FAILED: {v.reason}")))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row[:5], widths)))
             + "  " + row[5] for row in rows]
    ok = sum(v.status == "ok" for v in result.variants)
    lines.append(f"{ok} of {len(result.variants)} variants converted in {result.seconds:.1f} s "
                 f"-> {RunDir(result.run_dir).variants_dir}")
    return "\n".join(lines)
