"""Autoencoders: squeeze an image through a small code and rebuild it (Hinton & Salakhutdinov
2006, "Reducing the dimensionality of data with neural networks"; the idea goes back to the
1980s). Read `dae.py` next: the denoising autoencoder adds one thing to this file, a corruption.

An encoder f maps an image x to a code z = f(x) with far fewer numbers than pixels (784 -> 32
for MNIST), and a decoder g maps the code back. Because the code is a bottleneck, the pair can
only rebuild x well by keeping what is common to the training images. The default network is
the smallest one that shows this: 784-32-784, one layer on each side (`hidden` adds one more).
As in Hinton & Salakhutdinov's deep autoencoders, the code units are linear by default
(`code_act`) and the nonlinearities sit in the hidden layers and the logistic output. So the
784-32-784 network is a linear encoder with a logistic decoder, a kind of "logistic PCA". On
MNIST it reaches a test BCE of 0.092 with the default 5 epochs; in our runs 32 ReLU code units
were still at 0.107 after 10 epochs.

Loss. Pixels lie in [0, 1], so we read the decoder's output as Bernoulli logits l = g(f(x)) and
minimise the binary cross-entropy, averaged over the D pixels (and the batch):

    BCE(x) = -(1/D) sum_i [x_i log sigmoid(l_i) + (1 - x_i) log(1 - sigmoid(l_i))]

It is the per-pixel number usually quoted for MNIST autoencoders. With grey (non-binary) targets
it cannot reach 0: its floor is the mean entropy of the pixel values themselves.

The linear autoencoder (`linear=True`, or `LinearAE`) removes every nonlinearity and uses the
squared error (1/D) ||x - W2 (W1 x + b1) - b2||^2. The lecture's point: this is just PCA. Baldi
& Hornik (1989) showed that this loss has no local minima other than the global one (its other
critical points are saddles), and that at the optimum the columns of the decoder W2 span the
top-k principal subspace of the (centred) data. Span only: any invertible k x k matrix A gives
the same loss with W2 A and A^-1 W1, so the columns are in general not the principal axes
themselves, nor orthogonal. `principal_angles` below measures how far two subspaces are apart;
`tests/test_ae.py` and `demos/ae.py` use it.

An autoencoder has no prior over codes, so it cannot sample on its own. To give `sample(n)`
something to decode, we track the mean and variance of the codes seen in training and draw
from that Gaussian. The samples are poor, and that is the lesson: the VAE (`vae.py`) builds
the prior into the training objective so that decoding prior samples works.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

import tinygen as tg
from tinygen import nn, optim
from tinygen.models.nets import ConvDecoder, ConvEncoder, mlp
from tinygen.nn import functional as F
from tinygen.train import Model

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "linear": None}

# How fast the running code statistics (for `sample`) forget old batches.
CODE_MOMENTUM = 0.05


@dataclass
class Config:
    dataset: str = "digits"
    epochs: int = 5
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0
    arch: str = "mlp"         # "mlp" or "conv" (the conv stacks of nets.py)
    hidden: int = 0           # mlp only: 0 gives 784-32-784; h > 0 gives 784-h-32-h-784
    latent: int = 32          # the size of the code, i.e. the bottleneck
    act: str = "relu"         # hidden units' nonlinearity: "relu" or "sigmoid"
    code_act: str = "linear"  # code units' nonlinearity: "linear", "relu" or "sigmoid"
    linear: bool = False      # no nonlinearities and squared error: the PCA autoencoder
    image_size: int = 28
    channels: int = 1


class AE(Model):
    def __init__(self, cfg: Config):
        super().__init__()
        _check(cfg)
        self.cfg = cfg
        self.image_shape = (cfg.channels, cfg.image_size, cfg.image_size)
        self.encoder, self.decoder = self._networks(cfg)
        # Running moments of the codes: the Gaussian that `sample` decodes from.
        self.register_buffer("code_mean", np.zeros(cfg.latent, np.float32))
        self.register_buffer("code_var", np.ones(cfg.latent, np.float32))
        self.opt = optim.Adam(self.parameters(), lr=cfg.lr)

    def _networks(self, cfg):
        """Encoder x -> z and decoder z -> logits (or, for the linear AE, pixel values)."""
        d = int(np.prod(self.image_shape))
        if cfg.linear:       # nn.Identity between the layers: products of matrices only
            return (mlp([d, *_hidden(cfg), cfg.latent], act=nn.Identity),
                    mlp([cfg.latent, *_hidden(cfg), d], act=nn.Identity))
        act, code_act = ACTIVATIONS[cfg.act], ACTIVATIONS[cfg.code_act]
        if cfg.arch == "mlp":
            return (mlp([d, *_hidden(cfg), cfg.latent], act=act, final=code_act),
                    mlp([cfg.latent, *_hidden(cfg), d], act=act))
        encoder = ConvEncoder(cfg.channels, cfg.image_size, cfg.latent)
        return (nn.Sequential(encoder, code_act()) if code_act else encoder,
                ConvDecoder(cfg.latent, cfg.channels, cfg.image_size))

    # -- the model ----------------------------------------------------------------------------
    def encode(self, x):
        """Images (N, C, H, W) -> codes (N, latent)."""
        return self.encoder(x.flatten(1) if self.cfg.arch == "mlp" else x)

    def decode(self, z):
        """Codes (N, latent) -> decoder outputs (N, C, H, W): logits, or pixel values."""
        return self.decoder(z).reshape(-1, *self.image_shape)

    def mean_image(self, out):
        """The decoder's image in [0, 1]."""
        return out.clamp(0.0, 1.0) if self.cfg.linear else out.sigmoid()

    def reconstruction_loss(self, out, x):
        """Per-pixel loss, averaged over pixels and batch: BCE, or squared error if linear."""
        if self.cfg.linear:
            return F.mse_loss(out, x)
        return F.binary_cross_entropy_with_logits(out, x)

    def objective(self, x):
        """The training loss on a batch of clean images x, and the codes it used."""
        z = self.encode(x)
        return self.reconstruction_loss(self.decode(z), x), z

    # -- what the training loop and the tools call --------------------------------------------
    def train_step(self, batch) -> dict:
        loss, z = self.objective(batch[0])
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self._track_codes(z.data)
        return {"loss": loss.item()}

    def _track_codes(self, z):
        """Exponential moving averages of the codes' mean and variance, per dimension."""
        m = CODE_MOMENTUM
        self.code_mean.data = (1 - m) * self.code_mean.data + m * z.mean(0)
        self.code_var.data = (1 - m) * self.code_var.data + m * z.var(0)

    def evaluate(self, loader) -> dict:
        """Mean per-pixel reconstruction loss (BCE, or squared error if linear) on `loader`."""
        total, n = 0.0, 0
        with tg.no_grad():
            for x, *_ in loader:
                total += len(x) * self.objective(tg.tensor(x))[0].item()
                n += len(x)
        return {"loss": total / n}

    def sample(self, n: int) -> np.ndarray:
        """Decode n codes drawn from a Gaussian fitted to the training codes (see the top)."""
        eps = tg.randn(n, self.cfg.latent).data
        z = self.code_mean.data + np.sqrt(self.code_var.data) * eps
        return self.generate(z)

    def reconstruct(self, x) -> np.ndarray:
        """g(f(x)) as images (N, C, H, W) in [0, 1]."""
        with tg.no_grad():
            return self.mean_image(self.decode(self.encode(tg.tensor(x)))).data

    def latent(self, x) -> np.ndarray:
        """Codes (N, latent) for the latent-space tools."""
        with tg.no_grad():
            return self.encode(tg.tensor(x)).data

    def generate(self, z) -> np.ndarray:
        """Decoded images for given codes (N, latent), in [0, 1]."""
        with tg.no_grad():
            return self.mean_image(self.decode(tg.tensor(np.asarray(z, np.float32)))).data


class LinearAE(AE):
    """The PCA autoencoder: AE with `linear=True` (no nonlinearities, squared error). Its
    decoder's columns span the top-`latent` principal subspace at the optimum."""

    def __init__(self, cfg: Config):
        super().__init__(dataclasses.replace(cfg, linear=True))


def principal_angles(a, b) -> np.ndarray:
    """Angles (degrees, ascending) between the column spaces of a (d, k) and b (d, k).

    With orthonormal bases Q1 and Q2 of the two spaces, the singular values of Q1^T Q2 are the
    cosines of the principal angles; all zero means the two spaces are the same.
    """
    q1, _ = np.linalg.qr(np.asarray(a, np.float64))
    q2, _ = np.linalg.qr(np.asarray(b, np.float64))
    cos = np.linalg.svd(q1.T @ q2, compute_uv=False)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _hidden(cfg):
    return [cfg.hidden] if cfg.hidden else []


def _check(cfg):
    if (cfg.arch not in ("mlp", "conv") or cfg.act not in ("relu", "sigmoid")
            or cfg.code_act not in ACTIVATIONS):
        raise ValueError(f"AE: arch must be mlp|conv, act relu|sigmoid and code_act "
                         f"linear|relu|sigmoid; got {cfg.arch!r}, {cfg.act!r}, {cfg.code_act!r}")
    if cfg.linear and cfg.arch != "mlp":
        raise ValueError("AE: linear=True needs arch='mlp' (the conv stacks contain ReLUs)")
    if cfg.arch == "conv" and cfg.hidden:
        raise ValueError("AE: hidden applies to arch='mlp' only")
