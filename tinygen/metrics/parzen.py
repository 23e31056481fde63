"""Parzen-window log-likelihood: a density estimate built from a model's samples.

This file teaches the oldest way GANs were scored, and why it was abandoned. A GAN can sample
but cannot evaluate p(x). So put a small Gaussian "window" of width sigma on each of n samples
s_i (a kernel density estimate) and evaluate the real test images under that mixture:

    log p(x) = logsumexp_i( -|x - s_i|^2 / (2 sigma^2) ) - log n - (d/2) log(2 pi sigma^2)

Protocol (Goodfellow et al. 2014, "Generative adversarial nets", Table 1; the estimator is from
Breuleux et al. 2011): pixels in [0, 1]; 10,000 samples; sigma chosen from
np.logspace(-1, 0, 10) by the mean log-likelihood on a validation set (we hold out 1,000
training images); report the mean log-likelihood of the 10,000 test images and its standard
error (std / sqrt(N)). The GAN paper reports 225 +- 2 nats on MNIST this way.

Why it was abandoned (Theis et al. 2016, "A note on the evaluation of generative models"): in
784 dimensions a window sees little more than the nearest sample, so the score says more about
nearest-neighbour distances than about the model, and it can rank models opposite to their
true likelihood. Keep it for comparison with old papers, not as a verdict.

Computation. All |x - s|^2 come at once from |x|^2 + |s|^2 - 2 x . s: one matrix product,
done in float64 (in float32 the cancellation loses the small distances that matter most) and
in blocks of test points so memory stays bounded. Each row's distances are then reused for
every sigma, and the logsumexp subtracts the row's smallest distance first, so exp never
underflows to a log of zero.

Read next: `modes.py`, where the true density is known and no estimate is needed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIGMAS", "parzen_evaluate", "parzen_log_likelihood", "select_sigma"]

# The GAN paper's grid of window widths, for pixels in [0, 1].
SIGMAS = np.logspace(-1, 0, 10)


def _flat(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1)


def _sq_distances(x: np.ndarray, s: np.ndarray, s_sq: np.ndarray) -> np.ndarray:
    """|x_j - s_i|^2 for a block of test points x (b, d) and all samples s (n, d): (b, n)."""
    d2 = (x * x).sum(axis=1)[:, None] + s_sq[None, :] - 2.0 * (x @ s.T)
    return np.maximum(d2, 0.0)          # rounding can make a tiny distance slightly negative


def _block_log_p(d2: np.ndarray, sigmas: np.ndarray, dim: int) -> np.ndarray:
    """log p for each sigma and each row of squared distances d2 (b, n): (len(sigmas), b)."""
    n = d2.shape[1]
    d_min = d2.min(axis=1)
    shifted = d2 - d_min[:, None]       # >= 0, and 0 at the nearest sample: the stable max
    out = np.empty((len(sigmas), len(d2)))
    for k, sigma in enumerate(sigmas):
        two_var = 2.0 * sigma ** 2
        lse = np.log(np.exp(-shifted / two_var).sum(axis=1)) - d_min / two_var
        out[k] = lse - np.log(n) - 0.5 * dim * np.log(np.pi * two_var)
    return out


def _log_p_grid(samples, x, sigmas, batch_size: int) -> np.ndarray:
    """(len(sigmas), N) log-likelihood of each point of x under the Parzen window of samples."""
    s, x = _flat(samples), _flat(x)
    if s.shape[1] != x.shape[1]:
        raise ValueError(f"parzen: samples have {s.shape[1]} dims but x has {x.shape[1]}")
    sigmas = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    s_sq = (s * s).sum(axis=1)
    blocks = [_block_log_p(_sq_distances(x[i:i + batch_size], s, s_sq), sigmas, s.shape[1])
              for i in range(0, len(x), batch_size)]
    return np.concatenate(blocks, axis=1)


def parzen_log_likelihood(samples, x, sigma: float, batch_size: int = 500) -> np.ndarray:
    """(N,) log p(x_j) under Gaussian windows of width `sigma` on `samples` (n, ...)."""
    return _log_p_grid(samples, x, [sigma], batch_size)[0]


def select_sigma(samples, x_val, sigmas=SIGMAS, batch_size: int = 500):
    """The sigma in `sigmas` with the highest mean validation log-likelihood.

    Returns (best sigma, array of the mean validation log-likelihood for every sigma).
    """
    means = _log_p_grid(samples, x_val, sigmas, batch_size).mean(axis=1)
    return float(np.asarray(sigmas)[means.argmax()]), means


def parzen_evaluate(samples, x_val, x_test, sigmas=SIGMAS, batch_size: int = 500) -> dict:
    """The whole protocol: choose sigma on x_val, then score x_test.

    Returns {"sigma", "mean", "se", "val_means"} where se = std(ddof=1) / sqrt(len(x_test)).
    """
    sigma, val_means = select_sigma(samples, x_val, sigmas, batch_size)
    ll = parzen_log_likelihood(samples, x_test, sigma, batch_size)
    se = float(ll.std(ddof=1) / np.sqrt(len(ll))) if len(ll) > 1 else 0.0
    return {"sigma": sigma, "mean": float(ll.mean()), "se": se, "val_means": val_means}
