"""Improved techniques for training GANs (Salimans et al. 2016), as layers and losses that
`gan.py` and `dcgan.py` switch on. Each is off by default, and off gives back the plain model's
loss exactly (the tests check it). Paper sections in brackets.

**Feature matching** [3.1] (`--feature-matching`). G stops maximising D's output and instead
matches the statistics of D's features f, the activations of an intermediate layer of D:

    G loss:  || E_x f(x) - E_z f(G(z)) ||_2^2             -> `feature_matching_loss`

with both expectations taken over the minibatch. D trains as before, so it keeps finding the
features that tell real from fake, and G has to match them; G no longer chases whatever D
currently believes, which is what makes the plain game overshoot. `fm_layer` picks f: the
input of D's module at that index (-1, the default, is D's last hidden layer).

**Minibatch discrimination** [3.2] (`--minibatch-kernels B`). A D that judges one example at
a time cannot see that G draws the same point over and over: each copy looks real on its own.
Minibatch discrimination gives D a view of the whole batch. For D's intermediate features
f(x_i) in R^A and a learned tensor T in R^{A x B x C}:

    M_i = f(x_i) T                             in R^{B x C}    (B rows of C numbers)
    c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1)              (closeness in kernel b)
    o(x_i)_b = sum_j c_b(x_i, x_j)             in R^B
    D's next layer sees [f(x_i), o(x_i)]                      -> `MinibatchDiscrimination`

A collapsed batch has every o(x_i) near its maximum (all pairs close), a real batch does not,
so D can reject collapse and G is pushed to spread out. Real and fake batches go through D
separately, so o compares fakes with fakes and reals with reals. The sum over j includes
j = i (a constant 1), as in the authors' code.

**Historical averaging** [3.3] (`--historical-averaging LAMBDA`). Each player's loss gets

    LAMBDA * || theta - (1/t) sum_{i=1}^{t} theta[i] ||^2      -> `HistoricalAverage`

where theta[i] are that player's parameters after its i-th step. A player that circles an
equilibrium (the classic failure of gradient play on min_x max_y xy) is pulled back toward
the centre of its orbit. The average is kept as a running mean, one array per parameter, so
the memory is O(parameters) and not O(steps): mean_t = mean_{t-1} + (theta[t] - mean_{t-1}) / t.
The authors' released code does not include this technique; the paper gives no LAMBDA.

**One-sided label smoothing** [3.4] (`--label-smoothing`). D's target for real examples
becomes alpha (0.9) instead of 1; the target for fakes stays 0:

    D loss:  alpha softplus(-l(x)) + (1 - alpha) softplus(l(x)) + softplus(l(G(z)))
           = -[alpha log D(x) + (1 - alpha) log(1 - D(x))] - log(1 - D(G(z)))

so D stops being rewarded for ever more extreme logits on real data, which keeps its
gradients to G informative. Why not smooth the fakes too, to a target beta > 0? The optimal
D becomes

    D*(x) = (alpha p_data(x) + beta p_model(x)) / (p_data(x) + p_model(x)),

and where p_data is tiny but p_model is not (G's samples off the data) D* is beta, not 0.
D no longer says "fake" where G is wrong, so G gets no push to leave those places: the
fake-side term keeps G's mistakes in place. With beta = 0 that term vanishes.

**Virtual batch normalization** [3.5] (`--vbn`). Every batch norm in G becomes a virtual
batch norm (`tinygen.nn.VirtualBatchNorm1d/2d`, whose docstring has the equations and the
cost): each sample is normalised with the statistics of a fixed reference batch of noise
vectors, drawn once (`vbn_ref` of them), plus itself, so G's output for one z no longer
depends on the other z's of its batch. `virtual_batch_norm` swaps the layers; the model runs
G on [z_ref, z] and drops the reference rows (`GAN.run_G`).
"""

from __future__ import annotations

import contextlib

import numpy as np

import tinygen as tg
from tinygen import nn
from tinygen.nn import functional as F
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
        M = (f @ self.T).reshape(-1, self.kernels, self.kernel_dims)       # M_i = f(x_i) T
        # o_b(x_i) = sum_j exp(-|M_ib - M_jb|_1), (N, B). In engine ops that is
        #   (-(M.unsqueeze(1) - M.unsqueeze(0)).abs().sum(dim=3)).exp().sum(dim=1)
        # (an (N, N, B, C) array); the primitive computes it pair by pair, forward and back.
        o = F.minibatch_closeness(M)
        return tg.cat([f, o], dim=1)

    def extra_repr(self):
        return f"{self.T.shape[0]}, kernels={self.kernels}, kernel_dims={self.kernel_dims}"


# ----------------------------------------------------------------------------------------------
# Feature matching.


def feature_matching_loss(f_real, f_fake):
    """|| mean_i f(x_i) - mean_j f(G(z_j)) ||_2^2 over the features' last dims."""
    gap = f_real.flatten(1).mean(dim=0) - f_fake.flatten(1).mean(dim=0)   # (A,)
    return (gap * gap).sum()


# ----------------------------------------------------------------------------------------------
# Historical averaging.


class ParameterAverage(nn.Module):
    """A running average of some parameters: the mean of every value so far (decay=None), or
    an exponential moving average m <- decay m + (1 - decay) theta.

    Its state is buffers (`mean0`, `mean1`, ... and the count `t`), so a checkpoint holds them
    and a resumed run continues bitwise. The average starts at the parameters' current values
    (t = 1); `update()` folds in their values after a step. One array per parameter: the
    memory is O(parameters), whatever the number of steps.
    """

    def __init__(self, params, decay: float | None = None):
        super().__init__()
        if decay is not None and not 0 <= decay < 1:
            raise ValueError(f"ParameterAverage: decay must be in [0, 1), got {decay}")
        self._params, self.decay = list(params), decay   # "_": not this module's own
        for i, p in enumerate(self._params):
            self.register_buffer(f"mean{i}", np.array(p.data, copy=True))
        self.register_buffer("t", np.ones((), np.int64))

    def means(self):
        return [getattr(self, f"mean{i}") for i in range(len(self._params))]

    def reset(self) -> None:
        """Start again from the parameters' current values."""
        for p, m in zip(self._params, self.means(), strict=True):
            m.data = np.array(p.data, copy=True)
        self.t.data = np.ones((), np.int64)

    def update(self) -> None:
        """Fold in the current values: m += (theta - m) / t (the mean of all t values so
        far), or m += (1 - decay)(theta - m) (the moving average)."""
        self.t.data += 1
        rate = 1.0 / float(self.t.data) if self.decay is None else 1.0 - self.decay
        for p, m in zip(self._params, self.means(), strict=True):
            m.data += rate * (p.data - m.data)

    @contextlib.contextmanager
    def swapped_in(self):
        """Inside the block the parameters hold the averages (to evaluate with them)."""
        saved = [p.data for p in self._params]
        for p, m in zip(self._params, self.means(), strict=True):
            p.data = m.data.copy()
        try:
            yield
        finally:
            for p, data in zip(self._params, saved, strict=True):
                p.data = data


class HistoricalAverage(ParameterAverage):
    """The penalty LAMBDA ||theta - (1/t) sum_i theta[i]||^2 of one player (see above)."""

    def __init__(self, params, weight: float):
        if not weight > 0:
            raise ValueError(f"HistoricalAverage: weight must be > 0, got {weight}")
        super().__init__(params)
        self.weight = weight

    def penalty(self):
        """LAMBDA * sum over parameters of ||theta - mean||^2 (the mean is a constant)."""
        total = 0
        for p, m in zip(self._params, self.means(), strict=True):
            d = p - m.data                                  # theta - (1/t) sum theta[i]
            total = total + (d * d).sum()
        return self.weight * total


# ----------------------------------------------------------------------------------------------
# Virtual batch normalization.


def virtual_batch_norm(net: nn.Sequential, ref_size: int) -> nn.Sequential:
    """`net` with each BatchNorm1d/2d replaced by a virtual batch norm of the same width."""
    swap = {nn.BatchNorm1d: nn.VirtualBatchNorm1d, nn.BatchNorm2d: nn.VirtualBatchNorm2d}
    layers = [swap[type(m)](m.num_features, ref_size) if type(m) in swap else m for m in net]
    if len(layers) == sum(type(m) not in swap for m in net):
        raise ValueError("virtual_batch_norm: the network has no batch norm to replace")
    return nn.Sequential(*layers)
