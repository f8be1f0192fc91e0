"""Pictures of a trained model: a model, its dataset and test predictions in,
PNGs under ``model/plots/`` and an embedding-projector export under
``model/tensorboard/`` out.

- ``grid.png``: 3x3 test images with true and predicted labels;
- ``confusion_matrix.png``: test-set confusion matrix (rows: true class);
- ``misclassified.png``: up to 16 misclassified test images, true -> predicted;
- ``filters.png``: the first conv layer's kernels, or for ``linear`` the
  weights of each class as an image;
- ``curves.png``: loss and accuracy per epoch, training and validation;
- projector: ``tensors.tsv`` (the ``features`` layer's activations for up to
  ``PROJECTOR_SAMPLES`` test images), ``metadata.tsv`` (true and predicted
  class) and ``sprite.png`` in ``tensorboard/projector/``, and
  ``tensorboard/projector_config.pbtxt``, which TensorBoard's projector
  opens (``tensorboard --logdir <run>/model/tensorboard``, Projector tab).

matplotlib runs on the Agg backend, set per figure, not globally.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgekit import figures
from edgekit.train.models import FEATURES_LAYER

PROJECTOR_SAMPLES = 2000
DPI = 100


def _figure(figsize):
    return figures.figure(*figsize, dpi=DPI)


def _save(fig, path: Path) -> None:
    Path(path).write_bytes(figures.png(fig, crop=False, tight_layout=True))


def image_grid(path: Path, images, titles, cols: int, colors=None) -> None:
    rows = max(1, math.ceil(len(images) / cols))
    fig = _figure((1.7 * cols, 1.9 * rows))
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(titles[i], fontsize=8, color=(colors[i] if colors else "black"))
    _save(fig, path)


def confusion_matrix(path: Path, cm, class_names) -> None:
    cm = np.asarray(cm)
    n = len(class_names)
    fig = _figure((max(5, 0.55 * n + 2), max(4.5, 0.55 * n + 1.5)))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.log1p(cm), cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({int(cm.sum())} test images, log colour scale)")
    if n <= 20:
        threshold = np.log1p(cm).max() / 2
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if np.log1p(cm[i, j]) > threshold else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def filters(path: Path, model, image_shape) -> None:
    """First conv layer's kernels (one tile per output channel), or for a
    model without convolutions the Dense weights feeding each class."""
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    if convs:
        kernel = convs[0].get_weights()[0]  # [kh, kw, in, out]
        tiles = [kernel[:, :, 0, k] for k in range(kernel.shape[-1])]
        titles = [f"{convs[0].name}[{k}]" for k in range(len(tiles))]
    else:
        kernel = model.get_layer("logits").get_weights()[0]  # [H*W, classes]
        h, w = image_shape[:2]
        tiles = [kernel[:, k].reshape(h, w) for k in range(kernel.shape[1])]
        titles = [f"class {k}" for k in range(len(tiles))]
    cols = min(8, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    fig = _figure((1.5 * cols, 1.6 * rows))
    for i, t in enumerate(tiles):
        ax = fig.add_subplot(rows, cols, i + 1)
        lim = float(np.abs(t).max()) or 1.0
        ax.imshow(t, cmap="seismic", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(titles[i], fontsize=7)
        ax.axis("off")
    _save(fig, path)


def curves(path: Path, history: dict) -> None:
    fig = _figure((9, 3.6))
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def projector(logdir: Path, features: np.ndarray, images: np.ndarray, labels, predicted, class_names) -> dict:
    """The embedding-projector export: data files in ``logdir/projector/``,
    ``projector_config.pbtxt`` in ``logdir`` itself, where TensorBoard's
    projector always looks (it also scans run directories, but a directory
    is a run only if it holds event files). Returns paths relative to logdir."""
    from PIL import Image

    out_dir = logdir / "projector"
    out_dir.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape[:3]   # grayscale [N,H,W] or colour [N,H,W,3]
    with open(out_dir / "tensors.tsv", "w") as f:
        for row in features:
            f.write("\t".join(f"{v:.5g}" for v in row) + "\n")
    clean = [c.replace("\t", " ").replace("\n", " ") for c in class_names]
    with open(out_dir / "metadata.tsv", "w") as f:
        f.write("label\tpredicted\n")
        for t, p in zip(labels, predicted):
            f.write(f"{clean[t]}\t{clean[p]}\n")
    side = math.ceil(math.sqrt(n))
    sprite = np.zeros((side * h, side * w, *images.shape[3:]), np.uint8)
    for i in range(n):
        r, c = divmod(i, side)
        sprite[r * h:(r + 1) * h, c * w:(c + 1) * w] = images[i]
    Image.fromarray(sprite, mode="L" if sprite.ndim == 2 else "RGB").save(out_dir / "sprite.png")
    (logdir / "projector_config.pbtxt").write_text(
        "embeddings {\n"
        f'  tensor_name: "{FEATURES_LAYER}"\n'
        '  tensor_path: "projector/tensors.tsv"\n'
        '  metadata_path: "projector/metadata.tsv"\n'
        "  sprite {\n"
        '    image_path: "projector/sprite.png"\n'
        f"    single_image_dim: {w}\n"
        f"    single_image_dim: {h}\n"
        "  }\n"
        "}\n")
    return {"config": "projector_config.pbtxt", "tensors": "projector/tensors.tsv",
            "metadata": "projector/metadata.tsv", "sprite": "projector/sprite.png"}


def write_all(out: Path, model, ds, test: dict, history: dict) -> dict:
    """Every plot and the projector export into ``out`` (a model dir being
    written); returns the manifest's ``plots`` section (name -> PNG path) and
    its ``projector`` section (the export's files), paths relative to ``out``."""
    import tf_keras as keras

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    names = ds.class_names
    pred = test["predictions"]
    rec = {}

    idx = np.arange(min(9, len(ds.y_test)))
    image_grid(plots / "grid.png", ds.x_test[idx], [f"true {names[ds.y_test[i]]}\npred {names[pred[i]]}" for i in idx],
               cols=3, colors=["black" if pred[i] == ds.y_test[i] else "red" for i in idx])
    rec["grid"] = "plots/grid.png"

    confusion_matrix(plots / "confusion_matrix.png", test["confusion_matrix"], names)
    rec["confusion_matrix"] = "plots/confusion_matrix.png"

    wrong = np.flatnonzero(pred != ds.y_test)[:16]
    if len(wrong):
        image_grid(plots / "misclassified.png", ds.x_test[wrong],
                   [f"#{i}: {names[ds.y_test[i]]} -> {names[pred[i]]}" for i in wrong], cols=4)
        rec["misclassified"] = "plots/misclassified.png"

    filters(plots / "filters.png", model, ds.image_shape)
    rec["filters"] = "plots/filters.png"

    curves(plots / "curves.png", history)
    rec["curves"] = "plots/curves.png"

    k = min(PROJECTOR_SAMPLES, len(ds.y_test))
    feats = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)
    from edgekit.train.data import to_float
    from edgekit.train.predict import predict

    f = predict(feats, to_float(ds.x_test[:k]), batch_size=500).reshape(k, -1)
    proj = projector(out / "tensorboard", f, ds.x_test[:k], ds.y_test[:k], pred[:k], names)
    return rec, {key: f"tensorboard/{v}" for key, v in proj.items()}
