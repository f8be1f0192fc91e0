"""The TensorBoard logs and projector export open in a real TensorBoard.

Starts the ``tensorboard`` server (a pinned dependency) on a free loopback
port against a tiny run's ``model/tensorboard`` and asks its projector and
scalars plugins what they see, through the same HTTP endpoints the web UI
uses.
"""
from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{url}: HTTP {e.code}: {e.read()[:200]!r}") from None


@pytest.fixture(scope="module")
def tensorboard_url(tiny_run):
    exe = Path(sys.executable).with_name("tensorboard")
    if not exe.exists():
        pytest.skip("the tensorboard command is not installed next to this Python")
    port = _free_port()
    proc = subprocess.Popen([str(exe), "--logdir", str(tiny_run / "model" / "tensorboard"),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(url + "/data/plugins_listing")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"tensorboard did not start (exit code {proc.poll()})")
                time.sleep(1)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_projector_plugin_serves_the_features(tensorboard_url, tiny_run):
    # TensorBoard discovers the run, then the plugin reads the TSV, both in
    # the background: "Unknown run" (HTTP 400) and an embedding without its
    # shape are both "not yet", until the deadline.
    deadline = time.monotonic() + 60
    while True:
        try:
            (emb,) = json.loads(_get(tensorboard_url + "/data/plugin/projector/info?run=."))["embeddings"]
        except AssertionError as e:
            if "Unknown run" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(1)
            continue
        if "tensorShape" in emb or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert emb["tensorName"] == "features"
    n, dim = emb["tensorShape"]
    assert (n, dim) == (1000, 128)  # tiny_run: 1,000 test images, the cnn's dense-128 layer
    raw = _get(tensorboard_url + "/data/plugin/projector/tensor?run=.&name=features")
    served = np.frombuffer(raw, dtype="<f4").reshape(n, dim)
    on_disk = np.loadtxt(tiny_run / "model" / "tensorboard" / "projector" / "tensors.tsv",
                         delimiter="\t", dtype=np.float32)
    np.testing.assert_allclose(served, on_disk, rtol=1e-6)
    meta = _get(tensorboard_url + "/data/plugin/projector/metadata?run=.&name=features").decode()
    assert len(meta.splitlines()) == n + 1
    sprite = _get(tensorboard_url + "/data/plugin/projector/sprite_image?run=.&name=features")
    assert sprite[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", sprite[16:24])
    side = int(np.ceil(np.sqrt(n)))
    assert (w, h) == (side * 28, side * 28)


def test_scalars_plugin_lists_the_training_runs(tensorboard_url):
    # Runs are discovered in the background after the server answers.
    deadline = time.monotonic() + 60
    while True:
        tags = json.loads(_get(tensorboard_url + "/data/plugin/scalars/tags"))
        if {"train", "validation"} <= set(tags) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {"train", "validation"} <= set(tags), tags
    assert any("accuracy" in t for t in tags["validation"]), tags["validation"]
