"""Generative adversarial nets: Goodfellow et al. 2014, with fully connected G and D.

G maps noise z ~ N(0, I) to a sample; D maps a sample to a logit l, with D(x) = sigmoid(l).
They play the minimax game

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]

and each train_step takes one step of each player (`adversarial.py` owns that loop and says
how each player is held fixed while the other steps). In plain math, on D's logits:

    D loss:  softplus(-l(x)) + softplus(l(G(z)))          = -log D(x) - log(1 - D(G(z)))
    G loss:  softplus(-l(G(z)))   (non-saturating)        = -log D(G(z))
         or  -softplus(l(G(z)))   (minimax, --objective)  =  log(1 - D(G(z)))

each averaged over the minibatch. At the optimum of D for a fixed G, D(x) = p_data / (p_data +
p_G), and G's minimax loss becomes 2 JSD(p_data || p_G) - log 4: G is fitting the data in
Jensen-Shannon divergence.

The networks depend on the data:

- **2-D points** (`ring8`, `grid25`, ...): the mode-collapse set-up of Metz et al. 2017: MLPs
  with `hidden` ReLU units per layer, a linear output for G.
- **Images** (MNIST, 8x8 digits): G is z -> 150 -> 300 -> 600 -> 1200 -> pixels with
  LeakyReLU(0.2), batch norm on the widening layers and a tanh output; D is pixels -> 1024 ->
  512 -> 1 with LeakyReLU(0.2) and dropout 0.3 (`g_hidden`, `d_hidden`, `dropout`).
  Goodfellow et al.'s MNIST G (two ReLU layers of 1200, sigmoid output) against a LeakyReLU D
  lost to D within two epochs here: D(G(z)) fell below 0.01 and the health monitor saw the
  samples collapse to 2 digit classes. Batch norm and the tanh output (images rescaled to
  [-1, 1], as in DCGAN) keep the game balanced.

Which objective? The non-saturating loss gives G strong gradients early (`adversarial.py`),
and it is the default for images. On the 2-D mixtures the mode-collapse lab
(`benchmarks/mode_collapse.py`) measured the other side of it: the non-saturating G hopped
from mode to mode and ended on 1-3 of ring8's 8 modes, while the minimax G spread over the
whole ring and covered 7-8 (3 seeds each). Theory points the same way: against an optimal
D, the non-saturating loss minimises KL(p_G || p_data) - 2 JSD (Arjovsky & Bottou 2017), and
that reverse KL costs G almost nothing for a mode it drops, where the minimax loss, 2 JSD -
log 4, does charge for it. So the minimax loss is the default for points.

Settings measured on MNIST are in the README; the Parzen protocol is `tinygen eval`'s.

Read next: `dcgan.py`, which swaps in convolutional networks and keeps everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinygen as tg
from tinygen import nn
from tinygen.autograd import default_generator
from tinygen.models import adversarial
from tinygen.models.adversarial import Adversarial, d_loss_bce, d_stats, g_loss_bce
from tinygen.models.health import class_probe, mode_probe
from tinygen.models.improved import (
    MinibatchDiscrimination,
    feature_matching_loss,
    virtual_batch_norm,
)
from tinygen.models.nets import mlp

POINT_SETS = ("ring8", "grid25", "spiral", "two_moons", "swiss_roll")


@dataclass
class Config(adversarial.Config):
    dataset: str = "ring8"
    epochs: int = 600              # 600 x 78 = 46,800 steps on the 20,000 toy points
    batch_size: int = 256
    objective: str = "minimax"     # G's loss (minimax covered 7.7 of ring8's 8 modes, see README)
    hidden: int = 128              # units per hidden layer of G and D, for 2-D points
    g_hidden: int = 1200           # G's widest layer, for images (from 1/8 of it, doubling)
    d_hidden: int = 1024           # units in D's first hidden layer, for images (then 1/2)
    latent: int = 256              # size of z (Metz et al. use 256 for the 2-D mixtures)
    dropout: float = 0.3           # dropout in D's hidden layers (images)
    # The improved-GAN switches (Salimans et al. 2016; `improved.py` has the math), all off:
    feature_matching: bool = False  # G matches E f(x) of D's features instead of fooling D
    fm_layer: int = -1             # f = the input of D's module at this index (-1: last hidden)
    minibatch_kernels: int = 0     # B kernels of minibatch discrimination in D (0: off)
    minibatch_dims: int = 5        # C, the size of each kernel's rows
    label_smoothing: bool = False  # one-sided: D's target for real data is smooth_alpha, not 1
    smooth_alpha: float = 0.9      # that target
    vbn: bool = False              # virtual batch norm in G instead of batch norm (images)
    vbn_ref: int = 64              # size of VBN's fixed reference batch of noise
    image_size: int = 28
    channels: int = 1


def d_head(features: int, cfg) -> list:
    """D's last layer on `features` inputs: the logit, after minibatch discrimination's
    o(x) is joined to the features if it is switched on."""
    b = cfg.minibatch_kernels
    mbd = [MinibatchDiscrimination(features, b, cfg.minibatch_dims)] if b else []
    return [*mbd, nn.Linear(features + b, 1)]


class GAN(Adversarial):
    takes_points = True        # 2-D points get their own MLPs (DCGAN and cGAN: images only)

    def __init__(self, cfg: Config):
        self.points = cfg.dataset in POINT_SETS
        self.tanh_output = not self.points  # images in [-1, 1] (real ones rescaled to match)
        self.image_shape = None if self.points else (cfg.channels, cfg.image_size,
                                                     cfg.image_size)
        G, D = self.networks(cfg)
        if cfg.vbn:                                   # Salimans et al. 3.5
            if self.points:
                raise ValueError("gan: vbn replaces G's batch norm, and the G for 2-D points "
                                 "has none (use it with images)")
            G = virtual_batch_norm(G, cfg.vbn_ref)
        super().__init__(cfg, G, D)
        self._check_fm_layer(cfg)
        if cfg.label_smoothing and not 0 < cfg.smooth_alpha <= 1:
            raise ValueError(f"{type(self).__name__.lower()}: smooth_alpha must be in (0, 1], "
                             f"got {cfg.smooth_alpha}")
        if cfg.vbn:                                   # drawn once, kept for all of training
            self.register_buffer("vbn_ref_z", np.random.default_rng(cfg.seed + 2)
                                 .standard_normal((cfg.vbn_ref, cfg.latent)).astype(np.float32))
        self._probe_z = np.random.default_rng(cfg.seed + 1).standard_normal(
            (2500 if self.points else 1000, cfg.latent)).astype(np.float32)
        self._classifier = None

    def networks(self, cfg, extra: int = 0):
        """(G, D); `extra` inputs are added to both (the one-hot label of the cGAN)."""
        if self.points:
            h = cfg.hidden
            D = mlp([2 + extra, h, h], final=nn.ReLU)
            return mlp([cfg.latent + extra, h, h, 2]), nn.Sequential(*D, *d_head(h, cfg))
        d = int(np.prod(self.image_shape))
        g, h = cfg.g_hidden, cfg.d_hidden
        G = nn.Sequential(nn.Linear(cfg.latent + extra, g // 8), nn.LeakyReLU(0.2))
        for width in (g // 4, g // 2, g):           # widen, with batch norm, then to pixels
            G = nn.Sequential(*G, nn.Linear(width // 2, width), nn.BatchNorm1d(width),
                              nn.LeakyReLU(0.2))
        G = nn.Sequential(*G, nn.Linear(g, d), nn.Tanh())
        D = nn.Sequential(nn.Linear(d + extra, h), nn.LeakyReLU(0.2), nn.Dropout(cfg.dropout),
                          nn.Linear(h, h // 2), nn.LeakyReLU(0.2), nn.Dropout(cfg.dropout),
                          *d_head(h // 2, cfg))
        return G, D

    def _check_fm_layer(self, cfg):
        n = len(self.D)                  # f must be an intermediate output: not 0, not n
        if cfg.feature_matching and not (-n < cfg.fm_layer < n and cfg.fm_layer != 0):
            raise ValueError(f"{type(self).__name__.lower()}: fm_layer must pick one of D's "
                             f"{n - 1} intermediate outputs (1..{n - 1} or -{n - 1}..-1), got "
                             f"{cfg.fm_layer}")

    def fake(self, batch):
        """G(z) for a batch of the data's size: points (N, 2) or images (N, C, H, W)."""
        return self.to_data(self.run_G(self.noise(len(batch[0]))))

    def run_G(self, z):
        """G(z). With virtual batch norm the reference noise goes through G with z, and its
        rows are dropped from the output."""
        if not self.cfg.vbn:
            return self.G(z)
        n = len(self.vbn_ref_z.data)
        return self.G(tg.cat([self.vbn_ref_z, z], dim=0))[n:]

    def real(self, batch):
        """The real examples as D sees them: images in G's output range."""
        return 2 * batch[0] - 1 if self.tanh_output else batch[0]

    def to_data(self, out):
        return out if self.points else out.reshape(-1, *self.image_shape)

    def d_input(self, x):
        """x as D's first layer takes it: flattened (DCGAN's conv D takes the image)."""
        return x.flatten(1)

    def logits(self, x, *cond):
        """D's logit per example, (N,); `cond` is the cGAN's label."""
        return self.D(self.d_input(x, *cond)).reshape(-1)

    def features(self, x, *cond):
        """f(x): D's activations at `fm_layer`, for feature matching."""
        return self.D[:self.cfg.fm_layer](self.d_input(x, *cond))

    def feature_matching(self, batch, fake, *cond):
        """||E f(x) - E f(G(z))||^2 (Salimans et al. 3.1); the real features are constants."""
        with tg.no_grad():
            f_real = self.features(self.real(batch), *cond)
        return feature_matching_loss(f_real, self.features(fake, *cond))

    @property
    def real_target(self) -> float:
        return self.cfg.smooth_alpha if self.cfg.label_smoothing else 1.0

    # ---------------------------------------------------------------- train discriminator
    def d_loss(self, batch, fake):
        real_logits, fake_logits = self.logits(self.real(batch)), self.logits(fake)
        loss = d_loss_bce(real_logits, fake_logits,       # -E log D(x) - E log(1 - D(G(z)));
                          self.real_target)               # alpha: one-sided label smoothing
        return loss, d_stats(real_logits, fake_logits)

    # ---------------------------------------------------------------- train generator
    def g_loss(self, batch):
        fake = self.fake(batch)
        if self.cfg.feature_matching:
            return self.feature_matching(batch, fake), {}    # ||E f(x) - E f(G(z))||^2
        fake_logits = self.logits(fake)
        return g_loss_bce(fake_logits, self.cfg.objective), {}   # -E log D(G(z)), or minimax

    # -- sampling and the health probe ---------------------------------------------------
    def generate(self, z) -> np.ndarray:
        """G's output for given noise (N, latent): points, or images in [0, 1]."""
        with tg.no_grad():
            return self.to_unit(self.to_data(self.run_G(tg.tensor(np.asarray(z, np.float32))))
                                .data)

    def to_unit(self, out: np.ndarray) -> np.ndarray:
        """G's images back in [0, 1] (from tanh's [-1, 1]); points unchanged."""
        return (out + 1) / 2 if self.tanh_output else out

    def probe(self) -> dict:
        """Diversity of samples from one fixed batch of noise (see `health.py`)."""
        was_training = self.training
        self.eval()
        try:
            samples = self.probe_samples(self._probe_z)
        finally:
            self.train(was_training)
        if self.cfg.dataset in ("ring8", "grid25"):
            return mode_probe(samples, self.cfg.dataset)
        if self.cfg.dataset == "mnist" and self._load_classifier():
            return class_probe(samples, self._classifier)
        return {}

    def probe_samples(self, z) -> np.ndarray:
        return self.generate(z)

    def progress_samples(self, n: int) -> np.ndarray:
        """After each epoch: samples from the first n of the probe's fixed noise vectors."""
        return self.probe_samples(self._probe_z[:n])

    def _load_classifier(self):
        """The metrics classifier, once. Building it draws initial weights from tinygen's
        global generator (and training it, if it is not cached yet, reseeds it), so the
        generator's state is put back: the training run must see the same random numbers
        whether or not, and whenever, the probe loaded it (bitwise resume depends on it)."""
        if self._classifier is None:
            from tinygen.metrics import mnist_classifier
            rng = default_generator().bit_generator.state
            try:
                self._classifier = mnist_classifier()
            except (OSError, ValueError):
                self._classifier = False          # no MNIST here: no class probe
            finally:
                default_generator().bit_generator.state = rng
        return self._classifier
