"""Fuzzing edgekit's readers of untrusted bytes with hypothesis.

Targets: the IDX reader, the manifest loader with each stage's validation
(model manifest as convert reads it, variant.json as check discovers it),
the Core ML package reader and blob decoder of the mil-reference
interpreter, and the LiteRT backend's open (in a child process, so a
segfault in LiteRT fails this test instead of killing pytest). Only
edgekit's own typed errors may come out; each example has a deadline.

Fast suite: a few hundred examples per target; ``-m slow``: 1,000 each.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import TESTS_DIR
from support.fuzz import mutate

from edgekit.errors import EdgekitError

FAST, SLOW = 200, 1000
DEADLINE_MS = 5000  # one example; a hang or quadratic blow-up fails
COMMON = dict(deadline=DEADLINE_MS, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                           HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------ IDX

def _valid_idx(kind: str, compress: bool) -> bytes:
    from edgekit.train.idx import IMAGES_MAGIC, LABELS_MAGIC

    if kind == "images":
        arr = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
        data = struct.pack(">IIII", IMAGES_MAGIC, 5, 4, 3) + arr.tobytes()
    else:
        data = struct.pack(">II", LABELS_MAGIC, 7) + bytes(range(7))
    return gzip.compress(data, mtime=0) if compress else data


def _idx_property(data_strategy):
    from edgekit.train.idx import read_idx

    def prop(tmp_path_factory, example):
        kind, data = example
        d = tmp_path_factory.mktemp("idx")
        p = d / "f"
        p.write_bytes(data)
        try:
            got = read_idx(p, kind)
        except EdgekitError:
            return
        arr = got.array
        assert arr.dtype == np.uint8 and arr.ndim == (3 if kind == "images" else 1)
        assert arr.nbytes <= 4096 * max(1, len(data))  # nothing the file could not hold
    return prop


@st.composite
def idx_inputs(draw):
    kind = draw(st.sampled_from(["images", "labels"]))
    if draw(st.integers(0, 5)) == 0:
        return kind, draw(st.binary(max_size=200))
    compressed = draw(st.booleans())
    base = _valid_idx(kind, compressed)
    if compressed and draw(st.booleans()):  # mutate the content, then compress it again
        return kind, gzip.compress(mutate(gzip.decompress(base), draw), mtime=0)
    return kind, mutate(base, draw)


def _run_idx(n, tmp_path_factory):
    prop = _idx_property(idx_inputs())

    @settings(max_examples=n, **COMMON)
    @given(idx_inputs())
    def check(example):
        prop(tmp_path_factory, example)
    check()


def test_fuzz_idx_reader(tmp_path_factory):
    _run_idx(FAST, tmp_path_factory)


@pytest.mark.slow
def test_fuzz_idx_reader_1000(tmp_path_factory):
    _run_idx(SLOW, tmp_path_factory)


# ------------------------------------------------------------ manifests

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def manifest_texts(draw, valid: dict):
    """A valid manifest with one to three parts replaced, removed, or the
    whole text damaged."""
    m = json.loads(json.dumps(valid))
    paths = [p for p in _paths(m) if p]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        node = m
        try:
            for k in path[:-1]:
                node = node[k]
            if draw(st.integers(0, 3)) == 0 and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            pass
    text = json.dumps(m, allow_nan=True)
    if draw(st.integers(0, 4)) == 0:
        text = mutate(text.encode(), draw).decode("utf-8", "replace")
    return text


def _run_manifest_fuzz(n, rel_base, tmp_path_factory):
    from edgekit.convert import stage
    from edgekit.rundir import ModelArtifact, VariantIndex

    model_valid = json.loads((rel_base / "model" / "manifest.json").read_text())
    variant_valid = json.loads((rel_base / "variants" / "tflite-fp32" / "variant.json").read_text())
    run = tmp_path_factory.mktemp("manifests") / "run"
    (run / "model").mkdir(parents=True)
    shutil.copy(rel_base / "model" / "manifest.json", run / "model" / "manifest.json")
    shutil.copytree(rel_base / "variants" / "tflite-fp32", run / "variants" / "tflite-fp32")
    shutil.copy(rel_base / "variants" / "index.json", run / "variants" / "index.json")

    @settings(max_examples=n, **COMMON)
    @given(manifest_texts(model_valid), manifest_texts(variant_valid))
    def check_both(model_text, variant_text):
        (run / "model" / "manifest.json").write_text(model_text, encoding="utf-8")
        try:
            stage.read_model(run)
        except EdgekitError:
            pass
        (run / "model" / "manifest.json").write_text(json.dumps(model_valid))
        (run / "variants" / "tflite-fp32" / "variant.json").write_text(variant_text, encoding="utf-8")
        try:
            found = VariantIndex.read(run).variants(ModelArtifact.read(run), ["tflite-fp32"])
        except EdgekitError:
            return
        # accepted: then the file it points at is inside the variant dir and unchanged
        assert all(v.path.resolve().is_relative_to((run / "variants").resolve()) for v in found)
    check_both()


def test_fuzz_manifests(rel_base, tmp_path_factory):
    _run_manifest_fuzz(FAST, rel_base, tmp_path_factory)


@pytest.mark.slow
def test_fuzz_manifests_1000(rel_base, tmp_path_factory):
    _run_manifest_fuzz(SLOW, rel_base, tmp_path_factory)


# ------------------------------------------------------ Core ML package

def _run_mil_fuzz(n, rel_base, tmp_path_factory):
    from edgekit.runtime import mil

    pkg = rel_base / "variants" / "coreml-fp32" / "Model.mlpackage"
    weight = next(pkg.rglob("weight.bin"))
    spec = next(pkg.rglob("model.mlmodel"))
    weight_bytes, spec_bytes = weight.read_bytes(), spec.read_bytes()
    work = tmp_path_factory.mktemp("mil") / "Model.mlpackage"
    shutil.copytree(pkg, work)
    w_rel, s_rel = weight.relative_to(pkg), spec.relative_to(pkg)
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)

    @settings(max_examples=n, **COMMON)
    @given(st.data())
    def check_pkg(data):
        which = data.draw(st.sampled_from(["weights", "spec", "both"]))
        wb = mutate(weight_bytes, data.draw) if which != "spec" else weight_bytes
        sb = mutate(spec_bytes, data.draw) if which != "weights" else spec_bytes
        (work / w_rel).write_bytes(wb)
        (work / s_rel).write_bytes(sb)
        try:
            program = mil.load(work)
            out = program.predict(x)
        except EdgekitError:
            return
        assert out.shape[0] == 2 and out.dtype == np.float32
    check_pkg()


def test_fuzz_mil_package(rel_base, tmp_path_factory):
    _run_mil_fuzz(FAST, rel_base, tmp_path_factory)


@pytest.mark.slow
def test_fuzz_mil_package_1000(rel_base, tmp_path_factory):
    _run_mil_fuzz(SLOW, rel_base, tmp_path_factory)


def _run_blob_fuzz(n, tmp_path_factory):
    from edgekit.runtime.mil.blob import BLOB_DTYPES, WeightFile

    names = [name for name, _ in BLOB_DTYPES.values()]
    d = tmp_path_factory.mktemp("blob")

    @settings(max_examples=n, **COMMON)
    @given(st.binary(max_size=512), st.integers(-(2**70), 2**70), st.sampled_from(names), st.integers(-(2**40), 2**70),
           st.booleans())
    def check_blob(body, offset, dtype, count, valid_header):
        header = struct.pack("<II", 1, 2) + bytes(56) if valid_header else b""
        (d / "weight.bin").write_bytes(header + body)
        try:
            wf = WeightFile(d / "weight.bin")
            arr = wf.read(offset, dtype, count)
        except EdgekitError:
            return
        assert arr.size == count and arr.nbytes <= 8 * len(body) * 8
    check_blob()


def test_fuzz_blob_reader(tmp_path_factory):
    _run_blob_fuzz(FAST, tmp_path_factory)


@pytest.mark.slow
def test_fuzz_blob_reader_1000(tmp_path_factory):
    _run_blob_fuzz(SLOW, tmp_path_factory)


# ----------------------------------------------------------- LiteRT open

CHILD = r'''
import sys, tempfile, os
from pathlib import Path
import edgekit
from edgekit.errors import EdgekitError
from edgekit.runtime.backends import LiteRTBackend
import numpy as np
from hypothesis import given, settings, HealthCheck, strategies as st
from support.fuzz import mutate
src = Path(sys.argv[1]).read_bytes()
n = int(sys.argv[2])
work = Path(tempfile.mkdtemp()) / "model.tflite"
x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)

@settings(max_examples=n, deadline=5000, suppress_health_check=list(HealthCheck), database=None)
@given(st.data())
def prop(data):
    blob = mutate(src, data.draw) if data.draw(st.integers(0, 9)) else data.draw(st.binary(max_size=300))
    work.write_bytes(blob)
    print(len(blob), flush=True, file=open(os.environ["REL_LAST"], "w"))
    work.with_suffix(".last").write_bytes(blob)
    try:
        b = LiteRTBackend(work)
        b.predict(x)
    except EdgekitError:
        return
prop()
print("ok")
'''


def _run_tflite_fuzz(n, rel_base, tmp_path):
    src = rel_base / "variants" / "tflite-fp32" / "model.tflite"
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))  # the child imports support
    env = {**os.environ, "PYTHONPATH": path, "REL_LAST": str(tmp_path / "last"), "EDGEKIT_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(src), str(n)], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, (f"LiteRT open died (exit {proc.returncode}) on a damaged .tflite:\n"
                                  f"{proc.stderr[-3000:]}")
    assert proc.stdout.strip().endswith("ok")


def test_fuzz_tflite_open(rel_base, tmp_path):
    _run_tflite_fuzz(FAST, rel_base, tmp_path)


@pytest.mark.slow
def test_fuzz_tflite_open_1000(rel_base, tmp_path):
    _run_tflite_fuzz(SLOW, rel_base, tmp_path)
