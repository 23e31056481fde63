"""Adversarial autoencoders: Makhzani et al. 2015, "Adversarial Autoencoders", Sections 2-3.

An autoencoder whose codes are made to follow a chosen prior p(z) by a GAN in code space. The
encoder q(z|x) plays the generator: its codes z = f(x) are the "fakes", samples of the prior
are the "real" data, and a discriminator D(z) tells them apart. Each minibatch runs the
paper's two phases (Section 2):

1. **reconstruction**: the encoder and decoder minimise the reconstruction loss
       BCE(x, g(f(x)))     (per pixel, the decoder's output read as Bernoulli logits)
2. **regularization**, on the adversarial skeleton (`adversarial.py`):
       train discriminator   D loss: softplus(-l(z')) + softplus(l(f(x))),   z' ~ p(z)
       train generator       encoder loss: softplus(-l(f(x)))   (non-saturating)
   so D learns to tell prior samples from codes, then the encoder learns to fool it.

**AAE against the VAE.** Both push the aggregated posterior q(z) = E_x q(z|x) toward p(z).
The VAE does it with KL(q(z|x) || p(z)) per example, which needs the density of p in closed
form (or at least to evaluate it) and a q(z|x) whose entropy is known. The AAE only needs to
draw samples from p: a GAN compares two sets of samples. So any prior that can be sampled
works, here a mixture of 10 Gaussians and a swiss roll, and the encoder may be deterministic,
q(z|x) = delta(f(x)), as in the paper's main experiments (`posterior="gaussian"` is the
paper's other option: z = mu(x) + sigma(x) eps).

**Supervised AAE** (Section 4, `supervised`): the decoder also gets the one-hot label,
g(z, y). The label then carries the digit's identity, so the adversarial pull toward p(z)
leaves the code only what the label does not say: the style (slant, width, stroke). Decoding
one code with each of the ten labels draws one handwriting as every digit (`style_grid`, as in
the paper's style figure).

The networks are the paper's MNIST MLPs, 784-1000-1000-z for the encoder, the reverse for the
decoder, z-1000-1000-1 for D, all ReLU (`hidden`).

Priors (`prior`):
- `gaussian`: N(0, I) in `latent` dimensions;
- `mixture10`: 10 Gaussians in 2-D, centres evenly on a circle of radius 4, std 0.5 (the
  paper's Figure 4 uses such a mixture to show that the codes of each digit can fill a mode);
- `swiss_roll`: the 2-D swiss roll of `tinygen.data.toy`, scaled to radius about 4.

Read next: `vae.py` (the KL term this replaces), `adversarial.py` (the two-player loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tinygen as tg
from tinygen import nn, optim
from tinygen.autograd import default_generator
from tinygen.data import toy
from tinygen.models import adversarial
from tinygen.models.adversarial import Adversarial, d_loss_bce, d_stats, g_loss_bce
from tinygen.models.nets import mlp
from tinygen.nn import functional as F

PRIORS = ("gaussian", "mixture10", "swiss_roll")
POSTERIORS = ("deterministic", "gaussian")


@dataclass
class Config(adversarial.Config):
    dataset: str = "mnist"
    epochs: int = 20
    batch_size: int = 100
    lr: float = 2e-4               # the encoder's Adam lr in the regularization phase
    lr_d: float = 2e-4             # D's
    lr_ae: float = 1e-3            # encoder and decoder in the reconstruction phase
    latent: int = 8                # code size (the 2-D priors need --latent 2)
    hidden: int = 1000             # units in each of the two hidden layers of every network
    prior: str = "gaussian"        # gaussian, mixture10 or swiss_roll
    posterior: str = "deterministic"  # q(z|x): deterministic (delta(f(x))) or gaussian
    supervised: bool = False       # the decoder also reads the one-hot label (Section 4)
    n_classes: int = 10
    image_size: int = 28
    channels: int = 1


def sample_prior(name: str, n: int, latent: int) -> np.ndarray:
    """n samples of the prior, (n, latent) float32, from tinygen's global generator."""
    rng = default_generator()
    if name == "gaussian":
        return rng.standard_normal((n, latent), dtype=np.float32)
    if name == "mixture10":
        k = rng.integers(0, 10, n)                                   # the component
        angle = 2 * np.pi * k / 10
        centres = 4.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return (centres + 0.5 * rng.standard_normal((n, 2))).astype(np.float32)
    if name == "swiss_roll":
        return 1.4 * toy.swiss_roll(n, rng=rng)                       # radius ~4, like N(0, I)'s
    raise ValueError(f"aae: prior must be one of {', '.join(PRIORS)}, got {name!r}")


class AAE(Adversarial):
    takes_points = False
    has_encoder = True              # `tinygen sample` draws reconstructions and code maps too

    def __init__(self, cfg: Config):
        if cfg.prior not in PRIORS:
            raise ValueError(f"aae: prior must be one of {', '.join(PRIORS)}, got {cfg.prior!r}")
        if cfg.posterior not in POSTERIORS:
            raise ValueError(f"aae: posterior must be one of {', '.join(POSTERIORS)}, got "
                             f"{cfg.posterior!r}")
        if cfg.prior != "gaussian" and cfg.latent != 2:
            raise ValueError(f"aae: the {cfg.prior} prior is 2-D; pass --latent 2 "
                             f"(got --latent {cfg.latent})")
        self.image_shape = (cfg.channels, cfg.image_size, cfg.image_size)
        d, h, z = int(np.prod(self.image_shape)), cfg.hidden, cfg.latent
        out = 2 * z if cfg.posterior == "gaussian" else z              # (mu, log sigma^2)
        encoder, D = mlp([d, h, h, out]), mlp([z, h, h, 1])
        super().__init__(cfg, encoder, D)                  # the encoder is the "generator"
        self.n_conditions = cfg.n_classes if cfg.supervised else 0   # labels into g(z, y)
        self.decoder = mlp([z + self.n_conditions, h, h, d])   # Bernoulli logits of the pixels
        self.opt_AE = optim.Adam([*self.G.parameters(), *self.decoder.parameters()],
                                 lr=cfg.lr_ae)
        self.autoencoder = nn.Sequential(self.G, self.decoder)   # for the phase's grad norm

    # -- the encoder q(z|x) and the decoder -------------------------------------------------
    def encode(self, x, sample: bool = True):
        """Codes (N, latent): f(x), or mu + sigma eps for the Gaussian posterior."""
        h = self.G(x.flatten(1))
        if self.cfg.posterior == "deterministic":
            return h
        mu, logvar = h[:, :self.cfg.latent], h[:, self.cfg.latent:]
        if not sample:
            return mu
        eps = tg.tensor(default_generator().standard_normal(mu.shape, dtype=mu.dtype))
        return mu + (0.5 * logvar).exp() * eps

    def decode(self, z, y=None):
        """Bernoulli logits of the pixels: g(z), or g(z, y) for the supervised AAE."""
        if not self.n_conditions:
            return self.decoder(z)
        if y is None:
            raise ValueError("aae --supervised: pass the labels y; the decoder reads them")
        y = np.asarray(y.data if isinstance(y, tg.Tensor) else y)
        onehot = tg.tensor(np.eye(self.cfg.n_classes, dtype=np.float32)[y])
        return self.decoder(tg.cat([z, onehot], dim=1))

    def fake(self, batch):
        return self.encode(batch[0])                       # codes play G's samples

    # ---------------------------------------------------------------- reconstruction phase
    def reconstruction_loss(self, batch):
        x = batch[0].flatten(1)
        y = batch[1] if self.n_conditions else None        # supervised: g(z, y)
        logits = self.decode(self.encode(batch[0]), y)
        return F.binary_cross_entropy_with_logits(logits, x), {}   # -mean log p(x | z)

    def train_step(self, batch) -> dict:
        stats = self._step(self.autoencoder, self.opt_AE,
                           lambda: self.reconstruction_loss(batch), "rec")   # phase 1
        return {**stats, **super().train_step(batch)}      # phase 2: D step, encoder step

    # ---------------------------------------------------------------- train discriminator
    def d_loss(self, batch, fake):
        prior = tg.tensor(sample_prior(self.cfg.prior, len(fake), self.cfg.latent))
        real_logits = self.D(prior).reshape(-1)            # l(z'), z' ~ p(z): "real"
        fake_logits = self.D(fake).reshape(-1)             # l(f(x)): the codes
        loss = d_loss_bce(real_logits, fake_logits)        # -log D(z') - log(1 - D(f(x)))
        return loss, d_stats(real_logits, fake_logits)

    # ---------------------------------------------------------------- train generator
    def g_loss(self, batch):
        fake_logits = self.D(self.encode(batch[0])).reshape(-1)
        return g_loss_bce(fake_logits, self.cfg.objective), {}   # -log D(f(x))

    # -- what the latent tools and `tinygen eval` use ------------------------------------------
    def latent(self, x) -> np.ndarray:
        with tg.no_grad():
            return self.encode(tg.tensor(np.asarray(x, np.float32)), sample=False).data

    def generate(self, z, y=None) -> np.ndarray:
        """Images in [0, 1] decoded from codes z (N, latent) (and labels y if supervised)."""
        with tg.no_grad():
            logits = self.decode(tg.tensor(np.asarray(z, np.float32)), y)
            return logits.sigmoid().data.reshape(-1, *self.image_shape)

    def reconstruct(self, x, y=None) -> np.ndarray:
        return self.generate(self.latent(x), y)

    def sample(self, n: int) -> np.ndarray:
        """n samples of the prior; supervised, their labels cycle 0, 1, ..., 9."""
        y = np.arange(n) % self.cfg.n_classes if self.n_conditions else None
        return self.generate(sample_prior(self.cfg.prior, n, self.cfg.latent), y)

    def style_grid(self, n_styles: int = 8) -> np.ndarray:
        """Supervised: row i, one code z ~ p(z) (a style) decoded with every label."""
        if not self.n_conditions:
            raise ValueError("styles: needs aae --supervised (the decoder must read a label)")
        k = self.cfg.n_classes
        z = np.repeat(sample_prior(self.cfg.prior, n_styles, self.cfg.latent), k, axis=0)
        return self.generate(z, np.tile(np.arange(k), n_styles))

    def write_figures(self, out_dir) -> None:
        super().write_figures(out_dir)
        if self.n_conditions:
            from tinygen.latent import save_styles
            save_styles(self, Path(out_dir) / "styles.png")

    def evaluate(self, loader) -> dict:
        """Test reconstruction BCE per pixel, with the codes' means."""
        total = count = 0.0
        for x, y in loader:
            x = np.asarray(x.data if isinstance(x, tg.Tensor) else x, np.float32)
            y = y if self.n_conditions else None
            r = np.clip(self.reconstruct(x, y).reshape(len(x), -1), 1e-7, 1 - 1e-7)
            t = x.reshape(len(x), -1)
            total += float(-(t * np.log(r) + (1 - t) * np.log(1 - r)).mean(1).sum())
            count += len(x)
        return {"recon_bce": total / count}
