"""Adam and AdamW: per-coordinate step sizes from running moments of the gradient.

Adam (Kingma & Ba, 2015) keeps two exponential moving averages per parameter entry, of the
gradient (m, the "first moment") and of its square (v, the "second moment"). At step t:

    g_t <- -g_t                          if maximize
    g_t <- g_t + weight_decay * p        Adam only: L2 penalty folded into the gradient
    p   <- p * (1 - lr * weight_decay)   AdamW only: decay the weights directly ("decoupled")
    m_t =  beta1 * m_{t-1} + (1 - beta1) * g_t
    v_t =  beta2 * v_{t-1} + (1 - beta2) * g_t^2
    vmax_t = max(vmax_{t-1}, v_t)        amsgrad only, on the *uncorrected* v (as PyTorch)
    p   <- p - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

m and v start at zero, so early on they are biased towards zero; dividing by (1 - beta^t)
removes that bias. Note where eps sits: it is added *after* the bias correction of sqrt(v),
as in PyTorch and in the paper's Algorithm 1. (The paper's faster rewrite in its Section 2,
which some libraries use, adds eps to sqrt(v) *before* correcting, so there eps is effectively
larger in the first steps.)

Why AdamW? With Adam, an L2 term in the gradient is divided by sqrt(v) like everything else, so
weights with large gradients are barely decayed. Loshchilov & Hutter (2019) decay the weights
outside the adaptive step, which is what `weight_decay` in AdamW means.

Read `rmsprop.py` next.
"""

from __future__ import annotations

import numpy as np

from tinygen import kernels
from tinygen.optim.optimizer import Optimizer, check_nonnegative, check_number


class Adam(Optimizer):
    """`Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
    maximize=False)`. State per parameter: `step`, `exp_avg` (m), `exp_avg_sq` (v) and, with
    amsgrad, `max_exp_avg_sq`. All arrays have the parameter's dtype."""

    decoupled_weight_decay = False  # AdamW flips this

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 maximize: bool = False):
        betas = tuple(betas) if isinstance(betas, list | tuple) else betas
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        name = type(self).__name__
        check_nonnegative(options, "lr", "eps", "weight_decay", owner=name)
        betas = options["betas"]
        if not isinstance(betas, list | tuple) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            check_number(beta, f"betas[{i}]", name)
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid betas[{i}]: {beta} (must be in [0, 1))")

    def _update(self, p, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            _init_state(state, p.data, group["amsgrad"])
        g = -grad if group["maximize"] else grad
        if wd != 0 and self.decoupled_weight_decay:
            p.data *= 1 - lr * wd
        elif wd != 0:
            g = g + wd * p.data  # a new array: never edit p.grad
        state["step"] = t = state["step"] + 1
        # m and v in place, then p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps):
        # the NumPy lines are `kernels/reference.py`'s adam_update, the one-pass loop
        # `kernels/numba_optim.py`'s.
        kernels.adam_update(p.data, g, state["exp_avg"], state["exp_avg_sq"],
                            state.get("max_exp_avg_sq"), beta1, beta2,
                            step_size=lr / (1 - beta1**t), bias2_sqrt=(1 - beta2**t) ** 0.5,
                            eps=group["eps"])


class AdamW(Adam):
    """Adam with decoupled weight decay: `p *= 1 - lr * weight_decay` before the Adam step.

    Same options as Adam, but `weight_decay` defaults to 1e-2 (PyTorch's default)."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)


def _init_state(state: dict, data: np.ndarray, amsgrad: bool) -> None:
    state["step"] = 0
    state["exp_avg"] = np.zeros_like(data)
    state["exp_avg_sq"] = np.zeros_like(data)
    if amsgrad:
        state["max_exp_avg_sq"] = np.zeros_like(data)
