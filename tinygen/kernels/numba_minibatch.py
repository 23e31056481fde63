"""Minibatch discrimination's closeness in Numba: the same two functions as reference.py's.

What this file teaches
----------------------
o[i, b] = sum_j exp(-||M[i, b] - M[j, b]||_1) compares every pair of examples. NumPy writes
that as a broadcast difference, an (N, N, B, C) array, and then makes a pass over it per
operation (subtract, abs, sum, exp, sum; the backward adds sign, multiply and sum): at the toy
GAN's batch of 256 with 5 kernels of 3 that is a million values per pass, and a ring8 step
with the layer took 12x the plain step. The loops below keep one pair in registers instead:

1. **Each pair once.** The distance is symmetric, so the loop visits i < j and adds the pair's
   exp(-d) to both o[i] and o[j]; the diagonal contributes exp(0) = 1 to each row.
2. **Recompute, do not store.** The backward needs c[i, j, b] again; it recomputes the C
   differences of each pair rather than keep an N x N x B array from the forward.
3. **Contiguous runs over j.** M is copied to (B, C, N), so for one example i the loop over
   its partners j reads one contiguous row per (b, c) and LLVM can vectorise the differences
   (20% faster than the (B, N, C) layout here). The exps stay scalar calls, one per pair
   (Numba vectorises exp only with Intel's SVML, not installed here).

The sums are kept in float64 whatever the input's dtype, so the results differ from the
reference's only by rounding. One thread: at the toy GAN's batch of 256 the forward took
2.3 ms and the backward 4.0 ms, against 12 and 16 ms for NumPy's twin (`bench_kernels.py
--pointwise` on the 2-core AMD VM).
"""

import numpy as np
from numba import njit

_FASTMATH = {"reassoc", "contract"}  # SIMD sums over j; NaNs still propagate


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _distances(Mt, b, i, d):
    """d[j] = ||M[i, b] - M[j, b]||_1 for j > i, for Mt (B, C, N): contiguous runs over j."""
    N = Mt.shape[2]
    d[i + 1:] = 0.0
    for c in range(Mt.shape[1]):
        m = Mt[b, c, i]
        row = Mt[b, c]
        for j in range(i + 1, N):
            d[j] += abs(m - row[j])


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _forward(Mt, o):
    B, C, N = Mt.shape
    d = np.empty(N)
    for b in range(B):
        ob = o[b]
        for i in range(N):
            _distances(Mt, b, i, d)
            s = 1.0                                          # j = i: exp(-0)
            for j in range(i + 1, N):
                e = np.exp(-d[j])
                s += e
                ob[j] += e                                   # the pair counts for j too
            ob[i] += s


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _backward(Mt, gt, gM):
    B, C, N = Mt.shape
    d, w = np.empty(N), np.empty(N)
    for b in range(B):
        for i in range(N):
            _distances(Mt, b, i, d)
            gi = gt[b, i]
            for j in range(i + 1, N):
                w[j] = (gi + gt[b, j]) * np.exp(-d[j])
            for c in range(C):
                m, row, grow = Mt[b, c, i], Mt[b, c], gM[b, c]
                acc = 0.0
                for j in range(i + 1, N):
                    diff = m - row[j]
                    ws = w[j] * ((diff > 0) - (diff < 0))   # w sign(M_i - M_j), no branch
                    acc += ws
                    grow[j] += ws
                grow[i] -= acc


def minibatch_closeness_forward(M):
    """o (N, B) from M (N, B, C); see reference.minibatch_closeness_forward."""
    Mt = np.ascontiguousarray(M.transpose(1, 2, 0), dtype=np.float64)      # (B, C, N)
    o = np.zeros((M.shape[1], M.shape[0]), np.float64)
    _forward(Mt, o)
    return o.T.astype(M.dtype)


def minibatch_closeness_backward(g, M):
    """dL/dM (N, B, C) from g (N, B); see reference.minibatch_closeness_backward."""
    Mt = np.ascontiguousarray(M.transpose(1, 2, 0), dtype=np.float64)      # (B, C, N)
    gt = np.ascontiguousarray(g.T, dtype=np.float64)
    gM = np.zeros(Mt.shape, np.float64)
    _backward(Mt, gt, gM)
    return gM.transpose(2, 0, 1).astype(np.result_type(g, M))
