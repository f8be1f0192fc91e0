"""coremltools' own decoding of an ML Program's weights, the reference the
mil-reference interpreter's blob reader is compared with bit for bit."""
from __future__ import annotations

from pathlib import Path

import numpy as np

CONSTEXPR = ("constexpr_affine_dequantize", "constexpr_lut_to_dense", "constexpr_sparse_to_dense",
             "constexpr_blockwise_shift_scale")


def coremltools_weights(package: Path) -> dict[str, np.ndarray]:
    """Every const/constexpr output decoded by coremltools itself: its protobuf
    loader, its C++ blob reader (libmilstoragepython) and each op's own
    value inference (the decompress functions of the op definitions)."""
    from coremltools.converters.mil.frontend.milproto.load import load
    from coremltools.proto import Model_pb2

    data = package / "Data" / "com.apple.CoreML"
    spec = Model_pb2.Model()
    spec.ParseFromString((data / "model.mlmodel").read_bytes())
    prog = load(spec, spec.specificationVersion, str(data / "weights"))
    out = {}
    for op in prog.functions["main"].operations:
        if op.op_type == "const":
            out[op.outputs[0].name] = op.outputs[0].val
        elif op.op_type.startswith("constexpr_"):
            val = op.materialized_val_inference() if hasattr(op, "materialized_val_inference") else op.value_inference()
            out[op.outputs[0].name] = val
    return out


def differing_weights(prog, package) -> list[str]:
    """Names of the weights the interpreter's program decodes differently
    (dtype, shape or any byte) from coremltools."""
    ref = coremltools_weights(Path(package))
    mine = prog.weights()
    constexpr_names = {op.name for op in prog._ops if op.type in CONSTEXPR}
    assert constexpr_names <= set(ref) and constexpr_names <= set(mine)
    bad = []
    for name, value in mine.items():
        r = np.asarray(ref[name])
        if value.dtype != r.dtype or value.shape != r.shape or value.tobytes() != r.tobytes():
            bad.append(name)
    return bad
