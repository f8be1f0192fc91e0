"""The training stage's one typed config: flags in, a validated frozen
``TrainConfig`` out (a ConfigError naming the flag otherwise).

``epochs``, ``batch_size`` and ``learning_rate`` default to ``None``, meaning
the model's own defaults in ``MODEL_DEFAULTS`` (chosen so the default run
reaches the bars in bench/README.md); ``resolved()`` fills them in, and the
manifest records the resolved values.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from pathlib import Path

from edgekit.errors import ConfigError
from edgekit.rundir import RunDir


class Model(str, enum.Enum):
    linear = "linear"
    cnn = "cnn"
    deep = "deep"
    mobile = "mobile"


class DatasetName(str, enum.Enum):
    mnist = "mnist"
    fashion_mnist = "fashion-mnist"
    idx = "idx"
    folder = "folder"


class Strategy(str, enum.Enum):
    default = "default"
    mirrored = "mirrored"        # tf.distribute.MirroredStrategy over the local devices
    multiworker = "multiworker"  # MultiWorkerMirroredStrategy over TF_CONFIG (train/distribute.py)


@dataclass(frozen=True)
class ModelDefaults:
    epochs: int
    batch_size: int
    learning_rate: float  # peak of the one-cycle schedule
    shift: int            # random translation in pixels (0 = no augmentation)
    patience: int         # early stopping on val accuracy


# cnn: 2 epochs at batch 64 reach 99.09-99.19% (seeds 0-2) and pass 99.0% after
# ~1.5 epochs, 0.23x the tutorial's time to 98.8% (bench/train_vs_tutorial.py);
# 6 epochs at batch 128 end higher (99.34%) but take 3x longer and pass 99.0%
# only after 2.5 epochs. `--epochs 6 --batch-size 128 --learning-rate 3e-3`
# gives that model back.
MODEL_DEFAULTS = {
    "linear": ModelDefaults(epochs=5, batch_size=128, learning_rate=5e-3, shift=0, patience=2),
    "cnn": ModelDefaults(epochs=2, batch_size=64, learning_rate=2e-3, shift=0, patience=3),
    "deep": ModelDefaults(epochs=8, batch_size=128, learning_rate=2e-3, shift=2, patience=3),
    "mobile": ModelDefaults(epochs=10, batch_size=128, learning_rate=5e-3, shift=2, patience=4),
}


def _enum(cls, value, flag):
    try:
        return cls(value.value if isinstance(value, enum.Enum) else value)
    except ValueError:
        raise ConfigError(flag, f"unknown value {value!r}; choose one of {', '.join(m.value for m in cls)}") from None


def _positive_int(value, flag, *, allow_none=True, minimum=1):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(flag, f"must be {kind}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train one model. ``run_dir`` is the run directory; the model goes
    to ``<run_dir>/model/``."""

    run_dir: Path
    model: Model = Model.cnn
    dataset: DatasetName = DatasetName.mnist
    data_dir: Path | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int = 0
    val_size: int | None = None  # None: 5000, or a tenth of a smaller training set
    train_limit: int | None = None
    test_limit: int | None = None
    overwrite: bool = False
    strategy: Strategy = Strategy.default
    augment_shift: int | None = None
    early_stopping: bool = True
    image_size: int = 28

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass normalisation
        set_("model", _enum(Model, self.model, "--model"))
        set_("dataset", _enum(DatasetName, self.dataset, "--dataset"))
        set_("strategy", _enum(Strategy, self.strategy, "--strategy"))
        if self.run_dir is None or str(self.run_dir) in ("", "."):
            raise ConfigError("--run", "a run directory is required")
        set_("run_dir", Path(self.run_dir))
        if self.data_dir is not None:
            set_("data_dir", Path(self.data_dir))
        elif self.dataset in (DatasetName.idx, DatasetName.folder):
            raise ConfigError("--data-dir", f"--dataset {self.dataset.value} needs --data-dir")
        _positive_int(self.epochs, "--epochs")
        _positive_int(self.batch_size, "--batch-size")
        _positive_int(self.train_limit, "--train-limit")
        _positive_int(self.test_limit, "--test-limit")
        _positive_int(self.val_size, "--val-size", minimum=0)
        _positive_int(self.augment_shift, "--augment-shift", minimum=0)
        _positive_int(self.image_size, "--image-size", allow_none=False, minimum=4)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise ConfigError("--seed", f"must be an integer in [0, 2^31), got {self.seed!r}")
        lr = self.learning_rate
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                               or not math.isfinite(lr) or not 0 < lr < 1):
            raise ConfigError("--learning-rate", f"must be a number in (0, 1), got {lr!r}")

    @property
    def defaults(self) -> ModelDefaults:
        return MODEL_DEFAULTS[self.model.value]

    def resolved(self) -> "TrainConfig":
        """This config with the model defaults filled in for unset fields."""
        d = self.defaults
        return replace(self,
                       epochs=self.epochs or d.epochs,
                       batch_size=self.batch_size or d.batch_size,
                       learning_rate=float(self.learning_rate or d.learning_rate),
                       augment_shift=d.shift if self.augment_shift is None else self.augment_shift)

    @property
    def model_dir(self) -> Path:
        return RunDir(self.run_dir).model_dir
