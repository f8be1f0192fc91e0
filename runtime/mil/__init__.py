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

API: ``load(path) -> Program``; ``Program.input_spec`` (InputSpec: name,
kind "image"/"tensor", shape (H, W), channels, color_layout GRAYSCALE/RGB/BGR,
scale, per-channel bias), ``Program.class_labels``, ``Program.op_types``,
``Program.weights()`` (decoded const/constexpr values by name, declared dtype)
and ``Program.predict(images)`` with uint8 pixels [N, H, W, C] in RGB order
([N, H, W] for grayscale) or float32 [N, H, W, C] in [0, 1] (ShapeError
otherwise); a BGR program gets the channels reversed, as Core ML does when
it converts an RGB image for a BGR input. ``SUPPORTED_OPS`` lists the op types it runs. ``MUTATIONS`` are
test-only switches (``Program(path, _mutation=...)``) that break decoding on
purpose so tests can show the honesty checks catch them.
"""
from edgekit.runtime.mil.program import MUTATIONS, SUPPORTED_OPS, InputSpec, Program, load

__all__ = ["InputSpec", "MUTATIONS", "Program", "SUPPORTED_OPS", "load"]
