"""tfmot fine-tuning before conversion: a trained tf_keras model, a recipe's
``finetune`` section and training data in; a model ready for the TFLite
converter and a record of what was done (for variant.json) out.

- ``qat``: ``quantize_model`` (fake-quant nodes), fine-tune; the converter
  reads the learned ranges from the QAT model.
- ``prune``: ``prune_low_magnitude`` with a PolynomialDecay (0 -> target) or
  ConstantSparsity schedule, ``UpdatePruningStep``, fine-tune,
  ``strip_pruning``; the record holds the sparsity actually reached.
- ``cluster``: ``cluster_weights`` (N clusters, e.g. k-means++ init),
  fine-tune, ``strip_clustering``; the record holds the largest number of
  distinct values left in any clustered kernel.

Settings not given by the recipe are the ones the model was trained with (the
model manifest's ``config``): its batch size, and its learning rate times the
recipe's ``learning_rate_factor`` (fine-tuning a trained model wants smaller steps). The recipe's
``train_limit`` (or the stage's ``finetune_limit``) caps the number of
training images, drawn with a seeded RNG, so the whole matrix stays fast.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

# Pruning: reach the target by this fraction of the fine-tuning steps and hold it
# for the rest, so the last updates train the surviving weights only.
PRUNE_END_FRACTION = 0.7
PRUNE_UPDATES = 10     # how many times the mask is recomputed on the way to the target
# Validation images evaluated after fine-tuning (the record's val_accuracy): as many
# as were trained on, within these bounds; enough to see a broken fine-tune.
VAL_MIN, VAL_MAX = 500, 2000
# QAT: images of the fine-tuning set whose float activations seed the ranges
# (the post-training int8 recipes calibrate on 500 as well).
CALIBRATION_IMAGES = 500


class NotApplicable(Exception):
    """tfmot cannot wrap this model (a layer it does not support, e.g. in an
    imported model): the recipe is skipped with this reason, not failed."""


_TFMOT_ERRORS = (ValueError, RuntimeError, TypeError, KeyError, NotImplementedError)


def _first(e: BaseException) -> str:
    return str(e).strip().splitlines()[0][:240] if str(e).strip() else type(e).__name__


def _wrap(method: str, fn, model, record: dict, **kwargs):
    """tfmot's wrapper of ``model``. When tfmot refuses the whole model (a layer
    it has no rule for, e.g. an imported model's Rescaling or hard-swish
    Multiply), the layers it does handle are wrapped one by one, as tfmot's
    guide does for such models, and the others stay float (``record["partial"]``
    names them); a model even that fails for is NotApplicable."""
    try:
        return fn(model, **kwargs)
    except _TFMOT_ERRORS as e:
        whole = _first(e)
    try:
        wrapped, left = _wrap_layers(method, model, **kwargs)
    except _TFMOT_ERRORS as e:
        raise NotApplicable(f"tfmot {method} does not support this model ({whole}; layer by layer: "
                            f"{_first(e)})") from None
    if not [n for n in wrapped.layers if n.name not in left and hasattr(n, "layer")]:
        raise NotApplicable(f"tfmot {method} does not support this model ({whole}) and no layer of it can be "
                            "wrapped alone")
    record["partial"] = {"whole_model_refused": whole, "left_float": left}
    return wrapped


def _wrap_layers(method: str, model, **kwargs):
    """(the model with every layer tfmot supports wrapped, names of those left alone)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    L = keras.layers
    left: list[str] = []
    if method == "qat":
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import \
            default_8bit_quantize_registry as registry

        reg = registry.Default8BitQuantizeRegistry()
        q = tfmot.quantization.keras

        def annotate(layer):
            # batch norm has no rule of its own: quantize_apply folds it into the conv before it
            if isinstance(layer, L.BatchNormalization) or reg.supports(layer):
                return q.quantize_annotate_layer(layer)
            left.append(layer.name)
            return layer

        annotated = keras.models.clone_model(model, clone_function=annotate)
        with q.quantize_scope():
            return q.quantize_apply(annotated), left
    kernels = (L.Conv2D, L.DepthwiseConv2D, L.Dense)
    if method == "prune":
        wrap = lambda layer: tfmot.sparsity.keras.prune_low_magnitude(layer, **kwargs)  # noqa: E731
    else:
        wrap = lambda layer: tfmot.clustering.keras.cluster_weights(layer, **kwargs)  # noqa: E731

    def one(layer):
        if isinstance(layer, kernels):
            return wrap(layer)
        if layer.weights and not isinstance(layer, L.BatchNormalization):   # tfmot never prunes/clusters BN
            left.append(layer.name)
        return layer

    return keras.models.clone_model(model, clone_function=one), left


@dataclass(frozen=True)
class TrainingData:
    """uint8 ``[N,H,W]`` images and int labels (the model's own split); only the
    images a fine-tune uses are turned into float32 model input."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def _clone(model):
    import tf_keras as keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _kernels(model) -> dict[str, np.ndarray]:
    """The kernels tfmot prunes and clusters (Conv2D, DepthwiseConv2D, Dense)."""
    import tf_keras as keras

    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            out[layer.name] = layer.depthwise_kernel.numpy()
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            out[layer.name] = layer.kernel.numpy()
    return out


def _seed_activation_ranges(wrapped, model, x: np.ndarray) -> dict[str, list[float]]:
    """Start the QAT model's activation ranges where the float model's outputs are.

    tfmot starts every activation range at [-6, 6] and moves it with an EMA of
    decay 0.999, so a one-epoch fine-tune (~100 steps) ends with ranges still
    near their start: a trained cnn's logits span far more than +-6, the int8
    file clipped them and agreement fell as the learning rate was lowered. A
    calibration pass of the float model (as the post-training int8 recipes
    make) gives the EMA the right start. Layers tfmot fused into new ones keep
    its default."""
    import tf_keras as keras

    targets: dict[str, list] = {}
    for layer in wrapped.layers:
        inner = getattr(layer, "layer", None)
        if inner is None:
            continue
        for v in layer.weights:
            short = v.name.split("/")[-1].split(":")[0]
            if short in ("post_activation_min", "post_activation_max", "output_min", "output_max"):
                targets.setdefault(inner.name, []).append((short, v))
    known = [n for n in targets if n in {l.name for l in model.layers}]
    if not known:
        return {}
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in known])
    # called, not predict(): predict traces a function for this one-off model
    # (most of this pass's time on a phone net); the ranges are the same
    batches = [probe(x[i:i + 256], training=False) for i in range(0, len(x), 256)]
    batches = [b if isinstance(b, list) else [b] for b in batches]
    outs = [np.concatenate([np.asarray(b[j]) for b in batches]) for j in range(len(known))]
    ranges = {}
    for name, out in zip(known, outs):
        lo, hi = min(float(out.min()), 0.0), max(float(out.max()), 0.0)  # a range must hold 0
        for short, v in targets[name]:
            v.assign(lo if short.endswith("min") else hi)
        ranges[name] = [lo, hi]
    return ranges


def finetune(model, spec: dict, data: TrainingData, *, learning_rate: float, batch_size: int,
             seed: int, limit: int | None = None, to_input=None):
    """Returns ``(model_for_converter, record)``. ``spec`` is the recipe's ``finetune``
    section; ``limit`` (if given) overrides its ``train_limit``; ``to_input``
    maps uint8 pixels to model inputs (the model's ``io.pixels.apply``;
    default pixel / 255)."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from edgekit.train import tfdata
    from edgekit.train.data import to_float

    to_float = to_input or to_float

    method = spec["method"]
    lr = spec["learning_rate"] if spec["learning_rate"] is not None else learning_rate * spec["learning_rate_factor"]
    bs = spec["batch_size"] if spec["batch_size"] is not None else batch_size
    cap = limit if limit is not None else spec["train_limit"]
    n_all = len(data.x_train)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n_all, size=min(cap, n_all), replace=False)) if cap is not None and cap < n_all \
        else np.arange(n_all)
    x, y = to_float(data.x_train[idx]), data.y_train[idx]
    steps = math.ceil(len(x) / bs) * spec["epochs"]

    keras.utils.set_random_seed(seed)
    # the same fine-tune in any process (convert runs them in a second one): as training does
    tf.config.experimental.enable_op_determinism()
    base = _clone(model)
    callbacks = []
    record: dict = {"method": method, "epochs": spec["epochs"], "train_images": int(len(x)),
                    "train_images_available": int(n_all), "steps": int(steps), "learning_rate": float(lr),
                    "batch_size": int(bs), "seed": int(seed)}
    if method == "qat":
        wrapped = _wrap(method, tfmot.quantization.keras.quantize_model, base, record)
        record["activation_ranges_seeded"] = _seed_activation_ranges(wrapped, base, x[:CALIBRATION_IMAGES])
    elif method == "prune":
        sp = tfmot.sparsity.keras
        end = max(1, int(steps * PRUNE_END_FRACTION))
        freq = max(1, end // PRUNE_UPDATES)
        end = max(freq, end - end % freq)
        if spec["schedule"] == "polynomial":
            schedule = sp.PolynomialDecay(initial_sparsity=0.0, final_sparsity=spec["target_sparsity"],
                                          begin_step=0, end_step=end, frequency=freq)
        else:
            schedule = sp.ConstantSparsity(spec["target_sparsity"], begin_step=0, frequency=freq)
        wrapped = _wrap(method, sp.prune_low_magnitude, base, record, pruning_schedule=schedule)
        callbacks.append(sp.UpdatePruningStep())
        record.update(target_sparsity=spec["target_sparsity"], schedule=spec["schedule"],
                      schedule_end_step=int(end), schedule_frequency=int(freq))
    else:
        cl = tfmot.clustering.keras
        init = getattr(cl.CentroidInitialization, spec["init"].upper())
        wrapped = _wrap(method, cl.cluster_weights, base, record, number_of_clusters=spec["clusters"],
                        cluster_centroids_init=init)
        record.update(clusters=spec["clusters"], init=spec["init"])

    wrapped.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    hist = wrapped.fit(tfdata.arrays(tf, x, y, batch_size=bs, shuffle_seed=seed), epochs=spec["epochs"], verbose=0,
                       callbacks=callbacks)
    record["seconds"] = round(time.perf_counter() - t0, 3)
    record["train_loss"] = float(hist.history["loss"][-1])
    nv = min(len(data.x_val), max(VAL_MIN, min(VAL_MAX, len(x))))
    if nv:
        _, acc = wrapped.evaluate(tfdata.arrays(tf, to_float(data.x_val[:nv]), data.y_val[:nv], batch_size=256),
                                  verbose=0)
        record.update(val_accuracy=float(acc), val_images=int(nv))

    if method == "qat":
        return wrapped, record
    if method == "prune":
        final = tfmot.sparsity.keras.strip_pruning(wrapped)
        kernels = _kernels(final)
        zeros = sum(int(np.sum(k == 0)) for k in kernels.values())
        total = sum(k.size for k in kernels.values())
        record["sparsity_reached"] = zeros / total if total else 0.0
        record["layer_sparsity"] = {n: float(np.mean(k == 0)) for n, k in kernels.items()}
        return final, record
    final = tfmot.clustering.keras.strip_clustering(wrapped)
    record["layer_unique_values"] = {n: int(np.unique(k).size) for n, k in _kernels(final).items()}
    return final, record
