"""CycleGAN: Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", on two real digit domains.

Two domains and no pairs: A is MNIST, B the 8x8 scikit-learn digits upsampled and framed in
28x28 as MNIST's are (`tinygen/data/translation.py`). Two generators translate, G_AB: A -> B
and G_BA: B -> A (the paper's G and F), and two discriminators judge, D_B on domain B and D_A
on domain A (the paper's D_Y and D_X). The paper's objective, in its own numbering:

    Eq. 1  L_GAN(G_AB, D_B) = E_b[log D_B(b)] + E_a[log(1 - D_B(G_AB(a)))]
           (and L_GAN(G_BA, D_A) the same way round)
    Eq. 2  L_cyc = E_a ||G_BA(G_AB(a)) - a||_1 + E_b ||G_AB(G_BA(b)) - b||_1
    Eq. 3  L = L_GAN(G_AB, D_B) + L_GAN(G_BA, D_A) + lambda L_cyc,      lambda = 10

and G_AB, G_BA = arg min_G max_D L. The adversarial terms alone only ask that G_AB(a) looks
like *some* B digit; nothing ties it to a. The cycle term does: a must be recoverable from its
translation, so the translation has to keep what makes a *this* a, and with digits that is
first of all which digit it is. `benchmarks/translation.py` measures exactly that, with and
without the cycle term (`lambda_cycle=0`).

Choices from the paper's Section 4 (implementation), all switches here:

- **least squares GAN** instead of Eq. 1's log loss (`gan_loss`; `adversarial.d_loss_ls`):
      D_B minimises 1/2 E_b[(D_B(b) - 1)^2] + 1/2 E_a[D_B(G_AB(a))^2]
      G_AB minimises E_a[(D_B(G_AB(a)) - 1)^2]
  The paper found it more stable; `bce` gives Eq. 1 with the non-saturating G loss.
- **the image pool** (`pool_size`, Shrivastava et al. 2017): D trains on a mix of this step's
  fakes and fakes from earlier generators (a pool of 50), so it cannot chase only G's latest
  trick, which damps the oscillation between the players.
- **linear learning-rate decay**: constant for the first half of training, then linearly to 0
  (`decay_from`); the paper's 100 + 100 epochs. Here per step, so a short run decays smoothly.
- Adam, lr 2e-4, beta1 = 0.5, instance norm (per image) in G and D.
- Eq. 2 uses the L1 norm; the 4ML3 lecture writes the squared L2 norm ||x - F(G(x))||^2
  (`cycle_loss=l2`). Both are means per pixel here, computed in G's [-1, 1] range.
- The **identity loss** of Section 5.2, off by default (`lambda_identity`):
      L_id = E_b ||G_AB(b) - b||_1 + E_a ||G_BA(a) - a||_1,   weighted lambda_identity lambda
  which asks each G to leave an image already in its target domain alone.

The data loader walks domain A; each step draws as many domain-B images uniformly at random
(from tinygen's generator, so runs are seeded and resume bitwise), as the paper's unaligned
data loader does: the two domains never come in pairs.

Networks, for 28x28 (the paper's ResNet G, scaled down; w = `width`, k = `edge_kernel`):

    G:  cks1-w (28) -> d2w (14) -> d4w (7) -> `blocks` residual blocks at 4w x 7 x 7
        -> u2w (14) -> uw (28) -> cks1-1 -> tanh
        (cks1-n: k x k conv, stride 1, instance norm, ReLU; dn: 3x3 conv, stride 2; un: 4x4
        transposed conv, stride 2; zero padding, where the paper pads by reflection). The
        paper's edge convs are 7x7 on 256x256 images; here 3x3 (the default): at 28x28 the
        7x7 pair made a step of 64 1.6x dearer (0.97 s against 0.60 s on one shared core).
    D:  the PatchGAN of `nets.patch_discriminator`: a 7x7 grid of scores, each for an 18x18 patch

Read next: `pix2pix.py`, the paired case; `tinygen/translation.py` for the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import tinygen as tg
from tinygen import nn
from tinygen.autograd import default_generator
from tinygen.data.translation import DOMAINS, load_domain
from tinygen.models.adversarial import (
    Adversarial,
    d_loss_bce,
    d_loss_ls,
    g_loss_bce,
    g_loss_ls,
)
from tinygen.models.nets import patch_discriminator

GAN_LOSSES = ("lsgan", "bce")
CYCLE_LOSSES = ("l1", "l2")


@dataclass
class Config:
    """CycleGAN's options (no noise z: the input image is G's only input)."""

    dataset: str = "mnist"         # domain A: mnist, B the 8x8 digits at 28x28; digits: A = B
    epochs: int = 1                # passes over domain A (1,875 steps each on MNIST)
    batch_size: int = 32
    lr: float = 2e-4               # Adam lr of both generators (the paper's)
    lr_d: float = 2e-4             # Adam lr of both discriminators
    beta1: float = 0.5             # the generators' Adam beta1 (the paper's 0.5)
    beta2: float = 0.999
    beta1_d: float = 0.5
    beta2_d: float = 0.999
    gan_loss: str = "lsgan"        # lsgan (the paper's) or bce (Eq. 1, non-saturating G)
    lambda_cycle: float = 10.0     # lambda of Eq. 3 (0: the ablation without the cycle loss)
    cycle_loss: str = "l1"         # l1 (Eq. 2) or l2 (the lecture's squared norm)
    lambda_identity: float = 0.0   # identity loss weight, times lambda_cycle (paper 5.2: 0.5)
    pool_size: int = 50            # past fakes kept for D's updates (the paper's 50)
    decay_from: float = 0.5        # lr decays linearly to 0 from this fraction of training on
    width: int = 8                 # channels of G's and D's first conv
    blocks: int = 3                # residual blocks in G (the paper: 6 at 128x128)
    edge_kernel: int = 3           # kernel of G's first and last conv (the paper's c7s1: 7)
    eval_images: int = 1000        # held-out images of each domain scored after each epoch
    d_steps: int = 1               # D steps per G step (the skeleton's k; the paper: 1)
    objective: str = "nonsaturating"  # G's loss when gan_loss is bce
    historical_averaging: float = 0.0  # the skeleton's Salimans et al. switch (0: off)
    seed: int = 0
    image_size: int = 28
    channels: int = 1
    # Counts whose 0 is a real setting although their default is positive (`tinygen train`
    # refuses 0 for the others): no pool (D sees only this step's fakes); no residual blocks.
    may_be_zero: ClassVar[tuple] = ("pool_size", "blocks")


# ----------------------------------------------------------------------------------------------
# The networks.


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))): the block learns a change to x, not all of x."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1), nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        return x + self.body(x)


def _conv_in_relu(conv, channels):
    return [conv, nn.InstanceNorm2d(channels, affine=True), nn.ReLU()]


def resnet_generator(cfg: Config) -> nn.Sequential:
    """The paper's ResNet generator for S x S images (S a multiple of 4); see the docstring."""
    c, w, k = cfg.channels, cfg.width, cfg.edge_kernel
    return nn.Sequential(
        *_conv_in_relu(nn.Conv2d(c, w, k, 1, k // 2), w),                # (N, w, S, S)
        *_conv_in_relu(nn.Conv2d(w, 2 * w, 3, 2, 1), 2 * w),             # S/2
        *_conv_in_relu(nn.Conv2d(2 * w, 4 * w, 3, 2, 1), 4 * w),         # S/4
        *[ResidualBlock(4 * w) for _ in range(cfg.blocks)],
        *_conv_in_relu(nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), 2 * w),  # S/2
        *_conv_in_relu(nn.ConvTranspose2d(2 * w, w, 4, 2, 1), w),        # S
        nn.Conv2d(w, c, k, 1, k // 2), nn.Tanh())                        # (N, C, S, S)


class Player(nn.Module):
    """Two networks that act as one player of the skeleton's game: one optimizer for both,
    frozen together (the paper steps G_AB and G_BA with one Adam, and D_A and D_B with one)."""

    def __init__(self, **nets):
        super().__init__()
        for name, net in nets.items():
            setattr(self, name, net)


# ----------------------------------------------------------------------------------------------
# The pool of past fakes.


class ImagePool(nn.Module):
    """Up to `size` past fakes (Shrivastava et al. 2017, as CycleGAN uses it).

    `query(fakes)` returns what D trains on, image by image: while the pool is filling, the new
    fake itself (and it is stored); once full, with probability 1/2 a random stored fake (and
    the new one takes its place), else the new fake. The pool is a buffer, so a checkpoint
    holds it and a resumed run sees the same past fakes; its draws come from tinygen's
    generator, which the checkpoint holds too.
    """

    def __init__(self, size: int, shape):
        super().__init__()
        self.size = size
        self.register_buffer("images", np.zeros((size, *shape), np.float32))
        self.register_buffer("count", np.zeros((), np.int64))

    def query(self, fakes: np.ndarray) -> np.ndarray:
        if self.size == 0:
            return fakes
        out, rng = np.array(fakes, copy=True), default_generator()
        for i, fake in enumerate(fakes):
            n = int(self.count.data)
            if n < self.size:                          # filling: keep it, and use it
                self.images.data[n] = fake
                self.count.data += 1
            elif rng.random() < 0.5:                   # full: swap in for a past fake
                j = int(rng.integers(self.size))
                out[i] = self.images.data[j]
                self.images.data[j] = fake
        return out


# ----------------------------------------------------------------------------------------------
# The losses of Eqs. 1-3.


def cycle_loss(x, reconstruction, kind: str = "l1"):
    """Mean per pixel of |F(G(x)) - x| (Eq. 2) or of its square (the lecture's L2 form)."""
    diff = reconstruction - x
    if kind == "l1":
        return diff.abs().mean()
    if kind == "l2":
        return (diff * diff).mean()
    raise ValueError(f"cycle_loss must be one of {', '.join(CYCLE_LOSSES)}, got {kind!r}")


class CycleGAN(Adversarial):
    takes_points = False
    # `sample` repeats the translations of B's 359 test images, so a Parzen window estimate
    # on them scores those 359 points, not the generator; `tinygen eval` skips it.
    parzen_meaningful = False

    def __init__(self, cfg: Config):
        _check(cfg)
        shape = (cfg.channels, cfg.image_size, cfg.image_size)
        G = Player(G_AB=resnet_generator(cfg), G_BA=resnet_generator(cfg))
        D = Player(D_A=patch_discriminator(cfg.channels, cfg.width),
                   D_B=patch_discriminator(cfg.channels, cfg.width))
        super().__init__(cfg, G, D)
        self.image_shape = shape
        self.pool_A, self.pool_B = ImagePool(cfg.pool_size, shape), ImagePool(cfg.pool_size,
                                                                              shape)
        self.steps_per_epoch = 0         # set by setup(); 0: no lr decay (no length known)
        self._b = {}                     # domain B's images by split, loaded when first used

    # -- the data -------------------------------------------------------------------------
    def setup(self, x, y) -> None:
        """Called with domain A's training set: check its shape, and learn the epoch's length
        for the lr schedule (the loader drops the last partial batch)."""
        self.check_images(x, "domain A")
        self.steps_per_epoch = len(x) // self.cfg.batch_size

    def check_images(self, x, what: str) -> None:
        if tuple(np.shape(x)[1:]) != self.image_shape:
            raise ValueError(f"cyclegan: {what} images have shape {tuple(np.shape(x)[1:])}, "
                             f"but --image-size {self.cfg.image_size} and --channels "
                             f"{self.cfg.channels} expect {self.image_shape}")

    def set_domain_b(self, split: str, x, y) -> None:
        """Give domain B's images for a split (tests pass their own; else they are loaded)."""
        self.check_images(x, f"domain B ({split})")
        self._b[split] = (np.asarray(x, np.float32), np.asarray(y))

    def domain_b(self, split: str):
        if split not in self._b:
            self.set_domain_b(split, *load_domain("digits", split, self.cfg.image_size))
        return self._b[split]

    def draw_b(self, n: int):
        """n domain-B training images drawn uniformly: unpaired with this batch of A."""
        xb, _ = self.domain_b("train")
        return tg.tensor(xb[default_generator().integers(0, len(xb), n)])

    # -- the loop: the skeleton's, with both domains in the batch and the lr schedule -------
    def train_step(self, batch) -> dict:
        a = batch[0]
        self.check_images(a.data, "domain A")
        self.set_lr(int(self.d_steps_taken.data))
        return super().train_step((2 * a - 1, 2 * self.draw_b(len(a.data)) - 1))  # [-1, 1]

    def lr_factor(self, step: int) -> float:
        """1 for the first `decay_from` of training, then linearly down to 0 at the end."""
        total = self.steps_per_epoch * self.cfg.epochs
        start = self.cfg.decay_from * total
        if not total or step < start:
            return 1.0
        return max(0.0, (total - step) / (total - start))

    def set_lr(self, step: int) -> None:
        factor = self.lr_factor(step)
        for opt, lr in ((self.opt_G, self.cfg.lr), (self.opt_D, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    def fake(self, batch):
        """What the Ds train on: G_AB(a) and G_BA(b), each through its pool of past fakes."""
        a, b = batch
        fake_b, fake_a = self.G.G_AB(a), self.G.G_BA(b)
        return (tg.tensor(self.pool_B.query(fake_b.data)),
                tg.tensor(self.pool_A.query(fake_a.data)))

    # ---------------------------------------------------------------- train discriminator
    def d_loss(self, batch, fake):
        a, b = batch
        fake_b, fake_a = fake
        loss_B, stats_B = self.d_loss_one(self.D.D_B, b, fake_b)   # D_B: b real, G_AB(a) fake
        loss_A, stats_A = self.d_loss_one(self.D.D_A, a, fake_a)   # D_A: a real, G_BA(b) fake
        stats = {k: (stats_A[k] + stats_B[k]) / 2 for k in stats_A}
        return loss_A + loss_B, {**stats, "loss_d_A": loss_A.item(), "loss_d_B": loss_B.item()}

    def d_loss_one(self, D, real, fake):
        real_out, fake_out = D(real), D(fake)          # (N, 1, S/4, S/4): a score per patch
        if self.cfg.gan_loss == "lsgan":
            loss = d_loss_ls(real_out, fake_out)       # 1/2 E(D(x) - 1)^2 + 1/2 E D(G(.))^2
            means = real_out.data.mean(), fake_out.data.mean()
        else:
            loss = 0.5 * d_loss_bce(real_out, fake_out)   # -(Eq. 1) / 2, on logits
            means = [1 / (1 + np.exp(-o.data)).mean() for o in (real_out, fake_out)]
        return loss, {"d_real": float(means[0]), "d_fake": float(means[1])}

    # ---------------------------------------------------------------- train generator
    def g_loss(self, batch):
        terms = self.generator_terms(*batch)
        cfg = self.cfg
        loss = terms["adv"] + cfg.lambda_cycle * terms["cycle"]      # Eq. 3
        if cfg.lambda_identity:
            loss = loss + cfg.lambda_identity * cfg.lambda_cycle * terms["identity"]
        return loss, {f"loss_{k}": v.item() for k, v in terms.items()}

    def generator_terms(self, a, b) -> dict:
        """Each term of the generators' loss, as tensors: adversarial (Eq. 1, both ways),
        cycle (Eq. 2) and identity (Section 5.2, only when switched on)."""
        fake_b, fake_a = self.G.G_AB(a), self.G.G_BA(b)
        terms = {"adv": self.g_adv(self.D.D_B, fake_b) + self.g_adv(self.D.D_A, fake_a),
                 "cycle": cycle_loss(a, self.G.G_BA(fake_b), self.cfg.cycle_loss)   # a->b->a
                 + cycle_loss(b, self.G.G_AB(fake_a), self.cfg.cycle_loss)}         # b->a->b
        if self.cfg.lambda_identity:
            terms["identity"] = (cycle_loss(b, self.G.G_AB(b), "l1")            # G_AB(b) = b
                                 + cycle_loss(a, self.G.G_BA(a), "l1"))         # G_BA(a) = a
        return terms

    def g_adv(self, D, fake):
        if self.cfg.gan_loss == "lsgan":
            return g_loss_ls(D(fake))                  # E(D(G(x)) - 1)^2
        return g_loss_bce(D(fake), self.cfg.objective)  # -E log D(G(x)), non-saturating

    # -- translating held-out images ----------------------------------------------------------
    def translate(self, x, direction: str = "ab", batch_size: int = 500) -> np.ndarray:
        """Images in [0, 1] of one domain -> the other's, in eval mode: direction ab or ba."""
        net = {"ab": self.G.G_AB, "ba": self.G.G_BA}[direction]
        was_training = self.training
        self.eval()
        try:
            with tg.no_grad():
                return np.concatenate([(net(tg.tensor(2 * np.asarray(x[i:i + batch_size],
                                                                     np.float32) - 1)).data
                                        + 1) / 2 for i in range(0, len(x), batch_size)])
        finally:
            self.train(was_training)

    def sample(self, n: int) -> np.ndarray:
        """n domain-A images: held-out B images translated by G_BA (with repeats past B's
        359 test images); this is what `tinygen eval` scores with FID."""
        xb, _ = self.domain_b("test")
        return self.translate(xb[np.arange(n) % len(xb)], "ba")

    def progress_samples(self, n: int) -> np.ndarray:
        return self.sample(n)

    def evaluate(self, loader) -> dict:
        """Label agreement both ways, cycle error, and FID when A is MNIST (translation.py)."""
        from tinygen.translation import cyclegan_metrics, first_images

        xa, ya = first_images(loader, self.cfg.eval_images)
        xb, yb = self.domain_b("test")
        n = self.cfg.eval_images
        return cyclegan_metrics(self, xa, ya, xb[:n], yb[:n], domain_a=self.cfg.dataset)

    def save_translation_figure(self, x, y, path, n: int = 8):
        from tinygen.translation import save_cycle_grid

        xb, yb = self.domain_b("test")
        return save_cycle_grid(self, x[:n], xb[:n], path)


def _check(cfg: Config) -> None:
    """Refuse a bad option in one line that names it."""
    choices = {"dataset": DOMAINS, "gan_loss": GAN_LOSSES, "cycle_loss": CYCLE_LOSSES}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"cyclegan: --{name.replace('_', '-')} must be one of "
                             f"{', '.join(allowed)}, got {getattr(cfg, name)!r}")
    if cfg.image_size % 4:
        raise ValueError(f"cyclegan: --image-size must be a multiple of 4 (G and D halve it "
                         f"twice), got {cfg.image_size}")
    if cfg.pool_size < 0 or cfg.lambda_cycle < 0 or cfg.lambda_identity < 0:
        raise ValueError("cyclegan: --pool-size, --lambda-cycle and --lambda-identity must be "
                         ">= 0")
    if not 0 <= cfg.decay_from <= 1:
        raise ValueError(f"cyclegan: --decay-from must be in [0, 1], got {cfg.decay_from}")
