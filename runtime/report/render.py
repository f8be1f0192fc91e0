"""The report as text: report.html from a Jinja2 template shipped with the
package (templates/report.html.j2, autoescaped: every string from a run is
text, never markup; images inline as ``data:`` URIs, no script, no external
URL) and report.md with Markdown's special characters backslash-escaped."""
from __future__ import annotations

import base64
import functools
import re
from typing import Any

from edgekit.runtime.report import policy
from edgekit.runtime.report.loader import ReportData
from edgekit.runtime.report.policy import PLATFORMS, TABLE_COLUMNS, num


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("edgekit.runtime.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    env.filters["data_uri"] = lambda png: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return env


def html(data: ReportData, rows: list[dict], rec: dict, lines: list[str], front: list[str],
         charts: dict[str, bytes], cms: dict[str, tuple[str, bytes]], gallery: list[dict],
         gallery_pngs: list[bytes]) -> str:
    orig = data.results.get("original") or {}
    o_lat = orig.get("latency_ms") if isinstance(orig.get("latency_ms"), dict) else {}
    o_p50 = num(o_lat.get("p50"))
    rec_ids = {r["id"] for r in rec.values() if r}
    metrics = data.model_info.get("metrics") or {}
    model = data.model_info.get("model") or {}
    keras_size = num((((data.model_info.get("files") or {}).get("keras") or {}).get("size_bytes")))
    context = {
        "run_name": data.run_name,
        "test_count": data.results.get("test_count", len(data.labels)),
        "original_accuracy": policy.pct(num(orig.get("accuracy"))),
        "original": {"size": policy.fmt_bytes(keras_size), "p50": "—" if o_p50 is None else f"{o_p50:.3f} ms"},
        "recommendations": [{"key": key, "title": title, "passed": rec[key] is not None,
                             "text": line.split(": ", 1)[1]}
                            for (key, (title, _fmt)), line in zip(PLATFORMS.items(), lines)],
        "columns": TABLE_COLUMNS,
        "rows": [{**r, "cells": policy.table_cells(r),
                  "cls": "rec" if r["id"] in rec_ids else ("" if r["passed"] else "fail")} for r in rows],
        "backends": [{"id": b, "label": policy.BACKEND_LABELS.get(b, b)} for b in policy.backends(rows)],
        "charts": charts,
        "pareto": ", ".join(front),
        "confusions": [{"title": PLATFORMS[key][0], "variant": vid, "png": png} for key, (vid, png) in cms.items()],
        "total_flips": sum(r["flipped_count"] for r in rows),
        "gallery": [{**g, "png": png} for g, png in zip(gallery, gallery_pngs)],
        "training": {"name": model.get("name", "?"), "params": model.get("params", "?"),
                     "test_accuracy": policy.pct(num(metrics.get("test_accuracy"))),
                     "epochs": metrics.get("epochs_run", "?"),
                     "seconds": policy.g(num(metrics.get("train_seconds")), ".1f")},
        "plots": data.plots,
        "environment": sorted(data.fingerprint.items()),
    }
    return _environment().get_template("report.html.j2").render(context)


# ------------------------------------------------------------------ Markdown

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones
# that can start or end markup (emphasis, links, headings, lists, tables, code,
# raw HTML and entities) plus quotes, so no text from a run becomes markup.
_MD_SPECIAL = re.compile(r"""([\\`*_{}\[\]()#+\-.!|<>&"'~])""")


def md_escape(s: Any) -> str:
    """Plain text as Markdown: special characters backslash-escaped, on one line."""
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"[\r\n]+", " ", str(s)))


def md_code(s: Any) -> str:
    """Plain text as a Markdown code span (its content is never markup)."""
    s = re.sub(r"[\r\n]+", " ", str(s))
    fence = "`" * (max((len(m) for m in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def markdown(data: ReportData, rows: list[dict], lines: list[str], front: list[str], chart_files: list[str]) -> str:
    e = md_escape
    orig = data.results.get("original") or {}
    md = [f"# edgekit report: {e(data.run_name)}", "",
          f"{len(rows)} variants checked on {e(data.results.get('test_count', len(data.labels)))} test images; "
          f"original accuracy {e(policy.pct(num(orig.get('accuracy'))))}.", "", "## Recommendation", ""]
    md += [f"- {e(line)}" for line in lines]
    md += ["", "## Variants", "", "| " + " | ".join(e(c) for c in TABLE_COLUMNS) + " |",
           "|" + "---|" * len(TABLE_COLUMNS)]
    md += ["| " + " | ".join(e(c) for c in policy.table_cells(r)) + " |" for r in rows]
    md += ["", "Backends: " + "; ".join(f"{md_code(b)} = {e(policy.BACKEND_LABELS.get(b, b))}"
                                        for b in policy.backends(rows)) + ".", "",
           f"Pareto front (size vs accuracy): {e(', '.join(front) or '—')}", "", "## Charts", ""]
    md += [f"![{e(name)}]({name})" for name in chart_files]
    md += ["", "## Environment", ""] + [f"- {e(k)}: {e(v)}" for k, v in sorted(data.fingerprint.items())]
    return "\n".join(md) + "\n"
