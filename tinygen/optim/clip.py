"""Gradient clipping: bound the size of a step before the optimizer takes it.

Two ways, both in place on `p.grad` and both PyTorch's:

- `clip_grad_norm_` treats all the gradients as one long vector g and, if its norm is too
  large, scales the whole vector down. The direction is kept, only the length changes:

      total = || (||g_1||_p, ||g_2||_p, ...) ||_p      (= ||concat(g_1, g_2, ...)||_p)
      g    <- g * min(1, max_norm / (total + 1e-6))

  The 1e-6 guards against division by zero; it also means a total that is within 1e-6 *below*
  max_norm is still scaled (by a hair), exactly as in PyTorch.
- `clip_grad_value_` clamps every entry to [-clip_value, clip_value]. The direction changes.

GAN and RNN training use norm clipping to survive rare huge gradients. Read `__init__.py` last
for the list of everything `tinygen.optim` exports.
"""

from __future__ import annotations

import math

import numpy as np


def _grads(parameters) -> list[np.ndarray]:
    """The gradients of one tensor or of an iterable of tensors, skipping those without one."""
    params = [parameters] if hasattr(parameters, "grad") else list(parameters)
    return [p.grad for p in params if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so their total `norm_type`-norm is at most `max_norm`.

    Returns the total norm *before* clipping (handy to log). `norm_type` is any p > 0 or
    `inf` (the largest absolute entry). The norm is accumulated in float64.
    """
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type}")
    if not max_norm >= 0:  # PyTorch accepts a negative max_norm, and flips the gradients
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    grads = _grads(parameters)
    if not grads:
        return 0.0
    norms = [np.linalg.norm(g.astype(np.float64, copy=False).ravel(), ord=norm_type)
             for g in grads]
    total = float(np.linalg.norm(np.array(norms), ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {total}, "
                           f"so they cannot be clipped; pass error_if_nonfinite=False to "
                           f"scale them anyway")
    coef = float(max_norm) / (total + 1e-6)
    # `not coef >= 1` is True for NaN too: a NaN norm turns the gradients to NaN, as in
    # PyTorch, rather than being silently ignored.
    if not coef >= 1.0:
        for g in grads:
            g *= coef
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    if not clip_value >= 0:  # PyTorch accepts a negative value and sets every entry to it
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
