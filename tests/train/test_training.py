"""Training behaviour: determinism, plots, projector, TensorBoard logs, CLI output."""
from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from edgekit import artifacts
from edgekit.apps.cli import main
from edgekit.train import TrainConfig, models, run
from edgekit.rundir import MODEL_SCHEMA as SCHEMA


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def weights(run_dir):
    m = artifacts.read_manifest(run_dir / "model" / "manifest.json", SCHEMA)
    return [w.tobytes() for w in models.load_model(run_dir / "model", m).get_weights()]


def test_same_seed_gives_byte_identical_weights(tmp_path):
    cfg = dict(model="cnn", epochs=1, train_limit=600, test_limit=100, val_size=200, augment_shift=2)
    a = run(TrainConfig(run_dir=tmp_path / "a", seed=5, **cfg))
    run(TrainConfig(run_dir=tmp_path / "b", seed=5, **cfg))
    run(TrainConfig(run_dir=tmp_path / "c", seed=6, **cfg))
    assert weights(tmp_path / "a") == weights(tmp_path / "b")
    assert weights(tmp_path / "a") != weights(tmp_path / "c")
    assert a.epochs_run == 1


def test_plots_are_real_pngs(tiny_run):
    m = artifacts.read_manifest(tiny_run / "model" / "manifest.json", SCHEMA)
    expected = {"grid", "confusion_matrix", "misclassified", "filters", "curves"}
    assert expected <= set(m["plots"])
    for key in expected:
        w, h = png_size(tiny_run / "model" / m["plots"][key])
        assert 200 <= w <= 3000 and 200 <= h <= 3000, (key, w, h)


def test_projector_export_is_consistent(tiny_run):
    m = artifacts.read_manifest(tiny_run / "model" / "manifest.json", SCHEMA)
    assert all((tiny_run / "model" / rel).is_file() for rel in m["projector"].values())
    # TensorBoard's projector reads projector_config.pbtxt from the logdir root
    # and resolves the paths in it against the config's directory
    logdir = tiny_run / "model" / "tensorboard"
    assert tiny_run / "model" / m["projector"]["config"] == logdir / "projector_config.pbtxt"
    config = (logdir / "projector_config.pbtxt").read_text()
    paths = re.findall(r'(?:tensor_path|metadata_path|image_path): "([^"]+)"', config)
    assert len(paths) == 3
    for p in paths:
        assert (logdir / p).is_file(), p
    proj = logdir / "projector"
    rows = (proj / "tensors.tsv").read_text().splitlines()
    meta = (proj / "metadata.tsv").read_text().splitlines()
    assert len(rows) == 1000 and len(meta) == 1001 and meta[0] == "label\tpredicted"
    assert {len(r.split("\t")) for r in rows} == {128}  # the cnn's dense-128 "features" layer
    dims = [int(d) for d in re.findall(r"single_image_dim: (\d+)", config)]
    assert dims == [28, 28]
    w, h = png_size(proj / "sprite.png")
    side = int(np.ceil(np.sqrt(len(rows))))
    assert (w, h) == (side * 28, side * 28)


def test_tensorboard_scalars_written(tiny_run):
    tb = tiny_run / "model" / "tensorboard"
    for split in ("train", "validation"):
        events = list((tb / split).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 100, split
    import tensorflow as tf

    tags = set()
    for e in tf.compat.v1.train.summary_iterator(str(next((tb / "validation").glob("events.*")))):
        tags |= {v.tag for v in e.summary.value}
    assert {"epoch_accuracy", "epoch_loss"} <= tags


def test_linear_filters_show_class_weights(tiny_run_factory):
    run_dir = tiny_run_factory("linear", epochs=3, train_limit=1000, test_limit=200, val_size=500)
    m = artifacts.read_manifest(run_dir / "model" / "manifest.json", SCHEMA)
    assert m["model"]["params"] == 7850
    assert png_size(run_dir / "model" / m["plots"]["filters"])[0] >= 200
    assert m["metrics"]["test_accuracy"] > 0.7  # chance is 0.1


def test_cli_prints_where_and_accuracy(tmp_path, capsys):
    code = main(["train", "--run", str(tmp_path / "r"), "--model", "linear", "--epochs", "1",
                 "--train-limit", "300", "--test-limit", "100", "--val-size", "100"])
    out = capsys.readouterr().out
    assert code == 0
    assert str(tmp_path / "r" / "model") in out and "manifest.json" in out
    acc = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    m = artifacts.read_manifest(tmp_path / "r" / "model" / "manifest.json", SCHEMA)
    assert acc == pytest.approx(m["metrics"]["test_accuracy"], abs=5e-5)
    assert m["config"]["epochs"] == 1 and m["config"]["batch_size"] == 128  # resolved defaults recorded
    # --overwrite replaces the model atomically
    assert main(["train", "--run", str(tmp_path / "r"), "--model", "linear", "--epochs", "1", "--overwrite",
                 "--train-limit", "300", "--test-limit", "100", "--val-size", "100", "--seed", "1"]) == 0
    assert artifacts.read_manifest(tmp_path / "r" / "model" / "manifest.json", SCHEMA)["config"]["seed"] == 1
    assert not list(tmp_path.joinpath("r").glob(".edgekit-*"))


def test_help_teaches_with_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "edgekit train --run runs/mnist" in out and "--model" in out


def test_mobile_has_at_most_a_quarter_of_cnn_parameters():
    cnn = models.build_model("cnn", (28, 28, 1), 10, 0).count_params()
    mobile = models.build_model("mobile", (28, 28, 1), 10, 0)
    assert mobile.count_params() <= 0.25 * cnn
    assert mobile.layers[0].name == "image" and mobile.layers[-1].name == "probabilities"
    allowed = {"InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "MaxPooling2D",
               "GlobalAveragePooling2D", "Flatten", "Dense", "Dropout", "Softmax", "Add"}  # Add: phone's residuals
    for name in models.MODELS:
        m = models.build_model(name, (28, 28, 1), 10, 0)
        assert {type(layer).__name__ for layer in m.layers} <= allowed, name


def test_interrupted_training_leaves_no_model_dir(tmp_path):
    import tf_keras as keras

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch >= 2:  # batch ends arrive steps_per_execution apart
                raise KeyboardInterrupt

    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run(TrainConfig(run_dir=run_dir, model="linear", epochs=1, train_limit=1000, test_limit=100, val_size=100),
            callbacks=[Interrupt()])
    assert not (run_dir / "model").exists()
    assert not list(run_dir.glob(".edgekit-*"))


def test_image_folder_end_to_end(tmp_path, capsys):
    from support.datasets import make_image_folder

    root = make_image_folder(tmp_path / "img", classes=("b", "a", "c"), per_class=8, split=True)
    run_dir = tmp_path / "run"
    assert main(["train", "--run", str(run_dir), "--dataset", "folder", "--data-dir", str(root), "--image-size", "16",
                 "--epochs", "1", "--val-size", "3", "--model", "mobile"]) == 0, capsys.readouterr().err
    m = artifacts.read_manifest(run_dir / "model" / "manifest.json", SCHEMA)
    assert m["dataset"]["class_names"] == ["a", "b", "c"] and m["dataset"]["kind"] == "image-folder"
    assert m["io"]["class_names"] == ["a", "b", "c"]
    assert m["io"]["inputs"][0]["shape"] == [None, 16, 16, 1] and m["io"]["outputs"][0]["shape"] == [None, 3]
    assert np.array(m["metrics"]["confusion_matrix"]).sum() == 24
    model = models.load_model(run_dir / "model", m)
    assert model.output_shape == (None, 3)
