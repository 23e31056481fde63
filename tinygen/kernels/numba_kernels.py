"""Fast conv kernels: im2col/col2im loops in Numba, the GEMMs in NumPy's BLAS.

What this file teaches
----------------------
The same functions, with the same signatures, as ``reference.py`` -- diff the two files. The
math does not change; five engineering choices do, each measured on a 2-core CPU (the first
three by a prototype of this file, the fourth is explained above ``_PER_SAMPLE_MAX_K``, the
fifth above ``_im2col_nhwc_into``):

1. **Numba for the data movement, BLAS for the arithmetic.** A direct 7-deep Numba conv loop
   was ~3x slower than im2col + one big ``np.matmul``: a tuned GEMM uses registers and caches far
   better than a loop we can write. What Numba does well is the index juggling of im2col and
   col2im, in parallel over the batch (``prange``), skipping padded taps instead of testing
   every element.
2. **Reused scratch buffers.** im2col's column matrix is ~25 MB for a typical GAN layer at batch
   128; allocating it on every call (fresh pages, page faults, zeroing by the OS) cost ~1.5x.
   Buffers that never leave this module are cached by (role, shape, dtype) and reused. Every
   array *returned* to the caller is freshly allocated: handing out a cached buffer would let
   the next call overwrite a result the caller still holds (e.g. an activation saved for
   backward). The cache is per thread, so two threads never share scratch.
3. **One threading layer.** Numba's OpenMP layer and OpenBLAS's own threads oversubscribed the
   2 cores (~1.5x slower); the ``workqueue`` layer does not fight BLAS.
4. **Two GEMM shapes.** One big GEMM for wide layers, per-sample GEMMs for thin ones.
5. **Channels-last patches for the wide layers.** The wide path copies x to (N, H, W, C) first,
   so every kernel tap is C contiguous values and im2col/col2im become straight vector copies
   (1 ms instead of 9 ms on Conv2d(64, 128)); the weight's columns are reordered to match.

The public ``im2col``/``col2im`` keep ``reference.py``'s layout, cols (N*Ho*Wo, C*kh*kw) with
columns in (c, i, j) order; only the wide conv path uses (i, j, c) internally. Next:
``__init__.py``.
"""

import os
import threading

import numba
import numpy as np
from numba import njit, prange

from .reference import (
    check_conv_args,
    conv_output_hw,
    conv_transpose_input_hw,
    conv_transpose_output_hw,
    match_output,
    pair,
)

# Must run before the first parallel kernel is compiled or loaded from cache: Numba picks the
# threading layer once per process, on first use. Respect an explicit user choice.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

# ---------------------------------------------------------------------------------------------
# Scratch buffers: reused across calls, never returned.
# ---------------------------------------------------------------------------------------------

# An LRU cache bounded in bytes, not entries: a GAN step touches ~10 (role, shape) pairs, and a
# count limit small enough to bound memory would evict buffers every step and bring back the
# allocation cost. 256 MB holds every scratch buffer of the benchmark's four layers ~4 times.
_MAX_SCRATCH_BYTES = 256 * 2**20
_local = threading.local()


def _scratch(role, shape, dtype):
    """An uninitialised buffer for internal use only; contents are garbage from earlier calls."""
    cache = getattr(_local, "buffers", None)
    if cache is None:
        cache = _local.buffers = {}
    key = (role, tuple(shape), np.dtype(dtype))
    buf = cache.pop(key, None)
    if buf is None:
        buf = np.empty(shape, dtype=dtype)
        held = sum(b.nbytes for b in cache.values())
        while cache and held + buf.nbytes > _MAX_SCRATCH_BYTES:
            held -= cache.pop(next(iter(cache))).nbytes  # dicts keep insertion order: LRU first
    cache[key] = buf  # (re)insert as the most recently used
    return buf


def clear_scratch():
    """Free this thread's cached scratch buffers (e.g. after switching to other shapes)."""
    _local.buffers = {}


# ---------------------------------------------------------------------------------------------
# Numba loops. Plain Python functions jitted at module level: run with NUMBA_DISABLE_JIT=1 and
# they become ordinary (slow) Python you can step through in a debugger.
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _valid_range(offset, stride, size, n):
    """Indices t in [lo, hi) of range(n) whose position t*stride + offset lies in [0, size)."""
    lo = max(0, -(offset // stride))  # ceil(-offset / stride)
    hi = min(n, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


@njit(cache=True, parallel=True)
def _im2col_into(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols):
    """Fill cols (N*Ho*Wo, C*kh*kw) from x (N, C, H, W); taps in the padding become zeros."""
    N, C, H, W = x.shape
    K = C * kh * kw
    for n in prange(N):  # sample n owns rows [n*Ho*Wo, (n+1)*Ho*Wo): one contiguous block
        for oh in range(Ho):
            top = oh * sh - ph
            i_lo, i_hi = _valid_range(top, dh, H, kh)  # kernel rows that land in the image
            for ow in range(Wo):
                left = ow * sw - pw
                j_lo, j_hi = _valid_range(left, dw, W, kw)
                r = (n * Ho + oh) * Wo + ow
                # Only border patches touch the padding: zero those rows first, so the copy
                # below needs no per-element bounds test.
                if i_lo > 0 or i_hi < kh or j_lo > 0 or j_hi < kw:
                    for k in range(K):
                        cols[r, k] = 0
                for c in range(C):
                    for i in range(i_lo, i_hi):
                        k0 = (c * kh + i) * kw
                        for j in range(j_lo, j_hi):
                            cols[r, k0 + j] = x[n, c, top + i * dh, left + j * dw]


@njit(cache=True, parallel=True)
def _col2im_into(cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, gx):
    """gx (N, C, H, W) = scatter-add of cols (N*Ho*Wo, C*kh*kw); padded taps are skipped."""
    N, C, H, W = gx.shape
    for n in prange(N):  # each sample owns gx[n]: no two threads ever add into one pixel
        gx[n] = 0  # gx[n] (C*H*W floats) stays in cache while its patches are added in
        for oh in range(Ho):
            top = oh * sh - ph
            i_lo, i_hi = _valid_range(top, dh, H, kh)
            for ow in range(Wo):
                left = ow * sw - pw
                j_lo, j_hi = _valid_range(left, dw, W, kw)
                r = (n * Ho + oh) * Wo + ow
                for c in range(C):
                    for i in range(i_lo, i_hi):
                        k0 = (c * kh + i) * kw
                        for j in range(j_lo, j_hi):
                            gx[n, c, top + i * dh, left + j * dw] += cols[r, k0 + j]


@njit(cache=True, parallel=True)
def _im2col_nhwc_into(xh, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols):
    """cols (N*Ho*Wo, kh*kw*C), taps in (i, j, c) order, from channels-last xh (N, H, W, C).

    The same patches as `_im2col_into`, but each tap is C *contiguous* values in both arrays,
    so the inner loop is a straight copy the compiler vectorises: on Conv2d(64, 128) at batch
    128 this is 1 ms against 9 ms for the NCHW loop (plus about 1 ms for the transpose).
    """
    N, H, W, C = xh.shape
    for n in prange(N):
        for oh in range(Ho):
            top = oh * sh - ph
            for ow in range(Wo):
                left = ow * sw - pw
                r = (n * Ho + oh) * Wo + ow
                for i in range(kh):
                    y = top + i * dh
                    for j in range(kw):
                        x = left + j * dw
                        k0 = (i * kw + j) * C
                        if 0 <= y < H and 0 <= x < W:
                            for c in range(C):
                                cols[r, k0 + c] = xh[n, y, x, c]
                        else:                          # a tap in the zero padding
                            for c in range(C):
                                cols[r, k0 + c] = 0


@njit(cache=True, parallel=True)
def _col2im_nhwc_into(cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, gxh):
    """Adjoint of `_im2col_nhwc_into`: gxh (N, H, W, C) = scatter-add of the (i, j, c) cols."""
    N, H, W, C = gxh.shape
    for n in prange(N):
        gxh[n] = 0
        for oh in range(Ho):
            top = oh * sh - ph
            for ow in range(Wo):
                left = ow * sw - pw
                r = (n * Ho + oh) * Wo + ow
                for i in range(kh):
                    y = top + i * dh
                    if y < 0 or y >= H:
                        continue
                    for j in range(kw):
                        x = left + j * dw
                        if 0 <= x < W:
                            k0 = (i * kw + j) * C
                            for c in range(C):
                                gxh[n, y, x, c] += cols[r, k0 + c]


@njit(cache=True, parallel=True)
def _nchw_to_rows(a, out):
    """(N, O, P) -> (N*P, O): grad_output in the row-per-pixel layout of the GEMMs."""
    N, O, P = a.shape
    for n in prange(N):
        for o in range(O):
            for q in range(P):
                out[n * P + q, o] = a[n, o, q]


@njit(cache=True, parallel=True)
def _rows_to_nchw(a, out):
    """(N*P, O) -> (N, O, P): a GEMM result back to the NCHW layout callers expect."""
    N, O, P = out.shape
    for n in prange(N):
        for q in range(P):
            for o in range(O):
                out[n, o, q] = a[n * P + q, o]


# ---------------------------------------------------------------------------------------------
# Small glue: geometry and layout changes, shared by the public functions below.
# ---------------------------------------------------------------------------------------------


def _geometry(op, hw, k, stride, padding, dilation):
    """(sh, sw, ph, pw, dh, dw, Ho, Wo) as plain ints, the argument tail of the loops above."""
    s, p, d = pair(stride), pair(padding), pair(dilation)
    return (*s, *p, *d, *conv_output_hw(op, hw, k, s, p, d))


def _cols_of(x, k, g):
    """im2col of x into a reused scratch buffer (internal only: the buffer is overwritten)."""
    N, C = x.shape[:2]
    cols = _scratch("cols", (N * g[6] * g[7], C * k[0] * k[1]), x.dtype)
    _im2col_into(np.ascontiguousarray(x), *k, *g, cols)
    return cols  # (N*Ho*Wo, C*kh*kw)


def _cols_nhwc_of(x, k, g):
    """im2col in (i, j, c) column order via a channels-last copy of x (scratch, internal)."""
    N, C = x.shape[:2]
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))        # (N, H, W, C)
    cols = _scratch("cols", (N * g[6] * g[7], C * k[0] * k[1]), x.dtype)
    _im2col_nhwc_into(xh, *k, *g, cols)
    return cols


def _taps_last(w):
    """(O, C, kh, kw) -> (O, kh*kw*C): the weight with columns in the (i, j, c) order."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)


def _rows_of(gy, hw):
    """grad_output (N, O, Ho, Wo) -> scratch (N*Ho*Wo, O), the GEMMs' row-per-pixel layout."""
    gy = np.ascontiguousarray(match_output(gy, hw))
    N, O = gy.shape[:2]
    out = _scratch("gy_rows", (N * hw[0] * hw[1], O), gy.dtype)
    _nchw_to_rows(gy.reshape(N, O, -1), out)
    return out


# ---------------------------------------------------------------------------------------------
# Public kernels: same names and signatures as reference.py.
# ---------------------------------------------------------------------------------------------


def im2col(x, kh, kw, stride, padding, dilation):
    """cols (N*Ho*Wo, C*kh*kw) of x (N, C, H, W); fresh array (see reference.im2col)."""
    g = _geometry("im2col", x.shape[2:], (kh, kw), stride, padding, dilation)
    N, C = x.shape[:2]
    cols = np.empty((N * g[6] * g[7], C * kh * kw), dtype=x.dtype)
    _im2col_into(np.ascontiguousarray(x), kh, kw, *g, cols)
    return cols


def col2im(cols, x_shape, kh, kw, stride, padding, dilation):
    """Adjoint of im2col: scatter-add cols back into a fresh (N, C, H, W) array."""
    g = _geometry("col2im", x_shape[2:], (kh, kw), stride, padding, dilation)
    gx = np.empty(x_shape, dtype=cols.dtype)
    _col2im_into(np.ascontiguousarray(cols), kh, kw, *g, gx)
    return gx


# GEMM strategy. One big GEMM over the whole batch needs the activations transposed between
# NCHW and the row-per-pixel layout (N*Ho*Wo, O) -- a full extra pass over y or gy. When the
# reduction size C*kh*kw is large the GEMM is compute-bound and that pass is cheap next to what
# BLAS gains from one big matrix (C*kh*kw = 1024: a tie on the forward, ~1.1x faster input
# grad, ~1.5x faster weight grad). When it is small the GEMM is memory-bound and the transpose
# doubles the traffic, so N per-sample GEMMs on strided views, which BLAS reads without copying,
# win (C*kh*kw = 64: ~1.1-1.35x; 16: ~2-3x; 256 was a tie). Measured on a shared, noisy 2-core
# machine, so treat the threshold as rough.
_PER_SAMPLE_MAX_K = 128


def conv2d_forward(x, w, stride=1, padding=0, dilation=1):
    """y = conv2d(x, w): x (N, C, H, W), w (O, C, kh, kw) -> y (N, O, Ho, Wo). No bias."""
    check_conv_args("conv2d", x.shape, w.shape, (x.dtype, w.dtype))
    N, O, k = x.shape[0], w.shape[0], w.shape[2:]
    g = _geometry("conv2d", x.shape[2:], k, stride, padding, dilation)
    w2 = w.reshape(O, -1)  # (O, C*kh*kw)
    if w2.shape[1] <= _PER_SAMPLE_MAX_K:
        cols = _cols_of(x, k, g)  # (N*Ho*Wo, C*kh*kw), scratch
        cols3 = cols.reshape(N, -1, w2.shape[1]).transpose(0, 2, 1)  # (N, C*kh*kw, Ho*Wo) view
        return np.matmul(w2, cols3).reshape(N, O, g[6], g[7])  # fresh, already NCHW
    cols = _cols_nhwc_of(x, k, g)  # (N*Ho*Wo, kh*kw*C): channels-last patches, scratch
    y_rows = _scratch("y_rows", (cols.shape[0], O), x.dtype)
    np.matmul(cols, _taps_last(w).T, out=y_rows)  # (N*Ho*Wo, O): the one big GEMM
    y = np.empty((N, O, g[6], g[7]), dtype=x.dtype)  # fresh: it escapes to the caller
    _rows_to_nchw(y_rows, y.reshape(N, O, -1))
    return y


def conv2d_input_grad(gy, w, x_shape, stride=1, padding=0, dilation=1):
    """gx = dL/dx: gcols = gy @ W (one GEMM), then col2im in Numba."""
    check_conv_args("conv2d_input_grad", x_shape, w.shape, (gy.dtype, w.dtype))
    N, O, k = x_shape[0], w.shape[0], w.shape[2:]
    g = _geometry("conv2d_input_grad", x_shape[2:], k, stride, padding, dilation)
    w2 = w.reshape(O, -1)  # (O, C*kh*kw)
    gcols = _scratch("cols", (N * g[6] * g[7], w2.shape[1]), gy.dtype)
    if w2.shape[1] <= _PER_SAMPLE_MAX_K:
        gy3 = np.ascontiguousarray(match_output(gy, g[6:])).reshape(N, O, -1)  # (N, O, Ho*Wo)
        np.matmul(gy3.transpose(0, 2, 1), w2, out=gcols.reshape(N, -1, w2.shape[1]))
        gx = np.empty(x_shape, dtype=gy.dtype)  # fresh: it escapes to the caller
        _col2im_into(gcols, *k, *g, gx)
        return gx
    np.matmul(_rows_of(gy, g[6:]), _taps_last(w), out=gcols)  # (N*Ho*Wo, kh*kw*C)
    n, c, h, wd = x_shape
    gxh = _scratch("gx_nhwc", (n, h, wd, c), gy.dtype)
    _col2im_nhwc_into(gcols, *k, *g, gxh)
    return np.ascontiguousarray(gxh.transpose(0, 3, 1, 2))  # fresh NCHW copy


def conv2d_weight_grad(gy, x, w_shape, stride=1, padding=0, dilation=1):
    """gw = dL/dw = gy^T @ cols(x), a GEMM with N*Ho*Wo as the reduction dimension."""
    check_conv_args("conv2d_weight_grad", x.shape, w_shape, (gy.dtype, x.dtype))
    N, O, k = x.shape[0], w_shape[0], w_shape[2:]
    g = _geometry("conv2d_weight_grad", x.shape[2:], k, stride, padding, dilation)
    Kc = w_shape[1] * k[0] * k[1]
    if Kc <= _PER_SAMPLE_MAX_K:
        cols = _cols_of(x, k, g)  # (N*Ho*Wo, C*kh*kw), scratch
        gy3 = np.ascontiguousarray(match_output(gy, g[6:])).reshape(N, O, -1)  # (N, O, Ho*Wo)
        per_sample = _scratch("gw_n", (N, O, Kc), x.dtype)
        np.matmul(gy3, cols.reshape(N, -1, Kc), out=per_sample)  # (N, O, C*kh*kw)
        return per_sample.sum(axis=0).reshape(w_shape)  # fresh (O, C, kh, kw)
    cols = _cols_nhwc_of(x, k, g)  # (N*Ho*Wo, kh*kw*C), scratch
    gy_rows = _rows_of(gy, g[6:])  # (N*Ho*Wo, O), scratch
    # cols^T @ gy gives gw^T; OpenBLAS ran this orientation ~1.3x faster than gy^T @ cols
    # on the benchmark layers (it splits the long reduction better).
    gw_t = cols.T @ gy_rows  # (kh*kw*C, O), rows in (i, j, c) order
    gw = gw_t.T.reshape(O, k[0], k[1], w_shape[1])  # (O, kh, kw, C)
    return np.ascontiguousarray(gw.transpose(0, 3, 1, 2))  # fresh (O, C, kh, kw)


# ---------------------------------------------------------------------------------------------
# ConvTranspose2d: built on the three conv kernels above, exactly as in reference.py.
# ---------------------------------------------------------------------------------------------


def conv_transpose2d_forward(x, w, stride=1, padding=0, output_padding=0, dilation=1):
    """y = conv_transpose2d(x, w), w (C_in, C_out, kh, kw): IS ``conv2d_input_grad``."""
    k, s, p, d = w.shape[2:], pair(stride), pair(padding), pair(dilation)
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[0]:
        raise ValueError(
            f"conv_transpose2d: input {x.shape} does not match weight {w.shape} "
            f"(expected input channels == weight.shape[0])"
        )
    hw = conv_transpose_output_hw(x.shape[2:], k, s, p, pair(output_padding), d)
    return conv2d_input_grad(x, w, (x.shape[0], w.shape[1], *hw), s, p, d)


def conv_transpose2d_input_grad(gy, w, stride=1, padding=0, dilation=1, output_padding=0):
    """gx for conv_transpose2d: IS ``conv2d_forward`` (cropped if output_padding >= stride)."""
    gx = conv2d_forward(gy, w, stride, padding, dilation)  # (N, C_in, >=H, >=W)
    hw = conv_transpose_input_hw(
        gy.shape[2:], w.shape[2:], stride, padding, output_padding, dilation
    )
    return gx if gx.shape[2:] == hw else np.ascontiguousarray(gx[:, :, : hw[0], : hw[1]])


def conv_transpose2d_weight_grad(x, gy, w_shape, stride=1, padding=0, dilation=1):
    """gw for conv_transpose2d: ``conv2d_weight_grad`` with gy as the conv input, x as its gy."""
    return conv2d_weight_grad(x, gy, w_shape, stride, padding, dilation)
