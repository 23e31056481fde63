"""pix2pix: Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks", as 4x super-resolution of MNIST (7x7 -> 28x28).

When the training data comes in pairs (input x, target y), G can be taught with the target
itself. The paper's objective, in its numbering (z is noise, here only dropout's):

    Eq. 1  L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_{x,z}[log(1 - D(x, G(x, z)))]
    Eq. 3  L_L1(G)      = E_{x,y,z} ||y - G(x, z)||_1
    Eq. 4  G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G),        lambda = 100

D is *conditional*: it sees the input beside the output (channels concatenated), so it judges
whether y is a plausible answer *to this x*, not just a plausible image. L1 alone already
gets the low frequencies right, but for an ambiguous input the L1-optimal answer is the
per-pixel median of all plausible answers: a blur. The GAN term penalises blur, because no
real image is blurry, and the PatchGAN D (`nets.patch_discriminator`) judges sharpness patch
by patch. The expected price is distortion: a sharp guess that is a little wrong loses PSNR
against the blur (the perception-distortion trade-off, Blau & Michaeli 2018), which is what
`benchmarks/translation.py` measures, with the L1-only U-Net (`lambda_gan=0`) as the baseline.

In plain math, on D's logits l (softplus as in `adversarial.py`):

    D loss:  1/2 [softplus(-l(x, y)) + softplus(l(x, G(x)))]   (the paper halves D's loss,
                                                                 slowing D against G)
    G loss:  lambda_gan softplus(-l(x, G(x))) + lambda mean |y - G(x)|    (non-saturating)

The task (`tinygen/data/translation.py`): each training image y (28x28) is degraded on the
fly to its 4x area average (7x7); the input x is that 7x7 image enlarged back to 28x28 by
nearest neighbour (each low-res pixel a 4x4 block), so G and D work at one size: the U-Net's
skips join maps of equal size, and D can concatenate x and y. It carries exactly the 7x7
image's information.

The networks (w = `width`), for 28x28:

    G (U-Net):  e1 = Conv(1, w, 4, 2, 1)(x)                                   14x14
                e2 = IN(Conv(w, 2w, 4, 2, 1)(LReLU(e1)))                       7x7
                e3 = IN(Conv(2w, 4w, 3, 1, 1)(LReLU(e2)))                      7x7 bottleneck
                d3 = Drop(IN(Conv(4w, 2w, 3, 1, 1)(ReLU(e3))))                 7x7
                d2 = Drop(IN(ConvT(4w, w, 4, 2, 1)(ReLU(cat(d3, e2)))))        14x14
                out = tanh(ConvT(2w, 1, 4, 2, 1)(ReLU(cat(d2, e1))))           28x28
    D:          PatchGAN on cat(x, y), 2 channels: a 7x7 grid of logits

The skips (`cat`) hand the encoder's fine detail straight to the decoder, so the bottleneck
need not carry it. Dropout (p = 0.5) is the paper's only noise, on at test time too
(`test_dropout`): the paper found Gaussian z ignored by G. Instance norm plays the paper's batch
norm at batch size 1 (which normalises each image by itself), so outputs never depend on the
other images of the batch.

Read next: `cyclegan.py`, for when the pairs are missing; `tinygen/translation.py` for PSNR,
FID and the figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinygen as tg
from tinygen import nn
from tinygen.data.translation import DOMAINS, area_downsample, resize
from tinygen.models.adversarial import (
    Adversarial,
    d_loss_bce,
    d_loss_ls,
    d_stats,
    g_loss_bce,
    g_loss_ls,
)
from tinygen.models.nets import patch_discriminator

GAN_LOSSES = ("bce", "lsgan")


@dataclass
class Config:
    """pix2pix's options (no noise z: dropout is G's only randomness)."""

    dataset: str = "mnist"         # mnist (7x7 -> 28x28), or digits (2x2 -> 8x8, smoke runs)
    epochs: int = 2
    batch_size: int = 64
    lr: float = 2e-4               # G's Adam lr (the paper's)
    lr_d: float = 2e-4             # D's Adam lr
    beta1: float = 0.5             # the paper's beta1 for both
    beta2: float = 0.999
    beta1_d: float = 0.5
    beta2_d: float = 0.999
    factor: int = 4                # downsampling factor: the input is 1/factor of the side
    lambda_l1: float = 100.0       # lambda of Eq. 4 (the paper's 100)
    lambda_gan: float = 1.0        # weight of the cGAN term (0: the L1-only U-Net baseline)
    gan_loss: str = "bce"          # bce (Eq. 1, the paper's) or lsgan
    width: int = 16                # channels of G's and D's first conv
    dropout: float = 0.5           # dropout in G's first two decoder layers (the paper's 0.5)
    test_dropout: bool = True      # keep dropout on when translating, as the paper does
    eval_images: int = 1000        # held-out images scored after each epoch
    d_steps: int = 1               # D steps per G step (the skeleton's k)
    objective: str = "nonsaturating"  # G's loss under bce
    historical_averaging: float = 0.0  # the skeleton's Salimans et al. switch (0: off)
    seed: int = 0
    image_size: int = 28
    channels: int = 1


class UNet(nn.Module):
    """The U-Net of the docstring: two halvings, a 7x7 bottleneck, and skips back up."""

    def __init__(self, c: int, w: int, p: float):
        super().__init__()
        self.e1 = nn.Conv2d(c, w, 4, 2, 1)
        self.e2 = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(w, 2 * w, 4, 2, 1),
                                nn.InstanceNorm2d(2 * w, affine=True))
        self.e3 = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(2 * w, 4 * w, 3, 1, 1),
                                nn.InstanceNorm2d(4 * w, affine=True))
        self.d3 = nn.Sequential(nn.ReLU(), nn.Conv2d(4 * w, 2 * w, 3, 1, 1),
                                nn.InstanceNorm2d(2 * w, affine=True), nn.Dropout(p))
        self.d2 = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(4 * w, w, 4, 2, 1),
                                nn.InstanceNorm2d(w, affine=True), nn.Dropout(p))
        self.out = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * w, c, 4, 2, 1), nn.Tanh())

    def forward(self, x):
        e1 = self.e1(x)                                   # (N, w, S/2, S/2)
        e2 = self.e2(e1)                                  # (N, 2w, S/4, S/4)
        d3 = self.d3(self.e3(e2))                         # (N, 2w, S/4, S/4)
        d2 = self.d2(tg.cat([d3, e2], dim=1))             # (N, w, S/2, S/2): skip from e2
        return self.out(tg.cat([d2, e1], dim=1))          # (N, C, S, S): skip from e1


class Pix2Pix(Adversarial):
    takes_points = False

    def __init__(self, cfg: Config):
        _check(cfg)
        G = UNet(cfg.channels, cfg.width, cfg.dropout)
        D = patch_discriminator(2 * cfg.channels, cfg.width)     # sees cat(input, output)
        super().__init__(cfg, G, D)
        self.image_shape = (cfg.channels, cfg.image_size, cfg.image_size)

    # -- the pairs, made from each batch --------------------------------------------------
    def degrade(self, y: np.ndarray) -> np.ndarray:
        """Images (N, C, S, S) in [0, 1] -> their area average at S / factor."""
        return area_downsample(y, self.cfg.factor)

    def g_input(self, low: np.ndarray) -> np.ndarray:
        """A low-res image in [0, 1] as G takes it: enlarged by nearest neighbour, in [-1, 1]."""
        return 2 * resize(low, self.cfg.image_size, "nearest") - 1

    def train_step(self, batch) -> dict:
        y = batch[0].data
        if tuple(y.shape[1:]) != self.image_shape:
            raise ValueError(f"pix2pix: images have shape {tuple(y.shape[1:])}, but "
                             f"--image-size {self.cfg.image_size} expects {self.image_shape}")
        pair = (tg.tensor(self.g_input(self.degrade(y))), 2 * batch[0] - 1)   # (x, y)
        if self.cfg.lambda_gan == 0:          # the L1-only baseline: no game, no D step
            return self.g_step(pair)
        return super().train_step(pair)

    def fake(self, batch):
        return self.G(batch[0])                           # G(x), dropout on

    def logits(self, x, y):
        return self.D(tg.cat([x, y], dim=1))              # (N, 1, S/4, S/4): one per patch

    # ---------------------------------------------------------------- train discriminator
    def d_loss(self, batch, fake):
        x, y = batch
        real, fake = self.logits(x, y), self.logits(x, fake)
        if self.cfg.gan_loss == "lsgan":
            return d_loss_ls(real, fake), {}              # 1/2 E(D - 1)^2 + 1/2 E D(x, G(x))^2
        loss = 0.5 * d_loss_bce(real, fake)               # -(Eq. 1) / 2
        return loss, d_stats(real, fake)

    # ---------------------------------------------------------------- train generator
    def g_loss(self, batch):
        terms = self.generator_terms(*batch)
        loss = self.cfg.lambda_l1 * terms["l1"]                             # lambda L_L1 (Eq. 3)
        if "adv" in terms:
            loss = loss + self.cfg.lambda_gan * terms["adv"]                # + L_cGAN (Eq. 4)
        return loss, {f"loss_{k}": v.item() for k, v in terms.items()}

    def generator_terms(self, x, y) -> dict:
        fake = self.G(x)
        terms = {"l1": (fake - y).abs().mean()}                             # E |y - G(x)|
        if self.cfg.lambda_gan:
            logits = self.logits(x, fake)
            terms["adv"] = (g_loss_ls(logits) if self.cfg.gan_loss == "lsgan"
                            else g_loss_bce(logits, self.cfg.objective))    # -E log D(x, G(x))
        return terms

    # -- translating held-out images -------------------------------------------------------
    def translate(self, low, batch_size: int = 500) -> np.ndarray:
        """Low-res images (N, C, S/f, S/f) in [0, 1] -> G's (N, C, S, S) in [0, 1]. Dropout
        stays on with `test_dropout` (its masks drawn from tinygen's generator)."""
        was_training = self.training
        self.eval()
        if self.cfg.test_dropout:
            for m in self.G.modules():
                if isinstance(m, nn.Dropout):
                    m.train()
        try:
            with tg.no_grad():
                return np.concatenate([(self.G(tg.tensor(self.g_input(low[i:i + batch_size])))
                                        .data + 1) / 2 for i in range(0, len(low), batch_size)])
        finally:
            self.train(was_training)

    def sample(self, n: int) -> np.ndarray:
        raise NotImplementedError("pix2pix translates a given input image; draw its figure "
                                  "with `tinygen sample RUN --kind translate`")

    def evaluate(self, loader) -> dict:
        """PSNR, L1 and (on MNIST) classifier accuracy of the outputs on held-out images."""
        from tinygen.translation import accuracy, domain_classifier, first_images, keep_rng, psnr

        y, labels = first_images(loader, self.cfg.eval_images)
        with keep_rng():                           # test-time dropout draws masks
            out = self.translate(self.degrade(y))
        scores = {"psnr": psnr(out, y), "l1": float(np.abs(out - y).mean())}
        if self.cfg.dataset == "mnist":
            scores["acc"] = accuracy(domain_classifier("mnist"), out, labels)
        return scores

    @property
    def name(self) -> str:
        return "L1-only U-Net" if self.cfg.lambda_gan == 0 else "pix2pix"

    def save_translation_figure(self, x, y, path, n: int = 8):
        from tinygen.translation import keep_rng, save_sr_grid

        with keep_rng():
            return save_sr_grid({self.name: self}, x[:n], self.cfg.factor, path,
                                title=f"{self.name}: {self.cfg.factor}x super-resolution of "
                                      f"held-out {self.cfg.dataset} images")


def _check(cfg: Config) -> None:
    """Refuse a bad option in one line that names it."""
    for name, allowed in {"dataset": DOMAINS, "gan_loss": GAN_LOSSES}.items():
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"pix2pix: --{name.replace('_', '-')} must be one of "
                             f"{', '.join(allowed)}, got {getattr(cfg, name)!r}")
    if cfg.image_size % 4:
        raise ValueError(f"pix2pix: --image-size must be a multiple of 4 (the U-Net halves it "
                         f"twice), got {cfg.image_size}")
    if cfg.factor < 1 or cfg.image_size % cfg.factor:
        raise ValueError(f"pix2pix: --factor must divide --image-size {cfg.image_size}, got "
                         f"{cfg.factor}")
    if cfg.lambda_gan < 0 or cfg.lambda_l1 < 0:
        raise ValueError("pix2pix: --lambda-gan and --lambda-l1 must be >= 0")
    if not 0 <= cfg.dropout < 1:
        raise ValueError(f"pix2pix: --dropout must be in [0, 1), got {cfg.dropout}")
