"""Loss functions, written so that they never overflow and never return a silent NaN.

The two ideas worth reading slowly:

- **Work in logits.** `binary_cross_entropy_with_logits` computes log sigma(l) as -softplus(-l),
  which is finite for any l, and its gradient is simply sigma(l) - t. Computing sigma(l) first
  and then taking a log loses everything once sigma(l) rounds to 0 or 1.
- **The Gaussian KL in closed form.** For q = N(mu, sigma^2) and p = N(0, 1), per dimension,
  KL(q || p) = 0.5 (mu^2 + sigma^2 - 1 - log sigma^2). We parameterise by log-variance
  `logvar = log sigma^2`, so the network's output is unconstrained and sigma^2 = exp(logvar).

Every loss takes `reduction='mean' | 'sum' | 'none'` with PyTorch's meaning. The classes at
the bottom (`MSELoss`, `CrossEntropyLoss`, ...) are PyTorch's loss modules: each stores its
options, checks them when it is built, and calls the function above it.
"""

from __future__ import annotations

import numpy as np

from tinygen import ops
from tinygen.autograd import Tensor
from tinygen.nn.module import Module
from tinygen.ops import primitive

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss, reduction):
    _check_reduction("loss", reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _same_shape(op, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{op}: input shape {input.shape} and target shape {target.shape} "
                         f"must match")


def _as_tensor(t, like):
    return t if isinstance(t, Tensor) else Tensor(np.asarray(t, dtype=like.dtype))


def mse_loss(input, target, reduction="mean"):
    target = _as_tensor(target, input)
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input, target, reduction="mean"):
    target = _as_tensor(target, input)
    _same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


# Binary cross-entropy on probabilities is a primitive: composing it from `log` would turn
# p = 0 into log(0) = -inf and its gradient into 0 * inf = NaN. PyTorch clamps each log term at
# -100 and the gradient's denominator p (1 - p) at 1e-12; we do the same.
_LOG_FLOOR = -100.0


def _clamped_logs(p):
    with np.errstate(divide="ignore"):          # log(0) = -inf is expected; it is clamped
        return np.maximum(np.log(p), _LOG_FLOOR), np.maximum(np.log1p(-p), _LOG_FLOOR)


def bce_fwd(p, t):
    log_p, log_1mp = _clamped_logs(p)
    return -(t * log_p + (1 - t) * log_1mp)


def bce_vjp_t(g, out, p, t):
    log_p, log_1mp = _clamped_logs(p)
    return g * (log_1mp - log_p)                # d/dt = log(1-p) - log p


bce_p = primitive(
    "binary_cross_entropy", bce_fwd,
    # d/dp -(t log p + (1-t) log(1-p)) = (p - t) / (p (1 - p))
    lambda g, out, p, t: g * (p - t) / np.maximum(p * (1 - p), 1e-12),
    bce_vjp_t)


def binary_cross_entropy(input, target, reduction="mean"):
    """BCE between probabilities `input` in [0, 1] and targets in [0, 1]."""
    target = _as_tensor(target, input)
    _same_shape("binary_cross_entropy", input, target)
    p = input.data
    if np.isnan(p).any():
        raise ValueError(f"binary_cross_entropy: input of shape {input.shape} contains NaN")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"binary_cross_entropy: input must be probabilities in [0, 1], got "
                         f"range [{p.min():.4g}, {p.max():.4g}] "
                         f"(use binary_cross_entropy_with_logits for logits)")
    return _reduce(bce_p(input, target), reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean", pos_weight=None):
    """BCE(sigmoid(l), t) = softplus(l) - t l, finite for any logit l.

    With `pos_weight` w (PyTorch's meaning): -(w t log sigma(l) + (1 - t) log(1 - sigma(l)))
    = w t softplus(-l) + (1 - t) softplus(l).
    """
    target = _as_tensor(target, input)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    if pos_weight is None:
        loss = input.softplus() - target * input
    else:
        loss = pos_weight * target * (-input).softplus() + (1 - target) * input.softplus()
    return _reduce(loss, reduction)


def nll_loss(log_probs, target, reduction="mean"):
    """-log_probs[n, target[n]] for (N, C) log-probabilities and integer targets (N,)."""
    idx = target.data if isinstance(target, Tensor) else np.asarray(target)
    if log_probs.ndim != 2 or idx.shape != (log_probs.shape[0],):
        raise ValueError(f"nll_loss: expected input (N, C) and target (N,), got "
                         f"{log_probs.shape} and {idx.shape}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class indices, got {idx.dtype}")
    n_classes = log_probs.shape[1]
    if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
        raise IndexError(f"nll_loss: target values must lie in [0, {n_classes}), got range "
                         f"[{idx.min()}, {idx.max()}]")
    picked = log_probs[np.arange(len(idx)), idx]          # (N,)
    return _reduce(-picked, reduction)


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy from logits (N, C) and integer targets (N,).

    With label smoothing eps the target distribution is (1 - eps) one_hot + eps / C, so the
    loss is (1 - eps) nll + eps * mean_c(-log p_c). Never put a softmax before this: the
    log-softmax inside is the stable way to take the log of a softmax.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    _check_reduction("cross_entropy", reduction)
    idx = target.data if isinstance(target, Tensor) else np.asarray(target)
    if input.ndim != 2 or idx.shape != (input.shape[0],):
        raise ValueError(f"cross_entropy: expected logits (N, C) and integer class targets "
                         f"(N,), got input {input.shape} and target {idx.shape}")
    log_probs = ops.log_softmax(input, dim=1)
    loss = nll_loss(log_probs, target, reduction="none")
    if label_smoothing:
        uniform = -log_probs.mean(dim=1)
        loss = (1 - label_smoothing) * loss + label_smoothing * uniform
    return _reduce(loss, reduction)


def kl_normal(mu, logvar, reduction="mean"):
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over every dim but the first (the batch).

    `logvar` is the log of the *variance* sigma^2, not of sigma. reduction='none' returns one
    KL per example (N,); 'mean' averages those over the batch; 'sum' adds them.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"kl_normal: mu {mu.shape} and logvar {logvar.shape} must match")
    per_dim = 0.5 * (mu * mu + logvar.exp() - 1 - logvar)
    per_example = per_dim.sum(dim=tuple(range(1, mu.ndim))) if mu.ndim > 1 else per_dim
    return _reduce(per_example, reduction)


# ----------------------------------------------------------------------------------------------
# Loss modules: `criterion = nn.CrossEntropyLoss(); loss = criterion(logits, target)`.


class _Loss(Module):
    """A loss function with its options fixed at construction, where a bad one is caught."""

    fn = None

    def __init__(self, reduction="mean"):
        super().__init__()
        _check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def forward(self, input, target):
        return type(self).fn(input, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    fn = staticmethod(mse_loss)


class L1Loss(_Loss):
    fn = staticmethod(l1_loss)


class BCELoss(_Loss):
    """On probabilities in [0, 1]; prefer BCEWithLogitsLoss on logits (see the top of file)."""

    fn = staticmethod(binary_cross_entropy)


class NLLLoss(_Loss):
    """On log-probabilities (N, C), e.g. from LogSoftmax(dim=1), and class indices (N,)."""

    fn = staticmethod(nll_loss)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.pos_weight = pos_weight

    def forward(self, input, target):
        return binary_cross_entropy_with_logits(input, target, self.reduction, self.pos_weight)


class CrossEntropyLoss(_Loss):
    """On logits (N, C) and class indices (N,): the log-softmax is inside, so never put a
    Softmax layer before it."""

    def __init__(self, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got "
                             f"{label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return cross_entropy(input, target, self.reduction, self.label_smoothing)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"
