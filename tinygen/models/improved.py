"""Improved techniques for training GANs (Salimans et al. 2016), as layers and losses that
`gan.py` and `dcgan.py` switch on.

So far: **minibatch discrimination** (Section 3.2). A D that judges one example at a time cannot
see that G draws the same point over and over: each copy looks real on its own. Minibatch
discrimination gives D a view of the whole batch. For D's intermediate features f(x_i) in R^A
and a learned tensor T in R^{A x B x C}:

    M_i = f(x_i) T                             in R^{B x C}    (B rows of C numbers)
    c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1)              (closeness in kernel b)
    o(x_i)_b = sum_j c_b(x_i, x_j)             in R^B
    D's next layer sees [f(x_i), o(x_i)]

A collapsed batch has every o(x_i) near its maximum (all pairs close), a real batch does not,
so D can reject collapse and G is pushed to spread out. Real and fake batches go through D
separately, so o compares fakes with fakes and reals with reals. The sum over j includes
j = i (a constant 1), as in the authors' code.
"""

from __future__ import annotations

import numpy as np

import tinygen as tg
from tinygen import nn
from tinygen.nn import init


class MinibatchDiscrimination(nn.Module):
    """(N, in_features) -> (N, in_features + kernels): features joined by o(x), see above."""

    def __init__(self, in_features: int, kernels: int, kernel_dims: int):
        super().__init__()
        if min(in_features, kernels, kernel_dims) < 1:
            raise ValueError(f"MinibatchDiscrimination: sizes must be positive, got "
                             f"in_features={in_features}, kernels={kernels}, "
                             f"kernel_dims={kernel_dims}")
        self.kernels, self.kernel_dims = kernels, kernel_dims
        self.T = nn.Parameter(np.zeros((in_features, kernels * kernel_dims), np.float32))
        init.normal_(self.T, 0.0, 0.1)          # T (A, B*C), stored flat for one matmul

    def forward(self, f):
        M = (f @ self.T).reshape(-1, self.kernels, self.kernel_dims)       # (N, B, C)
        l1 = (M.unsqueeze(1) - M.unsqueeze(0)).abs().sum(dim=3)            # (N, N, B)
        o = (-l1).exp().sum(dim=1)                                         # (N, B)
        return tg.cat([f, o], dim=1)

    def extra_repr(self):
        return f"{self.T.shape[0]}, kernels={self.kernels}, kernel_dims={self.kernel_dims}"
