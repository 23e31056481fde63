"""Comparing two clouds of features: the Fréchet distance (FID) and the kernel distance (KID).

This file teaches how to compare a model's samples with real data when neither has a density
we can evaluate: embed both in a feature space (for us, the MNIST classifier's 128-dim
penultimate layer, see `features.py`) and compare the two clouds of feature vectors.

**FID** (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local
Nash equilibrium"). Fit a Gaussian to each cloud, N(mu1, C1) and N(mu2, C2), and report the
squared Fréchet (2-Wasserstein) distance between the two Gaussians:

    FID = |mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^{1/2})

The paper writes (C1 C2)^{1/2}, a square root of a product that is not symmetric. We use the
symmetric form instead,

    tr((C1 C2)^{1/2}) = tr((C1^{1/2} C2 C1^{1/2})^{1/2}),

because then every square root is of a symmetric positive semi-definite (PSD) matrix, which an
eigendecomposition (`np.linalg.eigh`) takes exactly. Why the two traces agree: for square
matrices X and Y, XY and YX have the same eigenvalues. Take X = C1^{1/2} and Y = C1^{1/2} C2:
then XY = C1 C2 and YX = C1^{1/2} C2 C1^{1/2}. The latter is symmetric PSD, so these shared
eigenvalues are real and >= 0, and the trace of a square root is the sum of the square roots
of the eigenvalues. Rounding can still make an eigenvalue like -1e-13; we clip such values to
0 before the square root, instead of letting them turn into NaN or a complex number.

FID is 0 only when both means and covariances match. It is biased upwards for small samples
(the estimated covariances are noisy), so compare FIDs only at equal sample sizes.

**KID** (Bińkowski et al. 2018, "Demystifying MMD GANs"): the squared maximum mean discrepancy
with the cubic polynomial kernel k(x, y) = (x . y / d + 1)^3 on d-dim features. Its unbiased
estimator on m points X and m points Y is

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2

Unlike FID it has no bias: its expectation is exactly MMD^2, which is 0 when the two
distributions are equal, so an estimate can come out slightly negative. As in the paper we
average it over random subsets (default 100 subsets of 1000 points from each set).

Read next: `scores.py` (the Inception-style score), then `features.py`, which plugs the MNIST
classifier into both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fid_from_features", "frechet_distance", "kid_from_features", "polynomial_kernel",
           "sqrtm_psd", "unbiased_mmd2"]


# ----------------------------------------------------------------------------------------------
# FID


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """The symmetric PSD square root of a symmetric PSD matrix: R with R @ R == a.

    With a = V diag(w) V^T (eigh), R = V diag(sqrt(w)) V^T. Eigenvalues that rounding made
    slightly negative are clipped to 0.
    """
    a = np.asarray(a, dtype=np.float64)
    w, v = np.linalg.eigh((a + a.T) / 2)   # symmetrise: eigh reads only one triangle
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(c1: np.ndarray, c2: np.ndarray) -> float:
    """tr((C1 C2)^{1/2}) computed as the sum of sqrt(eigenvalues of C1^{1/2} C2 C1^{1/2})."""
    s1 = sqrtm_psd(c1)
    m = s1 @ c2 @ s1
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2}), in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape:
        raise ValueError(f"frechet_distance: shapes differ: means {mu1.shape} vs {mu2.shape}, "
                         f"covariances {cov1.shape} vs {cov2.shape}")
    mean_term = float(np.sum((mu1 - mu2) ** 2))
    cov_term = float(np.trace(cov1) + np.trace(cov2)) - 2 * trace_sqrt_product(cov1, cov2)
    # Rounding can leave a tiny negative total for identical inputs; a distance is >= 0.
    return max(mean_term + cov_term, 0.0)


def feature_stats(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of features f (N, d), in float64."""
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"feature_stats: need features of shape (N >= 2, d), got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """FID between two sets of feature vectors (N1, d) and (N2, d)."""
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))


# ----------------------------------------------------------------------------------------------
# KID


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for every pair of rows: (n, d), (m, d) -> (n, m)."""
    k = x @ y.T / x.shape[1] + 1.0
    return k * k * k                    # two multiplies: several times faster than ** 3


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 estimate between equal-sized sets x and y (m, d), m >= 2."""
    m = len(x)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    # Dropping the diagonal (i == j) is what removes the bias: k(x_i, x_i) is not an
    # estimate of E k(x, x') for two *independent* draws.
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def kid_from_features(f1, f2, n_subsets: int = 100, subset_size: int = 1000,
                      rng=0) -> dict:
    """KID between features f1 (N1, d) and f2 (N2, d), averaged over random subsets.

    Each subset draws min(subset_size, N1, N2) rows without replacement from each set.
    Returns {"mean", "std", "se", "values"}: the mean over subsets, their standard deviation
    (ddof=1), and se = std / sqrt(n_subsets), the standard error of that mean *as a Monte
    Carlo average over subsets*. Subsets of the same two sets overlap, so se measures the
    noise added by subsampling, not how much KID would vary with fresh samples; to compare two
    models, prefer fresh samples or the spread across runs. (When both sets hold no more than
    subset_size points, every subset is the whole set and se is 0.)
    """
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise ValueError("kid_from_features: need at least 2 samples in each set")
    rng = np.random.default_rng(rng)
    values = np.array([unbiased_mmd2(f1[rng.choice(len(f1), m, replace=False)],
                                     f2[rng.choice(len(f2), m, replace=False)])
                       for _ in range(n_subsets)])
    std = float(values.std(ddof=1)) if n_subsets > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "se": std / np.sqrt(n_subsets),
            "values": values}
