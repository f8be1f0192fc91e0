"""The iOS18 weight compressions edgekit tune can put into a program, decoded
and run by mil-reference exactly as coremltools decodes them.

Each package is the trained cnn at iOS18, compressed by coremltools with one
of tune's option kinds (palettes per group of channels at 6 and 4 bits, 3-bit
palettes, linear int8 per channel) or one it measured and does not offer
(linear int4/int8 per block, per-channel palette scales: a lut made by a
constexpr_blockwise_shift_scale, the one chain of constexpr ops). The
reference is ``coremltools.optimize.coreml.decompress_weights`` on the same
model: its fp16 weights must equal the interpreter's bit for bit, and the two
programs must give identical probabilities. A decoder that used one palette
for every group of channels ("one-palette" mutation) must be caught by both.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.runtime import mil

# kind -> (coremltools config kwargs, method, the constexpr op types the program must hold)
KINDS = {
    "pal6-grouped": ({"mode": "kmeans", "nbits": 6, "granularity": "per_grouped_channel", "group_size": 2},
                     "palettize", {"constexpr_lut_to_dense"}),
    "pal4-grouped": ({"mode": "kmeans", "nbits": 4, "granularity": "per_grouped_channel", "group_size": 2},
                     "palettize", {"constexpr_lut_to_dense"}),
    "pal3": ({"mode": "kmeans", "nbits": 3}, "palettize", {"constexpr_lut_to_dense"}),
    "pal6-channel-scale": ({"mode": "kmeans", "nbits": 6, "enable_per_channel_scale": True}, "palettize",
                           {"constexpr_lut_to_dense", "constexpr_blockwise_shift_scale"}),
    "int8-channel": ({"mode": "linear_symmetric", "dtype": "int8", "granularity": "per_channel"}, "linear",
                     {"constexpr_blockwise_shift_scale"}),
    "int4-block": ({"mode": "linear_symmetric", "dtype": "int4", "granularity": "per_block", "block_size": 4},
                   "linear", {"constexpr_blockwise_shift_scale"}),
    "int8-block": ({"mode": "linear", "dtype": "int8", "granularity": "per_block", "block_size": 4}, "linear",
                   {"constexpr_blockwise_shift_scale"}),
}


@pytest.fixture(scope="module")
def ios18_packages(cnn_packages, tmp_path_factory):
    """{kind: (compressed package, the same decompressed by coremltools)}."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    root = tmp_path_factory.mktemp("mil-ios18")
    base = ct.models.MLModel(str(cnn_packages["fp16-iOS18"]), skip_model_load=True)
    out = {}
    for kind, (kw, method, _) in KINDS.items():
        if method == "palettize":
            ml = cto.palettize_weights(base, cto.OptimizationConfig(cto.OpPalettizerConfig(weight_threshold=512, **kw)))
        else:
            ml = cto.linear_quantize_weights(base, cto.OptimizationConfig(
                cto.OpLinearQuantizerConfig(weight_threshold=512, **kw)))
        packed, plain = root / f"{kind}.mlpackage", root / f"{kind}-decompressed.mlpackage"
        ml.save(str(packed))
        cto.decompress_weights(ml).save(str(plain))
        out[kind] = (packed, plain)
    return out


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def _consumed_weights(prog) -> dict[str, np.ndarray]:
    """{weight op's output name: decoded weight} for every conv/matmul/linear
    weight that a constexpr op makes (keyed by the consumer, whose name
    decompression keeps)."""
    made = {op.name for op in prog._ops if op.type.startswith("constexpr_")}
    consts = prog.weights()
    out = {}
    for op in prog._ops:
        if op.type in ("conv", "matmul", "linear"):
            for items in op.args.values():
                for kind, v in items:
                    if kind == "var" and v in made:
                        out[op.outputs[0][0]] = consts[v]
    return out


def _decompressed_weights(plain: Path, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The decompressed program's weight const for each consumer in ``like``."""
    prog = mil.load(plain)
    consts = prog.weights()
    out = {}
    for op in prog._ops:
        if op.outputs and op.outputs[0][0] in like:
            for items in op.args.values():
                for kind, v in items:
                    if kind == "var" and v in consts and consts[v].shape == like[op.outputs[0][0]].shape:
                        out[op.outputs[0][0]] = consts[v]
    return out


@pytest.mark.parametrize("kind", list(KINDS))
def test_decoded_weights_equal_coremltools_decompression(ios18_packages, kind):
    packed, plain = ios18_packages[kind]
    prog = mil.load(packed)
    assert prog.opset == "CoreML8"                              # the iOS18 opset
    assert KINDS[kind][2] <= set(prog.op_types), prog.op_types  # the op kinds under test are really there
    mine = _consumed_weights(prog)
    assert len(mine) == 3                                       # conv2, features, logits (conv1 is under 512)
    ref = _decompressed_weights(plain, mine)
    assert not any(t.startswith("constexpr_") for t in mil.load(plain).op_types)
    for name, w in mine.items():
        assert w.dtype == ref[name].dtype == np.float16 and w.shape == ref[name].shape
        assert _bits(w) == _bits(ref[name]), f"{kind}: {name} decodes differently from coremltools"


@pytest.mark.parametrize("kind", list(KINDS))
def test_compressed_program_runs_like_its_decompression(ios18_packages, mnist, kind):
    packed, plain = ios18_packages[kind]
    images = mnist[2][:200]
    assert np.array_equal(mil.load(packed).predict(images), mil.load(plain).predict(images))


def test_grouped_palettes_are_one_per_group(ios18_packages):
    """The grouped programs really hold several palettes per weight (else the
    comparison above would not tell per-group decoding from one palette)."""
    prog = mil.load(ios18_packages["pal6-grouped"][0])
    luts = [prog._const_arg(op, "lut") for op in prog._ops if op.type == "constexpr_lut_to_dense"]
    assert luts and all(np.prod(lut.shape[:-2]) > 1 for lut in luts)
    assert {lut.shape[-2] for lut in luts} == {64}


@pytest.mark.parametrize("kind", ["pal6-grouped", "pal4-grouped"])
def test_one_palette_for_every_group_is_caught(ios18_packages, mnist, kind):
    packed, plain = ios18_packages[kind]
    bad = mil.Program(packed, _mutation="one-palette")
    mine = _consumed_weights(bad)
    ref = _decompressed_weights(plain, mine)
    assert any(_bits(w) != _bits(ref[name]) for name, w in mine.items())
    images = mnist[2][:300]
    assert np.abs(bad.predict(images) - mil.load(packed).predict(images)).max() > 0.05
