"""The report's "Where the error comes from" section on hand-built check
results: which variants it diagnoses (failed, inconclusive, recommended; not
a passing one nobody recommends), and that layer names and reasons from a
user's model are text, never markup, in report.html and report.md. The
diagnoses are built by hand here; tests/diagnose/test_report_section.py runs
the real ones on a converted run."""
from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest
from support.report_samples import make_report_data

from edgekit.runtime import report
from edgekit.runtime.diagnose import DiagnoseResult, Error, LayerRow
from edgekit.runtime.report import charts
from edgekit.runtime.report.diagnoses import Diagnosed

HOSTILE_LAYER = '<script>alert("x")</script>'
HOSTILE_CLASS = "<img src=x onerror=alert(1)>"


def _row(layer, acc_db, loc_db, status="op"):
    err = (lambda db: Error(db, 0.99, 0.1)) if status == "op" else (lambda db: None)
    return LayerRow(layer=layer, cls=HOSTILE_CLASS, status=status, tensor="t", fused_with=(), into=None,
                    note=None if status == "op" else "a | b <b>not bold</b>", accumulated=err(acc_db),
                    local=err(loc_db))


def _fake_diagnoser(seen):
    """Records what the report asks for; answers each with the same hand-made diagnosis
    whose first jump and lowest local SNR are a layer named like markup."""
    rows = [_row("conv1", 120.0, 121.0), _row(HOSTILE_LAYER, 12.5, 13.0), _row("drop|out", 0, 0, status="none")]
    png = charts.sample_png(np.zeros((28, 28), np.uint8))

    def diagnose(wanted):
        seen.update(wanted)
        out = []
        for vid, why in wanted.items():
            if vid == "coreml-pal2":
                out.append(Diagnosed(vid, why, error="variants/coreml-pal2/variant.json: <b>no layer map</b>"))
                continue
            result = DiagnoseResult(run_dir=None, variant=vid, format="tflite", backend="litert", images=50,
                                    rows=rows, first_jump=HOSTILE_LAYER, worst_local=HOSTILE_LAYER,
                                    path=None, chart=None, seconds=0.1)
            out.append(Diagnosed(vid, why, result, png, reused=False))
        return out

    return diagnose


@pytest.fixture(scope="module")
def diagnosed_build():
    data = make_report_data()
    # coreml-w8 passed nothing yet: inconclusive (never a pass) is diagnosed too
    data.results["variants"]["coreml-w8"].update(verdict="inconclusive", passed=False)
    seen: dict = {}
    return seen, report.build(data, diagnoser=_fake_diagnoser(seen))


def test_diagnoses_failed_inconclusive_and_recommended_variants_only(diagnosed_build):
    seen, built = diagnosed_build
    assert seen == {"coreml-pal2": ("check failed",), "coreml-pal4": ("recommended for iOS / Core ML",),
                    "coreml-w8": ("check inconclusive",), "tflite-pal-bad": ("check failed",),
                    "tflite-int8": ("recommended for Android / TFLite",)}
    # passed and not recommended: not diagnosed, nowhere in the section
    for vid in ("tflite-dynamic-int8", "tflite-fp32", "coreml-fp32"):
        assert vid not in seen and f'id="diagnose-{vid}"' not in built["html"]
    j = built["json"]
    assert [d["variant"] for d in j["diagnoses"]] == list(seen)
    assert j["diagnoses"][0]["error"].endswith("<b>no layer map</b>") and j["diagnoses"][0]["file"] is None
    tflite = next(d for d in j["diagnoses"] if d["variant"] == "tflite-int8")
    assert tflite["file"] == "diagnose/tflite-int8.json" and tflite["first_jump"] == HOSTILE_LAYER
    assert "diagnose_tflite-int8.png" in j["charts"] and "diagnose_tflite-int8.png" in built["charts"]
    assert "diagnose_coreml-pal2.png" not in built["charts"]     # not diagnosed: no chart


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.first_jumps = [], []
        self._in_jump = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_jump = dict(attrs).get("class") == "first-jump"

    def handle_data(self, data):
        if self._in_jump:
            self.first_jumps.append(data)
            self._in_jump = False


def test_layer_names_and_reasons_are_text_not_markup(diagnosed_build):
    _, built = diagnosed_build
    html, md = built["html"], built["markdown"]
    section = html[html.index('id="where-error"'):html.index("<h2>Flipped samples</h2>")]
    for raw in (HOSTILE_LAYER, HOSTILE_CLASS, "<b>not bold</b>", "<b>no layer map</b>"):
        assert raw not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in section
    tags = _Tags()
    tags.feed(section)
    assert "script" not in tags.tags and "img" in tags.tags            # the only images: the inline charts
    assert set(tags.tags) <= {"h3", "code", "div", "p", "b", "table", "thead", "tbody", "tr", "th", "td", "img"}
    # the first jump the reader sees is the layer's name, with its accumulated SNR
    assert tags.first_jumps[0] == f"{HOSTILE_LAYER} (12.5 dB)"
    assert section.count('class="chart"') == 4                         # 5 diagnosed, 1 not diagnosable
    # Markdown: the same names backslash-escaped, on table rows that stay rows
    md_section = md[md.index("## Where the error comes from"):md.index("## Charts")]
    assert "\\<script\\>alert\\(\\\"x\\\"\\)\\</script\\>" in md_section
    assert "drop\\|out" in md_section and "a \\| b \\<b\\>not bold\\</b\\>" in md_section
    rows = [ln for ln in md_section.splitlines() if ln.startswith("| drop")]
    assert len(rows) == 4 and all(ln.count(" | ") == 6 for ln in rows)
    assert "![where the error comes from: tflite\\-int8](diagnose_tflite-int8.png)" in md_section


def test_no_section_when_diagnose_is_off(built):
    _, plain = built
    assert plain["json"]["diagnoses"] is None
    assert "--diagnose-limit 0" in plain["html"] and "--diagnose-limit 0" in plain["markdown"]
    assert not any(name.startswith("diagnose_") for name in plain["charts"])


@pytest.mark.parametrize("bad", [-1, 10_001, True, 2.5])
def test_diagnose_limit_is_validated(bad, tmp_path):
    from edgekit.errors import ConfigError

    with pytest.raises(ConfigError, match="--diagnose-limit"):
        report.ReportConfig(run_dir=tmp_path, diagnose_limit=bad)


def test_larger_images_are_diagnosed_on_fewer_of_them():
    """The report's limit counts 28x28x1 images' worth of input values: a
    96x96 RGB model gets 16 (the floor), a 32x32 RGB one 51, MNIST all 200."""
    from edgekit.runtime.report.diagnoses import MIN_IMAGES, images_for

    assert images_for(200, (28, 28, 1)) == 200
    assert images_for(200, (32, 32, 3)) == 200 * 784 // 3072 == 51
    assert images_for(200, (96, 96, 3)) == MIN_IMAGES == 16
    assert images_for(8, (96, 96, 3)) == 8      # never more than asked
