"""Fast conv kernels: data movement and thin convs in Numba, wide GEMMs in NumPy's BLAS.

What this file teaches
----------------------
The same functions, with the same signatures, as ``reference.py`` -- diff the two files. The
math does not change; six engineering choices do, each measured on the 2-core benchmark
machine (the measurements are listed in the README's "Performance notes"):

1. **Two strategies, by the shape of the work.** A wide layer (long dot products, e.g.
   Conv2d(64, 128): C*kh*kw = 1024) is compute-bound: im2col in Numba, then one big
   ``np.matmul``, because a tuned GEMM uses registers and caches far better than a loop we can
   write (a direct 7-deep Numba loop was much slower). A thin layer (Conv2d(1, 64):
   C*kh*kw = 16) is memory-bound: the "direct" kernels work one sample at a time with its
   patches in the L1 cache and touch each big activation once per pass. See
   ``_takes_direct_path``.
2. **One backward pass for all the gradients.** ``conv2d_backward`` reads the output gradient
   once for the input, weight and bias gradients (the direct kernels), or transposes it once
   for both GEMMs (the wide path). The bias is added inside the forward, never in a pass of
   its own.
3. **Reused scratch buffers.** im2col's column matrix is ~25 MB for a typical GAN layer at batch
   128; allocating it on every call means fresh pages, page faults and zeroing by the OS.
   Buffers that never leave this module are cached by (role, shape, dtype) and reused. Every
   array *returned* to the caller is freshly allocated: handing out a cached buffer would let
   the next call overwrite a result the caller still holds (e.g. an activation saved for
   backward). The cache is per thread, so two threads never share scratch.
4. **Our own threads, not Numba's threading layer.** Numba's OpenMP layer spins, and fought
   OpenBLAS's threads for the 2 cores; its ``workqueue`` layer sleeps, but each parallel
   launch then wakes every worker and parks the caller, a large share of a thin layer's
   forward. Every loop here is a ``nogil`` kernel over a range of samples, and ``team.run``
   (read ``team.py``) splits the batch between the calling thread and parked helpers.
5. **Channels-last patches for the wide layers.** The wide path copies x to (N, H, W, C) first,
   so every kernel tap is C contiguous values and im2col/col2im become straight vector copies;
   the weight's columns are reordered to match.
6. **Loops shaped for SIMD.** The direct kernels' innermost loops run along a row of output
   pixels, and each loads four rows and updates two or four (register blocking), so LLVM emits
   vector multiply-adds that are not starved by loads.

How to read it: every size a loop needs comes from one ``ConvGeometry`` (``g.ho``, ``g.wo``,
``g.out_pixels`` = Ho*Wo, ``g.patch_size`` = C*kh*kw), unpacked into plain ints before it
reaches a Numba loop. Each Numba kernel serves one public function, and each public function
calls ``team.run`` on its loops itself, so a layer is a few calls away from its loop.

The public ``im2col``/``col2im`` keep ``reference.py``'s layout, cols (N*Ho*Wo, C*kh*kw) with
columns in (c, i, j) order; only the wide conv path uses (i, j, c) internally. Next:
``__init__.py``.
"""

import functools
import threading
from typing import NamedTuple

import numpy as np
from numba import njit

from . import reference, team
from .numba_minibatch import (  # noqa: F401  (minibatch discrimination's pair loops)
    minibatch_closeness_backward,
    minibatch_closeness_forward,
)
from .numba_optim import adam_update  # noqa: F401  (Adam's update in one pass)
from .numba_pointwise import (  # noqa: F401  (the activation and batch-norm kernels)
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_stats,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
)
from .reference import (
    check_conv_args,
    conv_output_hw,
    conv_transpose_input_hw,
    conv_transpose_output_hw,
    match_output,
    pair,
)

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


@njit(cache=True, nogil=True)
def _im2col_into(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols, n0, n1):
    """Fill cols (N*Ho*Wo, C*kh*kw) from x (N, C, H, W); taps in the padding become zeros."""
    N, C, H, W = x.shape
    K = C * kh * kw
    for n in range(n0, n1):  # sample n owns rows [n*Ho*Wo, (n+1)*Ho*Wo): one contiguous block
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


@njit(cache=True, nogil=True)
def _col2im_into(cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, gx, n0, n1):
    """gx (N, C, H, W) = scatter-add of cols (N*Ho*Wo, C*kh*kw); padded taps are skipped."""
    N, C, H, W = gx.shape
    for n in range(n0, n1):  # each sample owns gx[n]: no two threads ever add into one pixel
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


@njit(cache=True, nogil=True)
def _im2col_nhwc_into(xh, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, cols, n0, n1):
    """cols (N*Ho*Wo, kh*kw*C), taps in (i, j, c) order, from channels-last xh (N, H, W, C).

    The same patches as `_im2col_into`, but each tap is C *contiguous* values in both arrays,
    so the inner loop is a straight copy the compiler vectorises, several times faster than the
    NCHW loop even with the cost of the transpose.
    """
    N, H, W, C = xh.shape
    for n in range(n0, n1):
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


@njit(cache=True, nogil=True)
def _col2im_nhwc_into(cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, gxh, n0, n1):
    """Adjoint of `_im2col_nhwc_into`: gxh (N, H, W, C) = scatter-add of the (i, j, c) cols."""
    N, H, W, C = gxh.shape
    for n in range(n0, n1):
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


@njit(cache=True, nogil=True)
def _nchw_to_nhwc(x, out, n0, n1):
    """Samples [n0, n1) of x (N, C, H, W) copied channels-last into out (N, H, W, C)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for n in range(n0, n1):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    out[n, h, w, c] = x[n, c, h, w]


@njit(cache=True, nogil=True)
def _nhwc_to_nchw(xh, out, n0, n1):
    """Samples [n0, n1) of xh (N, H, W, C) copied back into out (N, C, H, W)."""
    H, W, C = xh.shape[1], xh.shape[2], xh.shape[3]
    for n in range(n0, n1):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    out[n, c, h, w] = xh[n, h, w, c]


@njit(cache=True, nogil=True)
def _nchw_to_rows(a, out, n0, n1):
    """(N, O, P) -> (N*P, O): grad_output in the row-per-pixel layout of the GEMMs."""
    N, O, P = a.shape
    for n in range(n0, n1):
        for o in range(O):
            for q in range(P):
                out[n * P + q, o] = a[n, o, q]


@njit(cache=True, nogil=True)
def _rows_to_nchw(a, bias, out, n0, n1):
    """(N*P, O) -> (N, O, P) plus bias (O,): a GEMM result back to the layout callers expect."""
    N, O, P = out.shape
    for n in range(n0, n1):
        for q in range(P):
            for o in range(O):
                out[n, o, q] = a[n * P + q, o] + bias[o]


# ---------------------------------------------------------------------------------------------
# Direct kernels for thin convs (small C*kh*kw): one sample at a time, its patches kept in L1.
#
# Conv2d(1, 64, 4, 2, 1) at batch 128 has K = C*kh*kw = 16: 16 multiply-adds per output value,
# so it is bound by memory traffic, not arithmetic. Each activation (N, 64, 14, 14) is 6.4 MB,
# and one pass over it costs about 0.5 ms on the 2-core benchmark machine. So these kernels
#   - build each sample's patches (K, Ho*Wo) in a small thread-local buffer that stays in the
#     L1 cache, instead of a batch-sized im2col matrix that goes out to memory and back;
#   - write y in NCHW directly, with the bias already added (no transpose, no bias pass);
#   - compute all three gradients in ONE pass over gy (`_direct_backward`), instead of one pass
#     each for the input, weight and bias gradients.
# The arithmetic is a small matrix product per sample written as loops whose innermost loop
# runs along a row of Ho*Wo pixels, which LLVM turns into SIMD instructions. Two output rows
# share every load of four patch rows, so the loads do not starve the multiply-adds.
# ---------------------------------------------------------------------------------------------

# Let LLVM reorder sums (so it can use SIMD lanes) and fuse multiply-adds. Not the full
# fastmath set: that also assumes no NaN or inf, and a NaN in the input must stay a NaN.
_FASTMATH = {"reassoc", "contract"}

# Samples are split into this many chunks, whatever the thread count, so the per-chunk partial
# sums of the weight and bias gradients (added in chunk order) do not depend on the machine.
_CHUNKS = 16


@njit(cache=True)
def _gather_patches(xf, start, buf, idx, cols):
    """cols (K, P) = the patches of the sample at xf[start:], through `_tap_index`'s idx.

    buf holds a copy of the sample and, one past its end, the zero that padding taps read.
    """
    S = buf.size - 1
    for q in range(S):
        buf[q] = xf[start + q]
    buf[S] = 0
    K, P = idx.shape
    for k in range(K):
        for p in range(P):
            cols[k, p] = buf[idx[k, p]]


@njit(cache=True, fastmath=_FASTMATH)
def _filter_pair(a0, a1, u, v, b0, b1, cols):
    """Two output rows: a0 = b0 + u @ cols and a1 = b1 + v @ cols, with cols (K, P)."""
    K, P = cols.shape
    for p in range(P):
        a0[p] = b0
        a1[p] = b1
    k = 0
    while k + 4 <= K:
        u0, u1, u2, u3 = u[k], u[k + 1], u[k + 2], u[k + 3]
        v0, v1, v2, v3 = v[k], v[k + 1], v[k + 2], v[k + 3]
        c0, c1, c2, c3 = cols[k], cols[k + 1], cols[k + 2], cols[k + 3]
        for p in range(P):
            x0, x1, x2, x3 = c0[p], c1[p], c2[p], c3[p]
            a0[p] += u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3
            a1[p] += v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3
        k += 4
    while k < K:  # the last K % 4 patch rows
        u0, v0, c0 = u[k], v[k], cols[k]
        for p in range(P):
            a0[p] += u0 * c0[p]
            a1[p] += v0 * c0[p]
        k += 1


@njit(cache=True, fastmath=_FASTMATH)
def _weight_grad_rows(gyn, cols, zero, acc):
    """acc (O, K) += gyn (O, P) @ cols.T: dot products along the P pixels, 2 x 4 at a time."""
    O, P = gyn.shape
    K = cols.shape[0]
    for o in range(0, O, 2):
        o1 = min(o + 1, O - 1)  # when O is odd the last row is summed twice, then once kept
        g, h = gyn[o], gyn[o1]
        k = 0
        while k < K:
            k1, k2, k3 = min(k + 1, K - 1), min(k + 2, K - 1), min(k + 3, K - 1)
            c0, c1, c2, c3 = cols[k], cols[k1], cols[k2], cols[k3]
            s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = zero  # in the arrays' dtype: SIMD-wide
            for p in range(P):
                gp, hp = g[p], h[p]
                x0, x1, x2, x3 = c0[p], c1[p], c2[p], c3[p]
                s0 += gp * x0
                s1 += gp * x1
                s2 += gp * x2
                s3 += gp * x3
                t0 += hp * x0
                t1 += hp * x1
                t2 += hp * x2
                t3 += hp * x3
            for j, (sj, tj) in enumerate(((s0, t0), (s1, t1), (s2, t2), (s3, t3))):
                if k + j < K:
                    acc[o, k + j] += sj
                    if o1 > o:
                        acc[o1, k + j] += tj
            k += 4


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _direct_forward(x, w2, bias, idx, y, T, t0, t1):
    """conv2d's forward over chunks [t0, t1) of T: y[n] (O, P) = w2 (O, K) @ patches(x[n]) + bias.

    Chunk t holds samples [t*N//T, (t+1)*N//T); `team.run` shares the T chunks out. Each
    sample's patches (K, P) are gathered into a buffer that stays in L1, then two output rows
    at a time are computed from them (`_filter_pair`).
    """
    N = x.shape[0]
    S = x.size // N  # floats per sample
    xf = x.reshape(-1)
    O, K = w2.shape
    P = idx.shape[1]
    buf = np.empty(S + 1, x.dtype)
    cols = np.empty((K, P), x.dtype)
    spare = np.empty(P, x.dtype)  # the unused partner row when O is odd
    for t in range(t0, t1):
        for n in range(t * N // T, (t + 1) * N // T):
            _gather_patches(xf, n * S, buf, idx, cols)
            yn = y[n]
            for o in range(0, O - 1, 2):
                _filter_pair(yn[o], yn[o + 1], w2[o], w2[o + 1], bias[o], bias[o + 1], cols)
            if O % 2:
                o = O - 1
                _filter_pair(yn[o], spare, w2[o], w2[o], bias[o], bias[o], cols)


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _direct_transpose_backward(gy, w2, idx, x_rows, zero, need_x, need_w, gx, gw_parts, t0, t1):
    """conv_transpose2d's backward over chunks [t0, t1): both gradients in one pass over gy.

    Both multiply the patches of gy (N, C_out, H_out, W_out), so each sample's patches are
    gathered once and used twice:

    gx[n] (C_in, P) = w2 (C_in, K) @ patches(gy[n]) (K, P)        (need_x: conv2d's forward)
    gw_parts[t] += x_rows[n] (C_in, P) @ patches(gy[n]).T           (need_w: its weight gradient)

    x_rows is the layer's input x, flattened to (N, C_in, P): it plays the conv's output
    gradient. gw_parts (T, C_in, K) holds one partial sum per chunk for the caller to add up.
    """
    N = gy.shape[0]
    S = gy.size // N  # floats per sample
    gyf = gy.reshape(-1)
    O, K = w2.shape
    P = idx.shape[1]
    T = gw_parts.shape[0]
    buf = np.empty(S + 1, gy.dtype)
    cols = np.empty((K, P), gy.dtype)
    spare = np.empty(P, gy.dtype)  # the unused partner row when O is odd
    for t in range(t0, t1):
        gw = gw_parts[t]
        gw[:] = 0
        for n in range(t * N // T, (t + 1) * N // T):
            _gather_patches(gyf, n * S, buf, idx, cols)
            if need_x:  # no bias: a transposed conv's bias is added outside the kernels
                gxn = gx[n]
                for o in range(0, O - 1, 2):
                    _filter_pair(gxn[o], gxn[o + 1], w2[o], w2[o + 1], zero, zero, cols)
                if O % 2:
                    o = O - 1
                    _filter_pair(gxn[o], spare, w2[o], w2[o], zero, zero, cols)
            if need_w:
                _weight_grad_rows(x_rows[n], cols, zero, gw)


@njit(cache=True, fastmath=_FASTMATH)
def _tap_rows(gcols, w4, k, gyn):
    """Rows k..k+3 of the patch gradient gcols = w4.T @ gyn, with w4 (O, K4), gyn (O, P).

    Four patch-gradient rows share each load of four gy rows.
    """
    O, P = gyn.shape
    g0, g1, g2, g3 = gcols[k], gcols[k + 1], gcols[k + 2], gcols[k + 3]
    for p in range(P):
        g0[p] = 0
        g1[p] = 0
        g2[p] = 0
        g3[p] = 0
    for o in range(0, O, 4):
        # Clamp past the last channel to a weight row of zeros (w4 has O + 3 rows).
        r0, r1 = gyn[o], gyn[min(o + 1, O - 1)]
        r2, r3 = gyn[min(o + 2, O - 1)], gyn[min(o + 3, O - 1)]
        a0, a1, a2, a3 = w4[o, k], w4[o + 1, k], w4[o + 2, k], w4[o + 3, k]
        b0, b1, b2, b3 = w4[o, k + 1], w4[o + 1, k + 1], w4[o + 2, k + 1], w4[o + 3, k + 1]
        c0, c1, c2, c3 = w4[o, k + 2], w4[o + 1, k + 2], w4[o + 2, k + 2], w4[o + 3, k + 2]
        d0, d1, d2, d3 = w4[o, k + 3], w4[o + 1, k + 3], w4[o + 2, k + 3], w4[o + 3, k + 3]
        for p in range(P):
            x0, x1, x2, x3 = r0[p], r1[p], r2[p], r3[p]
            g0[p] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
            g1[p] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
            g2[p] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
            g3[p] += d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _direct_backward(gy, xf, w4, K, idx, S, zero, need_x, need_w, need_b, gxf, gw_parts,
                     gb_parts, t0, t1):
    """One pass over chunks [t0, t1) of gy (N, O, P) for all three gradients of a conv's y.

    w4 is the weight (O, K) padded with zeros to (O + 3, K4), K4 = K rounded up to a multiple
    of 4, because `_tap_rows` works on blocks of 4 rows and 4 columns. S = C*H*W is the size of
    one input sample; x is only read when need_w, w4 when need_x. x and gx come flat (xf, gxf:
    sample after sample; empty when not needed), so one compiled version serves every call:
    with a 4-D array or an (N, 0) placeholder in their places it compiled three times, about
    a second each on the first step.
    gx gets col2im(w2.T @ gy[n]) per sample. gw_parts (T, O, K) and gb_parts
    (T, O) get chunk t's share of the weight and bias gradients; the caller adds them up.
    Each sample's gy[n] (O*P floats, 50 KB on the benchmark layer) is read from memory once
    and then stays in the core's cache for the three uses.
    """
    N, O, P = gy.shape
    K4 = w4.shape[1]
    T = gw_parts.shape[0]
    buf = np.empty(S + 1, gy.dtype)
    cols = np.empty((K4, P), gy.dtype)
    for t in range(t0, t1):
        gw, gb = gw_parts[t], gb_parts[t]
        gw[:] = 0
        gb[:] = 0
        for n in range(t * N // T, (t + 1) * N // T):
            gyn = gy[n]
            if need_b:
                for o in range(O):
                    s = zero
                    for p in range(P):
                        s += gyn[o, p]
                    gb[o] += s
            if need_w:
                _gather_patches(xf, n * S, buf, idx, cols[:K])
                _weight_grad_rows(gyn, cols[:K], zero, gw)
            if need_x:
                for k in range(0, K4, 4):  # cols now holds the patch gradient w2.T @ gy[n]
                    _tap_rows(cols, w4, k, gyn)
                buf[:] = 0  # col2im: every tap adds into the pixel it was copied from
                for k in range(K):
                    for p in range(P):
                        buf[idx[k, p]] += cols[k, p]
                for q in range(S):  # buf[S], where the padding taps went, is dropped
                    gxf[n * S + q] = buf[q]


# ---------------------------------------------------------------------------------------------
# Small glue: the conv's geometry, and layout changes shared by the public functions below.
# ---------------------------------------------------------------------------------------------


class ConvGeometry(NamedTuple):
    """The sizes of one conv as plain ints: what each sample (C, H, W) of the batch sees.

    The batch size N is left out on purpose: nothing here depends on it, so `_tap_index`
    (cached by geometry) keeps one entry per layer whatever the batch size.
    """

    c: int  # input channels
    h: int  # input height
    w: int  # input width
    kh: int  # kernel height
    kw: int  # kernel width
    sh: int  # stride
    sw: int
    ph: int  # padding
    pw: int
    dh: int  # dilation
    dw: int
    ho: int  # output height, from reference.conv_output_hw
    wo: int  # output width

    @property
    def out_hw(self):
        """(Ho, Wo): the output's spatial size."""
        return self.ho, self.wo

    @property
    def out_pixels(self):
        """P = Ho*Wo, the output pixels per channel: the rows of a sample's im2col."""
        return self.ho * self.wo

    @property
    def patch_size(self):
        """K = C*kh*kw, the length of each patch: every output value is a K-long dot product."""
        return self.c * self.kh * self.kw

    @property
    def loop_args(self):
        """(kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo): the scalar arguments of the im2col loops."""
        return self[3:]  # the fields from kh on, in the order declared above


def conv_geometry(op, x_shape, k, stride, padding, dilation):
    """The ConvGeometry of a conv over x (N, C, H, W) with kernel k; raises if it does not fit."""
    s, p, d = pair(stride), pair(padding), pair(dilation)
    ho, wo = conv_output_hw(op, x_shape[2:], k, s, p, d)
    return ConvGeometry(x_shape[1], x_shape[2], x_shape[3], k[0], k[1], *s, *p, *d, ho, wo)


def _empty_batch(a):
    """Whether a is an NCHW batch of no samples (the reference kernels serve those)."""
    return a.ndim == 4 and a.shape[0] == 0


@functools.lru_cache(maxsize=64)
def _tap_index(g):
    """idx (C*kh*kw, Ho*Wo), int32: where each patch entry of the direct kernels comes from.

    idx[(c*kh + i)*kw + j, oh*Wo + ow] is the flat offset, in one sample (C, H, W), of the pixel
    that tap (i, j) of channel c sees from output pixel (oh, ow). Taps in the zero padding point
    one past the sample, at C*H*W, where `_gather_patches` keeps a zero. Computed once per
    geometry with NumPy broadcasting and cached; read-only.
    """
    C, H, W = g.c, g.h, g.w
    c, i, j, oh, ow = np.ix_(range(C), range(g.kh), range(g.kw), range(g.ho), range(g.wo))
    row = oh * g.sh - g.ph + i * g.dh  # in unpadded coordinates
    col = ow * g.sw - g.pw + j * g.dw
    inside = (row >= 0) & (row < H) & (col >= 0) & (col < W)
    idx = np.where(inside, (c * H + row) * W + col, C * H * W).astype(np.int32)
    idx = idx.reshape(g.patch_size, g.out_pixels)
    idx.flags.writeable = False
    return idx


def _cols_nhwc_of(x, g, fresh=False):
    """im2col in (i, j, c) column order via a channels-last copy of x: scratch, unless `fresh`
    asks for a new array that the caller may keep (conv2d_forward's `save`)."""
    N = x.shape[0]
    xh = _scratch("x_nhwc", (N, g.h, g.w, g.c), x.dtype)  # channels-last copy of x
    team.run(_nchw_to_nhwc, (np.ascontiguousarray(x), xh), N)
    shape = (N * g.out_pixels, g.patch_size)
    cols = np.empty(shape, x.dtype) if fresh else _scratch("cols", shape, x.dtype)
    team.run(_im2col_nhwc_into, (xh, *g.loop_args, cols), N)
    return cols


def _taps_last(w):
    """(O, C, kh, kw) -> (O, kh*kw*C): the weight with columns in the (i, j, c) order."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1)


def _rows_of(gy, g):
    """grad_output (N, O, Ho, Wo) -> scratch (N*Ho*Wo, O), the GEMMs' row-per-pixel layout."""
    gy = np.ascontiguousarray(match_output(gy, g.out_hw))
    N, O = gy.shape[:2]
    out = _scratch("gy_rows", (N * g.out_pixels, O), gy.dtype)
    team.run(_nchw_to_rows, (gy.reshape(N, O, g.out_pixels), out), N)
    return out


# ---------------------------------------------------------------------------------------------
# Public kernels: same names and signatures as reference.py.
#
# Each public function calls `team.run` on its loops itself (helpers only prepare arguments or
# do one layout step), so every layer in tinygen/nn/functional.py is a few calls from the loop
# that computes it. An empty batch (N = 0) has nothing to compute, but the loops would split it
# into zero chunks; the reference kernels get its shapes right, so they serve it.
# ---------------------------------------------------------------------------------------------


def im2col(x, kh, kw, stride, padding, dilation):
    """cols (N*Ho*Wo, C*kh*kw) of x (N, C, H, W); fresh array (see reference.im2col)."""
    if _empty_batch(x):
        return reference.im2col(x, kh, kw, stride, padding, dilation)
    g = conv_geometry("im2col", x.shape, (kh, kw), stride, padding, dilation)
    N = x.shape[0]
    cols = np.empty((N * g.out_pixels, g.patch_size), dtype=x.dtype)
    team.run(_im2col_into, (np.ascontiguousarray(x), *g.loop_args, cols), N)
    return cols


def col2im(cols, x_shape, kh, kw, stride, padding, dilation):
    """Adjoint of im2col: scatter-add cols back into a fresh (N, C, H, W) array."""
    g = conv_geometry("col2im", x_shape, (kh, kw), stride, padding, dilation)
    gx = np.empty(x_shape, dtype=cols.dtype)
    team.run(_col2im_into, (np.ascontiguousarray(cols), *g.loop_args, gx), x_shape[0])
    return gx


# Two strategies, chosen by K = C*kh*kw (the length of each output value's dot product) and
# P = Ho*Wo (the number of output pixels per channel):
#  - Thin layers: the direct kernels above, one sample at a time. They are memory-bound, and the
#    direct kernels touch each activation once per pass. Their inner loops run along the P
#    pixels, so long rows suit them.
#  - Wide layers: one big GEMM over the whole batch (N*Ho*Wo rows) in BLAS, with channels-last
#    im2col/col2im around it. They are compute-bound, and BLAS does the arithmetic far better
#    than loops we can write.
# `python benchmarks/bench_kernels.py --crossover [--size 28]` times both on Conv2d(C, 64, 4, 2,
# 1), batch 128, fwd+bwd. Direct/GEMM time ratio on the 2-core machine (single runs; they move
# by about 0.2 from run to run, so only the trend counts):
#     K = C*16:           16    32    48    64    96   128   256
#     P = 7*7 = 49:     0.43  0.77  0.75  0.96  1.56  1.17  1.58
#     P = 14*14 = 196:  0.26  0.55  0.46  0.65  0.72  0.62  1.12
_DIRECT_MAX_K = 48
_DIRECT_MAX_K_LONG_ROWS, _LONG_ROWS = 128, 196
_FORCE_STRATEGY = None  # "direct" or "gemm": tests and the crossover benchmark force one


def _takes_direct_path(g, out_channels):
    """Whether a conv of geometry g takes the direct kernels (else the GEMM path).

    A conv with one output channel always does: its GEMM is a matrix-vector product, which
    BLAS cannot block (CycleGAN's and pix2pix's PatchGAN ends in one: Conv2d(16, 1, 3, 1, 1)
    at 7x7, batch 32, fwd+bwd 0.47 ms direct against 0.92 ms on the GEMM path; Conv2d(64, 1,
    3, 1, 1) at 14x14, 3.9 against 8.4 ms; single timings on the Zen 4 VM).
    """
    if _FORCE_STRATEGY is not None:
        return _FORCE_STRATEGY == "direct"
    K, P = g.patch_size, g.out_pixels
    return (out_channels == 1 or K <= _DIRECT_MAX_K
            or (P >= _LONG_ROWS and K <= _DIRECT_MAX_K_LONG_ROWS))


# What conv2d_forward(save=True) keeps on the GEMM path: x's channels-last im2col, 25 MB on
# Conv2d(64, 128) at batch 128, which spares conv2d_backward 5 ms of building it again. The
# direct path saves nothing: its patches cost next to nothing to gather again.
SAVED_COLS = "im2col, columns (i, j, c)"


def conv2d_forward(x, w, stride=1, padding=0, dilation=1, bias=None, save=False):
    """y = conv2d(x, w) + bias: x (N, C, H, W), w (O, C, kh, kw), bias (O,) or None.

    With ``save=True`` returns ``(y, saved)`` for ``conv2d_backward`` (see reference.py).
    """
    if _empty_batch(x):
        return reference.conv2d_forward(x, w, stride, padding, dilation, bias, save)
    dtypes = (x.dtype, w.dtype) if bias is None else (x.dtype, w.dtype, bias.dtype)
    check_conv_args("conv2d", x.shape, w.shape, dtypes, None if bias is None else bias.shape)
    N, O = x.shape[0], w.shape[0]
    g = conv_geometry("conv2d", x.shape, w.shape[2:], stride, padding, dilation)
    b = np.zeros(O, x.dtype) if bias is None else np.ascontiguousarray(bias)
    y = np.empty((N, O, g.ho, g.wo), dtype=x.dtype)  # fresh: it escapes to the caller
    if _takes_direct_path(g, O):  # thin: each sample's patches stay in L1, y written directly
        T = min(N, _CHUNKS)
        args = (np.ascontiguousarray(x), np.ascontiguousarray(w.reshape(O, -1)), b,
                _tap_index(g), y.reshape(N, O, g.out_pixels), T)
        team.run(_direct_forward, args, T)
        return (y, None) if save else y
    cols = _cols_nhwc_of(x, g, fresh=save)  # (N*Ho*Wo, kh*kw*C): channels-last patches
    y_rows = _scratch("y_rows", (cols.shape[0], O), x.dtype)
    np.matmul(cols, _taps_last(w).T, out=y_rows)  # (N*Ho*Wo, O): the one big GEMM
    team.run(_rows_to_nchw, (y_rows, b, y.reshape(N, O, g.out_pixels)), N)
    return (y, (SAVED_COLS, cols)) if save else y


def conv2d_backward(gy, x, w, stride=1, padding=0, dilation=1, needs=(True, True, True),
                    saved=None):
    """(gx, gw, gb) of ``conv2d_forward`` given gy, each None where ``needs`` says so.

    ``saved`` is what ``conv2d_forward(save=True)`` returned; its im2col is reused if it has
    this backend's layout.
    """
    if _empty_batch(gy):
        return reference.conv2d_backward(gy, x, w, stride, padding, dilation, needs, saved)
    check_conv_args("conv2d_backward", x.shape, w.shape, (gy.dtype, x.dtype, w.dtype))
    need_x, need_w, need_b = needs
    g = conv_geometry("conv2d_backward", x.shape, w.shape[2:], stride, padding, dilation)
    if _takes_direct_path(g, w.shape[0]):  # thin: all three gradients in one pass
        T, args, outputs = _direct_backward_args(gy, x, w, x.shape, w.shape, g, needs)
        team.run(_direct_backward, args, T)
        return _summed(outputs, w.shape, needs)
    gy_rows = _rows_of(gy, g)  # wide: GEMMs sharing one row-per-pixel copy of gy
    gx = _wide_input_grad(gy_rows, w, x.shape, g) if need_x else None
    gw = None
    if need_w:
        reuse = saved is not None and saved[0] == SAVED_COLS
        cols = saved[1] if reuse else _cols_nhwc_of(x, g)
        gw = _wide_weight_grad(gy_rows, cols, w.shape)
    gb = gy_rows.sum(axis=0) if need_b else None
    return gx, gw, gb


def conv2d_input_grad(gy, w, x_shape, stride=1, padding=0, dilation=1):
    """gx = dL/dx: gcols = gy @ W, then col2im (both per sample on the direct path)."""
    if _empty_batch(gy):
        return reference.conv2d_input_grad(gy, w, x_shape, stride, padding, dilation)
    check_conv_args("conv2d_input_grad", x_shape, w.shape, (gy.dtype, w.dtype))
    g = conv_geometry("conv2d_input_grad", x_shape, w.shape[2:], stride, padding, dilation)
    if _takes_direct_path(g, w.shape[0]):
        needs = (True, False, False)
        T, args, outputs = _direct_backward_args(gy, None, w, x_shape, w.shape, g, needs)
        team.run(_direct_backward, args, T)
        return outputs[0]
    return _wide_input_grad(_rows_of(gy, g), w, x_shape, g)


def conv2d_weight_grad(gy, x, w_shape, stride=1, padding=0, dilation=1):
    """gw = dL/dw = gy^T @ cols(x), a GEMM with N*Ho*Wo as the reduction dimension."""
    if _empty_batch(gy):
        return reference.conv2d_weight_grad(gy, x, w_shape, stride, padding, dilation)
    check_conv_args("conv2d_weight_grad", x.shape, w_shape, (gy.dtype, x.dtype))
    g = conv_geometry("conv2d_weight_grad", x.shape, w_shape[2:], stride, padding, dilation)
    if _takes_direct_path(g, w_shape[0]):
        needs = (False, True, False)
        T, args, outputs = _direct_backward_args(gy, x, None, x.shape, w_shape, g, needs)
        team.run(_direct_backward, args, T)
        return _summed(outputs, w_shape, needs)[1]
    return _wide_weight_grad(_rows_of(gy, g), _cols_nhwc_of(x, g), w_shape)


def _direct_backward_args(gy, x, w, x_shape, w_shape, g, needs):
    """(T, args, outputs) for ``team.run(_direct_backward, args, T)``; outputs are the fresh
    (gx, gw_parts, gb_parts) it fills. x (or w) may be None when no wanted gradient reads it."""
    need_x, need_w, need_b = needs
    N, O, K = x_shape[0], w_shape[0], g.patch_size
    gy = np.ascontiguousarray(match_output(gy, g.out_hw))
    dtype, T = gy.dtype, min(N, _CHUNKS)
    x = np.empty((N, 0), dtype) if x is None else np.ascontiguousarray(x)
    w4 = np.zeros((O + 3, (K + 3) // 4 * 4), dtype)  # see `_direct_backward`
    if w is not None:
        w4[:O, :K] = w.reshape(O, K)
    gx = np.empty(x_shape if need_x else (N, 0), dtype)  # fresh: it escapes to the caller
    gw_parts, gb_parts = np.empty((T, O, K), dtype), np.empty((T, O), dtype)
    S = g.c * g.h * g.w  # the size of one input sample
    args = (gy.reshape(N, O, g.out_pixels), x.reshape(-1), w4, K, _tap_index(g), S,
            dtype.type(0), need_x, need_w, need_b, gx.reshape(-1), gw_parts, gb_parts)
    return T, args, (gx, gw_parts, gb_parts)


def _summed(outputs, w_shape, needs):
    """(gx, gw, gb) from `_direct_backward`'s outputs: the chunks' partial sums added up."""
    gx, gw_parts, gb_parts = outputs
    return (gx if needs[0] else None,
            gw_parts.sum(axis=0).reshape(w_shape) if needs[1] else None,
            gb_parts.sum(axis=0) if needs[2] else None)


def _wide_input_grad(gy_rows, w, x_shape, g):
    """gx from gy in rows (N*Ho*Wo, O): one GEMM into channels-last cols, then col2im."""
    gcols = _scratch("cols", (gy_rows.shape[0], w[0].size), gy_rows.dtype)
    np.matmul(gy_rows, _taps_last(w), out=gcols)  # (N*Ho*Wo, kh*kw*C)
    n = x_shape[0]
    gxh = _scratch("gx_nhwc", (n, g.h, g.w, g.c), gy_rows.dtype)
    team.run(_col2im_nhwc_into, (gcols, *g.loop_args, gxh), n)
    gx = np.empty(x_shape, gy_rows.dtype)  # fresh: it escapes to the caller
    team.run(_nhwc_to_nchw, (gxh, gx), n)
    return gx


def _wide_weight_grad(gy_rows, cols, w_shape):
    """gw from gy in rows (N*Ho*Wo, O) and x's channels-last cols: one GEMM over N*Ho*Wo."""
    O, C, kh, kw = w_shape
    # cols^T @ gy gives gw^T; OpenBLAS ran this orientation ~1.3x faster than gy^T @ cols
    # on the benchmark layers (it splits the long reduction better).
    gw_t = np.matmul(cols.T, gy_rows)  # (kh*kw*C, O), rows in (i, j, c) order
    gw = gw_t.T.reshape(O, kh, kw, C)
    return np.ascontiguousarray(gw.transpose(0, 3, 1, 2))  # fresh (O, C, kh, kw)


# ---------------------------------------------------------------------------------------------
# ConvTranspose2d: built on the conv kernels above, exactly as in reference.py.
# ---------------------------------------------------------------------------------------------


def conv_transpose2d_forward(x, w, stride=1, padding=0, output_padding=0, dilation=1):
    """y = conv_transpose2d(x, w), w (C_in, C_out, kh, kw): IS ``conv2d_input_grad``.

    The conv whose input gradient it is maps y (N, C_out, H_out, W_out) back to x's shape, with
    x in the role of its output gradient. The last lines are ``conv2d_input_grad``'s body,
    written out instead of called so that the layer is one call closer to its loops.
    """
    if _empty_batch(x):
        return reference.conv_transpose2d_forward(x, w, stride, padding, output_padding, dilation)
    k, s, p, d = w.shape[2:], pair(stride), pair(padding), pair(dilation)
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[0]:
        raise ValueError(
            f"conv_transpose2d: input {x.shape} does not match weight {w.shape} "
            f"(expected input channels == weight.shape[0])"
        )
    hw = conv_transpose_output_hw(x.shape[2:], k, s, p, pair(output_padding), d)
    y_shape = (x.shape[0], w.shape[1], *hw)  # (N, C_out, H_out, W_out): that conv's input
    check_conv_args("conv2d_input_grad", y_shape, w.shape, (x.dtype, w.dtype))
    g = conv_geometry("conv2d_input_grad", y_shape, k, s, p, d)
    if _takes_direct_path(g, w.shape[0]):
        needs = (True, False, False)
        T, args, outputs = _direct_backward_args(x, None, w, y_shape, w.shape, g, needs)
        team.run(_direct_backward, args, T)
        return outputs[0]
    return _wide_input_grad(_rows_of(x, g), w, y_shape, g)


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


def conv_transpose2d_backward(gy, x, w, stride=1, padding=0, dilation=1, output_padding=0,
                              needs=(True, True)):
    """(gx, gw) of ``conv_transpose2d_forward``, each None where ``needs`` says so.

    Both multiply the patches of gy: gx = conv2d(gy, w) and gw = gy's patches against x. The
    direct path gathers them once for both (`_direct_transpose_backward`); the GEMM path builds
    one im2col for both GEMMs.
    """
    if _empty_batch(gy):
        return reference.conv_transpose2d_backward(gy, x, w, stride, padding, dilation,
                                                   output_padding, needs)
    need_x, need_w = needs
    C_in = w.shape[0]
    check_conv_args("conv_transpose2d_backward", gy.shape, w.shape, (gy.dtype, x.dtype, w.dtype))
    N = gy.shape[0]
    g = conv_geometry("conv_transpose2d_backward", gy.shape, w.shape[2:], stride, padding,
                      dilation)
    if _takes_direct_path(g, w.shape[0]):
        dt, T = gy.dtype, min(N, _CHUNKS)
        x_rows = np.ascontiguousarray(match_output(x, g.out_hw)).reshape(N, C_in, -1)
        gx = np.empty((N, C_in, g.ho, g.wo) if need_x else (N, 0, 0), dt)
        gw_parts = np.empty((T, C_in, g.patch_size) if need_w else (T, 0, 0), dt)
        args = (np.ascontiguousarray(gy), np.ascontiguousarray(w.reshape(C_in, -1)),
                _tap_index(g), x_rows, dt.type(0), need_x, need_w, gx.reshape(N, C_in, -1),
                gw_parts)
        team.run(_direct_transpose_backward, args, T)
        if need_x and gx.shape != x.shape:  # output_padding >= stride: one row/column too many
            gx = np.ascontiguousarray(gx[:, :, : x.shape[2], : x.shape[3]])
        return (gx if need_x else None,
                gw_parts.sum(axis=0).reshape(w.shape) if need_w else None)
    cols = _cols_nhwc_of(gy, g)  # (N*Ho*Wo, kh*kw*C_out), scratch: both GEMMs read it
    gx = gw = None
    if need_x:  # conv2d_forward(gy, w), cropped to x's size
        y_rows = _scratch("y_rows", (cols.shape[0], C_in), gy.dtype)
        np.matmul(cols, _taps_last(w).T, out=y_rows)
        gx = np.empty((N, C_in, g.ho, g.wo), gy.dtype)
        no_bias = np.zeros(C_in, gy.dtype)
        team.run(_rows_to_nchw, (y_rows, no_bias, gx.reshape(N, C_in, g.out_pixels)), N)
        if gx.shape != x.shape:  # output_padding >= stride: crop the extra row/column
            gx = np.ascontiguousarray(gx[:, :, : x.shape[2], : x.shape[3]])
    if need_w:  # conv2d_weight_grad with x as the conv's output gradient
        gw = _wide_weight_grad(_rows_of(x, g), cols, w.shape)
    return gx, gw
