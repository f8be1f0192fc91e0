"""Import a user's classifier: an ``ImportConfig`` in, ``<run>/model/`` out (the stage ``import``).

``run(config)`` reads the model file (``edgekit.train.import_source``: format,
layer classes, one image input, one class vector; nothing deserialized
yet), resolves the input contract (size; colour order from ``--color`` or
the channel count; pixel mapping from ``--input-range`` or ``--mean/--std``,
default 0..1, or 0..255 when a Rescaling layer follows the input), loads
the dataset at the model's size and colour (``edgekit.train.data``), loads
the model safely, rebuilds it in tf_keras and checks the rebuild against
it (a Rescaling layer that is the input's only consumer is folded into the
pixel mapping: ``io.pixels`` then maps pixels to the rebuild's input, and
``source.user_pixels`` keeps the mapping to the user's model), measures its
accuracy on the test split, and writes atomically the same
contract ``edgekit train`` writes, so convert, check, report, golden and
``edgekit run`` work on it unchanged:

  <run>/model/model.keras     the tf_keras rebuild (image -> probabilities), the converted source
  <run>/model/saved_model/    TF SavedModel of the rebuild (serving_default)
  <run>/model/manifest.json   edgekit.model/2 (rundir.ModelArtifact) with a ``source`` section:
                              path, sha256, format, declared input/output, output activation
                              (``none`` = logits: the rebuild's softmax is the one applied),
                              the rebuild check, where the pixel mapping and colour came from

The dataset given here is the evaluation, calibration and fine-tuning data
of every later stage (it is recorded in the manifest like train's).
Bad input (see ``import_source`` and the reliability catalogue) raises an
EdgekitError before anything is written.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit import artifacts, quiet, rundir
from edgekit.errors import ConfigError, EdgekitError, ModelFileError, OutputError
from edgekit.rundir import Color, ModelArtifact, ModelIO, PixelMapping, RunDir
from edgekit.train import import_source
from edgekit.train.predict import evaluate
from edgekit.train.data import DATASETS, load_dataset

# Test images the rebuild is compared on (besides seeded random images over
# the whole input range): enough to exercise every class, few enough to be fast.
VERIFY_IMAGES = 2000
VERIFY_NOISE = 16


def _floats(value, flag: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(flag, f"expected comma-separated numbers, got {value!r}") from None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(flag, f"expected numbers, got {value!r}") from None
    if not out or not all(math.isfinite(v) for v in out):
        raise ConfigError(flag, f"expected finite numbers, got {value!r}")
    return out


@dataclass(frozen=True)
class ImportConfig:
    """How to import one model. ``input_range`` (LO, HI): the values pixel 0
    and 255 map to; ``mean``/``std``: per-channel, on pixels in [0, 1]; give
    one or the other (neither: the default range). ``color``: None means
    "from the model's channels" and makes a colour mismatch with the data an
    error; given, the data is converted to it."""

    run_dir: Path
    model: Path
    dataset: str = "mnist"
    data_dir: Path | None = None
    input_range: tuple[float, float] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    color: str | None = None
    class_names_file: Path | None = None
    image_size: int | None = None            # fixes a dynamic input side
    seed: int = 0
    val_size: int | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    overwrite: bool = False

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass normalisation
        if self.run_dir is None or str(self.run_dir) in ("", "."):
            raise ConfigError("--run", "a run directory is required")
        if self.model is None or str(self.model) == "":
            raise ConfigError("--model", "give the model file or SavedModel directory to import")
        set_("run_dir", Path(self.run_dir))
        set_("model", Path(self.model))
        if self.dataset not in DATASETS:
            raise ConfigError("--dataset", f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.data_dir is not None:
            set_("data_dir", Path(self.data_dir))
        elif self.dataset in ("idx", "folder"):
            raise ConfigError("--data-dir", f"--dataset {self.dataset} needs --data-dir")
        if self.class_names_file is not None:
            set_("class_names_file", Path(self.class_names_file))
        rng = _floats(self.input_range, "--input-range")
        if rng is not None:
            if len(rng) != 2:
                raise ConfigError("--input-range", f"expected LO,HI (two numbers), got {len(rng)}")
            if not rng[0] < rng[1]:
                raise ConfigError("--input-range", f"LO must be below HI, got {rng[0]:g},{rng[1]:g}")
        set_("input_range", rng)
        mean, std = _floats(self.mean, "--mean"), _floats(self.std, "--std")
        if (mean is None) != (std is None):
            raise ConfigError("--mean" if mean is None else "--std", "give --mean and --std together")
        if mean is not None:
            if rng is not None:
                raise ConfigError("--input-range", "give either --input-range or --mean/--std, not both")
            if len(mean) != len(std):
                raise ConfigError("--std", f"{len(std)} values but --mean has {len(mean)}")
            if len(mean) not in (1, 3):
                raise ConfigError("--mean", f"{len(mean)} values; give one per channel (1 or 3)")
            if any(s == 0 for s in std):
                raise ConfigError("--std", "a standard deviation of 0 divides by zero")
        set_("mean", mean)
        set_("std", std)
        if self.color is not None and self.color not in [c.value for c in Color]:
            raise ConfigError("--color", f"unknown colour {self.color!r}; choose one of "
                                         f"{', '.join(c.value for c in Color)}")
        for flag, v, lo in (("--image-size", self.image_size, import_source.MIN_SIDE),
                            ("--train-limit", self.train_limit, 1), ("--test-limit", self.test_limit, 1),
                            ("--val-size", self.val_size, 0)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < lo
                                  or (flag == "--image-size" and v > import_source.MAX_SIDE)):
                raise ConfigError(flag, f"must be an integer >= {lo}" + (f" and <= {import_source.MAX_SIDE}"
                                  if flag == "--image-size" else "") + f", got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise ConfigError("--seed", f"must be an integer in [0, 2^31), got {self.seed!r}")

    @property
    def model_dir(self) -> Path:
        return RunDir(self.run_dir).model_dir

    def to_json(self) -> dict:
        return {"stage": "import", "model": str(self.model.resolve()), "dataset": self.dataset,
                "data_dir": None if self.data_dir is None else str(self.data_dir),
                "input_range": None if self.input_range is None else list(self.input_range),
                "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std), "color": self.color,
                "class_names_file": None if self.class_names_file is None else str(self.class_names_file),
                "image_size": self.image_size, "seed": self.seed, "val_size": self.val_size,
                "train_limit": self.train_limit, "test_limit": self.test_limit}


@dataclass(frozen=True)
class ImportResult:
    model_dir: Path
    manifest_path: Path
    source_format: str
    test_accuracy: float
    output_activation: str
    rebuild_max_abs_diff: float
    params: int
    seconds: float

    @property
    def ok(self) -> bool:
        """Import either writes a model or raises: a result is always ok."""
        return True

    def failure(self) -> str | None:
        return None


# ------------------------------------------------------------------ contract

def resolve_io(config: ImportConfig, src: import_source.Source, shape: tuple[int, int, int],
               class_names: list[str]) -> tuple[ModelIO, dict]:
    """The model's typed I/O and a record of where each choice came from."""
    h, w, c = shape
    if config.color is None:
        color = Color.GRAYSCALE if c == 1 else Color.RGB
        color_from = f"the model's {c} channel(s)"
    else:
        color = Color(config.color)
        if (color is Color.GRAYSCALE) != (c == 1):
            raise ConfigError("--color", f"{color.value}, but the model takes {c} channel(s)")
        color_from = "--color"
    if config.mean is not None:
        if len(config.mean) not in (1, c):
            raise ConfigError("--mean", f"{len(config.mean)} values for a {c}-channel model")
        mean = config.mean * c if len(config.mean) == 1 else config.mean
        std = config.std * c if len(config.std) == 1 else config.std
        pixels, pixels_from = PixelMapping.from_mean_std(mean, std), "--mean/--std"
    elif config.input_range is not None:
        pixels, pixels_from = PixelMapping.from_range(*config.input_range, c), "--input-range"
    elif src.rescaling_first:
        pixels, pixels_from = PixelMapping.from_range(0, 255, c), "default 0,255 (a Rescaling layer follows the input)"
    else:
        pixels, pixels_from = PixelMapping.from_range(0, 1, c), "default 0,1"
    io = ModelIO(height=h, width=w, channels=c, class_names=tuple(class_names), color=color, pixels=pixels,
                 input_name=rundir.INPUT_NAME, output_name=rundir.OUTPUT_NAME, output_activation="softmax")
    return io, {"color_from": color_from, "pixels_from": pixels_from}


def _check_output(config: ImportConfig) -> None:
    if config.model_dir.exists() and not config.overwrite:
        raise OutputError(config.model_dir, "already exists (pass --overwrite to replace it)")
    artifacts.check_can_create(config.run_dir)


def run(config: ImportConfig) -> ImportResult:
    """Import ``config.model`` and write ``<run>/model/`` (see the module docstring)."""
    t0 = time.perf_counter()
    _check_output(config)
    src = import_source.read(config.model)
    shape = import_source.fix_size(src, config.image_size)
    h, w, c = shape
    color = config.color or ("grayscale" if c == 1 else "rgb")
    if (color == "grayscale") != (c == 1):
        raise ConfigError("--color", f"{color}, but the model takes {c} channel(s)")
    ds = load_dataset(config.dataset, config.data_dir, val_size=config.val_size, seed=config.seed,
                      train_limit=config.train_limit, test_limit=config.test_limit, image_size=(h, w),
                      color=color, strict_color=config.color is None)
    if tuple(ds.image_shape[:2]) != (h, w):
        raise ModelFileError(config.model, f"takes {h}x{w} images but the {config.dataset} images are "
                                           f"{ds.image_shape[0]}x{ds.image_shape[1]} (only image folders are "
                                           "resized)")
    import_source.check_class_count(src, ds.num_classes, config.dataset)
    class_names = list(ds.class_names)
    if config.class_names_file is not None:
        class_names = import_source.parse_class_names(config.class_names_file)
        if len(class_names) != src.output_classes:
            raise ConfigError(str(config.class_names_file), f"lists {len(class_names)} class names but the model "
                                                            f"gives {src.output_classes} classes")
    io, chosen = resolve_io(config, src, shape, class_names)

    with quiet.quiet():
        quiet.import_tensorflow()
    model = import_source.load(src)
    outs = list(getattr(model, "outputs", None) or [])
    if len(outs) != 1 or len(outs[0].shape) != 2:
        raise ModelFileError(src.path, f"gives {'outputs of shape ' + str([list(o.shape) for o in outs])}; edgekit "
                                       "needs one class vector [N, classes]")
    rebuilt = import_source.rebuild(src, model, shape)
    user_pixels = io.pixels                  # what the user's model takes
    io = dataclasses.replace(io, pixels=rebuilt.pixels(user_pixels))   # what model.keras takes
    noise = np.random.default_rng(config.seed).integers(0, 256, (VERIFY_NOISE, h, w, c), dtype=np.uint8)
    images = np.concatenate([ds.x_test[:VERIFY_IMAGES].reshape(-1, h, w, c), noise])
    rebuild_record = import_source.verify(src, model, rebuilt.model, user_pixels.apply(images),
                                          io.pixels.apply(images))
    rebuild_record.update(renamed_layers=rebuilt.renamed, composed_activations=rebuilt.composed,
                          folded_rescaling=rebuilt.folded)
    if rebuilt.folded is not None:
        chosen["user_pixels"] = user_pixels.to_json()
    x_test = io.pixels.apply(ds.x_test)
    test = evaluate(rebuilt.model, x_test, ds.y_test, ds.num_classes)
    val = evaluate(rebuilt.model, io.pixels.apply(ds.x_val), ds.y_val, ds.num_classes) if len(ds.y_val) else None
    params = int(rebuilt.model.count_params())
    with artifacts.atomic_dir(config.model_dir, overwrite=config.overwrite) as out:
        with quiet.quiet():
            rebuilt.model.save(out / "model.keras")
            rebuilt.model.save(out / "saved_model", save_format="tf")
        ModelArtifact.write(
            out, io=io,
            config=config.to_json(),
            dataset=ds.info,
            model={"name": rebuilt.model.name, "params": params, "imported": True,
                   "layers": [layer.name for layer in rebuilt.model.layers]},
            files={"keras": artifacts.file_record(out / "model.keras", out),
                   "saved_model": artifacts.file_record(out / "saved_model", out)},
            metrics={"test_accuracy": test["accuracy"], "val_accuracy": val["accuracy"] if val else None,
                     "per_class_accuracy": test["per_class_accuracy"],
                     "confusion_matrix": test["confusion_matrix"], "measured_by": "edgekit import"},
            source={**src.to_json(), "rebuild": rebuild_record, **chosen,
                    "converted_source": "model.keras (the tf_keras rebuild; coremltools and tfmot take tf_keras)"},
            plots={},
            versions=artifacts.library_versions(),
        )
    return ImportResult(model_dir=config.model_dir, manifest_path=RunDir(config.run_dir).model_manifest,
                        source_format=src.format, test_accuracy=test["accuracy"],
                        output_activation=src.activation, rebuild_max_abs_diff=rebuild_record["max_abs_prob_diff"],
                        params=params, seconds=round(time.perf_counter() - t0, 3))


def is_current(run_dir: Path) -> bool:
    """``<run>/model/`` is intact and was imported from the source as it is now
    (a changed source file makes it stale; a train-made model is not an import)."""
    try:
        model = ModelArtifact.read(run_dir)
        if not model.files_intact():
            return False
    except EdgekitError:
        return False
    source = model.manifest.get("source")
    if not isinstance(source, dict) or not source.get("sha256"):
        return False
    path = Path(str(source.get("path", "")))
    if not path.exists():
        return True         # moved away: the imported model is still complete
    digest = artifacts.sha256_tree(path) if path.is_dir() else artifacts.sha256_file(path)
    return digest == source["sha256"]
