"""Kinds the shipped recipes declare, JUnit escaping, and check/ replaced only whole."""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support.cli import exit_2

import edgekit
from edgekit.apps.cli import main
from edgekit.runtime import check, metrics

RECIPES = sorted(Path(edgekit.__file__).parent.parent.joinpath("convert", "recipes").glob("*.json"))
EXPECTED_KIND = {
    "tflite-fp32": "float32", "coreml-fp32": "float32",
    "tflite-fp16": "float16", "coreml-fp16": "float16",
    "tflite-dynamic-int8": "quantized", "tflite-int8": "quantized", "tflite-uint8": "quantized",
    "tflite-int16x8": "quantized", "tflite-qat-int8": "quantized", "coreml-w8": "quantized",
    "coreml-pal6": "quantized",
    "tflite-pruned-int8": "low-bit", "tflite-clustered-int8": "low-bit",
    "coreml-pal4": "low-bit", "coreml-pal2": "low-bit", "coreml-pruned": "low-bit",
}


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_shipped_recipe_gets_the_kind_its_numbers_need(path):
    recipe = json.loads(path.read_text())
    assert recipe["id"] in EXPECTED_KIND, f"new recipe {recipe['id']}: decide its threshold kind here"
    assert metrics.Kind(recipe["kind"]).value == EXPECTED_KIND[recipe["id"]]   # declared, not inferred


def _fake_result(vid: str, reasons: list[str]) -> check.CheckResult:
    import numpy as np

    labels = np.array([0, 1])
    p = np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)
    comp = metrics.compare(labels, p, p[::-1].copy())
    v = check.VariantCheck(id=vid, format="tflite", backend="litert", kind=metrics.Kind.QUANTIZED,
                           comparison=comp, thresholds=metrics.DEFAULT_THRESHOLDS[metrics.Kind.QUANTIZED],
                           judgement=metrics.Judgement(metrics.Verdict.FAIL, reasons, [], None, 1.0, 1), size_bytes=10, zipped_bytes=9, latency_ms={"p50": 1.0, "p95": 2.0},
                           throughput_ips=100.0, file="variants/x/model.tflite")
    return check.CheckResult(out_dir=Path("."), test_count=2, original={}, variants=[v], seconds=1.0)


def test_junit_is_valid_escaped_xml_with_every_reason():
    nasty = 'odd <id> & "quotes" \x1b'
    xml = check.junit_xml(_fake_result("a&b<c>", [nasty, "second reason"]))
    suite = ET.fromstring(xml)     # parses: escaped, and the control character replaced
    assert suite.get("failures") == "1" and suite.get("tests") == "1"
    case = suite.find("testcase")
    assert case.get("name") == "a&b<c>"
    failure = case.find("failure")
    assert failure.get("message") == nasty.replace("\x1b", "\ufffd")
    assert failure.text.splitlines() == [nasty.replace("\x1b", "\ufffd"), "second reason"]


def test_failed_rerun_leaves_the_previous_check_intact(make_run, capsys):
    run_dir = make_run(("tflite-fp32",))
    assert main(["check", "--run", str(run_dir), "--latency-runs", "3"]) == 0
    before = (run_dir / "check" / "results.json").read_bytes()
    (run_dir / "variants" / "tflite-fp32" / "model.tflite").write_bytes(b"garbage")
    exit_2(capsys, ["check", "--run", str(run_dir)], "model.tflite")
    assert (run_dir / "check" / "results.json").read_bytes() == before
    assert sorted(p.name for p in run_dir.iterdir()) == ["check", "model", "variants"]  # no temp dirs left


def test_latency_counts_runs_and_stops_a_slow_backend_at_its_budget():
    import time as _time

    import numpy as np

    calls = []
    fast = check.measure_latency(lambda x: calls.append(1), np.zeros(1), runs=30, warmup=5)
    assert fast["runs"] == 30 and len(calls) == 35 and fast["p50"] <= fast["p95"]
    slow = check.measure_latency(lambda x: _time.sleep(0.002), np.zeros(1), runs=500, warmup=0, budget_s=0.05)
    assert slow["runs"] == check.MIN_LATENCY_RUNS      # budget spent long before; the floor decides
    assert slow["p50"] >= 2.0
