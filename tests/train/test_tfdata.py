"""edgekit's tf.data pipelines run without tf.data's autotuning thread
(train/tfdata.py says why: its iterators' destructors stalled epoch ends for
~9 s), and keep their order and shuffling semantics."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import quiet
from edgekit.train import tfdata
from edgekit.train.training import _pipeline


@pytest.fixture(scope="module")
def tf():
    return quiet.import_tensorflow()


def _autotuned(ds) -> bool:
    return ds.options().autotune.enabled is not False


def test_arrays_in_order_without_a_seed(tf):
    x = np.arange(10, dtype=np.float32)[:, None]
    ds = tfdata.arrays(tf, x, batch_size=4)
    assert not _autotuned(ds)
    got = [b.numpy()[:, 0].tolist() for b in ds]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_arrays_reshuffle_every_epoch_the_same_way_for_a_seed(tf):
    x = np.arange(50, dtype=np.float32)
    y = np.arange(50, dtype=np.int64) * 10

    def epochs(seed):
        ds = tfdata.arrays(tf, x, y, batch_size=50, shuffle_seed=seed)
        return [(xb.numpy().tolist(), yb.numpy().tolist()) for (xb, yb) in ds.repeat(2)]

    first = epochs(3)
    (x1, y1), (x2, y2) = first
    assert sorted(x1) == sorted(x2) == list(range(50)) and x1 != x2   # each epoch a new order
    assert [v * 10 for v in x1] == y1                                   # pairs stay together
    assert epochs(3) == first and epochs(4) != first


@pytest.mark.parametrize("training", [True, False])
def test_training_pipeline_is_untuned(tf, training):
    x = np.zeros((20, 8, 8), np.uint8)
    y = np.zeros(20, np.int64)
    ds = _pipeline(tf, x, y, batch_size=8, seed=0, shift=2 if training else 0, training=training)
    assert not _autotuned(ds)
    assert [b[0].shape[0] for b in ds] == [8, 8, 4]


def test_untuned_turns_off_what_tf_data_turns_on_by_default(tf):
    plain = tf.data.Dataset.range(3)
    assert _autotuned(plain)
    assert not _autotuned(tfdata.untuned(tf, plain))
