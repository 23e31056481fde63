"""Scores from a classifier's opinion of the samples: the Inception-style score and class balance.

This file teaches what a pretrained classifier can say about generated images without looking
at real ones. Feed each sample x to a classifier and read its class probabilities p(y|x) (for
us, the MNIST LeNet of `tinygen.models.classifier`, standing in for Inception-v3).

**Inception score** (Salimans et al. 2016, "Improved techniques for training GANs"):

    IS = exp( E_x KL(p(y|x) || p(y)) ),   where p(y) = E_x p(y|x)

It is high when each sample is confidently one class (p(y|x) peaked: "quality") and the
classes are used evenly (p(y) flat: "diversity"). With K classes, 1 <= IS <= K: it is 1 when
every sample gets the same distribution, and K = 10 when each sample is certainly one digit and
all digits are equally frequent. Like the original, we cut the samples (in the order given)
into 10 splits, compute the score on each split with that split's own p(y), and report the mean
and the standard deviation (ddof=0) over splits. It never looks at real data, so memorising
one perfect image per class scores the maximum; pair it with FID.

**Class histogram**: the fraction of samples whose most likely class is each digit, and its
entropy H = -sum_k h_k log h_k in nats. A mode-collapsed generator that draws only 3 digits
has H <= log 3; a balanced one approaches log 10 = 2.303 nats. We also report H / log 10, a
fraction in [0, 1].

Read next: `parzen.py`, the likelihood-based metric these scores replaced.
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_entropy", "class_histogram", "inception_score"]


def _check_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4) or (p < 0).any():
        raise ValueError("expected class probabilities (N, K) with non-negative rows summing "
                         f"to 1; got an array of shape {p.shape}")
    return p


def _xlogy(x, y):
    """x log y with the convention 0 log 0 = 0 (a class with p = 0 adds nothing to a KL)."""
    return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def _split_score(p: np.ndarray) -> float:
    p_y = p.mean(axis=0)                                           # marginal p(y), (K,)
    kl = (_xlogy(p, p) - _xlogy(p, np.broadcast_to(p_y, p.shape))).sum(axis=1)   # (N,)
    return float(np.exp(kl.mean()))


def inception_score(probs, n_splits: int = 10) -> tuple[float, float]:
    """(mean, std) over `n_splits` splits of exp(E_x KL(p(y|x) || p(y))); probs is (N, K)."""
    p = _check_probs(probs)
    if len(p) < n_splits:
        raise ValueError(f"inception_score: {len(p)} samples cannot fill {n_splits} splits")
    scores = np.array([_split_score(s) for s in np.array_split(p, n_splits)])
    return float(scores.mean()), float(scores.std())


def class_histogram(probs) -> np.ndarray:
    """(K,) fraction of samples whose most probable class is k."""
    p = _check_probs(probs)
    counts = np.bincount(p.argmax(axis=1), minlength=p.shape[1])
    return counts / counts.sum()


def class_entropy(probs) -> tuple[float, float]:
    """Entropy of the class histogram: (nats, as a fraction of log K)."""
    h = class_histogram(probs)
    nats = float(-_xlogy(h, h).sum())
    return nats, nats / np.log(len(h))


def confusion_counts(labels, predicted, k: int) -> np.ndarray:
    """(k, k) counts: row i = examples whose label is i, column j = how many were read as j."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise ValueError(f"confusion_counts: labels and predicted must be 1-D and alike, got "
                         f"{labels.shape} and {predicted.shape}")
    for name, v in (("labels", labels), ("predicted", predicted)):
        if len(v) and not 0 <= v.min() <= v.max() < k:
            raise ValueError(f"confusion_counts: {name} must lie in 0..{k - 1}, got "
                             f"{v.min()}..{v.max()}")
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts
