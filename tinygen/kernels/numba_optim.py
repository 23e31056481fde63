"""Adam's update in one Numba loop: the same function as ``reference.adam_update``.

What this file teaches
----------------------
An optimizer step is pure memory traffic: a few flops per parameter, and NumPy makes a pass
(and usually a temporary array) per operation. Adam's update written as in ``reference.py``
makes about ten passes over arrays the size of the parameter. The semi-supervised adversarial
autoencoder's four Adam optimizers (9.2M parameter updates a step) took 22 of its 120 ms a
step in `benchmarks/profile_step.py`. The loop below reads p, g, m and v once and writes p, m
and v once.

Same numbers as the twin, to the bit: every scalar is cast to the parameter's dtype first
(NumPy does the same to a Python float beside a float32 array), the operations come in the
twin's order, and there is no fastmath, so LLVM may not fuse a multiply and an add into one
rounding. Parameters below ``_NUMPY_BELOW`` values, amsgrad, and unusual layouts go to the
twin. Read next: the caller, ``optim/adam.py``.
"""

import numpy as np
from numba import njit

from . import reference

# Below this many values, the NumPy twin: a bias or a small layer saves microseconds, and a
# model whose parameters are all this small never compiles the loop.
_NUMPY_BELOW = 1 << 16


# error_model="numpy": x / 0 gives inf or NaN as in NumPy. Numba's default ("python") tests
# every divisor to raise ZeroDivisionError, and that branch kept LLVM from vectorising the loop
# (3.2 ms against 0.4 ms on a 1M-value weight).
@njit(cache=True, nogil=True, error_model="numpy")
def _adam(p, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bias2_sqrt,
          eps):
    for i in range(p.size):
        gi = g[i]
        mi = m[i] * beta1 + one_minus_beta1 * gi
        vi = v[i] * beta2 + one_minus_beta2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= step_size * (mi / (np.sqrt(vi) / bias2_sqrt + eps))


def adam_update(p, g, m, v, vmax, beta1, beta2, step_size, bias2_sqrt, eps):
    """In place: m, v and p after one Adam step (see reference.adam_update)."""
    arrays = (p, g, m, v)
    if (vmax is not None or p.size < _NUMPY_BELOW
            or any(a.dtype != p.dtype or a.shape != p.shape or not a.flags.c_contiguous
                   for a in arrays)):
        return reference.adam_update(p, g, m, v, vmax, beta1, beta2, step_size, bias2_sqrt, eps)
    t = p.dtype.type
    _adam(*(a.reshape(-1) for a in arrays), t(beta1), t(1 - beta1), t(beta2), t(1 - beta2),
          t(step_size), t(bias2_sqrt), t(eps))
    return None
