"""A Keras model's outputs, batch by batch, without a tf.data pipeline.

In: a loaded Keras model and float32 inputs [N, H, W, C]. Out: float32
outputs [N, ...], the same numbers ``model.predict`` gives (the same traced
predict function runs each batch).

Why not ``model.predict``: it wraps the array in a tf.data pipeline whose
parallel map makes TensorFlow log an ``E0000 … NodeDef mentions attribute
use_unbounded_threadpool`` line on fd 2, from a background thread, sometimes
after any capture around the call has ended (seen in ``edgekit run``'s check).
``predict_on_batch`` feeds one tensor through the same function with no map,
and on these small models it is also faster (0.34 s against 0.59 s for 300
MNIST images on 2 cores).
"""
from __future__ import annotations

import numpy as np

BATCH = 256


def predict(model, x: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
    """``model``'s outputs for ``x`` in batches of ``batch_size``, as one float32 array."""
    if len(x) == 0:
        return np.zeros((0, *model.output_shape[1:]), np.float32)
    return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch_size]), np.float32)
                           for i in range(0, len(x), batch_size)])


def evaluate(model, x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int = BATCH) -> dict:
    """Accuracy, per-class accuracy and confusion matrix (rows: true class) of
    ``model`` on float inputs ``x``, with its probabilities and top-1 predictions:
    what train and import record in the model manifest."""
    from sklearn.metrics import confusion_matrix

    from edgekit import quiet

    from edgekit.train import tfdata

    # model.predict, not predict(): a model fresh from fit() runs steps_per_execution
    # batches per call, which predict_on_batch's one-batch iterator cannot feed
    tf = quiet.import_tensorflow()
    probs = np.asarray(quiet.call(model.predict, tfdata.arrays(tf, x, batch_size=batch_size), verbose=0), np.float32)
    pred = probs.argmax(1)
    cm = confusion_matrix(np.asarray(y), pred, labels=range(num_classes)).astype(np.int64)
    support = cm.sum(1)
    return {"accuracy": float((pred == y).mean()) if len(y) else float("nan"),
            "per_class_accuracy": [float(cm[i, i] / support[i]) if support[i] else None for i in range(num_classes)],
            "confusion_matrix": cm.tolist(), "probabilities": probs, "predictions": pred}
