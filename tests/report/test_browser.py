"""report.html in a real browser (headless Chromium): it renders, the table
and chart images are in the DOM, a screenshot is a real non-blank page, and
class names containing markup show as text. Skipped only without Chromium."""
from __future__ import annotations

import io
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from edgekit.apps.doctor import find_chromium
from edgekit.runtime import report

from support.report_samples import HOSTILE_NAMES

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install -y chromium, "
                                "or set EDGEKIT_CHROMIUM); CI installs it")
WIDTH, HEIGHT = 1280, 3000


def _chromium(tmp_path, *args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars"]
    proc = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, built_hostile):
    tmp = tmp_path_factory.mktemp("browser")
    data, built = built_hostile
    out = report.write(built, tmp / "report")
    return tmp, out / "report.html", data


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.spans, self._span = [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "span" and a.get("class") in ("true", "orig", "var"):
            self._span = a["class"]

    def handle_data(self, data):
        if self._span:
            self.spans.append((self._span, data))
            self._span = None


def test_dom_has_table_charts_and_escaped_labels(rendered, tmp_path):
    _, html_path, data = rendered
    dom_text = _chromium(tmp_path, "--dump-dom", html_path.as_uri())
    dom = _Dom()
    dom.feed(dom_text)
    tags = dom.tags
    assert not any(t == "script" for t, _ in tags), "a class name became a <script> element"
    assert not any(t == "i" for t, _ in tags), "a class name's <i> markup was rendered"
    rows = [a for t, a in tags if t == "tr" and a.get("id", "").startswith("row-")]
    assert len(rows) == len(data.results["variants"])
    charts = [a for t, a in tags if t == "img" and a.get("class") == "chart"]
    assert len(charts) >= 4 and all(a["src"].startswith("data:image/png;base64,") for a in charts)
    shown = {text for _, text in dom.spans}
    assert "<script>alert(1)</script>" in shown or "a|b & <i>c</i>" in shown
    assert shown <= set(HOSTILE_NAMES)


def test_screenshot_is_a_real_rendered_page(rendered, tmp_path):
    from PIL import Image

    _, html_path, _ = rendered
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", html_path.as_uri())
    img = Image.open(io.BytesIO(shot.read_bytes()))
    assert img.format == "PNG" and img.size == (WIDTH, HEIGHT)
    px = np.asarray(img.convert("RGB")).astype(int)
    assert px.std() > 20, "screenshot is blank"
    # the charts' Core ML blue (#1f77b4) only exists if the inline PNG charts were decoded and drawn
    blue = np.sum((np.abs(px - np.array([31, 119, 180])).sum(axis=2) < 40))
    assert blue > 200, f"only {blue} chart-blue pixels: chart images did not render"
