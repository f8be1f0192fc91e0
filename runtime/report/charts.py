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


LABEL_GID = "label:"        # gid prefix of the point labels (the tests measure their boxes)
_LABEL_RADII = (5, 12, 20, 30, 42, 56)   # points from the marker, nearest first
_LABEL_DIRECTIONS = ((1, 0), (1, 1), (1, -1), (0, 1), (0, -1), (-1, 0), (-1, 1), (-1, -1))


def _overlaps(box, others, pad: float) -> bool:
    return any(box.x0 - pad < o.x1 and o.x0 - pad < box.x1 and box.y0 - pad < o.y1 and o.y0 - pad < box.y1
               for o in others)


def place_labels(ax, points: list[tuple[str, float, float]], fontsize: float = 7.0, _retries: int = 4) -> list:
    """Label every point ``(text, x, y)`` (data coordinates) so that no two
    labels overlap each other, a marker or the legend.

    Greedy, in order of x: each label tries offsets around its point, nearest
    first (a thin leader line when it is not beside its marker); a label with
    no free place nearby goes into a column right of the axes, in order of y,
    with a leader line (the axes narrow when that column would leave the
    figure). Returns the label artists (gid ``label:<text>``)."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    marker = 5.0 * px_per_pt                       # a marker's half-size (s=60 is ~7.7 pt across), plus air
    frame = ax.get_window_extent(renderer)
    obstacles = []
    for _, x, y in points:
        cx, cy = ax.transData.transform((x, y))
        obstacles.append(Bbox.from_extents(cx - marker, cy - marker, cx + marker, cy + marker))
    legend = ax.get_legend()
    if legend is not None:
        obstacles.append(legend.get_window_extent(renderer))
    placed, artists, column = [], [], []
    for text, x, y in sorted(points, key=lambda p: (p[1], p[2])):
        ann = ax.annotate(text, (x, y), xytext=(0, 0), textcoords="offset points", fontsize=fontsize, gid=LABEL_GID + text,
                          annotation_clip=False)
        spot = None
        for radius in _LABEL_RADII:
            for dx, dy in _LABEL_DIRECTIONS:
                norm = (dx * dx + dy * dy) ** 0.5
                ann.xyann = (radius * dx / norm, radius * dy / norm)
                ann.set_ha("left" if dx > 0 else "right" if dx < 0 else "center")
                ann.set_va("bottom" if dy > 0 else "top" if dy < 0 else "center")
                box = ann.get_window_extent(renderer)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                if inside and not _overlaps(box, placed + obstacles, 1.0):
                    spot = (radius, box)
                    break
            if spot:
                break
        if spot is None:
            ann.remove()
            column.append((text, x, y))
            continue
        if spot[0] > _LABEL_RADII[0]:   # not right beside its marker: redraw it with a leader line
            offset, ha, va = ann.xyann, ann.get_ha(), ann.get_va()
            ann.remove()
            ann = ax.annotate(text, (x, y), xytext=offset, textcoords="offset points", fontsize=fontsize,
                              gid=LABEL_GID + text, ha=ha, va=va, annotation_clip=False,
                              arrowprops={"arrowstyle": "-", "color": "#888888", "lw": 0.6, "shrinkA": 0, "shrinkB": 3})
        placed.append(spot[1])
        artists.append(ann)
    if column:
        # beside the axes, top to bottom in the order of the points' heights
        step_px = fontsize * 1.5 * px_per_pt
        top = frame.y1
        for i, (text, x, y) in enumerate(sorted(column, key=lambda p: -p[2])):
            # axes fraction, not figure fraction: savefig's tight crop resizes the figure, not the axes
            fx, fy = ax.transAxes.inverted().transform((frame.x1 + 12 * px_per_pt, top - i * step_px))
            ann = ax.annotate(text, (x, y), xytext=(fx, fy), textcoords="axes fraction", fontsize=fontsize,
                              gid=LABEL_GID + text, ha="left", va="top", annotation_clip=False,
                              arrowprops={"arrowstyle": "-", "color": "#888888", "lw": 0.6, "shrinkA": 0, "shrinkB": 3})
            artists.append(ann)
    from matplotlib.text import Text

    for a in artists:
        a.update_positions(renderer)          # an annotation's text box is known once placed
    right = max((Text.get_window_extent(a, renderer).x1 for a in artists), default=0.0)
    if _retries and right > fig.bbox.x1 - 2:
        # the column runs off the figure: narrow the axes by the overflow and place again
        for a in artists:
            a.remove()
        pos = ax.get_position()
        shrink = (right - fig.bbox.x1 + 6) / fig.bbox.width
        ax.set_position([pos.x0, pos.y0, max(pos.width - shrink, 0.3), pos.height])
        fig.canvas.draw()
        return place_labels(ax, points, fontsize, _retries - 1)
    return artists


def size_accuracy_figure(rows: list[dict], front: list[str], original_acc: float | None):
    """The size-vs-accuracy figure (matplotlib), every point labelled with its id (``place_labels``)."""
    fig = figures.figure(8, 5)
    ax = fig.add_subplot()
    points = []
    for r in rows:
        if not r["size_bytes"] or r["accuracy"] is None:
            continue
        c = COLORS.get(r["platform"], "#777777")
        ax.scatter(r["size_bytes"] / 1024, 100 * r["accuracy"], s=60, color=c if r["passed"] else "white",
                   edgecolors=c, marker="o" if r["passed"] else "X", linewidths=1.5, zorder=3)
        points.append((_mpl_text(r["id"]), r["size_bytes"] / 1024, 100 * r["accuracy"]))
    pts = sorted((r["size_bytes"] / 1024, 100 * r["accuracy"]) for r in rows if r["id"] in front)
    if pts:
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="#d62728", lw=1.2, zorder=2,
                label="Pareto front (smaller and more accurate)")
    if original_acc is not None:
        ax.axhline(100 * original_acc, color="#555555", ls="--", lw=1, label="original model")
    ax.scatter([], [], color=COLORS["ios"], label="Core ML (iOS)")
    ax.scatter([], [], color=COLORS["android"], label="TFLite (Android)")
    ax.scatter([], [], color="white", edgecolors="k", marker="X", label="did not pass its check")
    ax.set_xscale("log")
    ax.set_xlabel("file size (KB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Size vs accuracy")
    ax.grid(True, which="both", alpha=0.3)
    if points:
        # room around the points for their labels, then freeze the limits
        xs = [p[1] for p in points]
        ys = [p[2] for p in points]
        ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
        span = max(max(ys) - min(ys), 0.2)
        ax.set_ylim(min(ys) - 0.35 * span, max(ys) + 0.25 * span)
    ax.legend(fontsize=7, loc="lower right")
    fig.canvas.draw()
    place_labels(ax, points)
    return fig


def size_accuracy(rows: list[dict], front: list[str], original_acc: float | None) -> bytes:
    return figures.png(size_accuracy_figure(rows, front, original_acc))


def agreement(rows: list[dict], target: float | None = None) -> bytes:
    return figures.png(agreement_figure(rows, target))


def agreement_figure(rows: list[dict], target: float | None = None):
    """Top-1 agreement per variant with its 95% interval as an error bar, and the target line."""
    rs = [r for r in rows if r["agreement"] is not None]
    fig = figures.figure(8, 0.35 * max(len(rs), 2) + 1.2)
    ax = fig.add_subplot()
    y = np.arange(len(rs))
    vals = np.array([100 * r["agreement"] for r in rs])
    cis = [r.get("agreement_ci") for r in rs]
    lo = np.array([v - 100 * ci[0] if ci else 0.0 for v, ci in zip(vals, cis)])
    hi = np.array([100 * ci[1] - v if ci else 0.0 for v, ci in zip(vals, cis)])
    ax.barh(y, vals, xerr=[np.maximum(lo, 0), np.maximum(hi, 0)], capsize=3, error_kw={"lw": 1, "ecolor": "#333333"},
            color=[COLORS.get(r["platform"], "#777") if r["passed"] else "#d62728" for r in rs])
    ax.set_yticks(y, [_mpl_text(r["id"], 30) for r in rs], fontsize=8)
    low = min([100 * ci[0] for ci in cis if ci] + list(vals) + [99.0])
    ax.set_xlim(max(0.0, low - 0.5), 100.3)
    for yi, v, h in zip(y, vals, hi):
        ax.text(v + h, yi, f" {v:.2f}%", va="center", fontsize=7)
    if target is not None:
        ax.axvline(100 * target, color="#555555", ls="--", lw=1)
    ax.invert_yaxis()
    ax.set_xlabel("top-1 agreement with the original (%), whisker: 95% interval; red = did not pass its check")
    ax.set_title("Agreement with the original model" +
                 ("" if target is None else f" (dashed: the {100 * target:.2f}% recommendation target)"))
    ax.grid(True, axis="x", alpha=0.3)
    return fig


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
