"""Semi-supervised GAN: Salimans et al. 2016, "Improved Techniques for Training GANs", Section 5.

D becomes a classifier with K + 1 outputs, the K classes and "fake", and learns from three
kinds of data at once: a few labelled images, many unlabelled ones, and G's samples. The
trick that needs no extra output: give the fake class the fixed logit 0. Then with D's K
logits l_1..l_K(x) and Z(x) = sum_k exp l_k(x),

    p(y = k | x) = exp l_k / (Z + 1)          p(fake | x) = 1 / (Z + 1)
    D(x) = p(real | x) = Z / (Z + 1)                                       (the "logits trick")

and the class prediction is argmax_k l_k(x), the usual softmax classifier. With
LSE(x) = log Z(x) = logsumexp_k l_k(x) everything is a stable function of the logits:

    -log D(x)       = -LSE(x) + softplus(LSE(x))
    -log(1 - D(x))  =  softplus(LSE(x))

The D loss is L_supervised + L_unsupervised (the paper's equation in Section 5), written as the
authors' code computes it:

    L_supervised   = -E_{x,y ~ labelled} log p(y | x, y < K+1)  = cross_entropy(l(x), y)
    L_unsupervised = 1/2 E_{x ~ unlabelled}[-log D(x)] + 1/2 E_z[-log(1 - D(G(z)))]

and G is trained by feature matching (`improved.py`) on D's last hidden layer:
|| E f(x) - E f(G(z)) ||^2. The unlabelled images make D's features describe real digits;
the labelled ones only have to name the clusters those features already form.

The networks are the authors' MNIST set-up:

    D: x (784) -> GaussianNoise(0.3) -> [WN-Linear -> ReLU -> GaussianNoise(0.5)] for
       1000, 500, 250, 250, 250 units -> WN-Linear(250, 10)      (WN: weight norm)
    G: z ~ U(0, 1)^100 -> [Linear -> BN -> softplus] x 2 of 500 -> WN-Linear(500, 784) ->
       sigmoid (images in [0, 1], as the data)
    Adam, lr 0.003, beta1 0.5, batch 100 (100 labelled + 100 unlabelled + 100 fakes a step).

**Exactly `labels` labels are used** (100 by default, 10 per class, chosen by the seed). The
model keeps those images and labels, and nothing else that has a label: `train_step` reads
only the images of the loader's batch (`unlabelled = batch[0]`), never `batch[1]`. The tests
check both. The chosen indices are saved as `labelled.json` in the run's folder.

**Why D's hidden scales stay fixed.** In the authors' code only the output layer learns
weight norm's scale g; the hidden layers keep the g of the data-dependent init (`train_scale`
switches it on). The Gaussian noise is what stops D from memorising 100 labels, and it only
can if D cannot grow its activations past it: with a learned g it can. Here a first run with
every g learned stalled at about 20% test error after 6 epochs (epoch 4: 18.9%, 6: 20.9%; the
error of a D trained on the 100 labels alone, per the paper), with a supervised loss of
0.003 on the labelled images: memorised.

**G's batch norm.** The authors' G has no learned scale in its batch norms (their
`batch_norm(..., g=None)`): each hidden unit is normalised and shifted by a learned bias,
never rescaled. Here the scale is learned by default, as in any `BatchNorm1d`; `g_bn_scale
False` freezes it at 1, the authors' way. Measured both ways (README): without the scale,
seed 0 learned more slowly (raw test error 5.1% after 18 epochs against 3.2% for seed 1 with
it), then caught up (1.21% after 67 epochs against 1.26% for seed 1 at 67); with it, one run
of seed 0 had D win outright at epoch 14.5 (D(G(z)) down to 1e-4, the raw error from 3.75%
to 8-9% for six epochs, until G recovered). One seed each: neither is shown to be the
better choice.

The test error is measured with an exponential moving average of D's parameters (decay
`ema`, the authors' 0.9999: their average moves by 0.0001 (p - a) a step; it starts here at
the init, theirs at zero), as the authors' code does for its reported numbers; the raw D's
error is logged too. Over 10,000 steps the average lags a D that is still improving fast,
so for the first ~40 epochs it reads worse than the raw D (README).

**Adam's eps, and the mean in G's loss.** The authors' Adam divides by sqrt(v_hat + 1e-8), with
the 1e-8 *inside* the root, where PyTorch's (and tinygen's) divides by sqrt(v_hat) + eps. For a
weight whose gradient is well below 1e-4 (v_hat << 1e-8) theirs is m_hat / 1e-4, a damped step;
with eps = 1e-8 outside, the same weight moves by up to the full lr in whatever direction its
tiny, noisy gradient points (D's first-layer weights on MNIST's empty border see only the Gaussian
noise). `adam_eps` = 1e-4 behaves as theirs does on both sides of 1e-8 and within a factor
sqrt(2) around it. Their G loss is the *mean* of the squared feature gaps, 1/250 of the sum
used here, which makes G's gradients 250x smaller and so brings them nearer that damping too:
`fm_mean`. Both are off by default, as the README's older runs were made without them; its
three-seed 65-epoch runs use both (no seed had D win outright, against two of three without).

**The lr schedule.** The authors' MNIST script keeps lr 0.003 for all 300 epochs (the
default here). Their CIFAR-10 script holds it for 800 of 1200 epochs and then lowers it
linearly toward zero, lr_t = 0.003 min(1, 3 - t/400). `lr_decay_from` = E does that here:
both players' lr is held until epoch E, then falls linearly to reach zero at `epochs`,

    lr_t = lr * min(1, (epochs - t) / (epochs - E))           (t = 0, 1, ... the epoch)

which lets a run of a few hours end on small steps instead of stopping mid-stride.

Read next: `improved.py` for feature matching; `tinygen/nn/gan_layers.py` for weight norm and
the Gaussian-noise layer.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

import numpy as np

import tinygen as tg
from tinygen import nn, optim
from tinygen.autograd import default_generator
from tinygen.models import adversarial
from tinygen.models.adversarial import Adversarial
from tinygen.models.improved import ParameterAverage, feature_matching_loss
from tinygen.models.labelled import LabelledSet, check_label_count
from tinygen.nn import GaussianNoise, init_weight_norm_, weight_norm
from tinygen.nn import functional as F

D_HIDDEN = (1000, 500, 250, 250, 250)


@dataclass
class Config(adversarial.Config):
    dataset: str = "mnist"
    epochs: int = 100
    batch_size: int = 100          # unlabelled images a step (and as many labelled and fakes)
    lr: float = 3e-3
    lr_d: float = 3e-3
    latent: int = 100
    labels: int = 100              # labelled training images, the same number of each class
    g_hidden: int = 500            # units in each of G's two hidden layers
    noise_input: float = 0.3       # std of D's Gaussian noise on its input
    noise_hidden: float = 0.5      # ... and on each hidden layer
    train_scale: bool = False      # learn weight norm's g in D's hidden layers too
    g_bn_scale: bool = True        # learn G's batch-norm scale (False: none, as the authors')
    supervised_only: bool = False  # the baseline: D learns from the labelled images alone
    ema: float = 0.9999            # decay of the moving average of D used for the test error
    lr_decay_from: int = 0         # from this epoch the lr falls linearly to 0 at `epochs` (0: off)
    adam_eps: float = 1e-8         # both players' Adam eps (the authors' Adam: about 1e-4)
    fm_mean: bool = False          # G's loss as the mean over features, not the sum (the authors')
    n_classes: int = 10
    image_size: int = 28
    channels: int = 1


class SSGAN(Adversarial):
    takes_points = False

    def __init__(self, cfg: Config):
        check_label_count("ssgan", cfg.labels, cfg.n_classes)
        self.image_shape = (cfg.channels, cfg.image_size, cfg.image_size)
        d = int(np.prod(self.image_shape))
        layers, width = [GaussianNoise(cfg.noise_input)], d
        for h in D_HIDDEN:
            linear = weight_norm(nn.Linear(width, h))
            linear.weight_g.requires_grad = cfg.train_scale    # see `train_scale` above
            layers += [linear, nn.ReLU(), GaussianNoise(cfg.noise_hidden)]
            width = h
        D = nn.Sequential(*layers, weight_norm(nn.Linear(width, cfg.n_classes)))
        g = cfg.g_hidden
        norms = [nn.BatchNorm1d(g), nn.BatchNorm1d(g)]
        for bn in norms:
            bn.weight.requires_grad = cfg.g_bn_scale     # see `g_bn_scale` above
        G = nn.Sequential(nn.Linear(cfg.latent, g, bias=False), norms[0], nn.Softplus(),
                          nn.Linear(g, g, bias=False), norms[1], nn.Softplus(),
                          weight_norm(nn.Linear(g, d)), nn.Sigmoid())
        super().__init__(cfg, G, D)
        if not cfg.adam_eps >= 0:
            raise ValueError(f"ssgan: adam_eps must be >= 0, got {cfg.adam_eps}")
        for opt in (self.opt_D, self.opt_G):                   # see "Adam's eps" above
            for group in opt.param_groups:
                group["eps"] = cfg.adam_eps
        self.ema_D = ParameterAverage(D.parameters(), decay=cfg.ema)
        self.labelled = LabelledSet(cfg.labels, d, cfg.n_classes)   # filled in by `setup`
        if cfg.lr_decay_from:                              # see "The lr schedule" above
            if not 0 < cfg.lr_decay_from < cfg.epochs:
                raise ValueError(f"ssgan: lr_decay_from must be between 0 and epochs "
                                 f"({cfg.epochs}), got {cfg.lr_decay_from}")
            factor = partial(_linear_decay, start=cfg.lr_decay_from, end=cfg.epochs)
            self.sched_D, self.sched_G = (optim.lr_scheduler.LambdaLR(opt, factor)
                                          for opt in (self.opt_D, self.opt_G))

    def setup(self, x, y) -> None:
        """Choose the labelled images (seeded), keep them, and initialise D's weight norm
        from a batch of training images (Salimans & Kingma's data-dependent init)."""
        self.labelled.choose(x, y, seed=self.cfg.seed)
        x = np.asarray(x, np.float32).reshape(len(x), -1)
        rows = np.random.default_rng(self.cfg.seed).choice(len(x), min(500, len(x)), replace=False)
        # As in the authors' code: v ~ N(0, 0.1^2), and the init batch goes through D with its
        # Gaussian noise on, so each hidden unit's fixed scale g is set for noisy inputs.
        # (v's norm matters although only its direction is used: Adam's steps on v turn the
        # direction by about lr / ||v||, so N(0, 0.05^2) would turn it twice as fast.)
        self.D.train()
        init_weight_norm_(self.D, tg.tensor(x[rows]), v_std=0.1)
        self.ema_D.reset()                              # the average starts from the init

    def noise(self, n: int):
        """z ~ U(0, 1)^latent, as in the authors' code."""
        return tg.tensor(default_generator().random((n, self.cfg.latent), dtype=np.float32))

    def fake(self, batch):
        return self.G(self.noise(len(batch[0])))                          # (N, 784) in [0, 1]

    def end_epoch(self) -> None:
        for name in ("sched_D", "sched_G"):
            if hasattr(self, name):
                getattr(self, name).step()

    def train_step(self, batch) -> dict:
        if self.cfg.supervised_only:                        # no game: a plain classifier
            stats = self._step(self.D, self.opt_D, self.supervised_loss, "d")
            self.ema_D.update()
            return stats
        return super().train_step(batch)

    def supervised_loss(self):
        x_lab, y_lab = self.labelled.batch(self.cfg.batch_size)
        supervised = F.cross_entropy(self.D(x_lab), y_lab)   # -log p(y | x, y < K + 1)
        return supervised, {"sup": supervised.item()}

    # ---------------------------------------------------------------- train discriminator
    def d_loss(self, batch, fake):
        unlabelled = batch[0].flatten(1)                    # the images; batch[1] is unused
        x_lab, y_lab = self.labelled.batch(self.cfg.batch_size)
        n_lab, n_unl = len(x_lab), len(unlabelled)
        logits = self.D(tg.cat([x_lab, unlabelled, fake]))  # one pass for all three, (3N, K)
        l_lab, l_unl, l_fake = logits[:n_lab], logits[n_lab:n_lab + n_unl], logits[n_lab + n_unl:]
        lse_unl, lse_fake = l_unl.logsumexp(dim=1), l_fake.logsumexp(dim=1)     # log Z(x)
        supervised = F.cross_entropy(l_lab, y_lab)          # -log p(y | x, y < K + 1)
        unsupervised = 0.5 * (-lse_unl + F.softplus(lse_unl)).mean() \
            + 0.5 * F.softplus(lse_fake).mean()             # -log D(x), -log(1 - D(G(z)))
        stats = {"sup": supervised.item(), "unsup": unsupervised.item(),
                 "d_real": float(_sigmoid(lse_unl.data).mean()),   # D(x) = Z / (Z + 1)
                 "d_fake": float(_sigmoid(lse_fake.data).mean())}
        return supervised + unsupervised, stats

    def d_step(self, batch) -> dict:
        stats = super().d_step(batch)
        self.ema_D.update()                                 # the average used for testing
        return stats

    # ---------------------------------------------------------------- train generator
    def g_loss(self, batch):
        f = self.D[:-2]                 # D's last hidden layer: after its ReLU, before its noise
        with tg.no_grad():
            f_real = f(batch[0].flatten(1))
        loss = feature_matching_loss(f_real, f(self.fake(batch)))   # ||E f(x) - E f(G(z))||^2
        return (loss / f_real.shape[1] if self.cfg.fm_mean else loss), {}

    # -- evaluation and sampling ----------------------------------------------------------
    def classify(self, x, averaged: bool = True) -> np.ndarray:
        """Predicted classes argmax_k l_k(x), with the averaged D (or the raw one)."""
        was = self.D.training
        self.D.eval()
        try:
            with tg.no_grad(), (self.ema_D.swapped_in() if averaged else nullcontext()):
                return self.D(tg.tensor(np.asarray(x, np.float32)).flatten(1)).data.argmax(1)
        finally:
            self.D.train(was)

    def evaluate(self, loader) -> dict:
        wrong = wrong_raw = total = 0
        for x, y in loader:
            y = np.asarray(y.data if isinstance(y, tg.Tensor) else y)
            x = x.data if isinstance(x, tg.Tensor) else x
            wrong += int((self.classify(x) != y).sum())
            wrong_raw += int((self.classify(x, averaged=False) != y).sum())
            total += len(y)
        return {"error": wrong / total, "error_raw": wrong_raw / total}

    def generate(self, z) -> np.ndarray:
        with tg.no_grad():
            return self.G(tg.tensor(np.asarray(z, np.float32))).data.reshape(-1,
                                                                              *self.image_shape)

    def write_figures(self, out_dir) -> None:
        super().write_figures(out_dir)
        self.labelled.save(out_dir)                         # which labels this run saw


def _linear_decay(epoch: int, start: int, end: int) -> float:
    """The lr factor at `epoch`: 1 until `start`, then linearly down to 0 at `end`."""
    return min(1.0, (end - epoch) / (end - start))


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))
