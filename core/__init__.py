"""edgekit: from a trained image classifier to phone-ready files you can trust.

The package is assembled from the repository's stage folders:
``edgekit.train`` (train/), ``edgekit.convert`` (convert/), ``edgekit.runtime``
(runtime/), ``edgekit.apps`` (apps/: the CLI, the pipeline, doctor) and this
root (core/: the run directory and the plumbing every stage shares). Stages
talk only through artifacts on disk (``edgekit.rundir``; docs/ARTIFACTS.md).

Keras 2 (tf_keras) must be selected before TensorFlow is imported anywhere:
tensorflow-model-optimization needs it, and coremltools converts a tf_keras
model while a Keras 3 model fails. This is the one place that sets it.
"""
import os as _os

_os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ INFO lines drown the progress bars; warnings still show.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

__version__ = "0.1.0"
