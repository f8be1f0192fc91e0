"""Headline number of the checker on the full-data cnn: full-integer int8 agrees
with the float Keras model on >= 99.8% of the 10,000 MNIST test images and moves
accuracy by at most 0.1 point (bench/check_matrix.py measures the whole matrix)."""
import json

import pytest

from edgekit.apps.cli import main


@pytest.mark.slow
@pytest.mark.headline
def test_tflite_int8_agreement_bar_on_full_mnist(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "--run", str(run_dir)]) == 0                  # default cnn, full MNIST
    assert main(["convert", "--run", str(run_dir), "--variants", "tflite-fp32,tflite-int8"]) == 0
    assert main(["check", "--run", str(run_dir), "--latency-runs", "50"]) == 0   # default thresholds pass
    res = json.loads((run_dir / "check" / "results.json").read_text())
    assert res["test_count"] == 10000
    int8 = res["variants"]["tflite-int8"]
    assert int8["backend"] == "litert"
    assert int8["verdict"] == "pass", (int8["reasons"], int8["inconclusive_reasons"])   # exit 0 alone allows inconclusive
    assert int8["agreement"] >= 0.998, int8["agreement"]
    assert abs(int8["accuracy_change"]) <= 0.1, int8["accuracy_change"]
    assert res["variants"]["tflite-fp32"]["agreement"] == 1.0
    assert res["original"]["accuracy"] > 0.985
