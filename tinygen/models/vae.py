"""Variational autoencoder: Kingma & Welling 2014, "Auto-Encoding Variational Bayes".

A VAE is a latent-variable model p(x) = ∫ p(x | z) p(z) dz with prior p(z) = N(0, I) and a
decoder network for p(x | z). The integral is intractable, so an encoder network proposes
q(z | x) = N(mu(x), diag(sigma^2(x))) and we maximise the evidence lower bound

    log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || p(z))          (the ELBO)

The loss per image is the negative ELBO: a reconstruction term plus the KL term. With a
Bernoulli decoder the reconstruction term is the binary cross-entropy summed over pixels; with a
Gaussian decoder of fixed std s it is ||x - mu(z)||^2 / (2 s^2) plus a constant. `kl_weight`
(lambda) scales the KL term: lambda = 1 is the ELBO, other values give the lecture's
"simplified VAE" objective (lambda > 1 is also known as beta-VAE).

The reparameterisation trick makes the expectation differentiable: sample eps ~ N(0, I) and
set z = mu + sigma * eps, so the randomness sits in an input and gradients flow to mu and sigma.

The default settings reproduce pytorch/examples' MNIST VAE: 784-400-20-400-784 with ReLU,
Adam 1e-3, batch 128, pixels in [0, 1] used directly as Bernoulli targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinygen as tg
from tinygen import optim
from tinygen.models.nets import ConvDecoder, ConvEncoder, mlp
from tinygen.nn import functional as F
from tinygen.train import Model


@dataclass
class Config:
    dataset: str = "digits"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    arch: str = "mlp"              # "mlp" (784-400-20-400-784) or "conv"
    hidden: int = 400
    hidden_layers: int = 1         # hidden layers in each mlp network (the 8x8 demo uses 2)
    latent: int = 20
    decoder: str = "bernoulli"     # "bernoulli" (BCE) or "gaussian" (squared error)
    decoder_std: float = 0.1       # std of the Gaussian decoder, when used
    kl_weight: float = 1.0         # lambda; 1 is the true ELBO
    image_size: int = 28
    channels: int = 1


class VAE(Model):
    n_conditions = 0   # the conditional subclass (cvae.py) feeds one-hot labels as well

    def __init__(self, cfg: Config):
        super().__init__()
        if cfg.arch not in ("mlp", "conv") or cfg.decoder not in ("bernoulli", "gaussian"):
            raise ValueError(f"VAE: arch must be mlp|conv and decoder bernoulli|gaussian, got "
                             f"{cfg.arch!r}, {cfg.decoder!r}")
        if cfg.hidden_layers < 1:
            raise ValueError(f"VAE: hidden_layers must be >= 1, got {cfg.hidden_layers}")
        self.cfg = cfg
        self.image_shape = (cfg.channels, cfg.image_size, cfg.image_size)
        self.encoder, self.decoder = self._networks(cfg, self.n_conditions)
        self.opt = optim.Adam(self.parameters(), lr=cfg.lr)

    def _networks(self, cfg, extra):
        """Encoder to (mu, logvar) and decoder from z; `extra` inputs are for conditioning."""
        d = int(np.prod(self.image_shape))
        if cfg.arch == "mlp":
            hidden = [cfg.hidden] * cfg.hidden_layers
            return (mlp([d + extra, *hidden, 2 * cfg.latent]),
                    mlp([cfg.latent + extra, *hidden, d]))
        return (ConvEncoder(cfg.channels + extra, cfg.image_size, 2 * cfg.latent),
                ConvDecoder(cfg.latent + extra, cfg.channels, cfg.image_size))

    def condition(self, y=None):
        """What the networks are conditioned on: nothing here; one-hot labels in the CVAE."""
        return None

    # -- the model ----------------------------------------------------------------------------
    def encode(self, x, c=None):
        """Images (N, C, H, W) [and condition (N, k)] -> mu, logvar, each (N, latent)."""
        if self.cfg.arch == "mlp":
            h = x.flatten(1) if c is None else tg.cat([x.flatten(1), c], dim=1)
        else:   # a conv encoder sees the condition as k constant extra channels
            h = x if c is None else tg.cat([x, c.reshape(*c.shape, 1, 1).expand(
                -1, -1, *x.shape[2:])], dim=1)
        return self.encoder(h).chunk(2, dim=1)

    def reparameterize(self, mu, logvar):
        eps = tg.randn(*mu.shape, dtype=mu.dtype)        # the only source of randomness
        return mu + (0.5 * logvar).exp() * eps           # z = mu + sigma * eps

    def decode(self, z, c=None):
        """Latents (N, latent) -> decoder outputs (N, C, H, W): logits, or Gaussian means."""
        h = z if c is None else tg.cat([z, c], dim=1)
        return self.decoder(h).reshape(-1, *self.image_shape)

    def mean_image(self, out):
        """The decoder's expected image in [0, 1]."""
        return out.sigmoid() if self.cfg.decoder == "bernoulli" else out.clamp(0.0, 1.0)

    def reconstruction_loss(self, out, x):
        """-log p(x | z) per image (N,), dropping constants of the Gaussian."""
        if self.cfg.decoder == "bernoulli":
            per_pixel = F.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            per_pixel = (out - x) ** 2 / (2 * self.cfg.decoder_std ** 2)
        return per_pixel.sum(dim=(1, 2, 3))

    def losses(self, x, c=None):
        """Per-image means over the batch: total = recon + lambda KL, and both parts."""
        mu, logvar = self.encode(x, c)
        out = self.decode(self.reparameterize(mu, logvar), c)
        recon = self.reconstruction_loss(out, x).mean()
        kl = F.kl_normal(mu, logvar)                     # KL per image, averaged over the batch
        return recon + self.cfg.kl_weight * kl, recon, kl

    # -- what the training loop and the tools call --------------------------------------------
    def train_step(self, batch) -> dict:
        x, *y = batch
        loss, recon, kl = self.losses(x, self.condition(*y))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "recon": recon.item(), "kl": kl.item()}

    def evaluate(self, loader) -> dict:
        """Mean negative ELBO per image on held-out data, with one z sample per image (the
        protocol of pytorch/examples, whose published test losses we compare against)."""
        totals, n = np.zeros(3), 0
        with tg.no_grad():
            for x, *y in loader:
                parts = self.losses(tg.tensor(x), self.condition(*y))
                totals += len(x) * np.array([p.item() for p in parts])
                n += len(x)
        loss, recon, kl = totals / n
        return {"loss": loss, "recon": recon, "kl": kl}

    def sample(self, n: int, y=None) -> np.ndarray:
        return self.generate(tg.randn(n, self.cfg.latent).data, y)

    def reconstruct(self, x, y=None) -> np.ndarray:
        """Decode the posterior mean of each image: (N, C, H, W) in [0, 1]."""
        with tg.no_grad():
            c = self.condition(y)
            return self.mean_image(self.decode(self.encode(tg.tensor(x), c)[0], c)).data

    def latent(self, x, y=None) -> np.ndarray:
        """Posterior means (N, latent): the coordinates used by the latent-space tools."""
        with tg.no_grad():
            return self.encode(tg.tensor(x), self.condition(y))[0].data

    def generate(self, z, y=None) -> np.ndarray:
        """Decoder mean images for given latent codes (N, latent)."""
        with tg.no_grad():
            z = tg.tensor(np.asarray(z, np.float32))
            return self.mean_image(self.decode(z, self.condition(y))).data
