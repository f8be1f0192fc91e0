"""Training on several devices or machines with ``tf.distribute``.

In: a ``TrainConfig`` whose ``strategy`` is ``default``, ``mirrored`` or
``multiworker`` and, for ``multiworker``, the standard ``TF_CONFIG``
environment variable of this process, e.g. for the first of two hosts::

    {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
     "task": {"type": "worker", "index": 0}}

Out: a ``DistributionPlan`` that ``edgekit.train.training`` uses through a
few hooks, and what it records:

- the strategy (``MirroredStrategy`` over the local devices, or
  ``MultiWorkerMirroredStrategy`` over the TF_CONFIG cluster), under whose
  ``scope()`` the model and optimizer are created;
- ``--batch-size`` as the GLOBAL batch, split evenly across replicas (a batch
  not divisible by the replica count is a ConfigError);
- the learning rate: an explicit ``--learning-rate`` is used as given; the
  model default is scaled with the square root of global batch / default
  batch (the square-root rule for Adam, Malladi et al. 2022), capped below 1;
- the input pipeline sharded per worker with
  ``strategy.distribute_datasets_from_function``: worker ``k`` of ``K`` reads
  the training examples whose index is ``k`` mod ``K``, in its own seeded
  order, ``drop_remainder`` batches so every worker runs the same number of
  steps (``len(train) // global_batch`` per epoch);
- which process writes: the chief (task type ``chief``, or ``worker`` 0 when
  the cluster has no chief) writes ``<run>/model/`` as usual; every other
  worker trains into a temporary directory that is removed at the end (the
  Keras multi-worker checkpoint pattern) and writes only its shard record;
- the shard record ``<run>/distributed/<task_type>-<index>.json`` (schema
  ``edgekit.shard/1``) of every worker: which training examples it consumed
  (a bitmap over the training split, replayed from the very index stream its
  pipeline was built from, for the steps it ran), their label histogram, the
  sha256 of its final weights and its own test accuracy, so a cluster run can
  be checked afterwards: shards disjoint, weights identical on every worker.

Determinism: ``tf.config.experimental.enable_op_determinism()`` stays on with
both strategies; it does not conflict with the CPU collective ops (ring
all-reduce over gRPC): two separate 2-worker runs with the same seed gave
the same weights sha256 here (checked by hand, not by a test: it costs a
second cluster run).
The all-reduce sums in a different order than one process would, so a
2-worker run is close to, not bit-identical with, a 1-process run.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from edgekit import artifacts, quiet
from edgekit.errors import ConfigError
from edgekit.rundir import SHARD_SCHEMA, RunDir
from edgekit.train import tfdata
from edgekit.train.config import Strategy, TrainConfig

JOBS = ("chief", "worker")
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


# --------------------------------------------------------------- TF_CONFIG

@dataclass(frozen=True)
class ClusterTask:
    """This process's place in a TF_CONFIG cluster."""

    cluster: dict[str, tuple[str, ...]]
    task_type: str
    task_index: int

    @property
    def num_workers(self) -> int:
        return sum(len(self.cluster.get(j, ())) for j in JOBS)

    @property
    def is_chief(self) -> bool:
        """The chief writes the run: task type "chief", or worker 0 when there is no chief."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def worker_id(self) -> int:
        """Position among all workers, chief first (the order the collectives and
        ``InputContext.input_pipeline_id`` use)."""
        has_chief = "chief" in self.cluster
        if self.task_type == "chief":
            return 0
        return self.task_index + (1 if has_chief else 0)


LOCAL = ClusterTask(cluster={"worker": ("localhost",)}, task_type="worker", task_index=0)


def parse_tf_config(text: str | None) -> ClusterTask:
    """Validate a TF_CONFIG value for ``--strategy multiworker``; every problem
    is one ConfigError naming TF_CONFIG."""
    def bad(problem: str) -> ConfigError:
        return ConfigError("TF_CONFIG", problem)

    if text is None or not text.strip():
        raise bad("not set; --strategy multiworker needs it on every host, e.g. "
                  '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}')
    try:
        cfg = json.loads(text)
    except ValueError as e:
        raise bad(f"is not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise bad(f"must be a JSON object with \"cluster\" and \"task\", got {type(cfg).__name__}")
    cluster, task = cfg.get("cluster"), cfg.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise bad('needs "cluster": an object mapping "chief"/"worker" to lists of "host:port"')
    unknown = sorted(set(cluster) - set(JOBS))
    if unknown:
        raise bad(f"cluster job(s) {', '.join(map(repr, unknown))} are not supported by --strategy multiworker "
                  "(it uses only \"chief\" and \"worker\")")
    seen: set[str] = set()
    jobs: dict[str, tuple[str, ...]] = {}
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise bad(f'cluster "{job}" must be a non-empty list of "host:port" strings')
        for a in addresses:
            m = _ADDRESS.match(a) if isinstance(a, str) else None
            if not m or not 0 < int(m.group(2)) < 65536:
                raise bad(f'cluster "{job}" address {a!r} is not "host:port" with a port in 1..65535')
            if a in seen:
                raise bad(f"address {a} appears twice in the cluster")
            seen.add(a)
        jobs[job] = tuple(addresses)
    if len(jobs.get("chief", ())) > 1:
        raise bad(f'cluster may have one "chief", it lists {len(jobs["chief"])}')
    if not isinstance(task, dict):
        raise bad('needs "task": {"type": "worker", "index": N} naming this host')
    ttype, index = task.get("type"), task.get("index", 0)
    if ttype not in jobs:
        raise bad(f'task type {ttype!r} is not a job of the cluster ({", ".join(jobs)})')
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[ttype]):
        raise bad(f'task index {index!r} is out of range: cluster "{ttype}" has {len(jobs[ttype])} address(es)')
    return ClusterTask(cluster=jobs, task_type=ttype, task_index=index)


# ----------------------------------------------------------- batch and lr

def split_batch(global_batch: int, replicas: int) -> int:
    """Per-replica batch of a global batch; refuses an uneven split."""
    if global_batch % replicas:
        lo, hi = global_batch // replicas * replicas, -(-global_batch // replicas) * replicas
        raise ConfigError("--batch-size", f"the global batch {global_batch} does not split evenly over "
                                          f"{replicas} replicas; use a multiple of {replicas} "
                                          f"(e.g. {lo or hi} or {hi})")
    if global_batch < replicas:
        raise ConfigError("--batch-size", f"the global batch {global_batch} is smaller than the {replicas} replicas")
    return global_batch // replicas


def scale_learning_rate(base_lr: float, base_batch: int, global_batch: int) -> float:
    """Square-root scaling for Adam: lr * sqrt(global / base), capped below 1."""
    return min(base_lr * math.sqrt(global_batch / base_batch), 0.5)


# ------------------------------------------------------------------ plan

@dataclass
class DistributionPlan:
    """How one process takes part in training; see the module docstring."""

    strategy_name: str
    task: ClusterTask
    global_batch_size: int
    learning_rate: float
    lr_rule: str
    base_learning_rate: float
    base_batch_size: int
    strategy: Any = None
    num_replicas_in_sync: int = 1
    steps_per_epoch: int | None = None
    _pipeline_ids: tuple[int, int] | None = field(default=None, repr=False)
    _index_stream: Callable | None = field(default=None, repr=False)

    @property
    def distributed(self) -> bool:
        return self.strategy_name != Strategy.default.value

    @property
    def is_writer(self) -> bool:
        return self.task.is_chief

    @property
    def per_replica_batch_size(self) -> int:
        return self.global_batch_size // self.num_replicas_in_sync

    def resolve(self, config: TrainConfig) -> TrainConfig:
        """``config.resolved()`` with the effective (scaled) learning rate."""
        return replace(config.resolved(), learning_rate=self.learning_rate)

    def scope(self):
        """Create the model and optimizer inside this."""
        return self.strategy.scope() if self.distributed else contextlib.nullcontext()

    def describe(self) -> dict:
        """The manifest's ``config.distribution``."""
        return {
            "strategy": self.strategy_name, "num_workers": self.task.num_workers,
            "num_replicas_in_sync": self.num_replicas_in_sync,
            "global_batch_size": self.global_batch_size, "per_replica_batch_size": self.per_replica_batch_size,
            "steps_per_epoch": self.steps_per_epoch,
            "learning_rate": {"rule": self.lr_rule, "base": self.base_learning_rate,
                              "base_batch_size": self.base_batch_size, "effective": self.learning_rate},
            "writer": {"task_type": self.task.task_type, "task_index": self.task.task_index},
            "input_sharding": "by example index: worker k of K reads indices k mod K" if self.distributed else None,
        }

    @contextlib.contextmanager
    def output_dir(self, config: TrainConfig) -> Iterator[Path]:
        """The writer builds ``<run>/model/`` atomically; any other worker gets
        a temporary directory that is removed when training ends."""
        if self.is_writer:
            with artifacts.atomic_dir(config.model_dir, overwrite=config.overwrite) as out:
                yield out
        else:
            with tempfile.TemporaryDirectory(prefix=f"edgekit-{self.task.task_type}{self.task.task_index}-") as d:
                yield Path(d)

    # -- data

    def train_dataset(self, x: np.ndarray, y: np.ndarray, *, seed: int, shift: int):
        """The distributed training input: per worker, its shard of (x, y),
        reshuffled each pass, shifted by up to ``shift`` pixels, in batches of
        the per-replica size; infinite, so pass ``steps_per_epoch`` to fit."""
        import tensorflow as tf

        n = len(y)
        self.steps_per_epoch = n // self.global_batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError("--batch-size", f"the global batch {self.global_batch_size} is larger than the "
                                              f"{n} training images")
        h, w = x.shape[1:3]

        def indices(ctx):
            shard = tf.data.Dataset.range(n).shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
            size = len(range(ctx.input_pipeline_id, n, ctx.num_input_pipelines))
            return shard.shuffle(size, seed=seed, reshuffle_each_iteration=True).repeat()

        def dataset_fn(ctx):
            self._pipeline_ids = (ctx.num_input_pipelines, ctx.input_pipeline_id)
            x_t, y_t = tf.constant(x[..., None] if x.ndim == 3 else x), tf.constant(y)
            noise = tf.data.Dataset.random(seed=seed + ctx.input_pipeline_id)

            def load(i, r):
                img = tf.gather(x_t, i)
                if shift:
                    padded = tf.pad(img, [[shift, shift], [shift, shift], [0, 0]])
                    s = tf.stack([tf.cast(r % (2**31), tf.int32), tf.constant(seed, tf.int32)])
                    img = tf.image.stateless_random_crop(padded, [h, w, 1 if x.ndim == 3 else x.shape[3]], seed=s)
                return tf.cast(img, tf.float32) / 255.0, tf.gather(y_t, i)

            ds = tf.data.Dataset.zip((indices(ctx), noise)).map(load, num_parallel_calls=tf.data.AUTOTUNE,
                                                                 deterministic=True)
            per_replica = ctx.get_per_replica_batch_size(self.global_batch_size)
            return tfdata.untuned(tf, ds.batch(per_replica, drop_remainder=True).prefetch(2))

        self._index_stream = indices
        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def validation_dataset(self, ds):
        """Validation input with element-wise (DATA) auto-sharding across workers."""
        if ds is None or not self.distributed:
            return ds
        import tensorflow as tf

        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(opts)

    # -- after training

    def unwrap(self, model, build: Callable[[], Any]):
        """A plain copy of a model trained under the strategy (built by
        ``build()`` outside it), compiled like the original, so evaluating and
        saving it runs no collectives and the saved file carries no strategy."""
        if not self.distributed:
            return model
        plain = build()
        plain.set_weights(model.get_weights())
        plain.compile(optimizer="adam", loss=model.loss, metrics=["accuracy"])
        return plain

    def consumed(self, n: int, epochs_run: int) -> np.ndarray:
        """Training-example indices this worker consumed, in order: the first
        ``epochs_run * steps_per_epoch`` per-worker batches of the index stream
        its pipeline was built from."""
        if not self.distributed:
            raise ValueError("consumed() is for distributed runs")
        import tensorflow as tf

        pipelines, pid = self._pipeline_ids
        ctx = tf.distribute.InputContext(pipelines, pid, self.num_replicas_in_sync)
        per_worker = ctx.get_per_replica_batch_size(self.global_batch_size) * (self.num_replicas_in_sync // pipelines)
        take = epochs_run * self.steps_per_epoch * per_worker
        ids = np.fromiter(self._index_stream(ctx).take(take).as_numpy_iterator(), dtype=np.int64, count=take)
        return ids

    def shard_record(self, ds, epochs_run: int, model, test_accuracy: float) -> dict:
        """This worker's shard record (schema edgekit.shard/1)."""
        n = len(ds.y_train)
        ids = self.consumed(n, epochs_run)
        mask = np.zeros(n, bool)
        mask[ids] = True
        hist = np.bincount(ds.y_train[ids], minlength=ds.num_classes)
        return {
            "schema": SHARD_SCHEMA,
            "task": {"type": self.task.task_type, "index": self.task.task_index, "worker_id": self.task.worker_id,
                     "input_pipeline": {"id": self._pipeline_ids[1], "of": self._pipeline_ids[0]}},
            "writer": self.is_writer,
            "train_examples": n,
            "examples_consumed": int(len(ids)), "unique_examples": int(mask.sum()),
            "indices_sha256": hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest(),
            "consumed_bitmap": base64.b64encode(np.packbits(mask, bitorder="little").tobytes()).decode("ascii"),
            "label_histogram": hist.tolist(),
            "steps": epochs_run * self.steps_per_epoch,
            "weights_sha256": weights_sha256(model),
            "test_accuracy": test_accuracy,
            "distribution": self.describe(),
        }

    def finish(self, config: TrainConfig, ds, epochs_run: int, model, test_accuracy: float):
        """After training: for a distributed run, build this worker's shard
        record and write it to ``<run>/distributed/<task_type>-<index>.json``;
        returns (record, path), or (None, None) for the default strategy."""
        if not self.distributed:
            return None, None
        record = self.shard_record(ds, epochs_run, model, test_accuracy)
        run = RunDir(config.run_dir)
        artifacts.check_writable_dir(run.distributed_dir)
        path = run.shard_record(self.task.task_type, self.task.task_index)
        artifacts.write_json(path, record)
        if not self.is_writer:
            self.barrier()
        return record, path

    def barrier(self) -> None:
        """All workers meet here (one tiny all-reduce): the chief calls it after
        writing the model, the others before they exit, so no process leaves
        while the chief still needs the cluster (the coordination service
        reports a worker that vanished as a crash). A no-op on one process."""
        if self.strategy_name != Strategy.multiworker.value:
            return
        import tensorflow as tf

        ones = self.strategy.run(lambda: tf.constant(1.0))
        total = float(self.strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None))
        if total != self.num_replicas_in_sync:
            raise RuntimeError(f"barrier: {total} of {self.num_replicas_in_sync} replicas answered")


def weights_sha256(model) -> str:
    """sha256 over every weight array (shape, dtype and bytes), in layer order."""
    h = hashlib.sha256()
    for w in model.get_weights():
        w = np.ascontiguousarray(w)
        h.update(f"{w.dtype.str}{w.shape}".encode())
        h.update(w.tobytes())
    return h.hexdigest()


def decode_bitmap(record: dict) -> np.ndarray:
    """The boolean mask over the training split from a shard record."""
    raw = np.frombuffer(base64.b64decode(record["consumed_bitmap"]), np.uint8)
    return np.unpackbits(raw, bitorder="little")[: record["train_examples"]].astype(bool)


def plan(config: TrainConfig, check_output: Callable[[TrainConfig], None] | None = None,
         environ: dict | None = None) -> DistributionPlan:
    """Validate the distribution settings of ``config`` (unresolved: an
    explicit learning rate is not scaled), call ``check_output(config)`` if
    this process writes the run, then create the strategy."""
    environ = os.environ if environ is None else environ
    name = config.strategy.value
    task = parse_tf_config(environ.get("TF_CONFIG")) if name == Strategy.multiworker.value else LOCAL
    d = config.defaults
    global_batch = config.batch_size or d.batch_size
    if name == Strategy.multiworker.value:
        split_batch(global_batch, task.num_workers)  # refuse before connecting to the other hosts
    if config.learning_rate is not None:
        lr, rule = float(config.learning_rate), "explicit: --learning-rate used as given for the global batch"
    elif name == Strategy.default.value:
        lr, rule = d.learning_rate, "none: model default"
    else:
        lr = scale_learning_rate(d.learning_rate, d.batch_size, global_batch)
        rule = "sqrt: model default * sqrt(global_batch / default_batch), capped at 0.5"
    p = DistributionPlan(strategy_name=name, task=task, global_batch_size=global_batch, learning_rate=lr,
                         lr_rule=rule, base_learning_rate=d.learning_rate, base_batch_size=d.batch_size)
    if check_output is not None and p.is_writer:
        check_output(config)
    if name == Strategy.default.value:
        return p
    tf = quiet.import_tensorflow()  # TensorFlow's start-up lines held back

    if name == Strategy.mirrored.value:
        p.strategy = tf.distribute.MirroredStrategy()
    else:
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        p.strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    p.num_replicas_in_sync = int(p.strategy.num_replicas_in_sync)
    split_batch(global_batch, p.num_replicas_in_sync)
    return p
