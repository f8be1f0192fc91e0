"""The report renderer on hand-built check results: table numbers, Pareto
front, recommendation (and its absence), escaping, self-containment."""
from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from edgekit import artifacts
from edgekit.errors import ArtifactError
from edgekit.runtime import report

from support.report_samples import HOSTILE_NAMES, make_report_data


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.rows = [], [], {}
        self._row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "tr" and a.get("id", "").startswith("row-"):
            self._row = a["id"][4:]
            self.rows[self._row] = []

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._row is not None and data.strip():
            self.rows[self._row].append(data)


def _parse(text):
    p = _Collect()
    p.feed(text)
    return p


def test_recommends_the_smallest_qualifying_variant_per_platform(built):
    _, built = built
    j = built["json"]
    # tflite-pal-bad (120 KB) and coreml-pal2 (80 KB) are smaller but failed
    assert {k: v["id"] for k, v in j["recommendation"].items()} == {"ios": "coreml-pal4", "android": "tflite-int8"}
    assert [w["id"] for w in j["recommendation"]["ios"]["why_not"]] == ["coreml-pal2"]
    assert j["recommendation"]["ios"]["why_not"][0]["tags"] == ["check failed", "significant drop", "agreement"]
    assert "99.50%" in j["recommendation"]["android"]["rule"] and "Holm" in j["recommendation"]["android"]["rule"]
    assert j["policy"] == {"target_agreement": 0.995, "max_size_kb": None, "max_accuracy_drop": None,
                           "significance": 0.05}
    text = j["recommendation_text"]
    assert text[0].startswith("iOS / Core ML: coreml-pal4 — 150 KB, 0.15x of float32")
    assert "95% lower bound 99.64%" in text[0]                  # 2 flips of 2,000
    assert "mil-reference" in text[0] and "golden" in text[0]
    assert text[1] == "  smaller passed over: coreml-pal2 (check failed, significant drop, agreement)"
    # the same in the HTML and the Markdown
    assert 'id="why-not-ios"' in built["html"] and "coreml-pal2</code> (80 KB) passed over: its check failed" in built["html"]
    assert "passed over: `coreml-pal2` (80 KB): its check failed" in built["markdown"]
    rows = {r["id"]: r for r in j["variants"]}
    assert rows["tflite-int8"]["ratio_to_fp32"] == pytest.approx(0.25)
    assert rows["coreml-pal2"]["passed"] is False and rows["coreml-pal2"]["reasons"]
    assert rows["tflite-int8"]["flipped_count"] == 2


def test_says_plainly_when_no_variant_passes(tmp_path):
    data = make_report_data(coreml_all_fail=True)
    built = report.build(data)
    rec = built["json"]["recommendation"]
    assert rec["ios"]["id"] is None and rec["android"]["id"] == "tflite-int8"
    # every coreml variant failed its check; coreml-fp32 misses nothing else and agrees most
    assert rec["ios"]["closest"] == {"id": "coreml-fp32", "tags": ["check failed"],
                                     "reasons": ["its check failed: top-1 agreement 100.00% < 99.50%"]}
    assert [w["id"] for w in rec["ios"]["why_not"]] == ["coreml-pal2", "coreml-pal4", "coreml-w8", "coreml-fp32"]
    line = built["json"]["recommendation_text"][0]
    assert "NONE of the 4 coreml variants qualifies" in line and "the closest is coreml-fp32" in line
    assert 'class="reco none" id="reco-ios"' in built["html"]
    assert "confusion_ios.png" not in built["charts"] and "confusion_android.png" in built["charts"]


def test_pareto_front():
    rows = [{"id": "a", "size_bytes": 100, "accuracy": 0.90}, {"id": "b", "size_bytes": 200, "accuracy": 0.95},
            {"id": "c", "size_bytes": 300, "accuracy": 0.94},   # dominated by b
            {"id": "d", "size_bytes": 50, "accuracy": 0.80}, {"id": "e", "size_bytes": 100, "accuracy": 0.89},  # dominated by a
            {"id": "f", "size_bytes": 400, "accuracy": 0.96}]
    assert report.pareto_front(rows) == ["d", "a", "b", "f"]


def test_table_cells_show_the_check_numbers(built):
    report_data, built = built
    doc = _parse(built["html"])
    cells = doc.rows["coreml-pal2"]
    assert cells[0] == "coreml-pal2" and "80 KB" in cells and "0.08x" in cells
    assert "98.00% [97.29, 98.53]" in cells      # agreement: 40 of 2,000 flipped, with its Wilson interval
    assert any(c.startswith("FAIL: top-1 agreement 98.00%") for c in cells)
    assert "identical" in doc.rows["tflite-fp32"]  # PSNR of bit-identical outputs
    assert set(doc.rows) == set(report_data.results["variants"])


def test_mil_reference_is_never_called_core_ml_runtime(built):
    _, built = built
    doc = _parse(built["html"])
    assert "mil-reference" in doc.rows["coreml-fp32"]
    titles = [a.get("title", "") for t, a in doc.tags if t == "td" and a.get("title")]
    assert any("not the Core ML runtime" in t for t in titles)
    assert "Core ML runtime (macOS)" not in built["html"]  # no result here came from the real runtime
    assert "Core ML runtime (macOS)" not in built["markdown"]
    data = make_report_data()
    data.results["variants"]["coreml-w8"]["backend"] = "coreml"
    assert "Core ML runtime (macOS)" in report.build(data)["html"]


def test_html_is_self_contained_and_escaped(built_hostile):
    _, built = built_hostile
    text = built["html"]
    doc = _parse(text)
    tags = [t for t, _ in doc.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert not re.search(r"(?:src|href)\s*=\s*[\"'](?!data:image/png;base64,)", text)
    assert "http://" not in text and "https://" not in text and "url(" not in text
    imgs = [a for t, a in doc.tags if t == "img"]
    assert len(imgs) >= 4 + len(built["json"]["gallery"])
    for a in imgs:
        png = base64.b64decode(a["src"].split(",", 1)[1])
        assert png.startswith(report.PNG_MAGIC)
    # hostile class names are text, never markup
    assert "<script>alert(1)</script>" not in text and "<i>c</i>" not in text
    joined = "".join(doc.text)
    assert "<script>alert(1)</script>" in joined and "a|b & <i>c</i>" in joined
    assert "../../etc/passwd" in joined and "say \"hi\" it's" in joined
    # markdown: no raw HTML passes through, no table-breaking pipes
    md = built["markdown"]
    assert "<script>" not in md and 'say "hi"' not in md and "<i>" not in md
    for line in md.splitlines():
        if line.startswith("| "):   # header and rows: exactly the columns' cell separators are unescaped pipes
            assert len(re.findall(r"(?<!\\)\|", line)) == len(report.TABLE_COLUMNS) + 1


def test_gallery_shows_true_original_and_variant_labels(hostile_report_data):
    data = hostile_report_data
    built = report.build(data, gallery_per_variant=3, gallery_total=100)
    gallery = built["json"]["gallery"]
    assert gallery[0]["variant"] in ("coreml-pal2", "tflite-pal-bad")   # failing variants first
    for g in gallery:
        i = g["index"]
        assert i in data.results["variants"][g["variant"]]["flipped"]
        assert g["true"] == HOSTILE_NAMES[data.labels[i]]
        assert g["original"] == HOSTILE_NAMES[data.original_probs[i].argmax()]
        assert g["variant_label"] == HOSTILE_NAMES[data.variant_probs[g["variant"]][i].argmax()]
        assert g["variant_label"] != g["original"]
    per = {}
    for g in gallery:
        per[g["variant"]] = per.get(g["variant"], 0) + 1
    assert max(per.values()) == 3


def test_confusion_matrix_of_recommended_variant(built):
    report_data, built = built
    cm = np.array(built["json"]["confusion_matrices"]["android"]["matrix"])
    pred = report_data.variant_probs["tflite-int8"].argmax(1)
    assert cm.sum() == len(report_data.labels)
    assert np.trace(cm) == int(np.sum(pred == report_data.labels))


def test_bad_flipped_index_is_an_artifact_error(report_data):
    report_data.results["variants"]["tflite-int8"]["flipped"] = [10_000]
    with pytest.raises(ArtifactError, match="outside the 2000 test samples"):
        report.build(report_data)


def test_written_report_json_is_valid(built, tmp_path):
    _, built = built
    out = report.write(built, tmp_path / "report")
    j = artifacts.read_manifest(out / "report.json", report.SCHEMA, {"variants": list, "recommendation": dict})
    assert json.loads((out / "report.json").read_text())["pareto_front"] == j["pareto_front"]
    for name in j["charts"]:
        assert (out / name).read_bytes().startswith(report.PNG_MAGIC)
    assert (out / "report.html").stat().st_size > 20_000
    # rewriting replaces the old report (it is derived data)
    (out / "stale.png").write_bytes(b"old")
    report.write(built, tmp_path / "report")
    assert not (out / "stale.png").exists()


def test_markdown_escape_leaves_no_markup():
    from edgekit.runtime.report.render import md_code, md_escape

    assert md_escape("*a* _b_ [c](d) <i>&amp; `e` #1 a|b x.y -z !w \\") == (
        "\\*a\\* \\_b\\_ \\[c\\]\\(d\\) \\<i\\>\\&amp; \\`e\\` \\#1 a\\|b x\\.y \\-z \\!w \\\\")
    assert md_escape("two\nlines") == "two lines"
    assert md_code("a`b") == "``a`b``" and md_code("plain") == "`plain`"
