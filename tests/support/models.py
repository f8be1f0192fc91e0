"""Tiny Keras models built from code (no training), for tests that need a
real model file without waiting for the train stage."""
from __future__ import annotations


def tiny_classifier(seed: int = 0, shape=(28, 28, 1), classes: int = 10):
    """conv 3x3x4, max-pool, dense softmax; I/O named as every edgekit model's."""
    import tf_keras as keras

    from edgekit.rundir import INPUT_NAME, OUTPUT_NAME

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape, name=INPUT_NAME)
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(classes, activation="softmax", name=OUTPUT_NAME)(x)
    return keras.Model(inp, x)
