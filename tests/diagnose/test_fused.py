"""diagnose on a model whose converters fuse layers (the zoo's ``mobile``:
conv + batch norm + ReLU): fused layers say which op they are in, and the
op's row carries the numbers. Slow: it trains the tiny mobile run."""
from __future__ import annotations

import pytest
from support.runs import copy_model


@pytest.mark.slow
def test_fused_layers_point_at_their_op_and_float16_stays_close(tiny_run_factory, tmp_path):
    from edgekit.convert.config import ConvertConfig
    from edgekit.convert.stage import run as convert
    from edgekit.runtime import diagnose

    run = copy_model(tiny_run_factory("mobile"), tmp_path / "run")
    assert convert(ConvertConfig(run_dir=run, variants=("tflite-int8", "coreml-fp16"))).ok
    tfl = diagnose.run(diagnose.DiagnoseConfig(run_dir=run, variant="tflite-int8", limit=100))
    rows = {r.layer: r for r in tfl.rows}
    assert rows["conv1"].status == "fused" and rows["conv1"].into == "conv1_relu"
    assert rows["conv1_relu"].status == "op" and set(rows["conv1_relu"].fused_with) == {"conv1", "conv1_bn"}
    assert rows["conv1_relu"].accumulated.snr_db > 20      # int8: visible, but no collapse
    cml = diagnose.run(diagnose.DiagnoseConfig(run_dir=run, variant="coreml-fp16", limit=100))
    measured = [r for r in cml.rows if r.status == "op"]
    assert measured and all(r.local.snr_db > 40 for r in measured), [(r.layer, r.local) for r in measured]
    assert {r.layer for r in cml.rows if r.status == "fused"} >= {"conv1"}
