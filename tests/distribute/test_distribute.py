"""Fast tests of train/distribute.py: TF_CONFIG validation, chief detection,
global batch splitting, learning-rate scaling, and a real `--strategy
mirrored` run on the one local CPU device (the multi-process run is in
test_multiworker.py)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgekit import artifacts
from edgekit.rundir import MODEL_SCHEMA
from edgekit.apps.cli import main
from edgekit.errors import ConfigError
from edgekit.train import distribute
from edgekit.train.config import TrainConfig


def tf_config(cluster, task_type="worker", index=0):
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


TWO = {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]}


def test_parse_valid_tf_config_without_chief():
    t = distribute.parse_tf_config(tf_config(TWO, "worker", 1))
    assert (t.num_workers, t.task_type, t.task_index, t.worker_id, t.is_chief) == (2, "worker", 1, 1, False)
    assert distribute.parse_tf_config(tf_config(TWO, "worker", 0)).is_chief


def test_chief_job_makes_the_chief_the_writer_and_shifts_worker_ids():
    cluster = {"chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222", "10.0.0.3:2222"]}
    chief = distribute.parse_tf_config(tf_config(cluster, "chief", 0))
    w0 = distribute.parse_tf_config(tf_config(cluster, "worker", 0))
    assert chief.is_chief and chief.worker_id == 0 and chief.num_workers == 3
    assert not w0.is_chief and w0.worker_id == 1  # worker 0 is not the chief when a chief exists


@pytest.mark.parametrize("value, needle", [
    (None, "not set"),
    ("", "not set"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), '"cluster"'),
    (tf_config({"ps": ["a:1"], "worker": ["b:2"]}), "'ps'"),
    (tf_config({"worker": []}), "non-empty list"),
    (tf_config({"worker": ["localhost"]}), "host:port"),
    (tf_config({"worker": ["h:70000"]}), "host:port"),
    (tf_config({"worker": ["h:1", "h:1"]}), "twice"),
    (tf_config({"chief": ["a:1", "b:1"], "worker": ["c:1"]}), "one \"chief\""),
    (json.dumps({"cluster": TWO}), '"task"'),
    (tf_config(TWO, "evaluator", 0), "task type 'evaluator'"),
    (tf_config(TWO, "worker", 2), "out of range"),
    (tf_config(TWO, "worker", True), "out of range"),
])
def test_malformed_tf_config_is_one_config_error_naming_tf_config(value, needle):
    with pytest.raises(ConfigError) as e:
        distribute.parse_tf_config(value)
    assert e.value.where == "TF_CONFIG" and needle in e.value.problem and "\n" not in str(e.value)


def test_cli_multiworker_without_tf_config_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["train", "--run", str(tmp_path / "r"), "--strategy", "multiworker"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgekit: error: TF_CONFIG: not set") and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_cli_multiworker_refuses_uneven_global_batch_before_connecting(tmp_path, monkeypatch, capsys):
    # Three workers at ports nobody listens on: the split is refused before
    # the strategy tries to reach them (otherwise this would hang).
    three = {"worker": ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]}
    monkeypatch.setenv("TF_CONFIG", tf_config(three))
    assert main(["train", "--run", str(tmp_path / "r"), "--strategy", "multiworker", "--batch-size", "64"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size: the global batch 64 does not split evenly over 3 replicas" in err
    assert not (tmp_path / "r").exists()


def test_cli_unknown_strategy_exits_2(tmp_path, capsys):
    assert main(["train", "--run", str(tmp_path / "r"), "--strategy", "parameter-server"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("global_batch, replicas, per", [(128, 1, 128), (128, 2, 64), (96, 3, 32), (8, 8, 1)])
def test_split_batch(global_batch, replicas, per):
    assert distribute.split_batch(global_batch, replicas) == per


@pytest.mark.parametrize("global_batch, replicas", [(130, 4), (3, 4), (127, 2)])
def test_split_batch_refuses_uneven(global_batch, replicas):
    with pytest.raises(ConfigError) as e:
        distribute.split_batch(global_batch, replicas)
    assert e.value.where == "--batch-size"


def test_learning_rate_scaling_rules(tmp_path):
    base = TrainConfig(run_dir=tmp_path, model="cnn").defaults
    scaled = distribute.plan(TrainConfig(run_dir=tmp_path, strategy="mirrored", batch_size=4 * base.batch_size))
    assert scaled.learning_rate == pytest.approx(base.learning_rate * 2)  # sqrt(4) = 2
    assert scaled.describe()["learning_rate"]["rule"].startswith("sqrt")
    explicit = distribute.plan(TrainConfig(run_dir=tmp_path, strategy="mirrored", batch_size=512, learning_rate=1e-3))
    assert explicit.learning_rate == 1e-3 and explicit.describe()["learning_rate"]["rule"].startswith("explicit")
    default = distribute.plan(TrainConfig(run_dir=tmp_path, batch_size=4 * base.batch_size))
    assert default.learning_rate == base.learning_rate and default.strategy is None and not default.distributed
    assert distribute.scale_learning_rate(0.3, 1, 100) == 0.5  # capped
    assert math.isclose(distribute.scale_learning_rate(1e-3, 128, 32), 5e-4)


# ------------------------------------------------ a real mirrored run

@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("mirrored")
    argv = ["train", "--run", str(run), "--strategy", "mirrored", "--epochs", "1", "--train-limit", "1000",
            "--test-limit", "500", "--batch-size", "64", "--seed", "3"]
    assert main(argv) == 0
    return run


def test_mirrored_manifest_records_the_distribution(mirrored_run):
    m = artifacts.read_manifest(mirrored_run / "model" / "manifest.json", MODEL_SCHEMA,
                                {"config": dict, "distribution": dict, "metrics": dict})
    d = m["config"]["distribution"]
    assert (d["strategy"], d["num_workers"], d["num_replicas_in_sync"]) == ("mirrored", 1, 1)
    assert (d["global_batch_size"], d["per_replica_batch_size"], d["steps_per_epoch"]) == (64, 64, 1000 // 64)
    assert d["writer"] == {"task_type": "worker", "task_index": 0}
    base = TrainConfig(run_dir=mirrored_run, model="cnn").defaults
    expected = base.learning_rate * math.sqrt(64 / base.batch_size)
    assert m["config"]["learning_rate"] == pytest.approx(expected) == d["learning_rate"]["effective"]
    assert m["metrics"]["test_accuracy"] > 0.6  # 15 steps of the cnn learn MNIST well past chance (0.1)


def test_mirrored_shard_record_matches_the_steps_run_and_the_saved_weights(mirrored_run):
    from edgekit.train.models import load_model

    manifest = artifacts.read_manifest(mirrored_run / "model" / "manifest.json", MODEL_SCHEMA)
    rec = json.loads((mirrored_run / "distributed" / "worker-0.json").read_text())
    assert rec == manifest["distribution"]
    steps = 1000 // 64
    assert rec["steps"] == steps and rec["examples_consumed"] == steps * 64
    # one pass over a shuffled stream without repeats: every consumed example is distinct
    mask = distribute.decode_bitmap(rec)
    assert mask.sum() == rec["unique_examples"] == steps * 64 and len(mask) == 1000
    assert sum(rec["label_histogram"]) == steps * 64
    model = load_model(mirrored_run / "model", manifest)
    assert distribute.weights_sha256(model) == rec["weights_sha256"]


def test_default_strategy_plan_is_a_no_op(tmp_path):
    p = distribute.plan(TrainConfig(run_dir=tmp_path))
    assert p.is_writer and p.finish(None, None, 1, None, 0.0) == (None, None)
    model = object()
    assert p.unwrap(model, lambda: None) is model
    assert p.describe()["strategy"] == "default"
    assert p.describe()["per_replica_batch_size"] == TrainConfig(run_dir=tmp_path).defaults.batch_size
    p.barrier()  # nothing to meet


def test_bitmap_round_trip():
    mask = np.zeros(13, bool)
    mask[[0, 5, 12]] = True
    import base64
    rec = {"train_examples": 13,
           "consumed_bitmap": base64.b64encode(np.packbits(mask, bitorder="little").tobytes()).decode()}
    assert (distribute.decode_bitmap(rec) == mask).all()
