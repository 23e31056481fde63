"""Conditional VAE: Sohn, Lee & Yan 2015, "Learning Structured Output Representation using Deep
Conditional Generative Models" (here with the class label as the condition, as in Kingma et
al. 2014's M2 model when labels are observed).

Both networks also see the label y as a one-hot vector: q(z | x, y) and p(x | z, y), with prior
p(z) = N(0, I). The loss is the VAE's negative ELBO with everything conditioned on y:

    -E_q[log p(x | z, y)] + KL(q(z | x, y) || N(0, I))

Because the decoder is told the digit, z is free to encode only what the label does not:
thickness, slant, style. Sampling a fixed z with each of the ten labels writes the same
"handwriting" as ten different digits.

Everything except *what the condition is* comes from `vae.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinygen as tg
from tinygen.models import vae


@dataclass
class Config(vae.Config):
    n_classes: int = 10


class CVAE(vae.VAE):
    def __init__(self, cfg: Config):
        self.n_conditions = cfg.n_classes          # read by VAE.__init__ to size the networks
        super().__init__(cfg)

    def condition(self, y=None):
        """Labels (N,) -> one-hot (N, n_classes)."""
        if y is None:
            raise ValueError("CVAE: pass the labels y; every image is conditioned on its class")
        y = np.asarray(y.data if isinstance(y, tg.Tensor) else y)
        return tg.tensor(np.eye(self.cfg.n_classes, dtype=np.float32)[y])

    def sample(self, n: int, y=None) -> np.ndarray:
        """n samples; labels cycle 0, 1, ..., 9 unless given, so a grid shows every class."""
        y = np.arange(n) % self.cfg.n_classes if y is None else y
        return super().sample(n, y)

    def style_grid(self, n_styles: int = 8) -> np.ndarray:
        """Row i: one random z (a "style") decoded with every label."""
        k = self.cfg.n_classes
        z = np.repeat(tg.randn(n_styles, self.cfg.latent).data, k, axis=0)
        return self.generate(z, np.tile(np.arange(k), n_styles))
