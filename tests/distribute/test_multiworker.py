"""Two real worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy, ring
all-reduce over gRPC) train the cnn for one epoch of 12,800 MNIST images at a
global batch of 128 (100 steps), next to a single-process run with the same
global batch and steps. Checks: disjoint shards covering every consumed
example once, identical weights on both workers, a complete chief artifact
that `edgekit convert` turns into a LiteRT model agreeing with it, nothing
written by the non-chief except its shard record, and test accuracy within
0.5 points of the single-process run. Every process has a timeout and is
killed on failure; the whole test is capped at 240 s."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from edgekit import artifacts
from edgekit.rundir import MODEL_SCHEMA, VARIANT_SCHEMA
from edgekit.train import distribute

pytestmark = pytest.mark.slow

# an explicit learning rate: the one-process run must use the very same one
# (a model default would be scaled with the global batch on the cluster only)
ARGS = ["--epochs", "1", "--train-limit", "12800", "--test-limit", "2000", "--batch-size", "128",
        "--learning-rate", "3e-3", "--seed", "0"]
STEPS = 12800 // 128
CAP_SECONDS = 240


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def launch(run_dir, log, env_extra, strategy):
    env = {**os.environ, "EDGEKIT_PROGRESS": "0", **env_extra}
    env.pop("TF_CONFIG", None) if strategy == "default" else None
    return subprocess.Popen([sys.executable, "-m", "edgekit", "train", "--run", str(run_dir),
                             "--strategy", strategy, *ARGS],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiworker")
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = {}
    for i in (0, 1):
        tmp = root / f"tmp{i}"
        tmp.mkdir()
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs[f"w{i}"] = launch(root / f"w{i}", open(root / f"w{i}.log", "w"),
                                {"TF_CONFIG": tf_config, "TMPDIR": str(tmp)}, "multiworker")
    procs["single"] = launch(root / "single", open(root / "single.log", "w"), {}, "default")
    deadline = time.monotonic() + CAP_SECONDS
    try:
        for name, p in procs.items():
            p.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        pytest.fail(f"training did not finish within {CAP_SECONDS} s; logs in {root}")
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    for name, p in procs.items():
        log = (root / f"{name}.log").read_text()[-3000:]
        assert p.returncode == 0, f"{name} exited {p.returncode}:\n{log}"
    return root


def shard(root, i):
    return json.loads((root / f"w{i}" / "distributed" / f"worker-{i}.json").read_text())


def test_workers_consumed_disjoint_shards(cluster_run):
    recs = [shard(cluster_run, i) for i in (0, 1)]
    masks = [distribute.decode_bitmap(r) for r in recs]
    for i, (r, m) in enumerate(zip(recs, masks)):
        assert r["task"]["input_pipeline"] == {"id": i, "of": 2}
        assert r["examples_consumed"] == r["unique_examples"] == m.sum() == STEPS * 64  # per-replica batch 64
        assert (np.flatnonzero(m) % 2 == i).all()  # worker k reads indices k mod 2
    assert not (masks[0] & masks[1]).any()
    assert (masks[0] | masks[1]).sum() == STEPS * 128 == 12800  # one full pass over the training split
    assert recs[0]["indices_sha256"] != recs[1]["indices_sha256"]


def test_workers_end_with_identical_weights_and_only_the_chief_writes(cluster_run):
    r0, r1 = shard(cluster_run, 0), shard(cluster_run, 1)
    assert r0["weights_sha256"] == r1["weights_sha256"]  # synchronous all-reduce kept the replicas equal
    assert r0["test_accuracy"] == r1["test_accuracy"]
    assert r0["writer"] and not r1["writer"]
    assert not (cluster_run / "w1" / "model").exists()
    assert sorted(p.name for p in (cluster_run / "w1").iterdir()) == ["distributed"]
    assert list((cluster_run / "tmp1").iterdir()) == []  # the non-chief's temporary output was removed


def test_chief_manifest_is_complete_and_converts(cluster_run):
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.apps.cli import main
    from edgekit.train.data import load_from_manifest, to_float
    from edgekit.train.models import load_model

    model_dir = cluster_run / "w0" / "model"
    m = artifacts.read_manifest(model_dir / "manifest.json", MODEL_SCHEMA,
                                {"config": dict, "dataset": dict, "io": dict, "files": dict, "metrics": dict,
                                 "distribution": dict})
    d = m["config"]["distribution"]
    assert (d["strategy"], d["num_workers"], d["num_replicas_in_sync"]) == ("multiworker", 2, 2)
    assert (d["global_batch_size"], d["per_replica_batch_size"], d["steps_per_epoch"]) == (128, 64, STEPS)
    assert d["writer"] == {"task_type": "worker", "task_index": 0}
    assert d["learning_rate"]["effective"] == m["config"]["learning_rate"] == 3e-3
    assert d["learning_rate"]["rule"].startswith("explicit")
    model = load_model(model_dir, m)
    assert distribute.weights_sha256(model) == m["distribution"]["weights_sha256"]

    assert main(["convert", "--run", str(cluster_run / "w0"), "--variants", "tflite-fp32"]) == 0
    variant = artifacts.read_manifest(cluster_run / "w0" / "variants" / "tflite-fp32" / "variant.json",
                                      VARIANT_SCHEMA, {"file": dict})
    ds = load_from_manifest(m, model_dir)
    x = to_float(ds.x_test[:200])
    interp = Interpreter(model_path=str(cluster_run / "w0" / "variants" / "tflite-fp32" / variant["file"]["path"]))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], x.shape)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    lite = interp.get_tensor(out["index"])
    keras_probs = model.predict(x, verbose=0)
    assert (lite.argmax(1) == keras_probs.argmax(1)).all()
    assert np.abs(lite - keras_probs).max() < 1e-4  # fp32 conversion: same math, float rounding only


def test_accuracy_within_half_a_point_of_one_process(cluster_run):
    multi = json.loads((cluster_run / "w0" / "model" / "manifest.json").read_text())
    single = json.loads((cluster_run / "single" / "model" / "manifest.json").read_text())
    assert single["config"]["batch_size"] == multi["config"]["distribution"]["global_batch_size"] == 128
    assert single["config"]["learning_rate"] == multi["config"]["learning_rate"]
    assert single["metrics"]["epochs_run"] == multi["metrics"]["epochs_run"] == 1
    a, b = multi["metrics"]["test_accuracy"], single["metrics"]["test_accuracy"]
    assert abs(a - b) <= 0.005, f"2 workers {a:.4f} vs 1 process {b:.4f}"
