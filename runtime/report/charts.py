"""The report's PNG charts (size vs accuracy, agreement, latency, confusion
matrix) and the enlarged test images of the gallery, each as PNG bytes drawn
through ``edgekit.figures``."""
from __future__ import annotations

import io

import numpy as np

from edgekit import figures

COLORS = {"ios": "#1f77b4", "android": "#2ca02c"}


def _mpl_text(s: str, limit: int = 24) -> str:
    """A label safe for matplotlib: no mathtext ($), bounded length."""
    s = str(s).replace("$", r"\$")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def size_accuracy(rows: list[dict], front: list[str], original_acc: float | None) -> bytes:
    fig = figures.figure(8, 5)
    ax = fig.add_subplot()
    for r in rows:
        if not r["size_bytes"] or r["accuracy"] is None:
            continue
        c = COLORS.get(r["platform"], "#777777")
        ax.scatter(r["size_bytes"] / 1024, 100 * r["accuracy"], s=60, color=c if r["passed"] else "white",
                   edgecolors=c, marker="o" if r["passed"] else "X", linewidths=1.5, zorder=3)
        ax.annotate(_mpl_text(r["id"]), (r["size_bytes"] / 1024, 100 * r["accuracy"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    pts = sorted((r["size_bytes"] / 1024, 100 * r["accuracy"]) for r in rows if r["id"] in front)
    if pts:
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="#d62728", lw=1.2, zorder=2,
                label="Pareto front (smaller and more accurate)")
    if original_acc is not None:
        ax.axhline(100 * original_acc, color="#555555", ls="--", lw=1, label="original model")
    ax.scatter([], [], color=COLORS["ios"], label="Core ML (iOS)")
    ax.scatter([], [], color=COLORS["android"], label="TFLite (Android)")
    ax.scatter([], [], color="white", edgecolors="k", marker="X", label="failed thresholds")
    ax.set_xscale("log")
    ax.set_xlabel("file size (KB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Size vs accuracy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return figures.png(fig)


def agreement(rows: list[dict]) -> bytes:
    rs = [r for r in rows if r["agreement"] is not None]
    fig = figures.figure(8, 0.35 * max(len(rs), 2) + 1.2)
    ax = fig.add_subplot()
    y = np.arange(len(rs))
    ax.barh(y, [100 * r["agreement"] for r in rs],
            color=[COLORS.get(r["platform"], "#777") if r["passed"] else "#d62728" for r in rs])
    ax.set_yticks(y, [_mpl_text(r["id"], 30) for r in rs], fontsize=8)
    lo = min([100 * r["agreement"] for r in rs] + [99.0])
    ax.set_xlim(max(0.0, lo - 0.5), 100.05)
    for yi, r in zip(y, rs):
        ax.text(100 * r["agreement"], yi, f" {100 * r['agreement']:.2f}%", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("top-1 agreement with the original (%); red = failed thresholds")
    ax.set_title("Agreement with the original model")
    ax.grid(True, axis="x", alpha=0.3)
    return figures.png(fig)


def latency(rows: list[dict], original_ms: float | None) -> bytes:
    rs = [r for r in rows if r["latency_p50_ms"] is not None]
    fig = figures.figure(8, 0.35 * max(len(rs), 2) + 1.2)
    ax = fig.add_subplot()
    y = np.arange(len(rs))
    p50 = np.array([r["latency_p50_ms"] for r in rs])
    p95 = np.array([r["latency_p95_ms"] if r["latency_p95_ms"] is not None else r["latency_p50_ms"] for r in rs])
    ax.barh(y, p50, xerr=[np.zeros_like(p50), np.maximum(p95 - p50, 0)], capsize=3,
            color=[COLORS.get(r["platform"], "#777") for r in rs])
    ax.set_yticks(y, [_mpl_text(f"{r['id']} [{r['backend']}]", 40) for r in rs], fontsize=8)
    if original_ms is not None:
        ax.axvline(original_ms, color="#555555", ls="--", lw=1, label=f"original (TensorFlow) {original_ms:.3f} ms")
        ax.legend(fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("batch-1 latency, ms (bar p50, whisker p95) on this machine's CPU")
    ax.set_title("Latency" + (" (mil-reference is a numpy interpreter: not a device speed)"
                              if any(r["backend"] == "mil-reference" for r in rs) else ""))
    ax.grid(True, axis="x", alpha=0.3)
    return figures.png(fig)


def confusion(labels: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """k x k counts, rows: true class, columns: predicted class."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(np.asarray(labels), np.asarray(pred), labels=range(k)).astype(np.int64)


def confusion_chart(cm: np.ndarray, class_names: list[str], title: str) -> bytes:
    k = cm.shape[0]
    fig = figures.figure(1.0 + 0.5 * k, 0.8 + 0.5 * k)
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues")
    names = [_mpl_text(c, 12) for c in class_names]
    ax.set_xticks(range(k), names, rotation=90 if k > 10 or max(map(len, names)) > 3 else 0, fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    thr = cm.max() / 2 if cm.size else 0
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > thr else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(_mpl_text(title, 60))
    return figures.png(fig)


def sample_png(image: np.ndarray, scale: int = 3) -> bytes:
    """One test image (H x W, or H x W x 1 or 3, uint8) enlarged ``scale`` times, nearest neighbour."""
    from PIL import Image

    x = np.asarray(image, np.uint8)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    img = Image.fromarray(x, mode="L" if x.ndim == 2 else "RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
