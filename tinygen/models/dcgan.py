"""Deep convolutional GAN: Radford et al. 2016, adapted to 28x28 digits.

The game and both losses are the GAN's (`gan.py`); DCGAN changes only the networks, following
the paper's architecture guidelines (Section 3):

- no pooling: D downsamples with stride-2 convolutions, G upsamples with stride-2 transposed
  convolutions (28 <- 14 <- 7 here, where the paper's 64x64 G had four such layers);
- batch norm in G (all but the output layer) and in D (all but the input layer);
- ReLU in G with a tanh output, so images live in [-1, 1]; LeakyReLU(0.2) in D;
- no fully connected hidden layers: G's first layer projects z to a 128x7x7 block, D's last
  flattens its 128x7x7 features into one logit;
- every weight drawn from N(0, 0.02), batch-norm scales from N(1, 0.02) (the paper's init as
  the PyTorch DCGAN example writes it); Adam with lr 2e-4 and beta1 = 0.5.

    G: z (100) -> Linear(100, 6272) -> BN -> ReLU -> reshape 128x7x7
         -> ConvT(128, 64, 4, 2, 1) -> BN -> ReLU          # 7 -> 14
         -> ConvT(64, 1, 4, 2, 1) -> tanh                  # 14 -> 28
    D: x (1x28x28) -> Conv(1, 64, 4, 2, 1) -> LeakyReLU     # 28 -> 14
         -> Conv(64, 128, 4, 2, 1) -> BN -> LeakyReLU       # 14 -> 7
         -> flatten -> Linear(6272, 1)                      # the logit l(x)

Real images come from the loader in [0, 1]; D sees them as 2x - 1, the range of G's tanh, and
samples are mapped back with (y + 1) / 2.

Read next: `cgan.py`, which feeds the label to both networks.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinygen import nn
from tinygen.models import gan
from tinygen.models.gan import GAN
from tinygen.nn import init


@dataclass
class Config(gan.Config):
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-4
    lr_d: float = 2e-4
    objective: str = "nonsaturating"  # G's loss: nonsaturating (-log D(G(z))) or minimax
    latent: int = 100
    width: int = 64                # channels of G's and D's first conv layer (the paper's 128)


def dcgan_init(module) -> None:
    """N(0, 0.02) weights and zero biases; batch-norm scales N(1, 0.02) (Radford et al.)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        init.normal_(module.weight, 1.0, 0.02)
        init.zeros_(module.bias)


class DCGAN(GAN):
    takes_points = False

    def networks(self, cfg, extra: int = 0):
        """(G, D); `extra` inputs join z in G and arrive as constant channels in D (cGAN)."""
        if self.points:
            raise ValueError(f"dcgan: needs images, but {cfg.dataset} is a set of 2-D points "
                             f"(train the fully connected `gan` on it)")
        if cfg.image_size % 4:
            raise ValueError(f"dcgan: image_size must be a multiple of 4, got {cfg.image_size}")
        c, w, s = cfg.channels, cfg.width, cfg.image_size // 4
        G = nn.Sequential(
            nn.Linear(cfg.latent + extra, 2 * w * s * s), nn.BatchNorm1d(2 * w * s * s), nn.ReLU(),
            nn.Unflatten(1, (2 * w, s, s)),                                  # (N, 2w, S/4, S/4)
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),  # S/2
            nn.ConvTranspose2d(w, c, 4, 2, 1), nn.Tanh())                    # (N, C, S, S)
        D = nn.Sequential(
            nn.Conv2d(c + extra, w, 4, 2, 1), nn.LeakyReLU(0.2),                 # (N, w, S/2, S/2)
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),  # S/4
            nn.Flatten(), *gan.d_head(2 * w * s * s, cfg))                   # (N, 1)
        return G.apply(dcgan_init), D.apply(dcgan_init)

    def d_input(self, x):
        return x                                          # the conv D takes (N, C, H, W)

