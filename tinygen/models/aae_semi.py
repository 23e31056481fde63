"""Adversarial autoencoders with a categorical code: Makhzani et al. 2015, Sections 5-7.

The encoder's output has two parts: q(y|x), a softmax over K categories, and a style code
z = f(x) (deterministic, as in the paper). Two adversarial networks shape them, each on the
skeleton's two-player loop (`adversarial.py`): D_y tells the y's from one-hot samples of the
uniform categorical Cat(K), and D_z tells the z's from N(0, I). Pushed toward one-hot vectors,
y has to pick a category; pushed toward N(0, I), z has no room for much more than style. The
decoder reconstructs x from (y, z). Each minibatch runs the paper's phases (Section 5):

1. **reconstruction**: encoder and decoder minimise  BCE(x, g(y, z))   (per pixel)
2. **regularization**:
       train discriminator   D_y: softplus(-l_y(y')) + softplus(l_y(y)),   y' ~ Cat(K)
                             D_z: softplus(-l_z(z')) + softplus(l_z(z)),   z' ~ N(0, I)
       train generator       the encoder: softplus(-l_y(y)) + softplus(-l_z(z))
   (D_y and D_z share no parameters, so one Adam step on the sum of their losses is exactly
   one step of each; the same holds for the encoder's two fooling terms.)
3. **semi-supervised classification** (only with labels > 0): the encoder minimises
       cross_entropy(q(y | x_l), y_l)     on a minibatch of the labelled images
   (`labelled.py`: exactly `labels` images, chosen by the seed; no other label is read).

The same model serves three of the paper's uses:

- **semi-supervised classification** (Section 5): `labels` = N, K = 10. The prediction is
  argmax_y q(y|x). Paper, MNIST: 1.90 +- 0.10% test error with 100 labels, 1.60 +- 0.08% with
  1000, 0.85 +- 0.02% with all of them.
- **unsupervised clustering** (Section 6, `aae_cluster`): `labels` = 0, K = 16 or 30. After
  training, each cluster k takes the label of its "cluster head", the training image x_n
  that maximises q(k | x_n); the test error counts test images whose argmax cluster has
  another label (`cluster_error`). Paper: 9.55% with 16 clusters, 4.10% with 30.
- **dimensionality reduction** (Section 7, `heads`): the representation is
       r = W_c y + z        (`latent` dims, 2 for a picture; W_c is a learned (K, latent)
                             matrix whose rows are the K cluster heads)
  and the decoder reads r. A hinge cost keeps the heads apart:
       sum_{i<j} max(0, eta - ||W_i - W_j||)
  which is zero once every two heads are at least eta apart (added to the reconstruction
  phase, the phase that trains W_c).

Networks (the paper's MNIST MLPs): encoder 784-1000-1000-(K + latent), decoder
(K + latent)-1000-1000-784 (latent-1000-1000-784 with `heads`), D_y K-1000-1000-1 and D_z
latent-1000-1000-1, all ReLU (`hidden`). The optimizer is Adam in every phase; the paper used
SGD with momentum and hand-set learning-rate steps. `optimizer="sgd"` gives every phase SGD
with `momentum` at the same four learning rates (on MNIST clustering, momentum 0.9 with all
four at 0.01, and with 0.1 for the adversarial phases, diverged within the first epoch).
`lr_step` = E multiplies all four learning rates by `lr_gamma` every E epochs.

`input_noise` (off by default) adds N(0, sigma^2) to the encoder's input in every training
phase, a regulariser against fitting the few labelled images exactly; the reconstruction
target stays the clean image, and evaluation reads the clean image.

`d_noise` (off by default) adds N(0, sigma^2) to what D_y and D_z read, the prior's samples and
the encoder's codes alike ("instance noise"), in training only. Without it, clustering collapses
at once: D_y tells one-hot vectors from the encoder's first, soft q(y|x) at a glance, and the
encoder's quickest way to look one-hot is to push one logit up for every image, so after a few
hundred steps every image sits in the same cluster with q = 1.000, where the softmax has no
gradient left to move any image elsewhere (on the 8x8 digits: 1 cluster of 16 from epoch 3 on).
Through noise of sigma 0.3 a q of 0.9 looks as one-hot as a q of 1, so the encoder is not
driven into saturation and the images can still move between clusters. On the digits that took
a 100-epoch run from 1 cluster to 15 of 16. On MNIST it fills the clusters but leaves them
soft and mixed (58.6% error after 8 epochs, against 56.1% after 5 without it). `d_noise_decay`
= E lowers the noise linearly to 0 over the first E epochs (`NoiseDecay`): the codes start
soft and free to move, and the prior's one-hot codes are asked for in the end (57.1% with the
5-D style; with a 2-D style, which makes the decoder read y, 42.4% against 44.7% without any
noise: the README's table). The paper has no such noise, so it is off by default.

Read next: `aae.py` (one continuous code and the VAE comparison), `labelled.py`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tinygen as tg
from tinygen import nn, optim
from tinygen.autograd import default_generator
from tinygen.models import aae, adversarial
from tinygen.models.adversarial import Adversarial, d_loss_bce, g_loss_bce
from tinygen.models.improved import MinibatchDiscrimination
from tinygen.models.labelled import LabelledSet, check_label_count
from tinygen.models.nets import mlp
from tinygen.nn import functional as F


@dataclass
class Config(adversarial.Config):
    dataset: str = "mnist"
    epochs: int = 20
    batch_size: int = 100
    lr: float = 2e-4               # the encoder's Adam lr in the regularization phase
    lr_d: float = 2e-4             # D_y's and D_z's
    lr_ae: float = 1e-3            # encoder and decoder in the reconstruction phase
    hidden: int = 1000             # units in each of the two hidden layers of every network
    image_size: int = 28
    channels: int = 1
    latent: int = 10               # style dims (2 with --heads for a 2-D picture)
    clusters: int = 10             # K: the categories of y (10 for digit classes)
    labels: int = 100              # labelled training images (0: unsupervised clustering)
    lr_cls: float = 1e-3           # the classification phase's Adam lr (the encoder)
    heads: bool = False            # Section 7: decode r = W_c y + z instead of (y, z)
    eta: float = 3.0               # the heads' minimum distance in the hinge cost
    n_classes: int = 10            # classes in the data (labels are split evenly over them)
    minibatch_kernels: int = 0     # minibatch discrimination in D_y (0: off, the paper's D)
    d_noise: float = 0.0           # std of Gaussian noise on D_y's and D_z's inputs (0: off)
    d_noise_decay: int = 0         # epochs over which d_noise falls linearly to 0 (0: constant)
    input_noise: float = 0.0       # std of Gaussian noise on the encoder's input while training
    optimizer: str = "adam"        # every phase's: adam, or sgd (with momentum, the paper's)
    momentum: float = 0.9          # sgd's momentum
    lr_step: int = 0               # every this many epochs, every phase's lr *= lr_gamma (0: off)
    lr_gamma: float = 0.1


class NoiseDecay:
    """Instance noise annealed away: after e epochs each GaussianNoise module has
            sigma_e = sigma_0 * max(0, 1 - e / epochs)
    An LR scheduler's interface (`step`, `last_epoch`, a state dict), so the training loop
    steps it after every epoch and checkpoints keep it, as they keep the learning rates."""

    def __init__(self, modules, epochs: int):
        self.modules, self.epochs = list(modules), epochs
        self.sigma0 = [m.sigma for m in self.modules]
        self.last_epoch = 0

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def _apply(self) -> None:
        frac = max(0.0, 1.0 - self.last_epoch / self.epochs)
        for m, s0 in zip(self.modules, self.sigma0, strict=True):
            m.sigma = s0 * frac

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "sigma0": list(self.sigma0)}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch, self.sigma0 = state["last_epoch"], list(state["sigma0"])
        self._apply()


class CodeDiscriminators(nn.Module):
    """D_y and D_z side by side: the skeleton's D (one optimizer, one `frozen`).

    With `kernels` > 0, D_y ends in minibatch discrimination (`improved.py`): it sees how
    alike the y's of a minibatch are, so a batch whose y's all sit on one corner is caught.
    """

    def __init__(self, clusters: int, latent: int, hidden: int, kernels: int = 0,
                 noise: float = 0.0):
        super().__init__()
        if kernels:
            self.D_y = nn.Sequential(*mlp([clusters, hidden, hidden]), nn.ReLU(),
                                     MinibatchDiscrimination(hidden, kernels, 5),
                                     nn.Linear(hidden + kernels, 1))
        else:
            self.D_y = mlp([clusters, hidden, hidden, 1])
        self.D_z = mlp([latent, hidden, hidden, 1])
        if noise:                       # instance noise: see `d_noise` in the module doc
            self.D_y = nn.Sequential(nn.GaussianNoise(noise), self.D_y)
            self.D_z = nn.Sequential(nn.GaussianNoise(noise), self.D_z)


class ClusterHeads(nn.Module):
    """r = y W_c + z, with W_c (K, latent) the cluster heads (Section 7)."""

    def __init__(self, clusters: int, latent: int, eta: float):
        super().__init__()
        self.eta = eta
        # Start evenly on a circle (in the first two dims), neighbours 1.5 eta apart, so the
        # hinge starts at zero: random starts left pairs closer than eta, and at Adam's
        # ~lr per step the heads took thousands of steps to part.
        angle = 2 * np.pi * np.arange(clusters) / clusters
        radius = 0.75 * eta / np.sin(np.pi / clusters)
        init = np.zeros((clusters, latent), np.float32)
        init[:, 0], init[:, 1] = radius * np.cos(angle), radius * np.sin(angle)
        self.weight = nn.Parameter(init)

    def forward(self, y, z):
        return y @ self.weight + z                                   # (N, K) @ (K, L) -> (N, L)

    def spread_cost(self):
        """sum over pairs i < j of max(0, eta - ||W_i - W_j||)."""
        k = len(self.weight.data)
        i, j = np.triu_indices(k, 1)
        diff = self.weight[i] - self.weight[j]                       # (K(K-1)/2, latent)
        dist = ((diff * diff).sum(dim=1) + 1e-12).sqrt()
        return F.relu(self.eta - dist).sum()


class CategoricalAAE(Adversarial):
    takes_points = False

    def __init__(self, cfg: Config):
        if cfg.labels:
            check_label_count(type(self).__name__, cfg.labels, cfg.n_classes)
            if cfg.clusters != cfg.n_classes:
                raise ValueError(f"{type(self).__name__}: with labels, clusters must equal "
                                 f"n_classes ({cfg.n_classes}), got {cfg.clusters}")
        if cfg.clusters < 2:
            raise ValueError(f"{type(self).__name__}: clusters must be >= 2, got {cfg.clusters}")
        if cfg.optimizer not in ("adam", "sgd"):
            raise ValueError(f"{type(self).__name__}: optimizer must be adam or sgd, got "
                             f"{cfg.optimizer!r}")
        if cfg.lr_step < 0 or not cfg.lr_gamma > 0:
            raise ValueError(f"{type(self).__name__}: lr_step must be >= 0 and lr_gamma > 0, "
                             f"got {cfg.lr_step}, {cfg.lr_gamma}")
        for name in ("input_noise", "d_noise"):
            if not getattr(cfg, name) >= 0:                # also refuses NaN
                raise ValueError(f"{type(self).__name__}: {name} must be >= 0, got "
                                 f"{getattr(cfg, name)}")
        if cfg.d_noise_decay < 0 or (cfg.d_noise_decay and not cfg.d_noise):
            raise ValueError(f"{type(self).__name__}: d_noise_decay must be >= 0 and needs "
                             f"d_noise > 0, got {cfg.d_noise_decay} with d_noise {cfg.d_noise}")
        if cfg.heads and cfg.latent < 2:
            raise ValueError(f"{type(self).__name__}: --heads needs --latent >= 2, got "
                             f"{cfg.latent}")
        self.image_shape = (cfg.channels, cfg.image_size, cfg.image_size)
        d, h, k, z = int(np.prod(self.image_shape)), cfg.hidden, cfg.clusters, cfg.latent
        D = CodeDiscriminators(k, z, h, cfg.minibatch_kernels, cfg.d_noise)
        super().__init__(cfg, mlp([d, h, h, k + z]), D)    # the encoder plays G
        self.heads = ClusterHeads(k, z, cfg.eta) if cfg.heads else None
        self.decoder = mlp([z if cfg.heads else k + z, h, h, d])       # Bernoulli logits
        self.autoencoder = nn.ModuleList([m for m in (self.G, self.heads, self.decoder)
                                          if m is not None])
        self.opt_AE = optim.Adam(self.autoencoder.parameters(), lr=cfg.lr_ae)
        self.opt_C = optim.Adam(self.G.parameters(), lr=cfg.lr_cls)
        if cfg.optimizer == "sgd":                         # the same four players, each SGD
            sgd = functools.partial(optim.SGD, momentum=cfg.momentum)
            self.opt_AE = sgd(self.autoencoder.parameters(), lr=cfg.lr_ae)
            self.opt_C = sgd(self.G.parameters(), lr=cfg.lr_cls)
            self.opt_G = sgd(self.G.parameters(), lr=cfg.lr)
            self.opt_D = sgd(self.D.parameters(), lr=cfg.lr_d)
        if cfg.lr_step:                                    # the paper's step-wise decays
            self.sched_AE, self.sched_D, self.sched_G, self.sched_C = (
                optim.lr_scheduler.StepLR(opt, cfg.lr_step, cfg.lr_gamma)
                for opt in (self.opt_AE, self.opt_D, self.opt_G, self.opt_C))
        if cfg.d_noise_decay:                              # kept in checkpoints, as the lrs
            self.sched_noise = NoiseDecay([self.D.D_y[0], self.D.D_z[0]], cfg.d_noise_decay)
        self.labelled = LabelledSet(cfg.labels, d, cfg.n_classes) if cfg.labels else None
        self._head_pool = None           # training images for the cluster heads (`setup`)
        self.input_noise = nn.GaussianNoise(cfg.input_noise)   # training phases only (`noisy`)

    def setup(self, x, y) -> None:
        """Choose the labelled images (if any); keep up to 10,000 training images, with their
        labels, for naming the clusters after training (never for training)."""
        if self.labelled is not None:
            self.labelled.choose(x, y, seed=self.cfg.seed)
        self._head_pool = (np.asarray(x[:10_000], np.float32), np.asarray(y[:10_000]))

    # -- the encoder and decoder ------------------------------------------------------------
    def noisy(self, x):
        """x + N(0, input_noise^2): what the encoder reads in the three training phases. The
        reconstruction target stays the clean x, and evaluation (`q_y`) reads the clean x."""
        return self.input_noise(x)

    def encode(self, x):
        """(logits of q(y|x) (N, K), style z (N, latent))."""
        h = self.G(x.flatten(1))
        k = self.cfg.clusters
        return h[:, :k], h[:, k:]

    def decode(self, y, z):
        """Bernoulli logits of the pixels from the category probabilities y and style z."""
        return self.decoder(self.heads(y, z) if self.heads else tg.cat([y, z], dim=1))

    def fake(self, batch):
        logits, z = self.encode(self.noisy(batch[0]))
        return logits.softmax(dim=1), z                    # the codes play G's samples

    # ---------------------------------------------------------------- reconstruction phase
    def reconstruction_loss(self, batch):
        logits, z = self.encode(self.noisy(batch[0]))
        recon = F.binary_cross_entropy_with_logits(self.decode(logits.softmax(dim=1), z),
                                                   batch[0].flatten(1))   # -mean log p(x|y,z)
        if self.heads is None:
            return recon, {}
        spread = self.heads.spread_cost()                  # sum max(0, eta - ||W_i - W_j||)
        return recon + spread, {"spread": spread.item()}

    # ---------------------------------------------------------------- classification phase
    def classification_loss(self):
        x_lab, y_lab = self.labelled.batch(self.cfg.batch_size)
        ce = F.cross_entropy(self.encode(self.noisy(x_lab))[0], y_lab)  # -log q(y_l | x_l)
        return ce, {}

    def end_epoch(self) -> None:
        for name in ("sched_AE", "sched_D", "sched_G", "sched_C", "sched_noise"):
            if hasattr(self, name):
                getattr(self, name).step()

    def train_step(self, batch) -> dict:
        """The loader's labels (batch[1]) are never read: labels come from `self.labelled`."""
        stats = self._step(self.autoencoder, self.opt_AE,
                           lambda: self.reconstruction_loss(batch), "rec")    # phase 1
        stats.update(super().train_step(batch))                               # phase 2
        if self.labelled is not None:
            stats.update(self._step(self.G, self.opt_C, self.classification_loss, "cls"))
        return stats

    # ---------------------------------------------------------------- train discriminator
    def prior(self, n):
        """(y', z') ~ Cat(K) one-hot x N(0, I)."""
        k = self.cfg.clusters
        y = np.eye(k, dtype=np.float32)[default_generator().integers(0, k, n)]
        return tg.tensor(y), tg.tensor(aae.sample_prior("gaussian", n, self.cfg.latent))

    def d_loss(self, batch, fake):
        (y, z), (y_prior, z_prior) = fake, self.prior(len(fake[0]))
        real_y, fake_y = self.D.D_y(y_prior).reshape(-1), self.D.D_y(y).reshape(-1)
        real_z, fake_z = self.D.D_z(z_prior).reshape(-1), self.D.D_z(z).reshape(-1)
        loss_y = d_loss_bce(real_y, fake_y)                # -log D_y(y') - log(1 - D_y(y))
        loss_z = d_loss_bce(real_z, fake_z)                # -log D_z(z') - log(1 - D_z(z))
        return loss_y + loss_z, {"d_y": loss_y.item(), "d_z": loss_z.item()}

    # ---------------------------------------------------------------- train generator
    def g_loss(self, batch):
        y, z = self.fake(batch)
        loss_y = g_loss_bce(self.D.D_y(y).reshape(-1), self.cfg.objective)   # -log D_y(y)
        loss_z = g_loss_bce(self.D.D_z(z).reshape(-1), self.cfg.objective)   # -log D_z(z)
        return loss_y + loss_z, {}

    # -- evaluation -------------------------------------------------------------------------
    def q_y(self, x) -> np.ndarray:
        """q(y|x) (N, K) for images x."""
        with tg.no_grad():
            logits, _ = self.encode(tg.tensor(np.asarray(x, np.float32)))
            return logits.softmax(dim=1).data

    def cluster_labels(self, x, y) -> np.ndarray:
        """Cluster k's label: that of its head, the image of x with the largest q(k | x)."""
        return np.asarray(y)[self.q_y(x).argmax(axis=0)]             # (K,)

    def cluster_error(self, x_head, y_head, x, y) -> float:
        names = self.cluster_labels(x_head, y_head)
        return float(np.mean(names[self.q_y(x).argmax(axis=1)] != np.asarray(y)))

    def evaluate(self, loader) -> dict:
        """Test error: of argmax q(y|x) with labels, of the named clusters without."""
        x = np.concatenate([np.asarray(getattr(b, "data", b), np.float32) for b, _ in loader])
        y = np.concatenate([np.asarray(getattr(t, "data", t)) for _, t in loader])
        if self.labelled is not None:
            return {"error": float(np.mean(self.q_y(x).argmax(axis=1) != y))}
        if self._head_pool is None:
            return {}
        return {"cluster_error": self.cluster_error(*self._head_pool, x, y)}

    # -- sampling and figures ---------------------------------------------------------------
    def representation(self, x) -> np.ndarray:
        """r = W_c y + z with heads; else the style z."""
        with tg.no_grad():
            logits, z = self.encode(tg.tensor(np.asarray(x, np.float32)))
            return (self.heads(logits.softmax(dim=1), z) if self.heads else z).data

    def generate(self, z, y=None) -> np.ndarray:
        """Images in [0, 1] from styles z (N, latent) and categories y (N,) (random if None)."""
        k = self.cfg.clusters
        y = default_generator().integers(0, k, len(z)) if y is None else np.asarray(y)
        with tg.no_grad():
            onehot = tg.tensor(np.eye(k, dtype=np.float32)[y])
            logits = self.decode(onehot, tg.tensor(np.asarray(z, np.float32)))
            return logits.sigmoid().data.reshape(-1, *self.image_shape)

    def sample(self, n: int) -> np.ndarray:
        _, z = self.prior(n)
        return self.generate(z.data, np.arange(n) % self.cfg.clusters)

    def style_grid(self, n_styles: int = 8) -> np.ndarray:
        """Row i: one style z ~ N(0, I) decoded with every category."""
        k = self.cfg.clusters
        z = np.repeat(aae.sample_prior("gaussian", n_styles, self.cfg.latent), k, axis=0)
        return self.generate(z, np.tile(np.arange(k), n_styles))

    def cluster_rows(self, x, per_row: int = 10) -> np.ndarray:
        """Row k: cluster k decoded with the style at zero, g(e_k, z = 0) (the paper's Fig. 9
        starts each row so), then its head (the image of x most sure of k, which names the
        cluster: with soft codes it may sit in another cluster) and the images of cluster k
        most sure of it."""
        q = self.q_y(x)
        k = self.cfg.clusters
        decoded = self.generate(np.zeros((k, self.cfg.latent), np.float32), np.arange(k))
        rows = []
        for c in range(k):
            order = np.argsort(-q[:, c])                    # the head first
            members = order[q[order].argmax(axis=1) == c]   # most sure first
            pick = np.concatenate([order[:1], members[members != order[0]]])[:per_row - 1]
            row = np.zeros((per_row, *self.image_shape), np.float32)
            row[0] = decoded[c]
            row[1:1 + len(pick)] = np.asarray(x)[pick].reshape(-1, *self.image_shape)
            rows.append(row)
        return np.concatenate(rows)

    def save_clusters(self, x, y, path) -> Path:
        """`cluster_rows` as a figure, each row named by its head's label and its size."""
        from tinygen import plotting
        names = self.cluster_labels(x, y)
        sizes = np.bincount(self.q_y(x).argmax(axis=1), minlength=self.cfg.clusters)
        return plotting.save_labelled_grid(
            self.cluster_rows(x), path, nrow=10,
            row_labels=[f"cluster {k}: '{names[k]}', {sizes[k]} images" if sizes[k] else
                        f"cluster {k}: empty" for k in range(self.cfg.clusters)],
            col_labels=["decoded", "head"] + ["" for _ in range(8)],
            title="one row per cluster k: g(y = e_k, z = 0) decoded, then its head (the most "
                  "confident image), then its most confident members")

    def write_figures(self, out_dir) -> None:
        from tinygen import plotting
        super().write_figures(out_dir)
        out = Path(out_dir)
        k = self.cfg.clusters
        plotting.save_labelled_grid(
            self.style_grid(), out / "styles.png", nrow=k,
            row_labels=[f"style {i + 1}" for i in range(8)],
            col_labels=[f"y={c}" for c in range(k)],
            title="one style z ~ N(0, I) per row, decoded with every category y (column)")
        if self.labelled is not None:
            self.labelled.save(out)
        if self._head_pool is not None:
            x, y = self._head_pool
            self.save_clusters(x, y, out / "clusters.png")
            if self.cfg.latent == 2:
                plotting.save_scatter(
                    self.representation(x[:5000]), out / "codes.png", labels=y[:5000],
                    title=("r = W_c y + z" if self.heads else "style z")
                    + " of training images, coloured by digit")
