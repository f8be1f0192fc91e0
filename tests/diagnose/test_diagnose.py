"""edgekit diagnose on real variants: float32 variants are exact to >100 dB at
every layer, and a variant with one layer deliberately ruined (Core ML: conv2
palettized to 2 bits by a per-layer recipe; TFLite: conv2's kernel rounded to
4 levels in the flatbuffer) is diagnosed at that layer."""
from __future__ import annotations

import math

import pytest
from support.diagnose import BAD_LAYER

from edgekit import artifacts
from edgekit.rundir import DIAGNOSE_SCHEMA, RunDir

LIMIT = 200


@pytest.fixture(scope="module")
def diagnosed(diag_run):
    from edgekit.runtime import diagnose

    cache = {}

    def get(variant_id):
        if variant_id not in cache:
            cache[variant_id] = diagnose.run(diagnose.DiagnoseConfig(run_dir=diag_run, variant=variant_id,
                                                                     limit=LIMIT))
        return cache[variant_id]

    return get


@pytest.mark.parametrize("variant_id", ["tflite-fp32", "coreml-fp32"])
def test_float32_variants_are_above_100_db_at_every_layer(diagnosed, variant_id):
    result = diagnosed(variant_id)
    measured = [r for r in result.rows if r.status == "op"]
    assert len(measured) >= 6
    for r in measured:
        assert r.accumulated.snr_db > 100, (r.layer, r.accumulated)
        assert r.local is not None and r.local.snr_db > 100, (r.layer, r.local)
        assert r.accumulated.cosine > 0.999999
    assert result.first_jump is None


@pytest.mark.parametrize("variant_id,backend", [("coreml-conv2-2bit", "mil-reference"),
                                                ("tflite-conv2-damaged", "litert")])
def test_one_bad_layer_is_the_first_jump_and_the_worst_local_error(diagnosed, variant_id, backend):
    result = diagnosed(variant_id)
    assert result.backend == backend
    assert result.first_jump == BAD_LAYER
    assert result.worst_local == BAD_LAYER
    rows = {r.layer: r for r in result.rows}
    # before the bad layer the variant is exact; the bad layer alone (float inputs) is far off
    assert rows["conv1"].accumulated.snr_db > 100 and rows["pool1"].accumulated.snr_db > 100
    assert rows[BAD_LAYER].local.snr_db < 40
    # after it, every later layer alone is still exact: the error they show is inherited
    later = [r for r in result.rows if r.status == "op" and r.layer not in ("conv1", "pool1", BAD_LAYER)]
    assert later and all(r.local.snr_db > 60 for r in later), [(r.layer, r.local) for r in later]
    assert all(r.accumulated.snr_db < 60 for r in later)


def test_every_keras_layer_has_a_row_and_the_json_says_what_the_table_says(diag_run, diagnosed):
    from edgekit.rundir import ModelArtifact

    result = diagnosed("coreml-conv2-2bit")
    keras = ModelArtifact.read(diag_run).load_keras()
    names = [layer.name for layer in keras.layers if type(layer).__name__ != "InputLayer"]
    assert [r.layer for r in result.rows] == names
    data = artifacts.read_manifest(RunDir(diag_run).diagnose_json("coreml-conv2-2bit"), DIAGNOSE_SCHEMA)
    assert data["first_jump"] == BAD_LAYER and data["images"] == LIMIT and data["backend"] == "mil-reference"
    by_layer = {row["layer"]: row for row in data["rows"]}
    for r in result.rows:
        j = by_layer[r.layer]
        if r.accumulated is None:
            assert j["accumulated"] is None and r.status == "none"
            continue
        snr = j["accumulated"]["snr_db"]
        assert (snr is None and math.isinf(r.accumulated.snr_db)) or abs(snr - r.accumulated.snr_db) < 1e-3
    png = RunDir(diag_run).diagnose_dir / data["chart"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_is_current_until_the_variant_changes(diag_run, diagnosed, tmp_path):
    import shutil

    from support.trees import edit_json

    from edgekit.runtime import diagnose

    diagnosed("tflite-fp32")
    assert diagnose.is_current(diag_run)
    run = tmp_path / "run"
    shutil.copytree(diag_run, run)
    edit_json(run / "variants" / "tflite-fp32" / "variant.json", lambda m: m.update(zipped_bytes=1))
    assert not diagnose.is_current(run)


def test_cli_prints_the_table_and_names_the_jump(diag_run, capsys):
    from edgekit.apps import cli

    code = cli.main(["diagnose", "--run", str(diag_run), "--variant", "tflite-conv2-damaged", "--limit", "50"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"first jump: {BAD_LAYER}" in out
    lines = [ln for ln in out.splitlines() if ln.startswith(BAD_LAYER + " ")]
    assert len(lines) == 1 and "<- first jump" in lines[0]
