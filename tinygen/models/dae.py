"""Denoising autoencoder: Vincent, Larochelle, Bengio & Manzagol 2008, "Extracting and composing
robust features with denoising autoencoders" (and Vincent et al. 2010, JMLR, for the stacked
version). Read `ae.py` first: this file adds exactly one thing to it, a corruption.

A plain autoencoder with a wide enough code can learn the identity and so learn nothing. The
DAE removes that way out: it corrupts each input, x~ ~ q(x~ | x), and asks the network to
rebuild the *clean* x from x~. To undo the damage it must learn how pixels depend on each
other, which is exactly the structure of the data. The loss is AE's, with x~ fed in:

    L(x) = BCE(g(f(x~)), x),   x~ ~ q(x~ | x),   averaged over pixels and batch

(squared error instead of BCE for `linear=True`). The three corruptions of the papers, each
with strength p = `noise_level`:

- masking:        each pixel is set to 0 with probability p (the papers' main choice; 25% is
                  the MNIST setting of the stacked-DAE experiments);
- salt_pepper:    each pixel is, with probability p, set to 0 or 1 with equal odds;
- gaussian:       x~ = clip(x + N(0, p^2), 0, 1), i.e. p is the noise's standard deviation.

The noise comes from tinygen's default generator, so `tinygen.manual_seed` reproduces a run and
a resumed checkpoint continues with the very same noise (train.py saves that generator).
`benchmarks/dae_pretraining.py` uses a DAE to pre-train a classifier's first layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinygen as tg
from tinygen.models import ae

NOISES = ("gaussian", "masking", "salt_pepper")


@dataclass
class Config(ae.Config):
    noise: str = "masking"      # "gaussian", "masking" or "salt_pepper"
    noise_level: float = 0.25   # p: drop / flip probability, or the Gaussian's std


class DAE(ae.AE):
    def __init__(self, cfg: Config):
        if cfg.noise not in NOISES or not 0 <= cfg.noise_level <= 1:
            raise ValueError(f"DAE: noise must be one of {', '.join(NOISES)} and noise_level "
                             f"in [0, 1], got {cfg.noise!r}, {cfg.noise_level}")
        super().__init__(cfg)

    def corrupt(self, x, generator=None):
        """x~ ~ q(x~ | x) for images x (a Tensor), as a Tensor of the same shape and dtype.

        Built from tensor ops (a product, `where`, `clamp`), so a gradient check of the whole
        objective with respect to x sees the corruption too.
        """
        gen = generator if generator is not None else tg.default_generator()
        p = self.cfg.noise_level
        if self.cfg.noise == "masking":
            keep = gen.random(x.shape) >= p                       # drop with probability p
            return x * keep.astype(x.dtype)
        if self.cfg.noise == "salt_pepper":
            hit = gen.random(x.shape) < p
            salt = (gen.random(x.shape) < 0.5).astype(x.dtype)    # 0 or 1, equally likely
            return tg.where(hit, tg.tensor(salt), x)
        noise = gen.standard_normal(x.shape).astype(x.dtype)
        return (x + p * noise).clamp(0.0, 1.0)        # the input stays an image in [0, 1]

    def objective(self, x):
        """Rebuild the clean x from its corruption: the only change from AE."""
        z = self.encode(self.corrupt(x))
        return self.reconstruction_loss(self.decode(z), x), z

    def evaluate(self, loader) -> dict:
        """Denoising loss (the training objective) and plain reconstruction loss on `loader`.

        The test corruption comes from its own generator with a fixed seed, so every epoch is
        scored on the same noisy images and evaluation never shifts the training noise.
        """
        gen = np.random.default_rng(0)
        totals, n = np.zeros(2), 0
        with tg.no_grad():
            for x, *_ in loader:
                x = tg.tensor(x)
                denoised = self.decode(self.encode(self.corrupt(x, gen)))
                clean = self.decode(self.encode(x))
                totals += len(x) * np.array([self.reconstruction_loss(denoised, x).item(),
                                             self.reconstruction_loss(clean, x).item()])
                n += len(x)
        loss, clean = totals / n
        return {"loss": loss, "clean": clean}
