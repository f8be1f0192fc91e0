"""edgekit's numpy reference interpreter of saved Core ML ML Programs (``mil-reference``).

In: an ``.mlpackage`` directory. Out: a ``Program`` that runs its main
function in numpy: ``load(path).predict(images) -> float32 [N, C]``
probabilities in ``Program.class_labels`` order.

It reads ``model.mlmodel`` with coremltools' protobuf classes and
``weights/weight.bin`` with its own blob reader (blob.py), executes the ops
the converter emits for edgekit's networks (ops.py) and rounds every op's
result to its declared dtype, so fp16 programs behave as fp16. An op it does
not know is refused by name. Its results are labelled ``mil-reference``,
never ``coreml``: it checks the saved file's semantics, not Apple's runtime.
"""
from edgekit.runtime.mil.program import MUTATIONS, SUPPORTED_OPS, InputSpec, Program, load

__all__ = ["InputSpec", "MUTATIONS", "Program", "SUPPORTED_OPS", "load"]
