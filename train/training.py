"""Train one model: a ``TrainConfig`` in, ``<run>/model/`` out.

``run(config)`` loads and splits the dataset, builds the zoo model, trains it
with Adam on warm-up + cosine learning-rate cycles (optionally with random
pixel shifts) for as long as the validation split says it still gains (or a
fixed ``--epochs`` budget), keeps the best weights, evaluates on the test
set, and writes atomically:

  <run>/model/model.keras        tf_keras model (load with models.load_model)
  <run>/model/saved_model/       TF SavedModel (serving_default: image -> probabilities)
  <run>/model/manifest.json      schema "edgekit.model/2" (edgekit.rundir.ModelArtifact; docs/ARTIFACTS.md)
  <run>/model/plots/*.png        image grid, confusion matrix, misclassified, filters, curves
  <run>/model/tensorboard/       training logs and an embedding-projector export

With the same seed, data and machine, two runs give byte-identical weights
(seeded initialisation, shuffling and augmentation, TF op determinism).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit import artifacts, quiet, rundir
from edgekit.errors import EdgekitError, OutputError
from edgekit.train import distribute, predict, tfdata
from edgekit.train.config import BUDGET_MIN_GAIN, BUDGET_PATIENCE, TrainConfig
from edgekit.train.data import Dataset, load_dataset, to_float
from edgekit.rundir import Color, ModelArtifact, ModelIO, PixelMapping, RunDir
from edgekit.train.models import build_model

# Training steps run per call into the compiled graph: the same updates, but
# Keras' per-step Python round-trip is paid once per 16 steps (13% faster per
# epoch for the cnn on 2 cores). Callbacks see batch ends 16 steps apart.
STEPS_PER_EXECUTION = 16


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    manifest_path: Path
    test_accuracy: float
    val_accuracy: float
    epochs_run: int
    train_seconds: float
    params: int
    writer: bool = True  # False on a non-chief multiworker process: manifest_path is its shard record

    @property
    def ok(self) -> bool:
        """Training either writes a model or raises: a result is always ok."""
        return True

    def failure(self) -> str | None:
        return None


def is_current(run_dir: Path) -> bool:
    """``<run_dir>/model/`` exists, its manifest reads and every file it records hashes as recorded."""
    try:
        return ModelArtifact.read(run_dir).files_intact()
    except EdgekitError:
        return False


def _check_output(config: TrainConfig) -> None:
    """Refuse an existing model dir (unless overwrite) or a run dir that cannot
    be created or written, before any work and without creating anything."""
    if config.model_dir.exists() and not config.overwrite:
        raise OutputError(config.model_dir, "already exists (pass --overwrite to replace it)")
    artifacts.check_can_create(config.run_dir)  # model/ is renamed into place inside it


def _pipeline(tf, x, y, *, batch_size: int, seed: int, shift: int, training: bool):
    """A tf.data pipeline of (float images [B,H,W,C], int labels); for
    training: seeded reshuffling each epoch and seeded random shifts."""
    x = x[..., None] if x.ndim == 3 else x   # grayscale [N,H,W] gets its channel axis
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        if shift:
            h, w, c = x.shape[1:4]
            noise = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

            def shift_image(pair, r):
                img, label = pair
                padded = tf.pad(img, [[shift, shift], [shift, shift], [0, 0]])
                s = tf.stack([tf.cast(r % (2**31), tf.int32), tf.constant(seed, tf.int32)])
                return tf.image.stateless_random_crop(padded, [h, w, c], seed=s), label

            ds = tf.data.Dataset.zip((ds, noise)).map(shift_image, num_parallel_calls=tf.data.AUTOTUNE,
                                                      deterministic=True)
    ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32) / 255.0, b))
    return tfdata.untuned(tf, ds.prefetch(2))


def next_cycle(epochs_so_far: int, gains: list[float], cap: int, *, min_gain: float = BUDGET_MIN_GAIN,
               patience: int = BUDGET_PATIENCE) -> tuple[int, str]:
    """The validation-decided budget after a cycle ends: (epochs of the next
    cycle, why), 0 epochs meaning stop. ``gains[i]``: by how much cycle i
    raised the best validation accuracy. A next cycle doubles the epochs so
    far (cut to the cap); ``patience`` cycles in a row gaining less than
    ``min_gain``, or the cap, stop."""
    if len(gains) >= patience and all(g < min_gain for g in gains[-patience:]):
        return 0, (f"validation accuracy gained {max(gains[-1], 0.0) * 100:.2f} points in the last cycle "
                   f"(< {min_gain * 100:g})")
    if epochs_so_far >= cap:
        return 0, f"the cap of {cap} epochs"
    return min(epochs_so_far, cap - epochs_so_far), f"the last cycle gained {gains[-1] * 100:.2f} points"


def _warmup_steps(cycle_steps: int, steps_per_epoch: int) -> int:
    """A tenth of the cycle, at most one epoch."""
    return min(steps_per_epoch, max(cycle_steps // 10, 1))


def _cycle_schedule(tf, keras, peak: float, cycle_steps: int, warmup: int):
    """Keras' CosineDecay (linear warm-up from peak/10 to peak, then cosine to
    1% of peak) over one cycle of ``cycle_steps``, whose start, length and
    warm-up live in variables: ``restart`` begins the next cycle at a step
    without retracing the training function. Before any restart it is
    CosineDecay(peak / 10, cycle_steps - warmup, 0.01, warmup_target=peak,
    warmup_steps=warmup) step for step (tests/train/test_budget.py)."""

    class CycleSchedule(keras.optimizers.schedules.CosineDecay):
        def __init__(self):
            self.start = tf.Variable(0, dtype=tf.int64, trainable=False, name="cycle_start")
            super().__init__(initial_learning_rate=peak / 10,
                             decay_steps=tf.Variable(max(cycle_steps - warmup, 1), dtype=tf.int64,
                                                     trainable=False, name="cycle_decay_steps"),
                             alpha=0.01, warmup_target=peak,
                             warmup_steps=tf.Variable(warmup, dtype=tf.int64, trainable=False,
                                                      name="cycle_warmup_steps"))

        def restart(self, start: int, cycle_steps: int, warmup: int) -> None:
            self.start.assign(start)
            self.warmup_steps.assign(warmup)
            self.decay_steps.assign(max(cycle_steps - warmup, 1))

        def __call__(self, step):
            return super().__call__(tf.cast(step, tf.int64) - self.start)

        def get_config(self):  # plain numbers: the optimizer config saved with the model is JSON
            return {"initial_learning_rate": self.initial_learning_rate, "alpha": self.alpha,
                    "decay_steps": int(self.decay_steps.numpy()), "warmup_target": self.warmup_target,
                    "warmup_steps": int(self.warmup_steps.numpy()), "name": self.name}

    return CycleSchedule()


def _budget_callback(keras, schedule, steps: int, first: int, cap: int, progress):
    """Decides the budget from the validation split (``next_cycle`` at each
    cycle's end), restarts the schedule for the next cycle, and restores the
    weights of the best validation epoch at the end; ``record()`` says what it did."""

    class Budget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.end, self.cycles, self.gains, self.val_at_cycle_end = first, [first], [], []
            self.best, self.best_epoch, self.before, self.weights, self.why = float("-inf"), None, 0.0, None, None

        def on_epoch_end(self, epoch, logs=None):
            val = float((logs or {}).get("val_accuracy", float("nan")))
            if val > self.best:
                self.best, self.best_epoch, self.weights = val, epoch, self.model.get_weights()
            if epoch + 1 < self.end:
                return
            self.val_at_cycle_end.append(val)
            self.gains.append(self.best - self.before if self.best_epoch is not None else 0.0)
            n, self.why = next_cycle(self.end, self.gains, cap)
            if n == 0:
                self.model.stop_training = True
                return
            self.before = self.best
            schedule.restart(self.end * steps, n * steps, _warmup_steps(n * steps, steps))
            self.end += n
            self.cycles.append(n)
            progress.extend(n * steps)

        def on_train_end(self, logs=None):
            if self.weights is not None:
                self.model.set_weights(self.weights)

        def record(self) -> dict:
            return {"rule": "validation", "first_cycle": first, "max_epochs": cap, "min_gain": BUDGET_MIN_GAIN,
                    "patience_cycles": BUDGET_PATIENCE, "cycles": self.cycles,
                    "val_accuracy_at_cycle_end": self.val_at_cycle_end,
                    "best_epoch": None if self.best_epoch is None else self.best_epoch + 1, "stopped": self.why}

    return Budget()


def _progress_callback(keras, epochs: int, steps: int):
    from edgekit import progress

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = progress.bar(desc="train", total=epochs * steps, unit="batch")

        def on_epoch_begin(self, epoch, logs=None):
            self.done = 0

        def on_train_batch_end(self, batch, logs=None):
            # with steps_per_execution, Keras reports every STEPS_PER_EXECUTION batches
            self.bar.update(batch + 1 - self.done)
            self.done = batch + 1

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix(epoch=epoch + 1, loss=f"{logs.get('loss', float('nan')):.4f}",
                                 val_acc=f"{logs.get('val_accuracy', float('nan')):.4f}")

        def on_train_end(self, logs=None):
            self.bar.close()

        def extend(self, batches: int) -> None:
            """The budget grew by a cycle."""
            self.bar.total += batches
            self.bar.refresh()

    return Progress()


def _scalar_log_callback(tf, keras, log_dir: Path):
    """Per-epoch loss/accuracy/learning rate as TensorBoard scalars under
    log_dir/train and log_dir/validation. Written with TensorFlow's core
    ``tf.summary.write`` and the scalars plugin's metadata, because the
    ``tensorboard`` package (which keras.callbacks.TensorBoard needs) is not
    an edgekit dependency; TensorBoard reads these files the same way."""
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))

    class ScalarLog(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.writers = {k: tf.summary.create_file_writer(str(log_dir / k)) for k in ("train", "validation")}

        def on_epoch_end(self, epoch, logs=None):
            lr = self.model.optimizer.learning_rate
            lr = lr(self.model.optimizer.iterations) if callable(lr) else lr
            for key, value in {**(logs or {}), "learning_rate": float(tf.convert_to_tensor(lr))}.items():
                split = "validation" if key.startswith("val_") else "train"
                with self.writers[split].as_default():
                    tf.summary.write(f"epoch_{key.removeprefix('val_')}", tf.constant(float(value)),
                                     step=epoch, metadata=meta)

        def on_train_end(self, logs=None):
            for w in self.writers.values():
                w.close()

    return ScalarLog()


def evaluate(model, x_uint8: np.ndarray, y: np.ndarray, num_classes: int) -> dict:
    """``edgekit.train.predict.evaluate`` of ``model`` on uint8 images (the zoo's pixel / 255)."""
    return predict.evaluate(model, to_float(x_uint8), y, num_classes, batch_size=500)


def train_model(config: TrainConfig, ds: Dataset, log_dir: Path | None = None, callbacks=(), plan=None):
    """Build and fit the model on ``ds`` (config must be resolved); returns
    (model, history dict, epochs_run, seconds, budget): ``budget`` is the
    manifest's ``metrics.budget``, how the number of epochs was decided."""
    tf = quiet.import_tensorflow()
    import tf_keras as keras

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    plan = plan or distribute.plan(config)  # tf.distribute: train/distribute.py
    bs = config.batch_size
    if plan.distributed:
        train_ds = plan.train_dataset(ds.x_train, ds.y_train, seed=config.seed, shift=config.augment_shift)
        steps = plan.steps_per_epoch
    else:
        train_ds = _pipeline(tf, ds.x_train, ds.y_train, batch_size=bs, seed=config.seed,
                             shift=config.augment_shift, training=True)
        steps = -(-len(ds.y_train) // bs)
    lr = config.learning_rate
    has_val = len(ds.y_val) > 0
    # the validation split decides the budget (cycles of warm-up + cosine); without one,
    # or with --epochs, one warm-up + cosine schedule over a fixed number of epochs
    auto = config.epochs is None and has_val
    epochs = config.epochs or config.defaults.epochs
    total = steps * epochs
    warmup = _warmup_steps(total, steps)
    if auto:
        schedule = _cycle_schedule(tf, keras, lr, total, warmup)
        budget = None
    else:
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr / 10, decay_steps=max(total - warmup, 1), alpha=0.01,
            warmup_target=lr, warmup_steps=warmup)
        budget = {"rule": "fixed", "epochs": epochs,
                  "why": "--epochs" if config.epochs else "no validation split to decide on"}
    with plan.scope():
        model = build_model(config.model.value, ds.image_shape, ds.num_classes, config.seed)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"],
                      steps_per_execution=1 if plan.distributed else STEPS_PER_EXECUTION)
    val_ds = plan.validation_dataset(_pipeline(tf, ds.x_val, ds.y_val, batch_size=500, seed=config.seed, shift=0,
                                               training=False)) if len(ds.y_val) else None
    progress = _progress_callback(keras, epochs, steps)
    cbs = [progress]
    if auto:
        decide = _budget_callback(keras, schedule, steps, epochs, config.max_epochs, progress)
        cbs.append(decide)
    elif val_ds is not None and config.early_stopping:
        cbs.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.defaults.patience,
                                                 restore_best_weights=True))
    if log_dir is not None:
        cbs.append(_scalar_log_callback(tf, keras, log_dir))
    cbs.extend(callbacks)
    t0 = time.perf_counter()
    hist = model.fit(train_ds, validation_data=val_ds, epochs=config.max_epochs if auto else epochs, callbacks=cbs,
                     verbose=0, steps_per_epoch=plan.steps_per_epoch)
    seconds = time.perf_counter() - t0
    model = plan.unwrap(model, lambda: build_model(config.model.value, ds.image_shape, ds.num_classes, config.seed))
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return model, history, len(hist.epoch), seconds, decide.record() if auto else budget


def model_io(ds: Dataset) -> ModelIO:
    """What every trained model takes and gives: uint8 pixels / 255
    (``to_float``) in the dataset's colour (grayscale, or RGB), the dataset's
    class names, softmax probabilities."""
    h, w, c = ds.image_shape
    color = Color(ds.info.get("color", "grayscale"))
    return ModelIO(height=h, width=w, channels=c, class_names=tuple(ds.class_names), color=color,
                   pixels=PixelMapping.from_range(0, 1, c), input_name=rundir.INPUT_NAME,
                   output_name=rundir.OUTPUT_NAME, output_activation="softmax")


def _config_dict(config: TrainConfig) -> dict:
    out = {}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        out[f.name] = v.value if hasattr(v, "value") else (str(v) if isinstance(v, Path) else v)
    return out


def run(config: TrainConfig, callbacks=()) -> TrainResult:
    """Train ``config.model`` on ``config.dataset`` and write ``<run>/model/``.
    Extra keras ``callbacks`` are passed to ``fit`` (benchmarks use this)."""
    plan = distribute.plan(config, _check_output)  # TF_CONFIG, batch split, lr scaling, which process writes
    config = plan.resolve(config)
    ds = load_dataset(config.dataset.value, config.data_dir, val_size=config.val_size, seed=config.seed,
                      train_limit=config.train_limit, test_limit=config.test_limit,
                      image_size=(config.image_size, config.image_size), color=config.input_color)
    with plan.output_dir(config) as out:
        model, history, epochs_run, seconds, budget = train_model(config, ds, out / "tensorboard", callbacks, plan)
        test = evaluate(model, ds.x_test, ds.y_test, ds.num_classes)
        val = evaluate(model, ds.x_val, ds.y_val, ds.num_classes) if len(ds.y_val) else None
        shard, shard_path = plan.finish(config, ds, epochs_run, model, test["accuracy"])
        if not plan.is_writer:
            return TrainResult(model_dir=config.model_dir, manifest_path=shard_path, test_accuracy=test["accuracy"],
                               val_accuracy=val["accuracy"] if val else float("nan"), epochs_run=epochs_run,
                               train_seconds=seconds, params=int(model.count_params()), writer=False)
        model.save(out / "model.keras")
        model.save(out / "saved_model", save_format="tf")
        plots, projector = _write_plots(out, model, ds, test, history)
        ModelArtifact.write(
            out, io=model_io(ds),
            config={**_config_dict(config), "distribution": plan.describe()},
            distribution=shard,
            dataset=ds.info,
            model={"name": config.model.value, "params": int(model.count_params()),
                   "layers": [layer.name for layer in model.layers]},
            files={"keras": artifacts.file_record(out / "model.keras", out),
                   "saved_model": artifacts.file_record(out / "saved_model", out)},
            metrics={"test_accuracy": test["accuracy"], "val_accuracy": val["accuracy"] if val else None,
                     "per_class_accuracy": test["per_class_accuracy"],
                     "confusion_matrix": test["confusion_matrix"], "epochs_run": epochs_run,
                     "train_seconds": round(seconds, 3), "history": history, "budget": budget},
            plots=plots,
            projector=projector,
            versions=artifacts.library_versions(),
        )
    plan.barrier()  # non-chief workers wait in finish() until the chief has written the model
    return TrainResult(model_dir=config.model_dir, manifest_path=RunDir(config.run_dir).model_manifest,
                       test_accuracy=test["accuracy"], val_accuracy=val["accuracy"] if val else float("nan"),
                       epochs_run=epochs_run, train_seconds=seconds, params=int(model.count_params()))


def _write_plots(out: Path, model, ds: Dataset, test: dict, history: dict) -> dict:
    """Plots and the projector export; returns the manifest's "plots" and "projector" sections."""
    from edgekit.train import plots

    return quiet.call(plots.write_all, out, model, ds, test, history)  # predictions log tf.data's NodeDef line
