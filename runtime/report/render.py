"""The report as text: report.html from a Jinja2 template shipped with the
package (templates/report.html.j2, autoescaped: every string from a run is
text, never markup; images inline as ``data:`` URIs, no script, no external
URL) and report.md with Markdown's special characters backslash-escaped."""
from __future__ import annotations

import base64
import functools
import re
from typing import Any

from edgekit.runtime.diagnose import snr_text
from edgekit.runtime.report import diagnoses, policy
from edgekit.runtime.report.diagnoses import Diagnosed
from edgekit.runtime.report.loader import ReportData
from edgekit.runtime.report.policy import PLATFORMS, TABLE_COLUMNS, num


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("edgekit.runtime.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    env.filters["data_uri"] = lambda png: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return env


def _recommendation_context(decisions: dict[str, policy.Decision], lines_by_platform: dict[str, str]) -> list[dict]:
    out = []
    for key, (title, _fmt) in PLATFORMS.items():
        d = decisions[key]
        out.append({"key": key, "title": title, "passed": d.chosen is not None,
                    "text": lines_by_platform[key].split(": ", 1)[1], "rule": d.rule,
                    "why_not": [{**w, "size": policy.fmt_bytes(w["size_bytes"])} for w in d.why_not]})
    return out


def _platform_lines(rows: list[dict], decisions: dict[str, policy.Decision]) -> dict[str, str]:
    """The headline line per platform (without the passed-over line that follows it)."""
    lines = policy.recommendation_lines(rows, decisions)
    titles = {title: key for key, (title, _fmt) in PLATFORMS.items()}
    return {titles[line.split(": ", 1)[0]]: line for line in lines if line.split(": ", 1)[0] in titles}


def _at(d: Diagnosed, layer: str | None, side: str) -> str:
    """``layer`` with its accumulated or local SNR, for the section's summary line."""
    if layer is None:
        return "none"
    return f"{layer} ({snr_text(getattr(d.result.row(layer), side), '—')} dB)"


def _diagnoses_context(diagnosed: list[Diagnosed] | None) -> list[dict] | None:
    """Each diagnosis as the template shows it (None: the section is off)."""
    if diagnosed is None:
        return None
    out = []
    for d in diagnosed:
        entry = {"id": d.variant, "why": ", ".join(d.why), "error": d.error}
        if d.result is not None:
            r = d.result
            entry.update(first_jump=_at(d, r.first_jump, "accumulated"), worst_local=_at(d, r.worst_local, "local"),
                         images=r.images, backend=policy.BACKEND_LABELS.get(r.backend, r.backend),
                         file=diagnoses.to_json(d)["file"], reused=d.reused, rows=diagnoses.table(d), png=d.chart)
        out.append(entry)
    return out


def html(data: ReportData, rows: list[dict], decisions: dict[str, policy.Decision], front: list[str],
         charts: dict[str, bytes], cms: dict[str, tuple[str, bytes]], gallery: list[dict],
         gallery_pngs: list[bytes], diagnosed: list[Diagnosed] | None = None) -> str:
    orig = data.results.get("original") or {}
    o_lat = orig.get("latency_ms") if isinstance(orig.get("latency_ms"), dict) else {}
    o_p50 = num(o_lat.get("p50"))
    rec_ids = {d.chosen["id"] for d in decisions.values() if d.chosen}
    metrics = data.model_info.get("metrics") or {}
    model = data.model_info.get("model") or {}
    keras_size = num((((data.model_info.get("files") or {}).get("keras") or {}).get("size_bytes")))
    context = {
        "run_name": data.run_name,
        "test_count": data.results.get("test_count", len(data.labels)),
        "original_accuracy": policy.pct(num(orig.get("accuracy"))),
        "original": {"size": policy.fmt_bytes(keras_size), "p50": "—" if o_p50 is None else f"{o_p50:.3f} ms"},
        "recommendations": _recommendation_context(decisions, _platform_lines(rows, decisions)),
        "columns": TABLE_COLUMNS,
        "left": [c in policy.LEFT_COLUMNS for c in TABLE_COLUMNS],
        "original_cells": _original_cells(policy.pct(num(orig.get("accuracy"))), policy.fmt_bytes(keras_size),
                                          "—" if o_p50 is None else f"{o_p50:.3f} ms"),
        "backend_column": TABLE_COLUMNS.index("backend"),
        "holm_family": max([r["holm_family"] or 1 for r in rows] + [1]),
        "rows": [{**r, "cells": policy.table_cells(r),
                  "cls": "rec" if r["id"] in rec_ids else ("" if r["passed"] else "fail")} for r in rows],
        "backends": [{"id": b, "label": policy.BACKEND_LABELS.get(b, b)} for b in policy.backends(rows)],
        "charts": charts,
        "pareto": ", ".join(front),
        "confusions": [{"title": PLATFORMS[key][0], "variant": vid, "png": png} for key, (vid, png) in cms.items()],
        "total_flips": sum(r["flipped_count"] for r in rows),
        "gallery": [{**g, "png": png} for g, png in zip(gallery, gallery_pngs)],
        "diagnoses": _diagnoses_context(diagnosed),
        "training": {"name": model.get("name", "?"), "params": model.get("params", "?"),
                     "test_accuracy": policy.pct(num(metrics.get("test_accuracy"))),
                     "epochs": metrics.get("epochs_run", "?"),
                     "seconds": policy.g(num(metrics.get("train_seconds")), ".1f")},
        "plots": data.plots,
        "not_converted": data.not_converted,
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


def _original_cells(accuracy: str, size: str, p50: str) -> list[str]:
    """The original model's row, one cell per ``TABLE_COLUMNS`` entry."""
    cells = {"variant": "original (Keras)", "format": "keras", "recipe": "float32", "size": size,
             "accuracy": accuracy, "agreement [95% CI]": "100.00%", "latency p50 / p95": p50,
             "backend": "TensorFlow", "result": "reference"}
    return [cells.get(c, "") for c in TABLE_COLUMNS]


DIAGNOSE_COLUMNS = ("layer", "class", "accumulated SNR dB", "accumulated cosine", "local SNR dB", "local cosine",
                    "note")


def _markdown_diagnoses(diagnosed: list[Diagnosed] | None) -> list[str]:
    e = md_escape
    md = ["## Where the error comes from", ""]
    if diagnosed is None:
        return md + ["Not diagnosed (`--diagnose-limit 0`); `edgekit diagnose --run DIR --variant ID` "
                     "diagnoses one variant.", ""]
    if not diagnosed:
        return md + ["No variant failed its check or is inconclusive, and none is recommended.", ""]
    for d, c in zip(diagnosed, _diagnoses_context(diagnosed)):
        md += [f"### {md_code(d.variant)} ({e(c['why'])})", ""]
        if d.result is None:
            md += [f"Not diagnosed: {e(d.error)}", ""]
            continue
        md += [f"First jump: {e(c['first_jump'])}; lowest local SNR: {e(c['worst_local'])}. "
               f"{e(c['images'])} test images, {e(c['backend'])}; {md_code(c['file'])}"
               + (" (reused)." if d.reused else "."), "",
               "| " + " | ".join(e(col) for col in DIAGNOSE_COLUMNS) + " |", "|" + "---|" * len(DIAGNOSE_COLUMNS)]
        md += ["| " + " | ".join(e(row[k]) for k in ("layer", "class", "acc_snr", "acc_cos", "loc_snr", "loc_cos",
                                                        "note")) + " |" for row in c["rows"]]
        md += ["", f"![where the error comes from: {e(d.variant)}](diagnose_{d.variant}.png)", ""]
    return md


def markdown(data: ReportData, rows: list[dict], decisions: dict[str, policy.Decision], front: list[str],
             chart_files: list[str], diagnosed: list[Diagnosed] | None = None) -> str:
    e = md_escape
    orig = data.results.get("original") or {}
    md = [f"# edgekit report: {e(data.run_name)}", "",
          f"{len(rows)} variants checked on {e(data.results.get('test_count', len(data.labels)))} test images; "
          f"original accuracy {e(policy.pct(num(orig.get('accuracy'))))}.", "", "## Recommendation", ""]
    heads = _platform_lines(rows, decisions)
    for key, (title, _fmt) in PLATFORMS.items():
        d = decisions[key]
        md.append(f"- {e(heads[key])}")
        md.append(f"  - rule: {e(d.rule)}")
        for w in d.why_not:
            md.append(f"  - passed over: {md_code(w['id'])} ({e(policy.fmt_bytes(w['size_bytes']))}): "
                      f"{e('; '.join(w['reasons']))}")
    md += ["", "Verdicts and the recommendation use 95% intervals; McNemar p-values are Holm-corrected across "
               "the checked variants.", "",
           "## Variants", "", "| " + " | ".join(e(c) for c in TABLE_COLUMNS) + " |",
           "|" + "---|" * len(TABLE_COLUMNS)]
    md += ["| " + " | ".join(e(c) for c in policy.table_cells(r)) + " |" for r in rows]
    md += ["", "Backends: " + "; ".join(f"{md_code(b)} = {e(policy.BACKEND_LABELS.get(b, b))}"
                                        for b in policy.backends(rows)) + ".", "",
           f"Pareto front (size vs accuracy): {e(', '.join(front) or '—')}", ""]
    if data.not_converted:
        md += ["Not converted (so not checked): " + "; ".join(
            f"{md_code(v['id'])} {e(v['status'])}: {e(v['reason'])}" for v in data.not_converted), ""]
    md += _markdown_diagnoses(diagnosed)
    md += ["## Charts", ""]
    md += [f"![{e(name)}]({name})" for name in chart_files]
    md += ["", "## Environment", ""] + [f"- {e(k)}: {e(v)}" for k, v in sorted(data.fingerprint.items())]
    return "\n".join(md) + "\n"
