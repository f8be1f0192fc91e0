"""Class names are user input (folder names, or a manifest): they must come
out escaped in report.html / report.md and never become file names.

A folder dataset whose class folders are named with markup, quotes, dots
and non-ASCII text is trained, converted, checked and reported through the
CLI; then a manifest's class names are replaced with a script tag and a
path-like name and the report is rebuilt.
"""
from __future__ import annotations

import json
import re

import numpy as np
from support.trees import copy_run, edit_json

from edgekit.apps import cli

NAMES = ['<img src=x onerror=alert(1)>', '"q\'', 'a..b', '日本 ü', 'a&amp;b']


def _folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(NAMES):
        (root / name).mkdir(parents=True)
        for i in range(10):
            img = rng.integers(0, 40, (28, 28), dtype=np.uint8)
            img[4 * k:4 * k + 6, 3:25] = 255  # a class-specific bar so the model can learn something
            Image.fromarray(img).save(root / name / f"{i}.png")


def _assert_safe(run, names):
    page = (run / "report" / "report.html").read_text(encoding="utf-8")
    md = (run / "report" / "report.md").read_text(encoding="utf-8")
    for name in names:
        if any(ch in name for ch in "<>&\"'"):
            assert name not in page, f"raw {name!r} in report.html"
            assert name not in md, f"raw {name!r} in report.md"
    assert not re.search(r"<(img|script)[^>]*onerror", page, flags=re.I)
    assert "<script" not in page.lower()
    # no file named after a class anywhere the report or golden kit wrote
    for d in ("report", "golden"):
        for p in (run / d).rglob("*"):
            assert not any(n in p.name for n in names if len(n) > 2), p


def test_class_names_from_folders_are_escaped(tmp_path):
    data = tmp_path / "data"
    _folder(data)
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "folder", "--data-dir", str(data), "--run", str(run),
                     "--epochs", "1", "--model", "linear"]) == 0
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    assert manifest["dataset"]["class_names"] == sorted(NAMES)
    assert cli.main(["convert", "--run", str(run), "--variants", "tflite-fp32,coreml-fp32"]) == 0
    assert cli.main(["check", "--run", str(run), "--latency-runs", "2"]) in (0, 1)
    assert cli.main(["report", "--run", str(run)]) == 0
    page = (run / "report" / "report.html").read_text(encoding="utf-8")
    assert "onerror=alert(1)>" not in page
    _assert_safe(run, NAMES)


def test_class_names_from_a_manifest_are_escaped(rel_base, tmp_path):
    run = copy_run(rel_base, tmp_path / "run")
    evil = ["<script>alert(1)</script>", "../../etc/passwd", "a|b", "\u202eevil", "x\ny", "<b>x</b>",
            "\"q'", "..", "日本", "%00"]
    def rename(m):  # the names every stage reads (io) and the dataset's record of them
        m["io"]["class_names"] = evil
        if "class_names" in m["dataset"]:
            m["dataset"]["class_names"] = evil

    edit_json(run / "model" / "manifest.json", rename)
    assert cli.main(["report", "--run", str(run)]) == 0
    assert cli.main(["golden", "--run", str(run)]) in (0, 1, 2)
    _assert_safe(run, evil)
    page = (run / "report" / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page
