"""Toy 2-D distributions for watching a generative model learn, one scatter plot at a time.

This file teaches why 2-D toys matter: their densities are known exactly, so we can *measure*
failures that are only guesses on images. The two Gaussian mixtures are the standard test for
mode collapse (a GAN covering 3 of 8 modes is obvious here and invisible on MNIST). Following
VEEGAN (Srivastava et al., 2017), an evaluation counts a sample as *high quality* when it lies
within 3 standard deviations of its nearest mode centre, and a mode as *covered* when it is the
nearest centre of at least one high-quality sample. That is why the mixtures expose their
`centers` and `std` (see `GaussianMixture2D`), so evaluation uses exactly the values that made
the data.

Settings (`ring8`, `grid25`):
- ring8: 8 equal-weight Gaussians evenly spaced on a circle of radius 2 with std 0.02, the ring
  of the unrolled-GAN paper (Metz et al., 2017) that later mode-collapse papers compare on.
- grid25: 25 Gaussians centred on the 5x5 grid {-4, -2, 0, 2, 4}^2 with std 0.05 (variance
  0.0025), VEEGAN's grid as we understand PacGAN (Lin et al., 2018) to re-run it.
  Reproductions quote different stds for these toys, so std is a parameter rather than a
  constant. Whatever the value, what matters is that modes stay far apart in units of std:
  at the defaults the ring's neighbours are 1.53 / 0.02 = 77 std apart and the grid's
  2 / 0.05 = 40 std apart, so the 3-std "high quality" discs never overlap and counting modes
  is unambiguous.

The other three (`spiral`, `two_moons`, `swiss_roll`) are connected, curved densities on which
flows and VAEs show whether they can bend space. All samplers return float32 arrays of shape
(n, 2) and take `rng`: an int seed, a `np.random.Generator`, or None.

Read next: `loader.py`, which batches these arrays for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "GaussianMixture2D", "grid25", "grid25_mixture", "ring8", "ring8_mixture", "spiral",
    "swiss_roll", "two_moons",
]


@dataclass(frozen=True, eq=False)
class GaussianMixture2D:
    """Equal-weight isotropic Gaussians: `centers` (K, 2) and one shared `std`."""

    centers: np.ndarray
    std: float

    def sample(self, n: int, rng=None) -> np.ndarray:
        """Draw n points: pick a mode uniformly, then add N(0, std^2) noise. Returns (n, 2)."""
        rng = np.random.default_rng(rng)
        modes = rng.integers(len(self.centers), size=n)
        x = self.centers[modes] + self.std * rng.standard_normal((n, 2))
        return x.astype(np.float32)

    def nearest(self, x) -> tuple[np.ndarray, np.ndarray]:
        """For points x (n, 2): the index of each one's nearest centre, and the distance to it."""
        x = np.asarray(x, dtype=np.float64)
        dist = np.linalg.norm(x[:, None, :] - self.centers[None, :, :], axis=-1)  # (n, K)
        idx = dist.argmin(axis=1)
        return idx, dist[np.arange(len(x)), idx]


def ring8_mixture(radius: float = 2.0, std: float = 0.02) -> GaussianMixture2D:
    """The ring of 8 Gaussians: centres at angles 0, 45, ..., 315 degrees on a circle."""
    angles = 2 * np.pi * np.arange(8) / 8
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture2D(centers, std)


def grid25_mixture(std: float = 0.05) -> GaussianMixture2D:
    """The 5x5 grid of Gaussians, centres at (-4 + 2i, -4 + 2j) for i, j in 0..4."""
    ticks = np.arange(-4.0, 5.0, 2.0)
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    return GaussianMixture2D(np.stack([gx.ravel(), gy.ravel()], axis=1), std)


def ring8(n: int, radius: float = 2.0, std: float = 0.02, rng=None) -> np.ndarray:
    """n samples from the ring of 8 Gaussians; `ring8_mixture()` gives its centres and std."""
    return ring8_mixture(radius, std).sample(n, rng)


def grid25(n: int, std: float = 0.05, rng=None) -> np.ndarray:
    """n samples from the 5x5 grid of Gaussians; `grid25_mixture()` gives centres and std."""
    return grid25_mixture(std).sample(n, rng)


def spiral(n: int, turns: float = 1.5, noise: float = 0.1, rng=None) -> np.ndarray:
    """Two interleaved spiral arms (one rotated by 180 degrees), out to radius 4."""
    rng = np.random.default_rng(rng)
    max_angle = 2 * np.pi * turns
    # On a spiral r ~ theta the arc length grows like theta^2, so theta = sqrt(u) * max spreads
    # points evenly along the arm; a uniform theta would crowd them near the centre.
    theta = np.sqrt(rng.uniform(size=n)) * max_angle
    r = 4.0 * theta / max_angle
    sign = 1 - 2 * rng.integers(2, size=n)  # +1 or -1 picks the arm
    x = sign[:, None] * np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return (x + noise * rng.standard_normal((n, 2))).astype(np.float32)


def two_moons(n: int, noise: float = 0.05, rng=None) -> np.ndarray:
    """Two interleaved half circles of radius 1, centred on the origin."""
    rng = np.random.default_rng(rng)
    t = rng.uniform(0, np.pi, size=n)
    lower = rng.integers(2, size=n).astype(bool)
    x = np.stack([np.cos(t), np.sin(t)], axis=1)
    # The lower moon is the upper one flipped and shifted right by 1 and down by 0.5.
    x[lower] = np.array([1.0, 0.5]) - x[lower]
    x -= np.array([0.5, 0.25])  # centre the pair on the origin
    return (x + noise * rng.standard_normal((n, 2))).astype(np.float32)


def swiss_roll(n: int, noise: float = 0.05, rng=None) -> np.ndarray:
    """The 2-D swiss roll, (t cos t, t sin t) / 5 for t in [1.5 pi, 4.5 pi]; radius <= ~2.8."""
    rng = np.random.default_rng(rng)
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    # Dividing by 5 brings the roll to roughly unit scale, where default inits work well.
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5.0
    return (x + noise * rng.standard_normal((n, 2))).astype(np.float32)
