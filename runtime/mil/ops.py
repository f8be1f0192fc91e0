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


_SIGN, _EXP = np.uint32(0x80000000), np.uint32(0x7F800000)
_MIN_EXP = np.uint32(113 << 23)   # 2^-14, fp16's smallest normal: below it fp16's grid is fixed at 2^-24
_SHIFT = np.uint32(13 << 23)      # x 2^13: fp32 keeps 13 more mantissa bits than fp16


_BIG_EXP = np.uint32(142 << 23)   # |x| >= 2^15: only from here can a value round to infinity
_ROUND_BLOCK = 1 << 16            # values per block: the passes below stay in the core's cache


def _round_f16_flat(flat: np.ndarray) -> np.ndarray:
    """Round a contiguous 1-D float32 array to the nearest fp16 values, in
    place, bit for bit as ``astype(float16).astype(float32)`` (ties to even,
    fp16 subnormals, signed zeros, overflow to infinity, NaN), with float32
    arithmetic instead of numpy's cast: its cast costs ~100 ns per value in
    fp16's subnormal range and ~60 ns on overflow (it raises the FP flags one
    value at a time) against a few ns here whatever the values.

    Adding c = sign(x) * 2^(max(e, -14) + 13), e the exponent of x, leaves
    exactly fp16's precision in the float32 sum (rounded to nearest even by
    the addition) and subtracting c again is exact; OR-ing the sign back
    restores -0 where a negative value rounds to zero. Values of 2^15 and
    more (where fp16 may overflow), infinities and NaNs take numpy's cast."""
    bits = flat.view(np.uint32)
    size = flat.size
    step = min(size, _ROUND_BLOCK)
    sign_buf = np.empty(step, np.uint32)
    c_buf = np.empty(step, np.uint32)
    for start in range(0, size, step):
        b = bits[start:start + step]
        f = flat[start:start + step]
        k = b.size
        sign, c = sign_buf[:k], c_buf[:k]
        np.bitwise_and(b, _SIGN, out=sign)
        np.bitwise_and(b, _EXP, out=c)
        big = c.max() >= _BIG_EXP
        if big:  # rare: values that may become fp16 infinities, infinities, NaNs
            where = np.flatnonzero(c >= _BIG_EXP)
            with np.errstate(all="ignore"):
                special = f[where].astype(F16).astype(F32)
        np.maximum(c, _MIN_EXP, out=c)
        c += _SHIFT
        c |= sign
        cf = c.view(F32)
        with np.errstate(over="ignore", invalid="ignore"):
            f += cf
            f -= cf
        b |= sign
        if big:
            f[where] = special
    return flat


def round_f16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest fp16 and keep them as float32 (a new array)."""
    out = np.array(x, dtype=F32, order="K", copy=True)
    return round_f16_in_place(out)


def flat_view(x: np.ndarray) -> np.ndarray | None:
    """A 1-D view of all of ``x``'s elements when they fill one contiguous
    block of memory in some axis order (an NCHW view of NHWC memory does),
    else None. Elementwise work on it runs numpy's contiguous loops, several
    times faster than its strided loops on these layouts (the fp16 casts
    most of all)."""
    if x.flags.c_contiguous:
        return x.reshape(-1)
    perm = sorted(range(x.ndim), key=lambda a: -x.strides[a])
    y = x.transpose(perm)
    return y.reshape(-1) if y.flags.c_contiguous else None


def round_f16_in_place(x: np.ndarray) -> np.ndarray:
    """round_f16 written back into the float32 array ``x`` (no float32 allocation)."""
    flat = flat_view(x)
    if flat is None:  # memory not one block: round a compact copy and write it back
        flat = np.ascontiguousarray(x).reshape(-1)
        np.copyto(x, _round_f16_flat(flat).reshape(x.shape))
    else:
        _round_f16_flat(flat)
    return x


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

def _pad_nhwc(xh: np.ndarray, pt: int, pb: int, pl: int, pr: int) -> np.ndarray:
    """Zero padding of H and W of an NHWC array (np.pad's general machinery
    costs more than the copy itself on these sizes)."""
    n, h, w, c = xh.shape
    out = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=F32)
    out[:, pt:pt + h, pl:pl + w, :] = xh
    return out


# Images per tile of the depthwise kernel: its per-tap passes then run on a
# few hundred kilobytes that stay in the core's cache instead of streaming
# the whole chunk through memory 18 times (measured about 2x faster).
DEPTHWISE_TILE_BYTES = 256 * 1024


def _depthwise(xh: np.ndarray, weight: np.ndarray, bias, strides, dil, pads, ho: int, wo: int) -> np.ndarray:
    """Depthwise conv (groups == input channels) of unpadded NHWC input:
    per tile of images, the zero-padded tile is built, then for each kernel
    tap (row-major order) one strided view of it is multiplied by the tap's
    per-channel weights and accumulated; the bias is added last.
    weight [C * mult, 1, kH, kW] -> output NHWC [N, Ho, Wo, C * mult]."""
    n, h, w, c = xh.shape
    o, _, kh, kw = weight.shape
    mult = o // c
    (pt, pb), (pl, pr) = pads
    hp, wp = h + pt + pb, w + pl + pr
    wt = np.ascontiguousarray(weight.reshape(c, mult, kh, kw).transpose(2, 3, 0, 1))  # [kH, kW, C, mult]
    if mult == 1 and strides[1] == 1:
        # weights repeated along W: a tap row (W x C) and its weights are then
        # both one contiguous run, which numpy's loops take in one stride
        wt = np.ascontiguousarray(np.broadcast_to(wt[:, :, None, :, 0], (kh, kw, wo, c)))[..., None]
    per_image = (ho * wo * o * 2 + hp * wp * c) * 4
    tile = max(1, min(n, DEPTHWISE_TILE_BYTES // per_image))
    shape = (ho, wo, c) if mult == 1 else (ho, wo, c, mult)
    out = np.empty((n, *shape), dtype=F32)
    tmp = np.empty((tile, *shape), dtype=F32)
    padded = bool(pt or pb or pl or pr)
    buf = np.zeros((tile, hp, wp, c), dtype=F32) if padded else None
    for s in range(0, n, tile):
        k = min(tile, n - s)
        if padded:
            buf[:k, pt:pt + h, pl:pl + w, :] = xh[s:s + k]
            src = buf[:k]
        else:
            src = xh[s:s + k]
        acc, t = out[s:s + k], tmp[:k]
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dil[0], j * dil[1]
                tap = src[:, r0: r0 + (ho - 1) * strides[0] + 1: strides[0], c0: c0 + (wo - 1) * strides[1] + 1: strides[1], :]
                wij = wt[i, j, ..., 0] if mult == 1 else wt[i, j]
                if mult != 1:
                    tap = tap[..., None]
                if i == 0 and j == 0:
                    np.multiply(tap, wij, out=acc)
                else:
                    np.multiply(tap, wij, out=t)
                    acc += t
        if bias is not None:
            flat = acc.reshape(k, ho, wo, o)
            flat += bias
    return out.reshape(n, ho, wo, o)


def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    """iOS15 conv, 2-D: x [N, C, H, W], weight [O, C/groups, kH, kW].

    Computed channels-last; the result is an NCHW view of NHWC memory, which
    the next conv/pool/transpose reads without another copy. Three paths,
    the same sums: 1x1 kernels are one GEMM on the input itself, depthwise
    convs (one input channel per group) accumulate strided per-tap views
    (_depthwise), everything else is im2col + one GEMM per group."""
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    strides = (1, 1) if strides is None else tuple(int(s) for s in np.asarray(strides).reshape(-1))
    dil = (1, 1) if dilations is None else tuple(int(d) for d in np.asarray(dilations).reshape(-1))
    groups = int(groups)
    if groups < 1 or c != cg * groups or o % groups:
        raise ValueError(f"conv of {c} channels with weight {list(weight.shape)} and {groups} groups")
    (pt, pb), (pl, pr) = pads = spatial_pads(str(pad_type), pad, (h, w), (kh, kw), strides, dil)
    ekh, ekw = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
    ho = (h + pt + pb - ekh) // strides[0] + 1
    wo = (w + pl + pr - ekw) // strides[1] + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"conv kernel {kh}x{kw} does not fit the {h}x{w} input")
    weight = weight.astype(F32, copy=False)
    xh = x.transpose(0, 2, 3, 1)  # NHWC view
    if cg == 1 and groups == c and groups > 1:
        b = None if bias is None else bias.astype(F32)
        return _depthwise(xh, weight, b, strides, dil, pads, ho, wo).transpose(0, 3, 1, 2)
    if pt or pb or pl or pr:
        xh = _pad_nhwc(xh, pt, pb, pl, pr)
    if kh == kw == 1 and groups == 1:
        xs = xh[:, : (ho - 1) * strides[0] + 1: strides[0], : (wo - 1) * strides[1] + 1: strides[1], :]
        out = (xs.reshape(n * ho * wo, c) @ weight.reshape(o, c).T).reshape(n, ho, wo, o)
    else:
        win = sliding_window_view(xh, (ekh, ekw), axis=(1, 2))[:, :: strides[0], :: strides[1], :, :: dil[0], :: dil[1]]
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


# MIL pad mode -> numpy's: "reflect" mirrors without repeating the edge (as
# numpy's "reflect"), "replicate" repeats the edge value (numpy's "edge").
_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


def pad_op(x, pad, mode="constant", constant_val=0.0):
    """iOS15 pad: ``pad`` holds (before, after) pairs for the last len(pad)/2 axes."""
    mode = str(np.asarray(mode).reshape(()))
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"pad mode {mode!r}")
    p = [int(v) for v in np.asarray(pad).reshape(-1)]
    if len(p) % 2 or len(p) // 2 > x.ndim:
        raise ValueError(f"pad {p} for a rank-{x.ndim} tensor")
    lead = x.ndim - len(p) // 2
    widths = [(0, 0)] * lead + [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)]
    if mode == "constant":
        return np.pad(x, widths, constant_values=float(constant_val))
    return np.pad(x, widths, mode=_PAD_MODES[mode])


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


def lut_to_dense_ios18(indices, lut, vector_axis=None, *, per_block=True):
    """iOS18 constexpr_lut_to_dense: indices [shape] (one uint per element),
    lut [blocks..., 2**nbits, vector_size], one palette per block (a block is
    shape/blocks consecutive entries of each axis: a per-grouped-channel
    palette's group of channels). ``per_block=False`` is the wrong decoding
    (the first block's palette everywhere), kept only so tests can prove it
    would be caught."""
    if lut.shape[-1] != 1:
        raise NotImplementedError("vector palettization (vector_size > 1)")
    shape = indices.shape
    ix = []
    for axis, (full, blocks) in enumerate(zip(shape, lut.shape[:-2])):
        if full % blocks:
            raise ValueError(f"axis {axis} of {full} does not split into {blocks} palette blocks")
        b = np.arange(full) // (full // blocks) if per_block else np.zeros(full, dtype=np.intp)
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

def _relu6(x):
    # min(max(x, 0), 6) with one temporary (np.clip's dispatch costs more)
    out = np.maximum(x, F32(0))
    return np.minimum(out, F32(6), out=out)


def _sigmoid(x):
    # 1 / (1 + e^-x) without overflow warnings for large |x| (e^-x is inf -> 0)
    with np.errstate(over="ignore"):
        return F32(1) / (F32(1) + np.exp(-x))


def _softplus(x):
    # log(1 + e^x) as the definition's value_inference writes it: stable for large |x|
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, F32(0))


UNARY = {
    "relu": lambda x: np.maximum(x, F32(0)),
    "relu6": _relu6,
    "sigmoid": _sigmoid,
    "silu": lambda x: x * _sigmoid(x),           # iOS15 silu: x * sigmoid(x) (swish)
    "softplus": _softplus,
    "softsign": lambda x: x / (F32(1) + np.abs(x)),
    "tanh": np.tanh,
    "abs": np.abs,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "square": np.square,
}


def _channel(param, x):
    """A per-channel parameter [C] broadcast over x [N, C, ...] (prelu, softplus_parametric)."""
    p = np.asarray(param, F32).reshape(-1)
    return p.reshape((1, -1) + (1,) * (x.ndim - 2)) if p.size > 1 else p.reshape(())


# iOS15 activations with const alpha (and beta) parameters, as their
# definitions' value_inference computes them (defs/iOS15/activation.py).
def elu(x, alpha):
    with np.errstate(over="ignore"):
        return np.where(x > 0, x, F32(alpha) * (np.exp(np.minimum(x, F32(0))) - F32(1)))


def leaky_relu(x, alpha):
    return np.where(x >= 0, x, x * F32(alpha))


def prelu(x, alpha):
    return np.maximum(x, F32(0)) + np.minimum(x, F32(0)) * _channel(alpha, x)


def clamped_relu(x, alpha, beta):
    return np.minimum(np.maximum(x, F32(0)), F32(beta)) + np.minimum(np.minimum(x, F32(0)) * F32(alpha), F32(beta))


def thresholded_relu(x, alpha):
    return np.where(x < F32(alpha), F32(0), x)


def sigmoid_hard(x, alpha, beta):
    return np.minimum(np.maximum(F32(alpha) * x + F32(beta), F32(0)), F32(1))


def linear_activation(x, alpha, beta):
    return F32(alpha) * x + F32(beta)


def scaled_tanh(x, alpha, beta):
    return F32(alpha) * np.tanh(x * F32(beta))


def softplus_parametric(x, alpha, beta):
    return _channel(alpha, x) * _softplus(x * _channel(beta, x))


def clip(x, alpha, beta):
    """iOS15 clip: min(max(x, alpha), beta)."""
    return np.minimum(np.maximum(x, F32(alpha)), F32(beta))


def threshold(x, alpha):
    """iOS15 threshold: max(x, alpha)."""
    return np.maximum(x, F32(alpha))


# op type -> (kernel, its const parameters; each is required, as in the definitions)
ACTIVATIONS = {
    "elu": (elu, ("alpha",)), "leaky_relu": (leaky_relu, ("alpha",)), "prelu": (prelu, ("alpha",)),
    "clamped_relu": (clamped_relu, ("alpha", "beta")), "thresholded_relu": (thresholded_relu, ("alpha",)),
    "sigmoid_hard": (sigmoid_hard, ("alpha", "beta")), "linear_activation": (linear_activation, ("alpha", "beta")),
    "scaled_tanh": (scaled_tanh, ("alpha", "beta")), "softplus_parametric": (softplus_parametric, ("alpha", "beta")),
    "clip": (clip, ("alpha", "beta")), "threshold": (threshold, ("alpha",)),
}


# ------------------------------------------------------------------ in place

IN_PLACE = frozenset({"relu", "relu6", "add", "sub", "mul", "real_div", "maximum", "minimum"})


def in_place(op_type: str, v: dict) -> np.ndarray | None:
    """``op_type`` computed into its float32 input ``x`` (which the caller
    knows is dead and unshared), or None when it cannot be (other dtype, a
    broadcast that would grow ``x``, a read-only array). Same arithmetic as
    UNARY/BINARY, so the same values."""
    x = v["x"]
    if not isinstance(x, np.ndarray) or x.dtype != F32 or not x.flags.writeable:
        return None
    if op_type in ("relu", "relu6"):
        flat = flat_view(x)
        t = x if flat is None else flat
        if op_type == "relu6":
            np.clip(t, F32(0), F32(6), out=t)  # one pass: min(max(t, 0), 6), NaN stays NaN
        else:
            np.maximum(t, F32(0), out=t)
        return x
    y = v.get("y")
    if not isinstance(y, np.ndarray) or y.dtype != F32 or np.broadcast_shapes(x.shape, y.shape) != x.shape:
        return None
    return BINARY[op_type](x, y, out=x)
