"""Whole training steps: each model's own `train_step` against the same step in PyTorch.

    python benchmarks/bench_models.py                   # every model, about 5 minutes
    python benchmarks/bench_models.py --models dcgan gan --quick
    python benchmarks/bench_models.py --memory-only     # peak RSS and cold first steps only
    python benchmarks/bench_models.py --models aae_semi --backends   # Numba vs NumPy kernels

For every model with a CPU-sized default it builds the model from its `Config` (MNIST-shaped
batches of random images), copies its networks into PyTorch layer by layer (`to_torch`: the
same layers, weights and layouts), and times one optimisation step of each:

- tinygen: `model.train_step(batch)`, exactly what `tinygen train` runs;
- PyTorch: the same algorithm written in the benchmark (`TORCH_STEPS`): same networks, batch,
  losses and optimizer (Adam with the model's betas), same number of forward and backward
  passes. For the GANs that is a D step on a real and a detached fake batch, then a G step
  on fresh noise; for cyclegan and pix2pix, whose G translates an image instead of noise,
  the D step on real images against detached translations, then the G step on the papers'
  losses (cycle and L1 terms included).

Timing: contenders alternate in blocks after a pause and a timed warm-up
(`common.interleaved_medians`), the median of each is reported with the spread of the block
medians, and images/s is batch / median. Two more columns come from fresh processes, one per
model: the peak resident memory of 20 training steps, and the first step's time with an empty
Numba cache (compilation included), apart from the rest. Run it on an idle machine: another
job on these 2 cores changes the ratios by 10x.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from common import fmt, interleaved_medians, machine, markdown_table, save, try_torch

import tinygen as tg
from tinygen import kernels, models, nn
from tinygen.models import ssgan
from tinygen.models.cyclegan import ResidualBlock
from tinygen.models.pix2pix import UNet

MODELS = ["dcgan", "gan", "cgan", "ssgan", "aae", "aae_semi", "aae_cluster", "cyclegan",
          "pix2pix", "vae", "cvae", "ae", "classifier"]
# The CPU-sized MNIST configuration each model is benchmarked in (its README command's).
SETTINGS = {
    "dcgan": {"dataset": "mnist"},
    "gan": {"dataset": "mnist", "batch_size": 100, "latent": 100},
    "cgan": {"dataset": "mnist", "arch": "mlp", "batch_size": 100},
    "ssgan": {"dataset": "mnist"},
    "aae": {"dataset": "mnist"},
    "aae_semi": {"dataset": "mnist"},
    "aae_cluster": {"dataset": "mnist"},
    "cyclegan": {"dataset": "mnist"},
    "pix2pix": {"dataset": "mnist"},
    "vae": {"dataset": "mnist"},
    "cvae": {"dataset": "mnist"},
    "ae": {"dataset": "mnist"},
    "classifier": {"dataset": "mnist"},
}


def build(name):
    module = models.REGISTRY[name][0]
    cfg = module.Config(**SETTINGS[name])
    tg.manual_seed(0)
    model = models.build(name, cfg)
    if name in ("ssgan", "aae_semi", "aae_cluster"):   # labelled images (10 a class), head pool
        rng = np.random.default_rng(1)
        model.setup((rng.random((1000, 1, 28, 28)) < 0.2).astype(np.float32),
                    np.arange(1000) % 10)
    if name == "cyclegan":          # domain B: random 28x28 images, as many as the digits'
        rng = np.random.default_rng(2)
        model.set_domain_b("train", rng.random((1438, 1, 28, 28), dtype=np.float32),
                           np.arange(1438) % 10)
    return model, cfg


def batch_for(cfg, rng):
    x = (rng.random((cfg.batch_size, 1, 28, 28)) < 0.2).astype(np.float32)
    return x, rng.integers(0, 10, cfg.batch_size)


# ----------------------------------------------------------------------------------------------
# Networks copied into PyTorch, layer by layer.


def to_torch(torch, module):
    """The PyTorch twin of a tinygen Sequential (or single layer), with copied weights."""
    tnn = torch.nn
    if isinstance(module, nn.Sequential):
        return tnn.Sequential(*(to_torch(torch, m) for m in module))
    simple = {nn.ReLU: tnn.ReLU, nn.Tanh: tnn.Tanh, nn.Sigmoid: tnn.Sigmoid,
              nn.Flatten: tnn.Flatten, nn.Softplus: tnn.Softplus}
    if type(module) in simple:
        return simple[type(module)]()
    if isinstance(module, nn.GaussianNoise):
        return _torch_noise(torch, module.sigma)
    if isinstance(module, ResidualBlock | UNet):
        return _torch_composite(torch, module)
    if isinstance(module, nn.Linear) and hasattr(module, "weight_v"):   # weight norm
        twin = torch.nn.utils.parametrizations.weight_norm(
            tnn.Linear(*module.weight_v.shape[::-1], bias=module.bias is not None))
        g, v = twin.parametrizations.weight.original0, twin.parametrizations.weight.original1
        with torch.no_grad():
            g.copy_(torch.from_numpy(module.weight_g.data))
            v.copy_(torch.from_numpy(module.weight_v.data))
            if module.bias is not None:
                twin.bias.copy_(torch.from_numpy(module.bias.data))
        g.requires_grad_(module.weight_g.requires_grad)
        return twin
    if isinstance(module, nn.LeakyReLU):
        return tnn.LeakyReLU(module.kwargs["negative_slope"])
    if isinstance(module, nn.Dropout):
        return tnn.Dropout(module.p)
    if isinstance(module, nn.Unflatten):
        return tnn.Unflatten(module.dim, module.unflattened_size)
    if isinstance(module, nn.MaxPool2d):
        return tnn.MaxPool2d(module.kernel_size, module.stride, module.padding)
    if isinstance(module, nn.Linear):
        twin = tnn.Linear(*module.weight.shape[::-1], bias=module.bias is not None)
    elif isinstance(module, nn.Conv2d):
        twin = tnn.Conv2d(module.weight.shape[1], module.weight.shape[0],
                          module.weight.shape[2:], module.stride, module.padding)
    elif isinstance(module, nn.ConvTranspose2d):
        twin = tnn.ConvTranspose2d(module.weight.shape[0], module.weight.shape[1],
                                   module.weight.shape[2:], module.stride, module.padding)
    elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        kind = tnn.BatchNorm1d if isinstance(module, nn.BatchNorm1d) else tnn.BatchNorm2d
        twin = kind(module.num_features, module.eps, module.momentum)
    elif isinstance(module, nn.InstanceNorm2d):      # instance statistics in eval() too
        twin = tnn.InstanceNorm2d(module.num_features, module.eps,
                                  affine=module.weight is not None)
        if module.weight is None:
            return twin
    else:
        raise TypeError(f"to_torch: no PyTorch twin for {type(module).__name__}")
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(module.weight.data))
        if module.bias is not None:
            twin.bias.copy_(torch.from_numpy(module.bias.data))
    twin.weight.requires_grad_(module.weight.requires_grad)   # e.g. ssgan's frozen BN scale
    return twin


def _torch_noise(torch, sigma):
    """GaussianNoise's twin: x + N(0, sigma^2) in train() mode."""
    class GaussianNoise(torch.nn.Module):
        def forward(self, x):
            return x + sigma * torch.randn_like(x) if self.training else x
    return GaussianNoise()


def _torch_composite(torch, module):
    """CycleGAN's residual block (x + body(x)) and pix2pix's U-Net (skips by concatenation)."""
    if isinstance(module, ResidualBlock):
        class Residual(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.body = to_torch(torch, module.body)

            def forward(self, x):
                return x + self.body(x)
        return Residual()

    class UNetTwin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name in ("e1", "e2", "e3", "d3", "d2", "out"):
                setattr(self, name, to_torch(torch, getattr(module, name)))

        def forward(self, x):                  # as UNet.forward
            e1 = self.e1(x)
            e2 = self.e2(e1)
            d2 = self.d2(torch.cat([self.d3(self.e3(e2)), e2], 1))
            return self.out(torch.cat([d2, e1], 1))
    return UNetTwin()


def adam(torch, params, opt):
    group = opt.param_groups[0]
    return torch.optim.Adam(params, lr=group["lr"], betas=group["betas"], eps=group["eps"])


# ----------------------------------------------------------------------------------------------
# The same steps in PyTorch. Each factory returns a function of no arguments: one step.


def torch_gan(torch, model, cfg, x, y):
    F = torch.nn.functional
    G, D = to_torch(torch, model.G), to_torch(torch, model.D)
    opt_G, opt_D = adam(torch, G.parameters(), model.opt_G), adam(torch, D.parameters(),
                                                                 model.opt_D)
    real = torch.from_numpy(2 * x - 1 if model.tanh_output else x)
    onehot = torch.eye(10)[torch.from_numpy(y)]
    cond = getattr(model, "n_conditions", 0)
    conv = cfg.dataset == "mnist" and type(model).__name__ == "DCGAN"

    def g(z):
        out = G(torch.cat([z, onehot], 1) if cond else z)
        return out if conv else out.reshape(-1, 1, 28, 28)

    def d(images):
        flat = images if conv else images.flatten(1)
        return D(torch.cat([flat, onehot], 1) if cond else flat).reshape(-1)

    def step():
        with torch.no_grad():                                   # D step on G(z).detach()
            fake = g(torch.randn(len(x), cfg.latent))
        _minimise(opt_D, F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean())
        with _held(D):                                          # D held fixed in the G step
            _minimise(opt_G, F.softplus(-d(g(torch.randn(len(x), cfg.latent)))).mean())
    return step


def torch_ssgan(torch, model, cfg, x, y):
    """ssgan's step (`SSGANTwin.step`) on the fixed batch x; y is unused, as in the model."""
    twin, unl = SSGANTwin(torch, model), torch.from_numpy(x).flatten(1)
    return lambda: twin.step(unl)


class SSGANTwin:
    """ssgan's `train_step` in PyTorch, on copies of a set-up model's networks.

    The phases of `SSGAN.train_step` (tinygen/models/ssgan.py and adversarial.py), in order:
    D on [labelled, unlabelled, G(z).detach()] with G held fixed; the moving average of D's
    parameters (all of them, the frozen scales too, from their values at the copy); G by
    feature matching on D's last hidden layer, with D held fixed. It takes the model's
    labelled set (never a loader's labels), Adam settings and lr schedule. `rand` and
    `randperm` draw z and the labelled minibatch; a test swaps them to replay tinygen's draws.
    `ssgan_torch_twin.py` trains it on MNIST.
    """

    def __init__(self, torch, model):
        self.torch, self.cfg = torch, model.cfg
        self.G, self.D = to_torch(torch, model.G), to_torch(torch, model.D)
        self.opt_G = adam(torch, [p for p in self.G.parameters() if p.requires_grad],
                          model.opt_G)
        self.opt_D = adam(torch, [p for p in self.D.parameters() if p.requires_grad],
                          model.opt_D)
        self.average = [p.detach().clone() for p in self.D.parameters()]
        self.lab_x = torch.tensor(model.labelled.x.data)        # (N, 784), a copy
        self.lab_y = torch.tensor(model.labelled.y.data)
        self.rand, self.randperm = torch.rand, torch.randperm
        self.schedulers = []
        if self.cfg.lr_decay_from:                      # lr * min(1, (epochs - t) / (epochs - E))
            factor = partial(ssgan._linear_decay, start=self.cfg.lr_decay_from,
                             end=self.cfg.epochs)
            self.schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor)
                               for opt in (self.opt_D, self.opt_G)]

    def fake(self, n):
        return self.G(self.rand(n, self.cfg.latent))            # z ~ U(0, 1)^latent

    def d_loss(self, unl, fake, pick):
        """cross_entropy(l(x_lab), y) + 1/2 E[-log D(x)] + 1/2 E[-log(1 - D(G(z)))]."""
        F = self.torch.nn.functional
        logits = self.D(self.torch.cat([self.lab_x[pick], unl, fake]))      # (3N, K)
        l_lab, l_unl, l_fake = logits.split([len(pick), len(unl), len(fake)])
        lse_unl, lse_fake = l_unl.logsumexp(1), l_fake.logsumexp(1)         # log Z(x)
        sup = F.cross_entropy(l_lab, self.lab_y[pick])
        unsup = 0.5 * (F.softplus(lse_unl) - lse_unl).mean() + 0.5 * F.softplus(lse_fake).mean()
        stats = {"sup": sup.item(), "unsup": unsup.item(),
                 "d_real": lse_unl.detach().sigmoid().mean().item(),        # D(x) = Z / (Z + 1)
                 "d_fake": lse_fake.detach().sigmoid().mean().item()}
        return sup + unsup, stats

    def g_loss(self, unl):
        """||E f(x) - E f(G(z))||^2 on D[:-2] (after the last ReLU, before its noise)."""
        f = self.D[:-2]
        with self.torch.no_grad():
            f_real = f(unl)
        gap = f_real.mean(0) - f(self.fake(len(unl))).mean(0)                 # (250,)
        loss = (gap * gap).sum()
        return loss / len(gap) if self.cfg.fm_mean else loss

    # ---------------------------------------------------------------- train discriminator
    def d_step(self, unl) -> dict:
        with self.torch.no_grad(), _held(self.G):
            fake = self.fake(len(unl))          # = G(z).detach(), G's running stats untouched
        pick = self.randperm(len(self.lab_x))[:self.cfg.batch_size]  # as LabelledSet.batch
        loss, stats = self.d_loss(unl, fake, pick)
        _minimise(self.opt_D, loss)
        return {"loss_d": loss.item(), **stats}

    def update_average(self) -> None:
        with self.torch.no_grad():
            for a, p in zip(self.average, self.D.parameters(), strict=True):
                a.lerp_(p, 1 - self.cfg.ema)    # a <- a + (1 - decay)(p - a), ParameterAverage

    # ---------------------------------------------------------------- train generator
    def g_step(self, unl) -> dict:
        with _held(self.D):                     # D held fixed in the G step
            loss = self.g_loss(unl)
            _minimise(self.opt_G, loss)
        return {"loss_g": loss.item()}

    def step(self, unl) -> dict:
        """One `SSGAN.train_step` on the unlabelled images `unl`, (N, 784)."""
        stats = self.d_step(unl)
        self.update_average()
        return {**stats, **self.g_step(unl)}

    def end_epoch(self) -> None:
        for scheduler in self.schedulers:
            scheduler.step()

    def logits(self, x, averaged: bool = True):
        """D's logits in eval mode (no noise), with the averaged parameters or the raw ones,
        as `SSGAN.classify` computes them."""
        params, was = list(self.D.parameters()), self.D.training
        swap = self.average if averaged else []      # the raw D needs no swap
        saved = [p.detach().clone() for p in params[:len(swap)]]
        self.D.eval()
        try:
            with self.torch.no_grad():
                for p, a in zip(params[:len(swap)], swap, strict=True):
                    p.copy_(a)                  # swapped in, as `ParameterAverage.swapped_in`
                return self.D(x)
        finally:
            with self.torch.no_grad():
                for p, s in zip(params, saved, strict=False):    # no-op for the raw D
                    p.copy_(s)
            self.D.train(was)


class AAESemiTwin:
    """aae_semi's `train_step` in PyTorch, on copies of a set-up model's networks.

    The phases of `CategoricalAAE.train_step` (tinygen/models/aae_semi.py, adversarial.py), in
    order: reconstruction, BCE of g(softmax y, z) against the clean image (encoder and
    decoder); D_y and D_z on one-hot Cat(K) and N(0, I) samples against the detached codes;
    the encoder against both, with D_y and D_z held fixed; the classification phase on a
    minibatch of the model's labelled images (never a loader's labels). The encoder reads its
    input with the model's input noise in all three of its phases; Adam settings and the lr
    steps are the model's. `randn`, `randint` and `randperm` make every random draw; a test
    swaps them to replay tinygen's. `aae_torch_twin.py` trains it on MNIST.
    """

    def __init__(self, torch, model):
        self.torch, self.cfg = torch, model.cfg
        if self.cfg.heads or self.cfg.minibatch_kernels or self.cfg.optimizer != "adam":
            raise ValueError("AAESemiTwin: only the plain model (no heads, no minibatch "
                             "discrimination, Adam)")
        self.enc, self.dec = to_torch(torch, model.G), to_torch(torch, model.decoder)
        self.D_y, self.D_z = to_torch(torch, model.D.D_y), to_torch(torch, model.D.D_z)
        self.opt_AE = adam(torch, [*self.enc.parameters(), *self.dec.parameters()],
                           model.opt_AE)
        self.opt_D = adam(torch, [*self.D_y.parameters(), *self.D_z.parameters()], model.opt_D)
        self.opt_G = adam(torch, self.enc.parameters(), model.opt_G)
        self.opt_C = adam(torch, self.enc.parameters(), model.opt_C)
        self.opts = [self.opt_AE, self.opt_D, self.opt_G, self.opt_C]
        self.schedulers = [torch.optim.lr_scheduler.StepLR(o, self.cfg.lr_step,
                                                           self.cfg.lr_gamma)
                           for o in self.opts] if self.cfg.lr_step else []
        labelled = model.labelled
        self.lab_x = None if labelled is None else torch.tensor(labelled.x.data)   # copies
        self.lab_y = None if labelled is None else torch.tensor(labelled.y.data)
        self.randn, self.randint, self.randperm = torch.randn, torch.randint, torch.randperm

    def noisy(self, x):
        """x + N(0, input_noise^2), as `CategoricalAAE.noisy`."""
        sigma = self.cfg.input_noise
        return x + sigma * self.randn(x.shape) if sigma else x

    def codes(self, x):
        """(softmax q(y|x), z) of the (noisy) images x, (N, 784)."""
        h = self.enc(self.noisy(x))
        k = self.cfg.clusters
        return h[:, :k].softmax(1), h[:, k:]

    def step(self, x) -> dict:
        """One `CategoricalAAE.train_step` on the images `x`, (N, 784)."""
        F, torch, k = self.torch.nn.functional, self.torch, self.cfg.clusters
        y, z = self.codes(x)                                            # 1. reconstruction
        loss_rec = F.binary_cross_entropy_with_logits(self.dec(torch.cat([y, z], 1)), x)
        _minimise(self.opt_AE, loss_rec)
        with torch.no_grad():                                           # 2. D_y and D_z
            y, z = self.codes(x)
        y_prior = torch.eye(k)[self.randint(0, k, (len(x),))]
        z_prior = self.randn((len(x), self.cfg.latent))
        d_y = F.softplus(-self.D_y(y_prior)).mean() + F.softplus(self.D_y(y)).mean()
        d_z = F.softplus(-self.D_z(z_prior)).mean() + F.softplus(self.D_z(z)).mean()
        _minimise(self.opt_D, d_y + d_z)
        with _held(self.D_y), _held(self.D_z):                          # the encoder
            y, z = self.codes(x)
            loss_g = F.softplus(-self.D_y(y)).mean() + F.softplus(-self.D_z(z)).mean()
            _minimise(self.opt_G, loss_g)
        stats = {"loss_rec": loss_rec.item(), "loss_d": (d_y + d_z).item(),
                 "d_y": d_y.item(), "d_z": d_z.item(), "loss_g": loss_g.item()}
        if self.lab_x is not None:                                      # 3. classification
            pick = self.randperm(len(self.lab_x))[:self.cfg.batch_size]  # as LabelledSet.batch
            logits = self.enc(self.noisy(self.lab_x[pick]))[:, :k]
            loss_cls = F.cross_entropy(logits, self.lab_y[pick])
            _minimise(self.opt_C, loss_cls)
            stats["loss_cls"] = loss_cls.item()
        return stats

    def end_epoch(self) -> None:
        for scheduler in self.schedulers:
            scheduler.step()

    def q_y(self, x):
        """q(y|x) of clean images (no noise), as `CategoricalAAE.q_y`."""
        with self.torch.no_grad():
            return self.enc(x)[:, :self.cfg.clusters].softmax(1)


def torch_aae(torch, model, cfg, x, y):
    """aae's step: the reconstruction phase (encoder and decoder), then D on prior samples
    against the detached codes, then the encoder against a D held fixed."""
    F = torch.nn.functional
    enc, dec, D = (to_torch(torch, m) for m in (model.G, model.decoder, model.D))
    opt_AE = adam(torch, [*enc.parameters(), *dec.parameters()], model.opt_AE)
    opt_D, opt_G = adam(torch, D.parameters(), model.opt_D), adam(torch, enc.parameters(),
                                                                 model.opt_G)
    flat = torch.from_numpy(x).flatten(1)

    def step():
        _minimise(opt_AE, F.binary_cross_entropy_with_logits(dec(enc(flat)), flat))
        with torch.no_grad():
            codes = enc(flat)
        prior = torch.randn(len(flat), cfg.latent)
        _minimise(opt_D, F.softplus(-D(prior)).mean() + F.softplus(D(codes)).mean())
        with _held(D):
            _minimise(opt_G, F.softplus(-D(enc(flat))).mean())
    return step


def torch_aae_semi(torch, model, cfg, x, y):
    """aae_semi's (and aae_cluster's) step: reconstruction from (softmax y, z), D_y and D_z
    on Cat(K) x N(0, I) against the detached codes, the encoder against both, and (with
    labels) the classification phase on a minibatch of the labelled images."""
    F = torch.nn.functional
    enc, dec = to_torch(torch, model.G), to_torch(torch, model.decoder)
    D_y, D_z = to_torch(torch, model.D.D_y), to_torch(torch, model.D.D_z)
    opt_AE = adam(torch, [*enc.parameters(), *dec.parameters()], model.opt_AE)
    opt_D = adam(torch, [*D_y.parameters(), *D_z.parameters()], model.opt_D)
    opt_G, opt_C = adam(torch, enc.parameters(), model.opt_G), adam(torch, enc.parameters(),
                                                                   model.opt_C)
    flat, k = torch.from_numpy(x).flatten(1), cfg.clusters
    labelled = model.labelled

    def codes(images):
        h = enc(images)
        return h[:, :k].softmax(1), h[:, k:]

    def step():
        y_soft, z = codes(flat)
        _minimise(opt_AE, F.binary_cross_entropy_with_logits(dec(torch.cat([y_soft, z], 1)),
                                                             flat))
        with torch.no_grad():
            y_soft, z = codes(flat)
        y_prior = torch.eye(k)[torch.randint(0, k, (len(flat),))]
        z_prior = torch.randn(len(flat), cfg.latent)
        _minimise(opt_D, F.softplus(-D_y(y_prior)).mean() + F.softplus(D_y(y_soft)).mean()
                  + F.softplus(-D_z(z_prior)).mean() + F.softplus(D_z(z)).mean())
        with _held(D_y), _held(D_z):
            y_soft, z = codes(flat)
            _minimise(opt_G, F.softplus(-D_y(y_soft)).mean() + F.softplus(-D_z(z)).mean())
        if labelled is not None:
            pick = torch.randperm(len(labelled))[:len(flat)]
            images = torch.from_numpy(labelled.x.data)[pick]
            _minimise(opt_C, F.cross_entropy(enc(images)[:, :k],
                                             torch.from_numpy(labelled.y.data)[pick]))
    return step


def torch_cyclegan(torch, model, cfg, x, y):
    """cyclegan's step (least squares GAN, L1 cycle loss): domain B drawn at random, both
    Ds on real images against pooled fakes, then both Gs on Eq. 3 against the Ds held fixed.
    The lr schedule is left out: writing a number into Adam's groups costs nothing."""
    G_AB, G_BA = to_torch(torch, model.G.G_AB), to_torch(torch, model.G.G_BA)
    D_A, D_B = to_torch(torch, model.D.D_A), to_torch(torch, model.D.D_B)
    opt_G = adam(torch, [*G_AB.parameters(), *G_BA.parameters()], model.opt_G)
    opt_D = adam(torch, [*D_A.parameters(), *D_B.parameters()], model.opt_D)
    a, domain_b = torch.from_numpy(2 * x - 1), torch.from_numpy(model.domain_b("train")[0])
    pool_A, pool_B = (_TorchPool(torch, cfg.pool_size, x.shape[1:]) for _ in range(2))

    def ls_d(D, real, fake):
        return 0.5 * ((D(real) - 1) ** 2).mean() + 0.5 * (D(fake) ** 2).mean()

    def step():
        b = 2 * domain_b[torch.randint(0, len(domain_b), (len(a),))] - 1
        with torch.no_grad():
            fake_b, fake_a = pool_B.query(G_AB(a)), pool_A.query(G_BA(b))
        _minimise(opt_D, ls_d(D_B, b, fake_b) + ls_d(D_A, a, fake_a))
        with _held(D_A), _held(D_B):
            fake_b, fake_a = G_AB(a), G_BA(b)
            adv = ((D_B(fake_b) - 1) ** 2).mean() + ((D_A(fake_a) - 1) ** 2).mean()
            cycle = (G_BA(fake_b) - a).abs().mean() + (G_AB(fake_a) - b).abs().mean()
            _minimise(opt_G, adv + cfg.lambda_cycle * cycle)
    return step


class _TorchPool:
    """ImagePool's twin: the same per-image rule, on tensors."""

    def __init__(self, torch, size, shape):
        self.torch, self.size, self.count = torch, size, 0
        self.images = torch.zeros(size, *shape)

    def query(self, fakes):
        out = fakes.clone()
        for i in range(len(fakes)):
            if self.count < self.size:
                self.images[self.count] = fakes[i]
                self.count += 1
            elif self.torch.rand(()) < 0.5:
                j = int(self.torch.randint(self.size, ()))
                out[i] = self.images[j]
                self.images[j] = fakes[i]
        return out


def torch_pix2pix(torch, model, cfg, x, y):
    """pix2pix's step: the batch degraded to 7x7 and enlarged back (G's input), D on
    (input, target) against (input, G(input)), then G on lambda L1 + the non-saturating loss."""
    F = torch.nn.functional
    G, D = to_torch(torch, model.G), to_torch(torch, model.D)
    opt_G, opt_D = adam(torch, G.parameters(), model.opt_G), adam(torch, D.parameters(),
                                                                 model.opt_D)
    images = torch.from_numpy(x)

    def step():
        low = F.avg_pool2d(images, cfg.factor)                   # Pix2Pix.degrade
        inp = 2 * F.interpolate(low, scale_factor=cfg.factor, mode="nearest") - 1
        target = 2 * images - 1
        with torch.no_grad():
            fake = G(inp)
        _minimise(opt_D, 0.5 * (F.softplus(-D(torch.cat([inp, target], 1))).mean()
                                + F.softplus(D(torch.cat([inp, fake], 1))).mean()))
        with _held(D):
            out = G(inp)
            _minimise(opt_G, cfg.lambda_l1 * (out - target).abs().mean()
                      + cfg.lambda_gan * F.softplus(-D(torch.cat([inp, out], 1))).mean())
    return step


def _minimise(opt, loss):
    opt.zero_grad()
    loss.backward()
    opt.step()


class _held:
    """`with _held(net):` net is a fixed function, as in tinygen's `adversarial.frozen`: its
    parameters stop requiring gradients and its batch norms stop updating their running
    statistics (in train() mode they still normalise with the batch's own)."""

    def __init__(self, net):
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.norms = [m for m in net.modules() if getattr(m, "track_running_stats", False)]

    def __enter__(self):
        for p in self.params:
            p.requires_grad_(False)
        for m in self.norms:
            m.track_running_stats = False

    def __exit__(self, *exc):
        for p in self.params:
            p.requires_grad_(True)
        for m in self.norms:
            m.track_running_stats = True


def torch_vae(torch, model, cfg, x, y):
    F = torch.nn.functional
    enc, dec = to_torch(torch, model.encoder), to_torch(torch, model.decoder)
    opt = adam(torch, list(enc.parameters()) + list(dec.parameters()), model.opt)
    xt = torch.from_numpy(x)
    cond = getattr(model, "n_conditions", 0)
    c = torch.eye(10)[torch.from_numpy(y)]

    def step():
        h = torch.cat([xt.flatten(1), c], 1) if cond else xt.flatten(1)
        mu, logvar = enc(h).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = dec(torch.cat([z, c], 1) if cond else z)
        recon = F.binary_cross_entropy_with_logits(logits, xt.flatten(1),
                                                   reduction="none").sum(1).mean()
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
        loss = recon + kl
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def torch_ae(torch, model, cfg, x, y):
    F = torch.nn.functional
    enc, dec = to_torch(torch, model.encoder), to_torch(torch, model.decoder)
    opt = adam(torch, list(enc.parameters()) + list(dec.parameters()), model.opt)
    xt = torch.from_numpy(x)

    def step():
        logits = dec(enc(xt.flatten(1)))
        loss = F.binary_cross_entropy_with_logits(logits, xt.flatten(1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def torch_classifier(torch, model, cfg, x, y):
    from tinygen.models.classifier import PIXEL_MEAN, PIXEL_STD
    F = torch.nn.functional
    net = model.net
    conv, fc, out = to_torch(torch, net.conv), to_torch(torch, net.fc), to_torch(torch, net.out)
    drop = torch.nn.Dropout(net.drop.p)
    params = [*conv.parameters(), *fc.parameters(), *out.parameters()]
    opt = adam(torch, params, model.opt)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        logits = out(drop(torch.relu(fc(conv((xt - PIXEL_MEAN) / PIXEL_STD)))))
        loss = F.cross_entropy(logits, yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


TORCH_STEPS = {"dcgan": torch_gan, "gan": torch_gan, "cgan": torch_gan, "ssgan": torch_ssgan,
               "aae": torch_aae, "aae_semi": torch_aae_semi, "aae_cluster": torch_aae_semi,
               "cyclegan": torch_cyclegan, "pix2pix": torch_pix2pix,
               "vae": torch_vae, "cvae": torch_vae, "ae": torch_ae,
               "classifier": torch_classifier}


# ----------------------------------------------------------------------------------------------
# Fresh processes: peak memory and the cold first step.

CHILD = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {bench!r})
import numpy as np
from bench_models import batch_for, build
import tinygen as tg
model, cfg = build({name!r})
x, y = batch_for(cfg, np.random.default_rng(0))
batch = (tg.tensor(x), tg.tensor(y))
t1 = time.perf_counter()
model.train_step(batch)
t2 = time.perf_counter()
for _ in range({steps}):
    model.train_step(batch)
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent at fork,
# so every child would report the benchmark's own peak (PyTorch included).
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"import_build_s": t1 - t0, "first_step_s": t2 - t1, "total_s": t2 - t0,
                  "peak_rss_mb": int(hwm) / 1024}}))
"""


def fresh_process(name, steps, cache_dir=None) -> dict:
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    code = CHILD.format(bench=str(Path(__file__).parent), name=name, steps=steps)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    if done.returncode:
        raise RuntimeError(f"{name}: child process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--memory-only", action="store_true", help="only the fresh-process columns")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch threads")
    p.add_argument("--backends", action="store_true",
                   help="also time the same train_step on the NumPy reference kernels, "
                        "interleaved in the same process (what the Numba kernels win)")
    args = p.parse_args(argv)
    torch = try_torch(args.threads)
    info = machine()
    rows, record = [], {}
    for name in args.models:
        model, cfg = build(name)
        x, y = batch_for(cfg, np.random.default_rng(0))
        batch = (tg.tensor(x), tg.tensor(y))
        row = {"batch": cfg.batch_size}
        if not args.memory_only:
            fns = {"tinygen": lambda m=model, b=batch: m.train_step(b)}
            if args.backends:
                fns["reference"] = lambda m=model, b=batch: _on_reference(m, b)
            if torch is not None:
                fns["torch"] = TORCH_STEPS[name](torch, model, cfg, x, y)
            repeats = 6 if args.quick else 24
            block = 3 if args.quick else 6
            med, samples = interleaved_medians(fns, repeats, warmup=2, block=block,
                                               settle=0.3, warmup_s=0.3)
            for k, v in med.items():
                blocks = [np.median(samples[k][i:i + block])
                          for i in range(0, len(samples[k]), block)]
                row[f"{k}_ms"], row[f"{k}_spread"] = v, (min(blocks), max(blocks))
        with tempfile.TemporaryDirectory() as cold:
            first = fresh_process(name, steps=1, cache_dir=cold)   # empty Numba cache
        warm = fresh_process(name, steps=20)                        # the usual cache
        row.update(cold_first_step_s=first["first_step_s"], warm_first_step_s=warm["total_s"],
                   peak_rss_mb=warm["peak_rss_mb"])
        record[name] = row
        rows.append(_row(name, row))
        print(" | ".join(fmt(v) for v in rows[-1]), flush=True)
    print(f"\n{info['cpu']}, {info['cores']} cores, load average {info['load_average']:.2f}; "
          f"PyTorch {info.get('torch', 'not installed')} with {args.threads} threads\n")
    print(markdown_table(["model", "batch", "tinygen ms", "torch ms", "tinygen / torch",
                          "spread (block medians)", "img/s (tinygen)", "peak RSS MB",
                          "first step, empty cache (s)", "import + first step, warm (s)"],
                         rows))
    if args.backends and not args.memory_only:
        print("\nThe same train_step on each kernel backend, interleaved (ms, medians):\n")
        print(markdown_table(["model", "numba", "reference", "reference / numba"],
                             [[n, r["tinygen_ms"], r["reference_ms"],
                               r["reference_ms"] / r["tinygen_ms"]] for n, r in record.items()]))
    save("bench_models", {"machine": info, "models": record})


def _on_reference(model, batch):
    with kernels.use_backend("reference"):
        model.train_step(batch)


def _row(name, r):
    tg_ms, th_ms = r.get("tinygen_ms"), r.get("torch_ms")
    ratio = tg_ms / th_ms if tg_ms and th_ms else None
    spread = "-"
    if tg_ms is not None:
        lo, hi = r["tinygen_spread"]
        spread = f"{lo:.3g}-{hi:.3g}"
        if th_ms is not None:
            tlo, thi = r["torch_spread"]
            spread += f" / {tlo:.3g}-{thi:.3g}"
    ips = r["batch"] / tg_ms * 1e3 if tg_ms else None
    return [name, r["batch"], tg_ms, th_ms, ratio, spread, ips, round(r["peak_rss_mb"]),
            r["cold_first_step_s"], r["warm_first_step_s"]]


if __name__ == "__main__":
    sys.exit(main())
