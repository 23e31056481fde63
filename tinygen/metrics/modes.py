"""Counting modes on the 2-D Gaussian mixtures: the plainest measure of mode collapse.

This file teaches the metric of the toy experiments in the unrolled-GAN paper (Metz et al.
2017, "Unrolled generative adversarial networks") and VEEGAN (Srivastava et al. 2017, "VEEGAN:
reducing mode collapse in GANs using implicit variational learning"). On `ring8` (8 modes) and
`grid25` (25 modes) we know every centre c_k and the shared std sigma, so for model samples:

- a sample x is **high quality** when it lies within 3 sigma of its nearest centre,
  min_k |x - c_k| <= 3 sigma;
- a mode is **covered** when at least `min_count` high-quality samples have it as their
  nearest centre.

We report the number of covered modes and the percentage of high-quality samples.

The threshold. We could not check VEEGAN's own text here. The evaluation code that PacGAN
(Lin et al. 2018) published for re-running VEEGAN's grid and ring counts a mode as covered when
it has at least one sample within 3 std, so `min_count=1` is the default. It is a parameter
because one stray sample is weak evidence: with `min_count=20` out of 2,500 samples, a mode must
hold a fifth of its fair share (100) to count.

A calibration point worth knowing: in 2-D, |x - c| / sigma follows a chi distribution with 2
degrees of freedom, so even perfect samples are within 3 sigma only 1 - exp(-9/2) = 98.89% of
the time, not the 99.7% of the 1-D "3 sigma rule".

Read next: `tinygen/data/toy.py`, which defines the mixtures and their `nearest` method.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PERFECT_HIGH_QUALITY", "mode_metrics"]

# Expected fraction of exact mixture samples within 3 std of their centre (2-D chi law).
PERFECT_HIGH_QUALITY = 1.0 - np.exp(-4.5)


def mode_metrics(samples, mixture, n_std: float = 3.0, min_count: int = 1) -> dict:
    """Mode coverage and sample quality of 2-D `samples` (n, 2) against a GaussianMixture2D.

    Returns {"modes": covered modes, "n_modes": K, "high_quality_pct": % of samples within
    n_std * std of their nearest centre, "counts": (K,) high-quality samples per mode}.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"mode_metrics: expected samples of shape (n, 2), got {x.shape}")
    k = len(mixture.centers)
    if len(x) == 0:
        return {"modes": 0, "n_modes": k, "high_quality_pct": 0.0, "counts": np.zeros(k, int)}
    idx, dist = mixture.nearest(x)
    good = dist <= n_std * mixture.std
    counts = np.bincount(idx[good], minlength=k)
    return {"modes": int((counts >= min_count).sum()), "n_modes": k,
            "high_quality_pct": 100.0 * float(good.mean()), "counts": counts}
