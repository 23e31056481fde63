"""Conditional GAN: Mirza & Osindero 2014, "Conditional Generative Adversarial Nets".

Both players are given the label y (one-hot, (N, 10)). G draws an image of the class it is
asked for, and D judges whether an (image, label) pair is real:

    min_G max_D  E_{x,y}[log D(x | y)] + E_{z,y}[log(1 - D(G(z | y) | y))]

    D loss:  softplus(-l(x | y)) + softplus(l(G(z | y) | y))
    G loss:  softplus(-l(G(z | y) | y))                      (non-saturating, as in gan.py)

The fakes of a minibatch are drawn with the minibatch's own labels, so D sees real and fake
pairs with the same class frequencies and can only tell them apart by whether the image fits
its label. A G that ignores y is caught: its "3"s labelled 7 are easy to reject.

How the label is fed (`arch`):

- `mlp`: y is concatenated to z in G and to the flattened image in D (the paper's MNIST model
  joins them after one hidden layer each; concatenating at the input is the common simplification);
- `dcgan`: y joins z at G's first linear layer, and enters D as 10 constant image planes stacked
  on the input channels (plane k is all ones for class k), so every conv tap sees the label.

`tinygen sample RUN --kind styles` draws one row per z and one column per class.

Read next: `health.py`, the monitor every adversarial model reports to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinygen as tg
from tinygen.models import dcgan
from tinygen.models.adversarial import d_loss_bce, d_stats, g_loss_bce
from tinygen.models.dcgan import DCGAN
from tinygen.models.gan import GAN


@dataclass
class Config(dcgan.Config):
    arch: str = "dcgan"            # how G and D see the label: dcgan (conv) or mlp
    n_classes: int = 10


class CGAN(GAN):
    takes_points = False

    def __init__(self, cfg: Config):
        if cfg.arch not in ("mlp", "dcgan"):
            raise ValueError(f"cgan: arch must be mlp or dcgan, got {cfg.arch!r}")
        if cfg.vbn:
            raise ValueError("cgan: vbn is not supported (its reference batch would need "
                             "labels too); use it with gan or dcgan")
        self.n_conditions = cfg.n_classes         # read by the latent tools (styles grid)
        super().__init__(cfg)

    def networks(self, cfg):
        body = DCGAN if cfg.arch == "dcgan" else GAN    # the same networks, plus the label
        return body.networks(self, cfg, extra=cfg.n_classes)

    def one_hot(self, y):
        y = np.asarray(y.data if isinstance(y, tg.Tensor) else y).astype(np.int64)
        return tg.tensor(np.eye(self.cfg.n_classes, dtype=np.float32)[y])

    def G_of(self, z, c):
        """G(z | y): the one-hot label joins the noise."""
        return self.to_data(self.G(tg.cat([z, c], dim=1)))

    def d_input(self, x, c):
        """An (image, label) pair as D's first layer takes it (`logits` is GAN's)."""
        if self.cfg.arch == "mlp":
            return tg.cat([x.flatten(1), c], dim=1)                         # (N, pixels + 10)
        planes = c.reshape(*c.shape, 1, 1).expand(-1, -1, *x.shape[2:])   # (N, 10, H, W)
        return tg.cat([x, planes], dim=1)

    def fake(self, batch):
        """G(z | y) for the minibatch's labels y."""
        return self.G_of(self.noise(len(batch[0])), self.one_hot(batch[1]))

    # ---------------------------------------------------------------- train discriminator
    def d_loss(self, batch, fake):
        c = self.one_hot(batch[1])
        real_logits, fake_logits = self.logits(self.real(batch), c), self.logits(fake, c)
        loss = d_loss_bce(real_logits, fake_logits,   # -E log D(x|y) - E log(1 - D(G(z|y)|y))
                          self.real_target)           # alpha: one-sided label smoothing
        return loss, d_stats(real_logits, fake_logits)

    # ---------------------------------------------------------------- train generator
    def g_loss(self, batch):
        c, fake = self.one_hot(batch[1]), self.fake(batch)
        if self.cfg.feature_matching:
            return self.feature_matching(batch, fake, c), {}    # ||E f(x|y) - E f(G(z|y)|y)||^2
        fake_logits = self.logits(fake, c)
        return g_loss_bce(fake_logits, self.cfg.objective), {}    # -E log D(G(z|y)|y)

    # -- sampling ----------------------------------------------------------------------------
    def generate(self, z, y=None) -> np.ndarray:
        """Images in [0, 1] for noise z (N, latent) and labels y (N,)."""
        if y is None:
            raise ValueError("cgan: pass the labels y; every sample is drawn for a class")
        with tg.no_grad():
            return self.to_unit(self.G_of(tg.tensor(np.asarray(z, np.float32)),
                                          self.one_hot(y)).data)

    def sample(self, n: int, y=None) -> np.ndarray:
        """n samples; labels cycle 0, 1, ..., 9 unless given, so a grid shows every class."""
        y = np.arange(n) % self.cfg.n_classes if y is None else np.asarray(y)
        return self.generate(self.noise(n).data, y)

    def probe_samples(self, z) -> np.ndarray:
        return self.generate(z, np.arange(len(z)) % self.cfg.n_classes)

    def style_grid(self, n_styles: int = 8) -> np.ndarray:
        """Row i: one random z (a "style") drawn as every class."""
        k = self.cfg.n_classes
        z = np.repeat(self.noise(n_styles).data, k, axis=0)
        return self.generate(z, np.tile(np.arange(k), n_styles))
