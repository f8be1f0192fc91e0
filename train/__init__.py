"""Training stage (``edgekit.train``): dataset in, ``<run>/model/`` out.

Reads a dataset by name (bundled MNIST by default, Fashion-MNIST, a folder of
IDX files, or an image folder), trains a model from the zoo with tf_keras,
and writes the trained model (SavedModel and .keras), ``manifest.json``
(schema ``edgekit.model/2``, ``edgekit.rundir.ModelArtifact``), plots, TensorBoard logs and a projector export.
"""
from edgekit.train.config import TrainConfig
from edgekit.train.training import TrainResult, run

__all__ = ["TrainConfig", "TrainResult", "run"]
