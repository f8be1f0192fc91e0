"""The default training budget, decided by the validation split (issue 14):
the stopping rule (``next_cycle``), the cycle schedule (keras' CosineDecay
for the first cycle, step for step; a warm restart after it), a tiny run
whose manifest records the cycles and keeps the best validation epoch, and
the config's rules for ``--epochs`` / ``--max-epochs``. The full-data
promise (default within 0.5 points of a 4x budget on MNIST and
Fashion-MNIST) is bench/train_defaults.py."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import artifacts
from edgekit.errors import ConfigError
from edgekit.rundir import MODEL_SCHEMA
from edgekit.train import TrainConfig, run
from edgekit.train.config import BUDGET_MIN_GAIN, MODEL_DEFAULTS
from edgekit.train.training import _cycle_schedule, next_cycle


# ------------------------------------------------------------------ the rule

def test_each_cycle_doubles_the_epochs_while_it_gains():
    assert next_cycle(2, [0.98], cap=32)[0] == 2
    assert next_cycle(4, [0.98, 0.01], cap=32)[0] == 4
    assert next_cycle(8, [0.98, 0.01, 0.006], cap=32)[0] == 8


def test_a_cycle_gaining_less_than_the_minimum_stops():
    n, why = next_cycle(4, [0.98, BUDGET_MIN_GAIN / 2], cap=32)
    assert n == 0 and "gained 0.25 points in the last cycle (< 0.5)" in why
    assert next_cycle(4, [0.98, -0.01], cap=32) == (0, "validation accuracy gained 0.00 points in the last cycle "
                                                       "(< 0.5)")
    assert next_cycle(4, [0.98, BUDGET_MIN_GAIN], cap=32)[0] == 4   # exactly the minimum still counts


def test_patience_counts_cycles_in_a_row():
    assert next_cycle(8, [0.98, 0.0001, 0.01], cap=64, patience=2)[0] == 8
    assert next_cycle(8, [0.98, 0.0001, 0.0001], cap=64, patience=2)[0] == 0


def test_the_cap_cuts_the_last_cycle_and_stops():
    assert next_cycle(20, [0.9, 0.1], cap=32)[0] == 12
    assert next_cycle(32, [0.9, 0.1], cap=32) == (0, "the cap of 32 epochs")


# ------------------------------------------------------------------ the schedule

def test_the_first_cycle_is_keras_cosine_decay_step_for_step():
    import tf_keras as keras

    from edgekit import quiet

    tf = quiet.import_tensorflow()
    steps, total, warmup, peak = 100, 250, 25, 2e-3
    ours = _cycle_schedule(tf, keras, peak, total, warmup)
    keras_own = keras.optimizers.schedules.CosineDecay(initial_learning_rate=peak / 10, decay_steps=total - warmup,
                                                       alpha=0.01, warmup_target=peak, warmup_steps=warmup)
    for step in range(0, total + 20):
        assert float(ours(tf.constant(step, tf.int64))) == float(keras_own(step)), step

    # a restart at step 250: warm-up from peak/10 again, cosine over the new cycle, 1% at its end
    ours.restart(total, 2 * steps, 20)
    at = [float(ours(tf.constant(s, tf.int64))) for s in (total, total + 20, total + 2 * steps)]
    assert at[0] == pytest.approx(peak / 10) and at[1] == pytest.approx(peak) and at[2] == pytest.approx(peak / 100)
    cfg = ours.get_config()
    assert cfg["decay_steps"] == 2 * steps - 20 and cfg["warmup_steps"] == 20   # plain ints: the model saves as JSON


# ------------------------------------------------------------------ a real (tiny) run

def test_a_tiny_run_decides_its_budget_and_keeps_the_best_epoch(tmp_path):
    r = run(TrainConfig(run_dir=tmp_path / "r", model="linear", train_limit=1000, test_limit=200, val_size=300,
                        max_epochs=12))
    m = artifacts.read_manifest(tmp_path / "r" / "model" / "manifest.json", MODEL_SCHEMA)
    budget = m["metrics"]["budget"]
    assert m["config"]["epochs"] is None and m["config"]["max_epochs"] == 12
    assert budget["rule"] == "validation" and budget["first_cycle"] == MODEL_DEFAULTS["linear"].epochs
    assert sum(budget["cycles"]) == r.epochs_run == len(m["metrics"]["history"]["val_accuracy"])
    assert budget["cycles"][1:] == [min(sum(budget["cycles"][:i]), 12 - sum(budget["cycles"][:i]))
                                    for i in range(1, len(budget["cycles"]))]
    assert len(budget["val_accuracy_at_cycle_end"]) == len(budget["cycles"])
    assert budget["stopped"]
    # the model written is the best validation epoch's (re-evaluated on the same split)
    val = m["metrics"]["history"]["val_accuracy"]
    assert budget["best_epoch"] == int(np.argmax(val)) + 1
    assert r.val_accuracy == pytest.approx(max(val), abs=1e-6)


def test_fixed_budget_and_no_validation_split_say_so(tmp_path):
    r = run(TrainConfig(run_dir=tmp_path / "f", model="linear", epochs=1, train_limit=600, test_limit=100,
                        val_size=100))
    m = artifacts.read_manifest(r.manifest_path, MODEL_SCHEMA)
    assert m["metrics"]["budget"] == {"rule": "fixed", "epochs": 1, "why": "--epochs"}
    r = run(TrainConfig(run_dir=tmp_path / "n", model="linear", train_limit=600, test_limit=100, val_size=0))
    m = artifacts.read_manifest(r.manifest_path, MODEL_SCHEMA)
    first = MODEL_DEFAULTS["linear"].epochs
    assert m["metrics"]["budget"] == {"rule": "fixed", "epochs": first, "why": "no validation split to decide on"}
    assert r.epochs_run == first


# ------------------------------------------------------------------ config

def test_config_resolves_the_budget(tmp_path):
    auto = TrainConfig(run_dir=tmp_path).resolved()
    assert auto.epochs is None and auto.max_epochs == MODEL_DEFAULTS["cnn"].max_epochs
    assert auto.resolved() == auto
    fixed = TrainConfig(run_dir=tmp_path, epochs=3).resolved()
    assert (fixed.epochs, fixed.max_epochs) == (3, None)
    no_es = TrainConfig(run_dir=tmp_path, early_stopping=False).resolved()
    assert (no_es.epochs, no_es.max_epochs) == (MODEL_DEFAULTS["cnn"].epochs, None)
    assert all(d.max_epochs >= 8 * d.epochs for d in MODEL_DEFAULTS.values())   # generous: 3 doublings at least


@pytest.mark.parametrize("kw, fragment", [
    (dict(epochs=3, max_epochs=10), "--epochs sets a fixed budget"),
    (dict(model="deep", max_epochs=4), "at least deep's first cycle of 8 epochs"),
    (dict(max_epochs=0), "must be a positive integer"),
])
def test_bad_budget_flags(tmp_path, kw, fragment):
    with pytest.raises(ConfigError, match="--max-epochs") as e:
        TrainConfig(run_dir=tmp_path, **kw)
    assert fragment in str(e.value)
