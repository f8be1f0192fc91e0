"""Time to accuracy: the TensorFlow Layers-API tutorial's recipe vs `edgekit train --model cnn`.

In one process, one after the other, on the full bundled MNIST:

(a) the tutorial's own recipe as a TF1-style graph through ``tf.compat.v1``
    (placeholders, raw variables; conv 5x5x16, pool, conv 5x5x36, pool,
    dense 128, dense 10; Adam 1e-4, batch 64, random mini-batches), with the
    test accuracy evaluated every ``--eval-every`` steps, until it reaches
    98.8% (the tutorial's figure);
(b) ``edgekit.train.run`` with the default cnn settings, the test accuracy
    evaluated by a callback at the same spacing in training images as the
    tutorial's (``--eval-every`` x 64 images), until 99.0%.

The clock counts training only: it is paused while the test set is
evaluated, for both. Prints both times, the ratio (b)/(a) and the load
average, because on a shared machine absolute times mean little.

    /work/main/.venv/bin/python bench/train_vs_tutorial.py
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import edgekit  # noqa: F401  (selects tf_keras before TensorFlow is imported)
from edgekit.train import TrainConfig, run
from edgekit.train.data import load_dataset, to_float


def tutorial(ds, target: float, eval_every: int, max_steps: int, seed: int = 0):
    """The Layers-API tutorial, TF1 style. Returns (seconds, steps, accuracy)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    x_train, y_train = to_float(np.concatenate([ds.x_train, ds.x_val])), np.concatenate([ds.y_train, ds.y_val])
    x_test, y_test = to_float(ds.x_test), ds.y_test
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        x = v1.placeholder(tf.float32, [None, 28, 28, 1])
        y = v1.placeholder(tf.int64, [None])
        init = v1.glorot_uniform_initializer()

        def var(name, shape):
            return v1.get_variable(name, shape, initializer=init if len(shape) > 1 else v1.zeros_initializer())

        h = tf.nn.relu(tf.nn.conv2d(x, var("w1", [5, 5, 1, 16]), 1, "SAME") + var("b1", [16]))
        h = tf.nn.max_pool2d(h, 2, 2, "SAME")
        h = tf.nn.relu(tf.nn.conv2d(h, var("w2", [5, 5, 16, 36]), 1, "SAME") + var("b2", [36]))
        h = tf.nn.max_pool2d(h, 2, 2, "SAME")
        h = tf.reshape(h, [-1, 7 * 7 * 36])
        h = tf.nn.relu(tf.matmul(h, var("w3", [7 * 7 * 36, 128])) + var("b3", [128]))
        logits = tf.matmul(h, var("w4", [128, 10])) + var("b4", [10])
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        train_op = v1.train.AdamOptimizer(1e-4).minimize(loss)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.int32))
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            rng = np.random.default_rng(seed)
            seconds, acc = 0.0, 0.0
            for step in range(1, max_steps + 1):
                idx = rng.integers(0, len(y_train), 64)
                t0 = time.perf_counter()
                sess.run(train_op, {x: x_train[idx], y: y_train[idx]})
                seconds += time.perf_counter() - t0
                if step % eval_every == 0:
                    hits = sum(sess.run(correct, {x: x_test[i:i + 1000], y: y_test[i:i + 1000]})
                               for i in range(0, len(y_test), 1000))
                    acc = hits / len(y_test)
                    print(f"  tutorial step {step}: test accuracy {acc:.4f} after {seconds:.0f} s", flush=True)
                    if acc >= target:
                        return seconds, step, acc
    return seconds, max_steps, acc


def edgekit_cnn(ds, target: float, run_dir: Path, every_images: int):
    """Default `edgekit train --model cnn`, stopped at ``target`` test accuracy,
    evaluated every ``every_images`` training images. Returns (seconds, epochs, accuracy)."""
    import tf_keras as keras

    x_test, y_test = to_float(ds.x_test), ds.y_test
    n_train = len(ds.y_train)

    class TimeToAccuracy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds, self.epochs, self.acc = 0.0, 0.0, 0.0
            self.next, self.epoch, self.t0 = every_images, 0, time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            # batch ends arrive every steps_per_execution steps; the validation
            # at epoch ends is part of edgekit's training, so it stays on the clock
            seen = self.epoch * n_train + min((batch + 1) * self.batch_size, n_train)
            if seen < self.next or self.model.stop_training:
                return
            self.seconds += time.perf_counter() - self.t0
            self.next = (seen // every_images + 1) * every_images
            self.epochs = seen / n_train
            self.acc = float((self.model.predict(x_test, batch_size=1000, verbose=0).argmax(1) == y_test).mean())
            print(f"  edgekit after {self.epochs:.2f} epochs: test accuracy {self.acc:.4f} after {self.seconds:.1f} s",
                  flush=True)
            if self.acc >= target:
                self.model.stop_training = True
            self.t0 = time.perf_counter()

        def on_train_end(self, logs=None):
            if not self.model.stop_training:
                self.seconds += time.perf_counter() - self.t0

    cb = TimeToAccuracy()
    config = TrainConfig(run_dir=run_dir, model="cnn").resolved()
    cb.batch_size = config.batch_size
    run(config, callbacks=[cb])
    return cb.seconds, cb.epochs, cb.acc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eval-every", type=int, default=500, help="tutorial steps between test evaluations")
    p.add_argument("--max-steps", type=int, default=30000, help="give up on the tutorial after this many steps")
    args = p.parse_args(argv)
    ds = load_dataset("mnist")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    t_tut, steps, acc_tut = tutorial(ds, 0.988, args.eval_every, args.max_steps)
    print(f"load average between: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        t_ek, epochs, acc_ek = edgekit_cnn(ds, 0.990, Path(tmp) / "run", args.eval_every * 64)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"tutorial (TF1 graph, Adam 1e-4, batch 64): {acc_tut:.4f} after {steps} steps, {t_tut:.1f} s of training")
    print(f"edgekit train --model cnn (defaults):      {acc_ek:.4f} after {epochs:.2f} epochs, {t_ek:.1f} s of training")
    reached = acc_tut >= 0.988 and acc_ek >= 0.990
    print(f"ratio edgekit/tutorial: {t_ek / t_tut:.3f}x" + ("" if reached else "  (a target was NOT reached)"))
    return 0 if reached else 1


if __name__ == "__main__":
    sys.exit(main())
