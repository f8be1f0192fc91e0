"""numpy kernels for the ML Program ops edgekit's networks use.

In: an op's inputs as numpy arrays (float tensors as float32, already rounded
to their declared dtype by the caller), keyed by the parameter names of
coremltools' op definitions (``converters/mil/mil/ops/defs/iOS15..iOS18``).
Out: the op's outputs. Tensors are NCHW, as in the program; the leading axis
is the batch the program declared as 1 and the interpreter runs as N.

Each kernel follows the semantics of the op definition it names; the
constexpr decoders follow the ``decompress`` methods of
``iOS16/constexpr_ops.py`` and ``iOS18/compression.py`` step for step,
including their intermediate dtypes, so decoded weights match coremltools'
own decompression bit for bit.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

F16 = np.float16
F32 = np.float32


def round_f16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest fp16 and keep them as float32."""
    return x.astype(F16).astype(F32)


# ------------------------------------------------------------- padding helpers

def _same_pads(size: int, kernel: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    """'same' padding of one spatial axis (defs/_utils.py aggregated_pad):
    output = ceil(size / stride); the odd pixel goes after ('same') or before
    ('same_lower')."""
    eff = (kernel - 1) * dilation + 1
    total = max(0, (math.ceil(size / stride) - 1) * stride + eff - size)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def spatial_pads(pad_type: str, pad: np.ndarray | None, hw: tuple[int, int], kernel, strides, dilations) -> list[tuple[int, int]]:
    if pad_type == "valid":
        return [(0, 0), (0, 0)]
    if pad_type in ("same", "same_lower"):
        return [_same_pads(hw[i], int(kernel[i]), int(strides[i]), int(dilations[i]), pad_type == "same_lower") for i in range(2)]
    if pad_type == "custom":
        p = [int(v) for v in np.asarray(pad).reshape(-1)]
        return [(p[0], p[1]), (p[2], p[3])]
    raise ValueError(f"pad_type {pad_type!r}")


# ----------------------------------------------------------------------- conv

def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    """iOS15 conv, 2-D: x [N, C, H, W], weight [O, C/groups, kH, kW].

    Computed channels-last (im2col + one GEMM per group); the result is an
    NCHW view of NHWC memory, which the next conv/pool/transpose reads
    without another copy."""
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    strides = (1, 1) if strides is None else tuple(int(s) for s in strides)
    dil = (1, 1) if dilations is None else tuple(int(d) for d in dilations)
    groups = int(groups)
    if groups < 1 or c != cg * groups or o % groups:
        raise ValueError(f"conv of {c} channels with weight {list(weight.shape)} and {groups} groups")
    (pt, pb), (pl, pr) = spatial_pads(str(pad_type), pad, (h, w), (kh, kw), strides, dil)
    xh = x.transpose(0, 2, 3, 1)  # NHWC view
    if pt or pb or pl or pr:
        xh = np.pad(xh, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ekh, ekw = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
    win = sliding_window_view(xh, (ekh, ekw), axis=(1, 2))[:, :: strides[0], :: strides[1], :, :: dil[0], :: dil[1]]
    ho, wo = win.shape[1], win.shape[2]
    weight = weight.astype(F32, copy=False)
    if cg == 1 and groups > 1:
        # depthwise (channel multiplier o // c): accumulate over kernel taps
        mult = o // groups
        wt = weight.reshape(groups, mult, kh, kw)
        out = np.zeros((n, ho, wo, groups, mult), dtype=F32)
        for i in range(kh):
            for j in range(kw):
                out += win[:, :, :, :, None, i, j] * wt[:, :, i, j]
        out = out.reshape(n, ho, wo, o)
    else:
        cols = np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3))  # [N, Ho, Wo, kH, kW, C]
        og = o // groups
        parts = []
        for g in range(groups):
            cg_cols = cols if groups == 1 else np.ascontiguousarray(cols[..., g * cg:(g + 1) * cg])
            wm = weight[g * og:(g + 1) * og].transpose(2, 3, 1, 0).reshape(kh * kw * cg, og)
            parts.append(cg_cols.reshape(n * ho * wo, kh * kw * cg) @ wm)
        out = (parts[0] if groups == 1 else np.concatenate(parts, axis=1)).reshape(n, ho, wo, o)
    if bias is not None:
        out += bias.astype(F32)
    return out.transpose(0, 3, 1, 2)


# -------------------------------------------------------------------- pooling

def _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, kind, exclude_pad=True):
    n, c, h, w = x.shape
    k = tuple(int(v) for v in kernel_sizes)
    s = tuple(int(v) for v in strides)
    pads = spatial_pads(str(pad_type), pad, (h, w), k, s, (1, 1))
    if bool(ceil_mode):
        # extra right/bottom padding so the last partial window is kept
        # (defs/_utils.py spatial_dimensions_out_shape, ceil_mode=True)
        extra = []
        for i, size in enumerate((h, w)):
            lo, hi = pads[i]
            out = (size + lo + hi - k[i] + s[i] - 1) // s[i] + 1
            if (out - 1) * s[i] >= size + lo and (lo > 0 or hi > 0):
                out -= 1
            extra.append(max(0, (out - 1) * s[i] + k[i] - (size + lo + hi)))
        pads = [(pads[0][0], pads[0][1] + extra[0]), (pads[1][0], pads[1][1] + extra[1])]
    padded = any(p for pair in pads for p in pair)
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]), constant_values=fill) if padded else x
    ho = (xp.shape[2] - k[0]) // s[0] + 1
    wo = (xp.shape[3] - k[1]) // s[1] + 1
    # one strided view per kernel tap: no window copies
    taps = [xp[:, :, i: i + (ho - 1) * s[0] + 1: s[0], j: j + (wo - 1) * s[1] + 1: s[1]]
            for i in range(k[0]) for j in range(k[1])]
    out = taps[0].astype(F32, copy=True)
    for t in taps[1:]:
        (np.maximum if kind == "max" else np.add)(out, t, out=out)
    if kind == "max":
        return out
    if padded and exclude_pad:
        ones = np.pad(np.ones((h, w), F32), pads)
        counts = sliding_window_view(ones, k)[:: s[0], :: s[1]].sum(axis=(2, 3))
        return out / counts
    return out / F32(k[0] * k[1])


def max_pool(x, kernel_sizes, strides, pad_type, pad=None, ceil_mode=False):
    return _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, "max")


def avg_pool(x, kernel_sizes, strides, pad_type, pad=None, exclude_padding_from_average=False, ceil_mode=False):
    return _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, "avg", bool(exclude_padding_from_average))


# --------------------------------------------------------------- dense / misc

def matmul(x, y, transpose_x=False, transpose_y=False):
    x = x.astype(F32, copy=False)
    y = y.astype(F32, copy=False)
    if bool(transpose_x):
        x = np.swapaxes(x, -1, -2)
    if bool(transpose_y):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def linear(x, weight, bias=None):
    """iOS15 linear: x @ weight.T + bias, weight [out, in]."""
    out = np.matmul(x.astype(F32, copy=False), weight.astype(F32, copy=False).T)
    return out if bias is None else out + bias.astype(F32)


def softmax(x, axis=-1):
    axis = int(axis)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = 1.0 / np.sqrt(variance.astype(F32).reshape(shape) + F32(epsilon))
    out = (x - mean.astype(F32).reshape(shape)) * inv
    if gamma is not None:
        out = out * gamma.astype(F32).reshape(shape)
    if beta is not None:
        out = out + beta.astype(F32).reshape(shape)
    return out


def reduce(fn: Callable, x, axes=None, keep_dims=False):
    ax = None if axes is None else tuple(int(a) for a in np.asarray(axes).reshape(-1))
    return fn(x, axis=ax, keepdims=bool(keep_dims))


def space_to_batch(x, block_shape, paddings):
    """iOS15 space_to_batch, NCHW; new batch index = (bh_i * bw + bw_i) * n + n_i."""
    bh, bw = (int(v) for v in block_shape)
    p = np.asarray(paddings).reshape(2, 2)
    x = np.pad(x, ((0, 0), (0, 0), (int(p[0, 0]), int(p[0, 1])), (int(p[1, 0]), int(p[1, 1]))))
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // bh, bh, w // bw, bw).transpose(3, 5, 0, 1, 2, 4)
    return r.reshape(bh * bw * n, c, h // bh, w // bw)


def batch_to_space(x, block_shape, crops):
    """iOS15 batch_to_space, the inverse of space_to_batch, then crop."""
    bh, bw = (int(v) for v in block_shape)
    cr = np.asarray(crops).reshape(2, 2)
    nb, c, h, w = x.shape
    n = nb // (bh * bw)
    r = x.reshape(bh, bw, n, c, h, w).transpose(2, 3, 4, 0, 5, 1).reshape(n, c, h * bh, w * bw)
    return r[:, :, int(cr[0, 0]): h * bh - int(cr[0, 1]), int(cr[1, 0]): w * bw - int(cr[1, 1])]


def pad_op(x, pad, mode="constant", constant_val=0.0):
    if str(mode) != "constant":
        raise NotImplementedError(f"pad mode {mode!r}")
    p = [int(v) for v in np.asarray(pad).reshape(-1)]
    lead = x.ndim - len(p) // 2
    widths = [(0, 0)] * lead + [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)]
    return np.pad(x, widths, constant_values=float(constant_val))


# ------------------------------------------------------ constexpr weight ops

def _promote(param: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """optimize/_utils.py promote_rank_to_same_as_data."""
    if param.ndim == rank:
        return param
    if param.ndim == 0:
        return param.reshape((1,) * rank)
    axis = axis + rank if axis < 0 else axis
    shape = [1] * rank
    shape[axis] = param.size
    return param.reshape(shape)


def affine_dequantize(quantized_data, zero_point, scale, axis, *, use_zero_point=True):
    """iOS16 constexpr_affine_dequantize: scale * (q - zero_point), computed in
    float32 and cast to the scale's dtype (optimize/_utils.py dequantize_by_scale_and_zp)."""
    axis = int(axis)
    rank = quantized_data.ndim
    out = quantized_data.astype(F32)
    if use_zero_point:
        out = out - _promote(np.asarray(zero_point), rank, axis).astype(F32)
    out = out * _promote(np.asarray(scale), rank, axis)
    return out.astype(np.asarray(scale).dtype)


def _block_repeat(param: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    for axis, (full, part) in enumerate(zip(shape, param.shape)):
        if full != part:
            param = np.repeat(param, full // part, axis)
    return param


def blockwise_shift_scale(data, scale, offset=None, *, use_offset=True):
    """iOS18 constexpr_blockwise_shift_scale: scale * (data - offset), every
    step in the scale's dtype as compression.py's decompress does it."""
    dt = scale.dtype
    out = data.astype(dt)
    if offset is not None and use_offset:
        out = out - _block_repeat(offset, data.shape)
    return (_block_repeat(scale, data.shape) * out).astype(dt)


def lut_to_dense_ios18(indices, lut, vector_axis=None):
    """iOS18 constexpr_lut_to_dense: indices [shape] (one uint per element),
    lut [blocks..., 2**nbits, vector_size], one palette per block."""
    if lut.shape[-1] != 1:
        raise NotImplementedError("vector palettization (vector_size > 1)")
    shape = indices.shape
    ix = []
    for axis, (full, blocks) in enumerate(zip(shape, lut.shape[:-2])):
        b = np.arange(full) // (full // blocks)
        ix.append(b.reshape([-1 if a == axis else 1 for a in range(len(shape))]))
    return lut[(*ix, indices.astype(np.intp), 0)]


def sparse_to_dense(nonzero_data, mask_bits, shape):
    """Scatter ``nonzero_data`` to the set positions of a flat 0/1 mask (row-major)."""
    out = np.zeros(int(np.prod(shape)), dtype=nonzero_data.dtype)
    out[np.flatnonzero(mask_bits)] = nonzero_data
    return out.reshape(shape)


# ---------------------------------------------------------------- elementwise

BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide,
    "maximum": np.maximum, "minimum": np.minimum,
}

UNARY = {
    "relu": lambda x: np.maximum(x, F32(0)),
    "relu6": lambda x: np.clip(x, F32(0), F32(6)),
    "sigmoid": lambda x: F32(1) / (F32(1) + np.exp(-x)),
    "tanh": np.tanh,
}
