"""edgekit's numpy reference interpreter of saved Core ML ML Programs (``mil-reference``).

Reads ``model.mlmodel`` and ``weights/weight.bin`` of an ``.mlpackage`` with its
own parsers and executes the ops the converter emits for edgekit's networks.
Its results are labelled ``mil-reference``, never ``coreml``.
"""
