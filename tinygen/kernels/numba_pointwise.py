"""Activation gradients and batch norm in Numba: the same functions as the end of reference.py.

What this file teaches
----------------------
A conv net's other hot loops touch each value only a few times, so their cost is memory
traffic, and NumPy pays it once per operation: ``g * (x > 0)`` makes a boolean array, then
multiplies, two passes and a temporary. Batch norm's backward is seven such passes. Here each
is one or two loops that read every input once and write the output once, split over
tinygen's thread team (``team.py``). The math is the reference's; only the passes change:

1. **Fusion.** leaky_relu's gradient is a select, ``g if x > 0 else slope * g``: one pass where
   NumPy needed five (a profile of the DCGAN step had 28 ms of them in 300 ms).
2. **One pass for both statistics.** Batch norm's mean and variance come from the sums of d
   and d^2, with d = x minus the channel's first value: shifting by a value near the mean keeps
   E[d^2] - E[d]^2 from cancelling, and the sums are kept in float64.
3. **Per-channel coefficients.** The backward is dL/dx = a g + q (x - mean) + r with three
   numbers per channel, computed once from the two sums; the big loop is then one multiply-add
   chain per value.
4. **Split by channel.** Each thread owns whole channels, so every per-channel sum is made by
   one thread in one order: the results do not depend on the thread count.

Arrays of fewer than ``_SMALL`` values are done by the calling thread alone: waking a helper
costs more than it saves. Below ``_NUMPY_BELOW`` values (``_NUMPY_BELOW_MAPS`` for feature maps)
the NumPy twin runs instead, so models with only small activations never compile these loops.
Read next: the callers, ``ops.leaky_relu`` and ``nn.functional.batch_norm``.
"""

import numpy as np
from numba import njit

from . import reference, team

_FASTMATH = {"reassoc", "contract"}  # SIMD sums and fused multiply-adds; NaNs still propagate
_CHUNKS = 16  # pieces of a flat array shared out by the team
# Below this many values, one thread: waking the team's helper cost more than it saved on
# 0.8M-value arrays (DCGAN's (128, 128, 7, 7): leaky_relu's backward 0.39 ms alone, 0.75 ms
# split), and these loops are bound by memory bandwidth, which a second core adds little to.
_SMALL = 1 << 20
# Below this many values, the NumPy twin: a Numba call saves microseconds there, but the first
# one compiles for seconds (3.7 s on the MLP GAN's first step), and an MLP model's activations
# (at most 128 x 1200 here) are all this small. Tests set it to 0 to run the loops on any shape.
_NUMPY_BELOW = 1 << 18
# Feature maps (N, C, H, W), and instance norm's (1, N*C, H, W) view of them, take the loops
# from far fewer values: only conv models have them, and their first step compiles the conv
# loops anyway. At CycleGAN's (32, 8, 28, 28) (200k values) instance norm's forward + backward
# took 0.69 ms on the twins and 0.27 ms on the loops; at (32, 32, 7, 7), 0.44 and 0.16 ms.
_NUMPY_BELOW_MAPS = 1 << 14


def _on_twin(x):
    """Whether x is small enough that the NumPy twin runs instead of the loops."""
    return x.size < (_NUMPY_BELOW if x.ndim < 3 else _NUMPY_BELOW_MAPS)


def _flat_chunks(size):
    return _CHUNKS if size >= _SMALL else 1


# ---------------------------------------------------------------------------------------------
# Activations: flat loops over chunk [t0, t1) of T.
# ---------------------------------------------------------------------------------------------


# Each loop first slices out its chunk as 0-based views: LLVM then vectorises the select
# (indexing the whole arrays from t0*n//T ran 1.7x slower on a 1.6M-value array).


@njit(cache=True, nogil=True)
def _leaky_relu_forward(x, slope, y, T, t0, t1):
    lo, hi = t0 * x.size // T, t1 * x.size // T
    xs, ys = x[lo:hi], y[lo:hi]
    for i in range(hi - lo):
        v = xs[i]
        ys[i] = v if v > 0 else v * slope


@njit(cache=True, nogil=True)
def _leaky_relu_backward(g, x, slope, gx, T, t0, t1):
    lo, hi = t0 * x.size // T, t1 * x.size // T
    gs, xs, out = g[lo:hi], x[lo:hi], gx[lo:hi]
    for i in range(hi - lo):
        v = gs[i]
        out[i] = v if xs[i] > 0 else v * slope


def _elementwise(kernel, arrays, scalars, like):
    """Run a flat kernel over C-contiguous copies of ``arrays``; returns a fresh output."""
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    out = np.empty(like.shape, like.dtype)
    T = _flat_chunks(out.size)
    team.run(kernel, (*flat, *scalars, out.reshape(-1), T), T)
    return out


def leaky_relu_forward(x, negative_slope):
    """y = x where x > 0, else slope * x (see reference.leaky_relu_forward)."""
    if _on_twin(x):
        return reference.leaky_relu_forward(x, negative_slope)
    return _elementwise(_leaky_relu_forward, (x,), (x.dtype.type(negative_slope),), x)


def leaky_relu_backward(g, x, negative_slope):
    """dL/dx = g where x > 0, else slope * g."""
    if _on_twin(x):
        return reference.leaky_relu_backward(g, x, negative_slope)
    return _elementwise(_leaky_relu_backward, (g, x), (x.dtype.type(negative_slope),), g)


def relu_backward(g, x):
    """dL/dx = g where x > 0, else 0."""
    if _on_twin(x):
        return reference.relu_backward(g, x)
    # leaky_relu's loop with slope 0: g * 0, not 0, where x <= 0, so a NaN or inf in g gives
    # NaN there, as the reference's g * [x > 0] does.
    return _elementwise(_leaky_relu_backward, (g, x), (g.dtype.type(0),), g)


# ---------------------------------------------------------------------------------------------
# Batch norm over x (N, C, S): each call handles channels [c0, c1). BatchNorm1d's x (N, C) has
# its own "_rows" kernels that loop along the channels, then the contiguous axis (through the
# (N, C, S) kernels with S = 1 it ran 1.5x slower than NumPy).
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _bn_stats(x, mean, var, c0, c1):
    """mean[c], var[c] (biased) from float64 sums of d and d^2, d = x - x[0, c, 0]."""
    N, C, S = x.shape
    k = c1 - c0
    ref = np.empty(k)
    s1 = np.zeros(k)
    s2 = np.zeros(k)
    for c in range(c0, c1):
        ref[c - c0] = x[0, c, 0]
    for n in range(N):
        for c in range(c0, c1):
            r, a, b = ref[c - c0], 0.0, 0.0
            for s in range(S):
                d = x[n, c, s] - r
                a += d
                b += d * d
            s1[c - c0] += a
            s2[c - c0] += b
    _finish_stats(ref, s1, s2, N * S, mean[c0:c1], var[c0:c1])


@njit(cache=True)
def _finish_stats(ref, s1, s2, m, mean, var):
    for j in range(ref.size):
        mu = s1[j] / m
        mean[j] = ref[j] + mu
        var[j] = max(s2[j] / m - mu * mu, 0.0)


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _bn_stats_rows(x, mean, var, c0, c1):
    """`_bn_stats` for x (N, C): the channels are the contiguous axis, so loop along them."""
    k = c1 - c0
    ref = x[0, c0:c1].astype(np.float64)
    s1, s2 = np.zeros(k), np.zeros(k)
    for n in range(x.shape[0]):
        xr = x[n, c0:c1]
        for j in range(k):
            d = xr[j] - ref[j]
            s1[j] += d
            s2[j] += d * d
    _finish_stats(ref, s1, s2, x.shape[0], mean[c0:c1], var[c0:c1])


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _bn_affine(x, scale, shift, y, c0, c1):
    """y = x * scale[c] + shift[c]."""
    N, C, S = x.shape
    for n in range(N):
        for c in range(c0, c1):
            a, b = scale[c], shift[c]
            for s in range(S):
                y[n, c, s] = x[n, c, s] * a + b


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _bn_affine_rows(x, scale, shift, y, c0, c1):
    """`_bn_affine` for x (N, C)."""
    a, b = scale[c0:c1], shift[c0:c1]
    for n in range(x.shape[0]):
        xr, yr = x[n, c0:c1], y[n, c0:c1]
        for j in range(c1 - c0):
            yr[j] = xr[j] * a[j] + b[j]


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _bn_backward(g, x, mean, inv, w, need_x, gx, gw, gb, c0, c1):
    """gb = sum g, gw = inv * sum g (x - mean); then gx = a g + q (x - mean) + r per channel."""
    N, C, S = x.shape
    k = c1 - c0
    sg, sgx = np.zeros(k), np.zeros(k)
    for n in range(N):  # pass 1: the two sums
        for c in range(c0, c1):
            mu, a, b = mean[c], 0.0, 0.0
            for s in range(S):
                v = g[n, c, s]
                a += v
                b += v * (x[n, c, s] - mu)
            sg[c - c0] += a
            sgx[c - c0] += b
    a, q, r = _grad_coefficients(sg, sgx, inv[c0:c1], w[c0:c1], N * S, gw[c0:c1], gb[c0:c1])
    if not need_x:
        return
    for n in range(N):  # pass 2: the input gradient
        for c in range(c0, c1):
            j = c - c0
            aj, qj, rj, mu = a[j], q[j], r[j], mean[c]
            for s in range(S):
                gx[n, c, s] = aj * g[n, c, s] + qj * (x[n, c, s] - mu) + rj


@njit(cache=True)
def _grad_coefficients(sg, sgx, inv, w, m, gw, gb):
    """gb, gw from the sums; and a, q, r of dL/dx = w inv (g - gb/M - (x - mean) inv gw/M)."""
    k = sg.size
    a, q, r = np.empty(k, w.dtype), np.empty(k, w.dtype), np.empty(k, w.dtype)
    for j in range(k):
        gb[j] = sg[j]
        gw[j] = sgx[j] * inv[j]
        a[j] = w[j] * inv[j]
        q[j] = -a[j] * inv[j] * gw[j] / m
        r[j] = -a[j] * gb[j] / m
    return a, q, r


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _bn_backward_rows(g, x, mean, inv, w, need_x, gx, gw, gb, c0, c1):
    """`_bn_backward` for x (N, C)."""
    k = c1 - c0
    mu = mean[c0:c1]
    sg, sgx = np.zeros(k), np.zeros(k)
    for n in range(x.shape[0]):
        gr, xr = g[n, c0:c1], x[n, c0:c1]
        for j in range(k):
            sg[j] += gr[j]
            sgx[j] += gr[j] * (xr[j] - mu[j])
    a, q, r = _grad_coefficients(sg, sgx, inv[c0:c1], w[c0:c1], x.shape[0], gw[c0:c1],
                                 gb[c0:c1])
    if not need_x:
        return
    for n in range(x.shape[0]):
        gr, xr, out = g[n, c0:c1], x[n, c0:c1], gx[n, c0:c1]
        for j in range(k):
            out[j] = a[j] * gr[j] + q[j] * (xr[j] - mu[j]) + r[j]


def _channels(x):
    """C-contiguous (N, C, S) view or copy of x (N, C, *spatial); (N, C) when S = 1."""
    x = np.ascontiguousarray(x)
    return x if x.ndim == 2 else x.reshape(x.shape[0], x.shape[1], -1)


def _by_channel(kernels, args, x3):
    """Run the (N, C, S) kernel, or its (N, C) twin, over the channels."""
    kernel = kernels[x3.ndim == 2]
    C = x3.shape[1]
    if x3.size < _SMALL:
        kernel(*args, 0, C)
    else:
        team.run(kernel, args, C)


def batch_norm_stats(x):
    """(mean, var) per channel of x (N, C, *spatial), each (C,) in x's dtype."""
    if _on_twin(x):
        return reference.batch_norm_stats(x)
    x3 = _channels(x)
    mean, var = np.empty(x.shape[1], x.dtype), np.empty(x.shape[1], x.dtype)
    _by_channel((_bn_stats, _bn_stats_rows), (x3, mean, var), x3)
    return mean, var


def batch_norm_forward(x, scale, shift):
    """y = x * scale + shift, scale and shift (C,) along axis 1."""
    if _on_twin(x):
        return reference.batch_norm_forward(x, scale, shift)
    x3 = _channels(x)
    y = np.empty(x.shape, x.dtype)
    args = (x3, np.ascontiguousarray(scale, x.dtype), np.ascontiguousarray(shift, x.dtype),
            y.reshape(x3.shape))
    _by_channel((_bn_affine, _bn_affine_rows), args, x3)
    return y


def batch_norm_backward(g, x, mean, inv, w, need_x=True):
    """(gx, gw, gb) of training-mode batch norm; gx is None unless ``need_x``."""
    if _on_twin(x):
        return reference.batch_norm_backward(g, x, mean, inv, w, need_x)
    x3 = _channels(x)
    g3 = _channels(g).reshape(x3.shape)
    dt, C = x.dtype, x.shape[1]
    gx = np.empty(x3.shape if need_x else (0,) * x3.ndim, dt)
    gw, gb = np.empty(C, dt), np.empty(C, dt)
    args = (g3, x3, np.ascontiguousarray(mean, dt), np.ascontiguousarray(inv, dt),
            np.ascontiguousarray(w, dt), need_x, gx, gw, gb)
    _by_channel((_bn_backward, _bn_backward_rows), args, x3)
    return (gx.reshape(x.shape) if need_x else None), gw, gb
