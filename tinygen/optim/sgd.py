"""Stochastic gradient descent with momentum and Nesterov momentum, exactly as PyTorch.

The update, for gradient g_t of the loss at step t (read `optimizer.py` first for the
bookkeeping around it):

    g_t <- -g_t                            if maximize (ascend instead of descend)
    g_t <- g_t + weight_decay * p          L2 penalty 0.5 * wd * |p|^2, folded into the gradient
    b_1 =  g_1                             first step: the buffer *is* the gradient
    b_t =  momentum * b_{t-1} + (1 - dampening) * g_t
    d_t =  g_t + momentum * b_t            if nesterov (look ahead along the buffer)
           b_t                             otherwise
    p   <- p - lr * d_t

Two details differ from some textbooks, and PyTorch users rely on both: the first buffer is
g_1 rather than (1 - dampening) * g_1, and lr multiplies the whole step (some papers write
b_t = momentum * b_{t-1} + lr * g_t, which behaves differently when lr changes mid-training).

Read `adam.py` next.
"""

from __future__ import annotations

import numpy as np

from tinygen.optim.optimizer import Optimizer, check_nonnegative


class SGD(Optimizer):
    """`SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
    maximize=False)`. State per parameter: `momentum_buffer` (only when momentum > 0)."""

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        check_nonnegative(options, "lr", "momentum", "dampening", "weight_decay", owner="SGD")
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and dampening == 0")

    def _update(self, p, grad: np.ndarray, state: dict, group: dict) -> None:
        momentum = group["momentum"]
        g = -grad if group["maximize"] else grad
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.data  # a new array: never edit p.grad
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype)  # b_1 = g_1
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g  # b_t = m b_{t-1} + (1 - damp) g_t
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * g
