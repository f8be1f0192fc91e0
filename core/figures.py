"""Figures as PNG bytes: one matplotlib helper for every chart edgekit draws
(the report's charts, the training plots).

Each figure gets its own Agg canvas (``Figure`` + ``FigureCanvasAgg``), so
nothing touches pyplot's global state or the process-wide backend; matplotlib
is imported on first use only.
"""
from __future__ import annotations

import io

DPI = 100
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"   # the first bytes of every PNG file


def figure(w: float, h: float, dpi: int = DPI):
    """A new ``w`` x ``h`` inch figure on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def png(fig, *, crop: bool = True, tight_layout: bool = False) -> bytes:
    """The figure as PNG bytes. ``crop``: trim to what is drawn (``bbox_inches="tight"``);
    ``tight_layout``: lay the axes out first (for fixed-size grids of subplots)."""
    if tight_layout:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **({"bbox_inches": "tight"} if crop else {}))
    return buf.getvalue()
