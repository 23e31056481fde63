"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

Hinton's RMSprop (lecture 6e of his 2012 Coursera course) keeps one moving average per entry,
of the squared gradient, and scales steps by its inverse square root, so every coordinate moves
at a similar speed whatever the size of its gradient. PyTorch's version, step t:

    g_t <- -g_t                                 if maximize
    g_t <- g_t + weight_decay * p               L2 penalty folded into the gradient
    s_t =  alpha * s_{t-1} + (1 - alpha) * g_t^2
    a_t =  alpha * a_{t-1} + (1 - alpha) * g_t  centered only: running mean of g
    r_t =  sqrt(s_t - a_t^2) + eps              centered: a running *standard deviation*
           sqrt(s_t) + eps                      otherwise: a running RMS
    b_t =  momentum * b_{t-1} + g_t / r_t       if momentum > 0 (b_0 = 0), then p <- p - lr b_t
    p   <- p - lr * g_t / r_t                   otherwise

Unlike Adam there is no bias correction: s starts at 0, so the first steps are large
(about lr / sqrt(1 - alpha) = 10 * lr for alpha = 0.99). That is PyTorch's behaviour too.

Read `lr_scheduler.py` next.
"""

from __future__ import annotations

import numpy as np

from tinygen.optim.optimizer import Optimizer, check_nonnegative


class RMSprop(Optimizer):
    """`RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False, maximize=False)`. State per parameter: `step`, `square_avg` (s), and
    `momentum_buffer` (b) and `grad_avg` (a) when those options are on."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        check_nonnegative(options, "lr", "eps", "weight_decay", "momentum", "alpha",
                          owner="RMSprop")
        if not options["alpha"] <= 1.0:  # PyTorch only checks >= 0
            raise ValueError(f"RMSprop: invalid alpha: {options['alpha']} (must be in [0, 1])")

    def _update(self, p, grad: np.ndarray, state: dict, group: dict) -> None:
        alpha = group["alpha"]
        if not state:
            _init_state(state, p.data, group)
        g = -grad if group["maximize"] else grad
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.data  # a new array: never edit p.grad
        state["step"] += 1
        s = state["square_avg"]
        s *= alpha
        s += (1 - alpha) * g * g
        if group["centered"]:
            a = state["grad_avg"]
            a *= alpha
            a += (1 - alpha) * g
            r = np.sqrt(s - a * a) + group["eps"]
        else:
            r = np.sqrt(s) + group["eps"]
        if group["momentum"] > 0:
            b = state["momentum_buffer"]
            b *= group["momentum"]
            b += g / r
            p.data -= group["lr"] * b
        else:
            p.data -= group["lr"] * (g / r)


def _init_state(state: dict, data: np.ndarray, group: dict) -> None:
    state["step"] = 0  # not used by the update; kept for parity with PyTorch's state
    state["square_avg"] = np.zeros_like(data)
    if group["momentum"] > 0:
        state["momentum_buffer"] = np.zeros_like(data)
    if group["centered"]:
        state["grad_avg"] = np.zeros_like(data)
