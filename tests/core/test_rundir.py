"""edgekit.rundir: pixel mappings, the typed model I/O, the variant index,
variant and check artifacts, and the run-directory paths, on small hand-made dirs."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from edgekit import artifacts, rundir
from edgekit.errors import ArtifactError
from edgekit.rundir import (CheckArtifact, Color, IndexEntry, Kind, ModelIO, PixelMapping, RunDir, VariantArtifact,
                            VariantIndex, VariantStatus)


def one_line(exc_info, *fragments):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for f in fragments:
        assert f in msg, msg
    return msg


# ------------------------------------------------------------ PixelMapping

def test_unit_range_is_pixel_over_255_in_float32_bit_for_bit():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    got = PixelMapping.from_range(0, 1).apply(x)
    want = (x.astype(np.float32) / 255)[..., None]
    assert got.dtype == np.float32 and got.shape == (1, 16, 16, 1)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_uint8_lookup_equals_the_float64_arithmetic_bit_for_bit():
    """apply() looks uint8 pixels up in a 256-value table per channel; the
    values are the float64 formula's, rounded once, for every pixel value,
    channel and mapping; other dtypes take the formula itself."""
    r, g = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgb = np.stack([r, g, 255 - r], -1).astype(np.uint8)   # every value in every channel
    for m, x in ((PixelMapping.from_mean_std([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), rgb[None]),
                 (PixelMapping.from_range(-1, 1, channels=3), rgb[None]),
                 (PixelMapping.from_range(0, 1), rgb[None, ..., 0])):
        want = (x.astype(np.float64)[..., None] if x.ndim == 3 else x.astype(np.float64))
        want = (want * np.asarray(m.scale) + np.asarray(m.bias)).astype(np.float32)
        got = m.apply(x)
        assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))
        assert np.array_equal(m.apply(x.astype(np.int64)).view(np.uint32), want.view(np.uint32))


def test_symmetric_range_and_mean_std():
    m = PixelMapping.from_range(-1, 1, channels=3)
    assert m.channels == 3 and m.value_range() == [-1.0, 1.0]
    x = np.array([[[[0, 255, 128]]]], np.uint8)
    assert m.apply(x).tolist() == [[[[-1.0, 1.0, np.float32(-1 + 128 * 2 / 255)]]]]
    ms = PixelMapping.from_mean_std([0.5, 0.25, 0.0], [0.5, 0.25, 1.0])
    y = ms.apply(np.array([[[[255, 0, 51]]]], np.uint8))[0, 0, 0]
    assert y.tolist() == pytest.approx([1.0, -1.0, 0.2], abs=1e-6)
    assert ms.value_range() == pytest.approx([-1.0, 3.0])
    assert ms.channels == 3


# ------------------------------------------------------------ ModelIO

GRAY = ModelIO(height=28, width=28, channels=1, class_names=tuple("0123456789"))
RGB = ModelIO(height=12, width=10, channels=3, class_names=("cat", "dog"), color=Color.RGB,
              pixels=PixelMapping.from_range(-1, 1, 3), output_activation="none")


@pytest.mark.parametrize("io", [GRAY, RGB], ids=["grayscale", "rgb"])
def test_model_io_round_trips(io, tmp_path):
    data = json.loads(json.dumps(io.to_json()))
    assert ModelIO.from_json(data, tmp_path / "manifest.json") == io


def _bad(edit):
    def make():
        d = copy.deepcopy(GRAY.to_json())
        edit(d)
        return d
    return make


BAD_IO = {
    "wrong-shape": (_bad(lambda d: d["inputs"][0].update(shape=[None, 28, 28])), "inputs[0].shape"),
    "channels-2": (_bad(lambda d: d["inputs"][0].update(shape=[None, 28, 28, 2])), "1 or 3"),
    "duplicate-classes": (_bad(lambda d: d.update(class_names=["a", "a"] + list("23456789"))), "duplicates"),
    "class-count": (_bad(lambda d: d.update(class_names=list("012345678"))), "does not match 9 class names"),
    "color-vs-channels": (_bad(lambda d: d["inputs"][0].update(color="rgb")), "does not fit 1 channel"),
    "bad-color": (_bad(lambda d: d["inputs"][0].update(color="cmyk")), "inputs[0].color should be"),
    "zero-scale": (_bad(lambda d: d["inputs"][0]["pixels"].update(scale=[0])), "inputs[0].pixels"),
    "pixels-length": (_bad(lambda d: d["inputs"][0]["pixels"].update(bias=[0, 0, 0])), "inputs[0].pixels"),
    "activation": (_bad(lambda d: d["outputs"][0].update(activation="sigmoid")), "activation should be"),
    "two-inputs": (_bad(lambda d: d["inputs"].append(d["inputs"][0])), "exactly one image input"),
}


@pytest.mark.parametrize("name", BAD_IO)
def test_model_io_refuses_with_one_line_naming_the_file(name, tmp_path):
    make, fragment = BAD_IO[name]
    where = tmp_path / "model" / "manifest.json"
    with pytest.raises(ArtifactError) as e:
        ModelIO.from_json(make(), where)
    one_line(e, str(where), "io: ", fragment)


# ------------------------------------------------------------ VariantIndex

def _index(run):
    return VariantIndex(run=RunDir(run), source_sha256="ab" * 32, entries={
        "tflite-fp32": IndexEntry("tflite-fp32", "tflite", Kind.FLOAT32, None, VariantStatus.OK),
        "tflite-int8": IndexEntry("tflite-int8", "tflite", Kind.QUANTIZED, "tflite-fp32", VariantStatus.OK),
        "coreml-pal4": IndexEntry("coreml-pal4", "coreml", Kind.LOW_BIT, "coreml-fp32", VariantStatus.FAILED,
                                  "conversion failed: boom"),
    })


def test_variant_index_round_trips(tmp_path):
    idx = _index(tmp_path)
    assert idx.write() == RunDir(tmp_path).variant_index
    back = VariantIndex.read(tmp_path)
    assert back.entries == idx.entries and back.source_sha256 == idx.source_sha256
    assert back.ok_ids == ["tflite-fp32", "tflite-int8"]
    assert back.reference_of("tflite-int8") == "tflite-fp32" and back.reference_of("tflite-fp32") == "tflite-fp32"
    raw = json.loads(RunDir(tmp_path).variant_index.read_text())
    assert raw["schema"] == rundir.INDEX_SCHEMA
    assert raw["variants"]["coreml-pal4"]["manifest"] is None
    assert raw["variants"]["tflite-int8"]["manifest"] == "tflite-int8/variant.json"


def test_index_variants_refuses_unknown_and_failed_ids(tmp_path):
    _index(tmp_path).write()
    idx = VariantIndex.read(tmp_path)
    with pytest.raises(ArtifactError) as e:
        idx.variants(ids=["tflite-w4"])
    one_line(e, "index.json", "no variant 'tflite-w4'", "tflite-fp32")
    with pytest.raises(ArtifactError) as e:
        idx.variants(ids=["coreml-pal4"])
    one_line(e, "index.json", "'coreml-pal4' is failed", "boom")


def test_index_of_another_schema_is_refused(tmp_path):
    path = _index(tmp_path).write()
    data = json.loads(path.read_text())
    artifacts.write_json(path, {**data, "schema": "edgekit.variant-index/0"})
    with pytest.raises(ArtifactError) as e:
        VariantIndex.read(tmp_path)
    one_line(e, "index.json", "not supported")


def test_missing_index_says_to_convert(tmp_path):
    with pytest.raises(ArtifactError) as e:
        VariantIndex.read(tmp_path)
    one_line(e, "edgekit convert --run")


# ------------------------------------------------------------ VariantArtifact

class FakeModel:
    sha256 = "cd" * 32


def _variant(run, vid="tflite-int8", **edits):
    d = RunDir(run).variant_dir(vid)
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.tflite").write_bytes(b"TFL3 tiny bytes")
    record = {"id": vid, "format": "tflite", "kind": "quantized", "reference": "tflite-fp32",
              "recipe": {"id": vid}, "source_model": {"sha256": FakeModel.sha256},
              "file": artifacts.file_record(d / "model.tflite", d)}
    VariantArtifact.write(d, record)
    if edits:
        data = json.loads((d / "variant.json").read_text())
        data.update(edits)
        artifacts.write_json(d / "variant.json", data)
    return d


def test_variant_reads_back_with_its_kind_and_reference(tmp_path):
    _variant(tmp_path)
    v = VariantArtifact.read(tmp_path, "tflite-int8", FakeModel())
    assert (v.kind, v.reference, v.platform, v.is_reference) == (Kind.QUANTIZED, "tflite-fp32", "android", False)
    assert v.file_intact() and v.size_bytes == len(b"TFL3 tiny bytes")


BAD_VARIANT = {
    "id-mismatch": ({"id": "tflite-fp16"}, "does not match its directory"),
    "unknown-format": ({"format": "onnx"}, "unknown format 'onnx'"),
    "unknown-kind": ({"kind": "int3"}, "unknown kind 'int3'"),
    "reference-not-string": ({"reference": 3}, "reference should be a variant id or null"),
    "another-model": ({"source_model": {"sha256": "ef" * 32}}, "converted from another model"),
}


@pytest.mark.parametrize("name", BAD_VARIANT)
def test_variant_read_refuses_with_one_line(name, tmp_path):
    edits, fragment = BAD_VARIANT[name]
    _variant(tmp_path, **edits)
    with pytest.raises(ArtifactError) as e:
        VariantArtifact.read(tmp_path, "tflite-int8", FakeModel())
    one_line(e, "variant.json", fragment)


def test_variant_dir_without_manifest_and_changed_file_are_refused(tmp_path):
    RunDir(tmp_path).variant_dir("tflite-fp16").mkdir(parents=True)
    with pytest.raises(ArtifactError) as e:
        VariantArtifact.read(tmp_path, "tflite-fp16")
    one_line(e, "tflite-fp16", "has no variant.json")
    d = _variant(tmp_path)
    (d / "model.tflite").write_bytes(b"TFL3 other bytes")
    assert VariantArtifact.read(tmp_path, "tflite-int8").file_intact() is False
    with pytest.raises(ArtifactError) as e:
        VariantArtifact.read(tmp_path, "tflite-int8", FakeModel())
    one_line(e, "model.tflite", "sha256 differs")


# ------------------------------------------------------------ CheckArtifact

def test_check_artifact_round_trips_and_records_every_predictions_file(tmp_path):
    run = RunDir(tmp_path)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], np.float32)
    labels = np.array([0, 1, 1])
    with artifacts.atomic_dir(run.check_dir) as d:
        CheckArtifact.write(d, {"variants": {"tflite-fp32": {"passed": True}}, "model_manifest": {"sha256": "x"},
                                "test_count": 3},
                            {"original": probs, "tflite-fp32": probs[::-1]}, labels, b"<testsuites/>")
    c = CheckArtifact.read(tmp_path)
    assert c.results["schema"] == rundir.CHECK_SCHEMA
    assert c.results["predictions"] == {"original": "predictions/original.npz",
                                        "tflite-fp32": "predictions/tflite-fp32.npz"}
    assert c.variant_ids == ["tflite-fp32"]
    p, labs = c.original()
    assert np.array_equal(p, probs.astype(np.float64)) and labs.tolist() == [0, 1, 1]
    assert np.array_equal(c.probabilities("tflite-fp32"), probs[::-1].astype(np.float64))
    assert run.junit.read_bytes() == b"<testsuites/>"
    assert c.sha256 == artifacts.sha256_file(run.check_results)
    with pytest.raises(ArtifactError) as e:
        c.predictions_path("coreml-fp32")
    one_line(e, "results.json", "no predictions file for 'coreml-fp32'")


# ------------------------------------------------------------ RunDir

def _all_paths(run: RunDir):
    for name in dir(RunDir):
        attr = getattr(RunDir, name)
        if isinstance(attr, property):
            yield name, getattr(run, name)
    yield "variant_dir", run.variant_dir("x")
    yield "variant_manifest", run.variant_manifest("x")
    yield "shard_record", run.shard_record("worker", 0)
    yield "diagnose_json", run.diagnose_json("x")
    yield "tune_json", run.tune_json("x")
    yield "tuned_recipe", run.tuned_recipe("x")


def test_every_path_is_inside_the_root_and_every_schema_path_is_a_run_path(tmp_path):
    run = RunDir(tmp_path / "r")
    paths = dict(_all_paths(run))
    assert len(paths) > 15
    for name, p in paths.items():
        assert p != run.root and run.root in p.parents, name
    rel = {run.relative(p) for p in paths.values()}
    for pattern in rundir.SCHEMAS:
        concrete = pattern.replace("<id>", "x").replace("<task>-<index>", "worker-0")
        assert concrete in rel, pattern
    for p in (run.model_manifest, run.variant_index, run.variant_manifest("x"), run.check_results,
              run.report_json, run.golden_json, run.pipeline_json, run.shard_record("worker", 0)):
        assert any(run.relative(p) == pat.replace("<id>", "x").replace("<task>-<index>", "worker-0")
                   for pat in rundir.SCHEMAS), p
    assert set(rundir.iter_schema_ids()) == set(rundir.SCHEMAS.values()) | {rundir.RECIPE_SCHEMA}


def test_relative_of_a_relative_run_accepts_resolved_paths(tmp_path, monkeypatch):
    """`edgekit check --run runs/x` (a relative run dir) with a variant path that
    artifacts.resolve_inside resolved: check records it relative to the run."""
    monkeypatch.chdir(tmp_path)
    run = RunDir("runs/x")
    run.variant_dir("v").mkdir(parents=True)
    assert run.relative(run.variant_dir("v").resolve() / "model.tflite") == "variants/v/model.tflite"
    assert run.relative(run.variant_dir("v")) == "variants/v"
