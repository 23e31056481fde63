"""The two-player loop that every adversarial model in tinygen shares.

A GAN (Goodfellow et al. 2014, "Generative Adversarial Nets") trains a generator G, which maps
noise z ~ p(z) to data, against a discriminator D, which tells real data from G's output:

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

Training alternates a **D phase** (k steps that ascend V in D's parameters) with a **G phase**
(one step that descends it in G's). This module owns the mechanics of that loop, the part every
GAN shares: what is held fixed, what is detached, which optimizer steps, the gradient norms,
and the health monitor. Each model file (`gan.py`, `dcgan.py`, `cgan.py`, ...) holds only the
paper's math: its networks, its D loss and its G loss, under the banners `train
discriminator` and `train generator`.

D works on logits. D returns l(x), and D(x) = sigmoid(l(x)). With softplus(l) = log(1 + e^l):

    -log D(x)      = softplus(-l)          -log(1 - D(x)) = softplus(l)

so every loss here is a softplus of a logit: finite for any l, where log(sigmoid(l)) becomes
log(0) = -inf as soon as sigmoid(l) underflows (l below about -104 in float32).

The two generator objectives (`objective=` below):

    minimax          G minimises  E_z[log(1 - D(G(z)))]  = -E_z softplus(l(G(z)))
    non-saturating   G minimises -E_z[log D(G(z))]       =  E_z softplus(-l(G(z)))

Both push D(G(z)) up and share the same fixed point, but their gradients with respect to the
fake logit l differ:

    d/dl  log(1 - sigmoid(l)) = -sigmoid(l)       = -D(G(z))
    d/dl -log sigmoid(l)      = -(1 - sigmoid(l)) = -(1 - D(G(z)))

Early in training G's samples are poor and D rejects them confidently: D(G(z)) is close to 0.
The minimax gradient is then close to 0 too, so G learns almost nothing exactly when it has the
most to learn; it *saturates*. The non-saturating gradient is close to -1 there, which is why
Goodfellow et al. (Section 3) train G with it in practice.

Holding one player fixed (see `frozen` below):

- **D phase.** G(z) is computed under `no_grad()`, which is `G(z).detach()` without recording
  G's graph at all: D's loss then has no path back to G's parameters, so backward() cannot give
  them a gradient, and only D's optimizer steps. Detaching is enough because a gradient can only
  reach a parameter through the graph.
- **G phase.** G's loss is computed through D, so the graph does run through D. D is
  `frozen`: its parameters stop requiring gradients for the step (backward computes no weight
  gradient for D: nothing to apply, and less work), and its batch-norm layers stop updating
  their running statistics. Only G's optimizer steps. So a G step leaves D's parameters *and
  buffers* bitwise unchanged, and a D step does the same for G; the tests check both.

Goodfellow et al.'s k (`d_steps`): each `train_step` is one D step on a fresh minibatch, and
every k-th also takes the G step, so the k D steps of the paper's Algorithm 1 see k different
minibatches, as there.

Read next: `gan.py`, the smallest model built on this skeleton; `health.py` for the monitor.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

import tinygen as tg
from tinygen import optim
from tinygen.autograd import AnomalyError, default_generator, detect_anomaly
from tinygen.models.health import HealthMonitor
from tinygen.models.improved import HistoricalAverage
from tinygen.nn import functional as F
from tinygen.train import Model

OBJECTIVES = ("nonsaturating", "minimax")


@dataclass
class Config:
    """The options every adversarial model has; a model's Config adds its own."""

    dataset: str = "ring8"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-4               # G's Adam learning rate
    lr_d: float = 2e-4             # D's Adam learning rate
    beta1: float = 0.5             # G's Adam beta1 (Radford et al.: 0.5, not 0.9)
    beta2: float = 0.999           # G's Adam beta2
    beta1_d: float = 0.5           # D's Adam beta1
    beta2_d: float = 0.999         # D's Adam beta2
    d_steps: int = 1               # k: D steps per G step (Goodfellow et al. used k = 1)
    objective: str = "nonsaturating"  # G's loss: nonsaturating (-log D(G(z))) or minimax
    latent: int = 100              # size of the noise z ~ N(0, I)
    historical_averaging: float = 0.0  # LAMBDA of each player's pull to its mean (0: off)
    seed: int = 0


# ----------------------------------------------------------------------------------------------
# The losses on D's logits.


def d_loss_bce(real_logits, fake_logits, real_target: float = 1.0):
    """-E_x[log D(x)] - E_z[log(1 - D(G(z)))]: D's side of V, as a loss to minimise.

    With real_target = alpha < 1 (one-sided label smoothing, `improved.py`) the real term is
    the cross-entropy against alpha: -E_x[alpha log D(x) + (1 - alpha) log(1 - D(x))].
    """
    real = F.softplus(-real_logits).mean()                              # -E log D(x)
    if real_target != 1.0:
        real = real_target * real + (1 - real_target) * F.softplus(real_logits).mean()
    return real + F.softplus(fake_logits).mean()                        # -E log(1 - D(G(z)))


def g_loss_bce(fake_logits, objective: str):
    """G's loss from D's logits on G(z): non-saturating or minimax (see the module docstring)."""
    if objective == "nonsaturating":
        return F.softplus(-fake_logits).mean()      # E_z[-log D(G(z))]
    if objective == "minimax":
        return -F.softplus(fake_logits).mean()      # E_z[log(1 - D(G(z)))]
    raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def d_loss_ls(real_out, fake_out):
    """Least squares GAN (Mao et al. 2017), D's side: 1/2 E_x[(D(x) - 1)^2] + 1/2 E[D(G(z))^2].

    D outputs a score, not a logit: real data is pushed to 1 and fakes to 0 by a quadratic,
    so a fake that D already rejects far past 0 still gets a gradient proportional to its
    distance, where the sigmoid's cross-entropy would have flattened out. The 1/2 is the
    LSGAN paper's (and CycleGAN's: it halves D's rate against G's).
    """
    return 0.5 * ((real_out - 1) ** 2).mean() + 0.5 * (fake_out ** 2).mean()


def g_loss_ls(fake_out):
    """Least squares GAN, G's side: E_z[(D(G(z)) - 1)^2], G pulls its fakes' scores to 1."""
    return ((fake_out - 1) ** 2).mean()


def d_stats(real_logits, fake_logits) -> dict:
    """Mean D(x) and D(G(z)): the health monitor's first two signs."""
    sig = tg.Tensor.sigmoid
    return {"d_real": float(sig(real_logits.detach()).data.mean()),
            "d_fake": float(sig(fake_logits.detach()).data.mean())}


# ----------------------------------------------------------------------------------------------
# Holding a player fixed.


@contextlib.contextmanager
def frozen(net):
    """Treat `net` as a fixed function for one step of the other player.

    Its parameters stop requiring gradients (so backward neither computes nor stores their
    gradients), and its batch-norm layers stop updating their running statistics. In training
    mode a batch-norm layer with `track_running_stats = False` still normalises with the
    batch's statistics, so the forward pass computes exactly what it would otherwise.
    """
    params = [p for p in net.parameters() if p.requires_grad]
    norms = [m for m in net.modules() if getattr(m, "track_running_stats", False)]
    for p in params:
        p.requires_grad = False
    for m in norms:
        m.track_running_stats = False
    try:
        yield net
    finally:
        for p in params:
            p.requires_grad = True
        for m in norms:
            m.track_running_stats = True


def grad_norm(params) -> float:
    """||g||_2 over the gradients of `params` (those that have one)."""
    total = sum(float(np.dot(p.grad.ravel(), p.grad.ravel())) for p in params
                if p.grad is not None)
    return math.sqrt(total)


# ----------------------------------------------------------------------------------------------
# The skeleton.


class Adversarial(Model):
    """Two players and their optimizers; `train_step` runs the D phase and the G phase.

    A subclass builds its two networks and passes them to `super().__init__(cfg, G, D)`; it
    defines

    - `fake(batch)`: G's output for a batch (G(z), or G(z, y) when conditioned);
    - `d_loss(batch, fake) -> (loss, stats)`: D's loss on the real batch and the fakes;
    - `g_loss(batch) -> (loss, stats)`: G's loss through D;

    where `stats` is a dict of floats for the log (`d_stats` gives mean D(x) and D(G(z))).
    """

    def __init__(self, cfg, G, D):
        super().__init__()
        self.G, self.D = G, D
        if cfg.d_steps < 1:
            raise ValueError(f"{type(self).__name__}: d_steps must be >= 1, got {cfg.d_steps}")
        if cfg.objective not in OBJECTIVES:
            raise ValueError(f"{type(self).__name__}: objective must be one of "
                             f"{', '.join(OBJECTIVES)}, got {cfg.objective!r}")
        self.cfg = cfg
        self.opt_G = optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.opt_D = optim.Adam(self.D.parameters(), lr=cfg.lr_d,
                                betas=(cfg.beta1_d, cfg.beta2_d))
        self.register_buffer("d_steps_taken", np.zeros((), np.int64))  # checkpointed, for k
        if cfg.historical_averaging < 0:
            raise ValueError(f"{type(self).__name__}: historical_averaging must be >= 0, got "
                             f"{cfg.historical_averaging}")
        self.history = {} if not cfg.historical_averaging else {    # Salimans et al. 3.3
            "g": HistoricalAverage(G.parameters(), cfg.historical_averaging),
            "d": HistoricalAverage(D.parameters(), cfg.historical_averaging)}
        self.monitor = HealthMonitor()
        self._last_g: dict = {}

    def noise(self, n: int):
        """z ~ N(0, I), (n, latent), drawn from tinygen's global generator (so seeded)."""
        return tg.randn(n, self.cfg.latent)

    # -- the loop ---------------------------------------------------------------------------
    def train_step(self, batch) -> dict:
        """One D step on `batch`; on every k-th call (k = d_steps) also one G step."""
        stats = self.d_step(batch)
        if int(self.d_steps_taken.data) % self.cfg.d_steps == 0:
            self._last_g = self.g_step(batch)
        return {**stats, **self._last_g}

    def d_step(self, batch) -> dict:
        # ---------------------------------------------------------------- train discriminator
        with tg.no_grad(), frozen(self.G):
            fake = self.fake(batch)                     # = G(z).detach(): no graph to G
        stats = self._step(self.D, self.opt_D, lambda: self.d_loss(batch, fake), "d")
        self.d_steps_taken.data += 1
        return stats

    def g_step(self, batch) -> dict:
        # ---------------------------------------------------------------- train generator
        with frozen(self.D):                            # D is a fixed function of G's output
            return self._step(self.G, self.opt_G, lambda: self.g_loss(batch), "g")

    def _step(self, net, opt, compute, who) -> dict:
        """One optimizer step of one player on the loss `compute()` returns."""
        rng = default_generator().bit_generator.state   # to replay the step if it fails
        loss, stats = compute()
        history = self.history.get(who)
        if history is not None:                          # + LAMBDA ||theta - mean_t theta||^2
            penalty = history.penalty()
            loss, stats = loss + penalty, {**stats, f"hist_{who}": penalty.item()}
        opt.zero_grad()
        loss.backward()
        norm = grad_norm(net.parameters())
        if not (math.isfinite(loss.item()) and math.isfinite(norm)):
            self._diagnose(compute, rng, who)
        opt.step()
        if history is not None:
            history.update()                             # the mean now includes this step
        return {f"loss_{who}": loss.item(), **stats, f"gnorm_{who}": norm}

    def _diagnose(self, compute, rng, who):
        """A loss or gradient became NaN/Inf: replay the step under detect_anomaly, which
        raises at the first op that produced it, naming the op and the model line."""
        default_generator().bit_generator.state = rng
        try:
            with detect_anomaly():
                compute()[0].backward()
        except AnomalyError as err:
            raise AnomalyError(f"training diverged in the {who.upper()} step: {err}") from None
        raise FloatingPointError(f"training diverged in the {who.upper()} step: non-finite "
                                 f"loss or gradient, but the replay was finite")

    # -- what fit's log interval and epoch end call ------------------------------------------
    def on_log(self, record: dict) -> None:
        """Add the monitor's probe to the log record and print any new warning."""
        self.monitor.observe(record, self.probe())

    def probe(self) -> dict:
        """Sample-quality numbers for the monitor; models override (see gan.py)."""
        return {}

    def write_figures(self, out_dir) -> None:
        from tinygen.models.health import plot_health
        plot_health(out_dir)

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, n: int) -> np.ndarray:
        with tg.no_grad():
            return self.generate(self.noise(n).data)
