"""tf.data pipelines without tf.data's autotuning thread: every dataset
edgekit hands to Keras' ``fit``, ``evaluate`` or ``predict`` comes from here
(or goes through ``untuned``).

Why: with autotuning on (tf.data's default, and what Keras' own numpy
pipelines use), each iterator runs a model thread that sleeps between
optimisation rounds, for longer the older the iterator is, and the
iterator's destructor waits for that thread
(``RootDataset::Iterator::~Iterator`` blocked in
``UnboundedThreadPool::LogicalThreadWrapper``, py-spy --native). Keras
drops one iterator per epoch, so an epoch end sometimes stood still for
8.9-9.7 s with no CPU in use: 2 of 4 MNIST training runs, 9 of 23 s.
With autotuning off, 0 of 4, and the same weights (tests/train/test_tfdata.py).
edgekit's pipelines are slices, shuffle, batch and one cast: nothing there
for the autotuner to tune.
"""
from __future__ import annotations

import numpy as np


def untuned(tf, ds):
    """``ds`` with tf.data's autotuning (and its model thread) off."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def arrays(tf, x: np.ndarray, y: np.ndarray | None = None, *, batch_size: int, shuffle_seed: int | None = None):
    """Batches of ``x`` (and ``y``), reshuffled every epoch from ``shuffle_seed``
    if given, in order otherwise; prefetched, untuned."""
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return untuned(tf, ds.batch(batch_size).prefetch(2))
