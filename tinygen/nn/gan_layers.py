"""Three layers that "Improved Techniques for Training GANs" (Salimans et al. 2016) relies on.

- **Weight normalization** (Salimans & Kingma 2016) for the semi-supervised D: each weight
  vector is split into a direction and a length, w = g v / ||v||, and the optimizer trains g
  and v. `weight_norm(module)` does this to any Linear or Conv layer, with PyTorch's names
  (`weight_g`, `weight_v`), and `init_weight_norm_(model, x)` is the paper's data-dependent
  initialisation.
- **GaussianNoise(sigma)**, also for that D: x + N(0, sigma^2) noise, only in `train()` mode.
- **VirtualBatchNorm1d / 2d** for G: batch norm whose statistics come from a fixed reference
  batch plus the example itself, so no example's output depends on the rest of its batch.

Everything is composed from engine ops, so autodiff derives the gradients and
`tests/test_gan_layers.py` checks them with central differences. Read
`tinygen/models/improved.py` next for the training techniques that use these layers.
"""

from __future__ import annotations

import numpy as np

from tinygen.autograd import DEFAULT_DTYPE, Tensor, default_generator, no_grad
from tinygen.nn import functional as F
from tinygen.nn import init
from tinygen.nn.layers import Conv2d, ConvTranspose2d, Linear
from tinygen.nn.module import Module, Parameter
from tinygen.ops import cat

# ----------------------------------------------------------------------------------------------
# Weight normalization (Salimans & Kingma 2016).
#
# A unit computes y = phi(w . x + b). Weight norm writes its weight vector as
#
#     w = g v / ||v||                                                        (eq. 2)
#
# so the length ||w|| = g is a parameter of its own, and the direction v / ||v|| is another.
# Gradient descent on (g, v) then sees (eq. 3 and 4)
#
#     dL/dg = dL/dw . v / ||v||,        dL/dv = (g / ||v||) M_w dL/dw,
#
# where M_w = I - w w^T / ||w||^2 projects away from w. Two things follow. The step in v is
# scaled by g / ||v|| and stripped of its component along w, which conditions the problem
# much as batch norm does, but with no batch statistics, so no example depends on another.
# And v's gradient is orthogonal to v, so ||v|| can only grow, and grows fastest when the
# gradients are noisy: the effective step g / ||v|| then shrinks by itself.
# We never write eq. 3: autodiff derives it from the one line in `WeightNorm.compute_weight`.
#
# Which entries make up "one weight vector" is `dim`, as in PyTorch: the norm runs over every
# dim except `dim`, and g has one entry per index of that dim. With dim=0 that is one g per
# output unit for Linear (out, in) and Conv2d (out, in, kh, kw). ConvTranspose2d stores its
# weight as (in, out, kh, kw), so dim=0 would give one g per *input* channel (PyTorch's
# default does exactly that); pass dim=1 for one g per output channel, as the paper means.


def _norm_except(v: Tensor, dim) -> Tensor:
    """||v|| over every dim except `dim`, kept for broadcasting: (out, 1, ...) for dim=0.

    dim=None is the norm of the whole tensor, a scalar (PyTorch's meaning of dim=None)."""
    if dim is None:
        return (v * v).sum().sqrt()
    others = tuple(a for a in range(v.ndim) if a != dim)
    return (v * v).sum(dim=others, keepdim=True).sqrt()


class WeightNorm:
    """The forward pre-hook that `weight_norm` registers: before each call it rebuilds
    `module.<name>` from `<name>_g` and `<name>_v`, so the layer's own forward is unchanged."""

    def __init__(self, name: str, dim):
        self.name, self.dim = name, dim
        self.init_pending = False          # set by init_weight_norm_: initialise on next input
        self.v_std = None

    def compute_weight(self, module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        # w = g v / ||v||  (eq. 2), as v * (g / ||v||): the division runs on one number per
        # unit and only the multiply on the whole weight (a full-size pass and its VJP less)
        return v * (g / _norm_except(v, self.dim))

    def __call__(self, module, args):
        if self.init_pending:
            self._init_from_batch(module, args[0])
            self.init_pending = False
        setattr(module, self.name, self.compute_weight(module))

    def _init_from_batch(self, module, x):
        # Data-dependent init (section 3): with g = 1 and b = 0 the unit's pre-activation is
        #     t = v . x / ||v||,
        # and choosing g <- 1 / sigma[t], b <- -mu[t] / sigma[t] (statistics over the batch
        # and, for convs, every position) makes w . x + b = (t - mu[t]) / sigma[t]: zero mean
        # and unit variance per unit on this batch, like batch norm at step 0 only.
        unit_axis = _unit_axes(module, self)
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        if self.v_std is not None:
            init.normal_(v, 0.0, self.v_std)                 # v ~ N(0, 0.05^2) in the paper
        bias = module.bias
        module.weight, module.bias = v / _norm_except(v, self.dim), None     # g = 1, b = 0
        try:
            t = module.forward(x).data                       # (N, out) or (N, out, H, W)
        finally:
            module.bias = bias
        others = tuple(a for a in range(t.ndim) if a != unit_axis % t.ndim)
        mu, sigma = t.mean(axis=others), t.std(axis=others)  # (out,) each
        if np.any(sigma == 0):
            raise ValueError(f"init_weight_norm_: {type(module).__name__} unit(s) "
                             f"{np.flatnonzero(sigma == 0).tolist()} have the same "
                             f"pre-activation for every input of shape {x.shape}; the init "
                             f"batch needs more than one distinct example")
        g.data[...] = (1 / sigma).reshape(g.shape)           # g <- 1 / sigma[t]
        if bias is not None:
            bias.data[...] = -mu / sigma                     # b <- -mu[t] / sigma[t]


def _unit_axes(module, hook) -> int:
    """The output axis that holds the units (checking that g has one entry per unit)."""
    if hook.name != "weight" or not isinstance(module, Linear | Conv2d | ConvTranspose2d):
        raise ValueError(f"init_weight_norm_: data-dependent init knows Linear, Conv2d and "
                         f"ConvTranspose2d weights, got {type(module).__name__}.{hook.name}")
    weight_dim = 1 if isinstance(module, ConvTranspose2d) else 0
    if hook.dim != weight_dim:
        raise ValueError(f"init_weight_norm_: {type(module).__name__} keeps its output units "
                         f"in weight dim {weight_dim}, but weight_norm was applied with "
                         f"dim={hook.dim}; the init needs one g per output unit, so use "
                         f"weight_norm(module, dim={weight_dim})")
    return -1 if isinstance(module, Linear) else 1


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparameterise `module.<name>` as g v / ||v|| (Salimans & Kingma 2016), in place.

    The parameter `weight` is replaced by `weight_g` (shape (out, 1, ...) for dim=0) and
    `weight_v` (the weight's shape), which is what `parameters()` and `state_dict()` now hold,
    under PyTorch's names, so a state_dict from `torch.nn.utils.weight_norm` loads as is.
    g starts at ||v||, so the layer computes exactly what it did before. `module.weight`
    becomes a plain tensor rebuilt before every forward by a `WeightNorm` pre-hook.
    Initialise the weight (e.g. `init.normal_`) *before* this call, or use
    `init_weight_norm_`. Returns the module, so `weight_norm(nn.Linear(784, 1000))` composes.
    """
    w = getattr(module, name, None)
    if any(isinstance(h, WeightNorm) and h.name == name for h in module._forward_pre_hooks):
        raise ValueError(f"weight_norm: {type(module).__name__}.{name} is already weight-normed")
    if not isinstance(w, Parameter):
        have = [n for n, p in module._walk() if isinstance(p, Parameter)]
        raise ValueError(f"weight_norm: {type(module).__name__} has no parameter {name!r} "
                         f"(its parameters: {have})")
    if dim is not None:
        if not -w.ndim <= dim < w.ndim:
            raise ValueError(f"weight_norm: dim={dim} is out of range for {type(module).__name__}"
                             f".{name} of shape {w.shape}")
        dim %= w.ndim
    hook = WeightNorm(name, dim)
    delattr(module, name)
    setattr(module, name + "_g", Parameter(_norm_except(Tensor(w.data), dim).data))
    setattr(module, name + "_v", Parameter(w.data.copy()))
    with no_grad():
        setattr(module, name, hook.compute_weight(module))   # readable before the first call
    module.register_forward_pre_hook(hook)
    return module


def init_weight_norm_(model: Module, x, v_std: float | None = 0.05) -> Tensor:
    """Data-dependent init (Salimans & Kingma, section 3) of every weight-normed layer in
    `model`, from one batch `x`. Returns model(x).

    One forward pass, layer by layer: each weight-normed Linear or Conv first draws
    v ~ N(0, v_std^2) (None keeps the current v), then sets g and its bias from the input it
    actually receives, so that its output has mean 0 and std 1 per unit on this batch; the
    layers after it then see already-initialised inputs. Works on a single layer too. The
    model's mode is left as it is: put it in eval() first if noise or dropout should be off.
    """
    hooks = [(name, h) for name, m in model.named_modules() for h in m._forward_pre_hooks
             if isinstance(h, WeightNorm)]
    if not hooks:
        raise ValueError(f"init_weight_norm_: {type(model).__name__} has no weight-normed "
                         f"layer; call weight_norm(layer) first")
    for _, h in hooks:
        h.init_pending, h.v_std = True, v_std
    try:
        with no_grad():
            out = model(x)
    finally:
        missed = [name or type(model).__name__ for name, h in hooks if h.init_pending]
        for _, h in hooks:
            h.init_pending = False
    if missed:
        raise ValueError(f"init_weight_norm_: model(x) never called the weight-normed "
                         f"layer(s) {missed}, so they were not initialised")
    return out


# ----------------------------------------------------------------------------------------------
# Gaussian noise.


class GaussianNoise(Module):
    """x + eps, eps ~ N(0, sigma^2) elementwise, in train() mode; the identity in eval().

    A regulariser like dropout: the semi-supervised GAN's D adds it to its input (sigma 0.3)
    and to every hidden layer (sigma 0.5), so D cannot rely on fine detail that G would have
    to copy exactly. The noise comes from tinygen's default generator, as dropout's masks do,
    so `tg.manual_seed` makes a run reproducible. It is a constant in the graph: dy/dx = 1.
    """

    def __init__(self, sigma: float):
        super().__init__()
        if not sigma >= 0:              # also refuses NaN
            raise ValueError(f"GaussianNoise: sigma must be >= 0, got {sigma}")
        self.sigma = sigma

    def forward(self, x):
        if not self.training or self.sigma == 0:
            return x
        eps = default_generator().standard_normal(x.shape, dtype=x.dtype)
        return x + Tensor(self.sigma * eps)

    def extra_repr(self):
        return f"sigma={self.sigma}"


# ----------------------------------------------------------------------------------------------
# Virtual batch normalization (Salimans et al. 2016, section 3.5).


class _VirtualBatchNorm(Module):
    """Batch norm with the statistics of a fixed reference batch plus the example itself.

    **Why.** Batch norm normalises each example with its batch's mean and variance, so G's
    output for one z depends on the other z's drawn with it: the samples of a batch are
    coupled, and those batch-to-batch fluctuations can dominate what G draws. Virtual batch
    norm fixes a reference batch once, at the start of training, and normalises each example
    x_i as if it had been appended to that batch (n = ref_size examples; m_i and s_i are x_i's
    own mean and mean square over positions, or the value itself for (N, C) input):

        mu_i  = (n mu_ref + m_i) / (n + 1)              mu_ref  = E_ref[x]
        E2_i  = (n E2_ref + s_i) / (n + 1)              E2_ref  = E_ref[x^2]
        y_i   = gamma (x_i - mu_i) / sqrt(E2_i - mu_i^2 + eps) + beta

    Those are exactly the moments of the pooled set {reference batch, x_i}, so the variance is
    never negative (up to rounding, which eps absorbs). y_i depends on x_i and the reference
    batch, never on x_j. The reference rows themselves are normalised with mu_ref and E2_ref
    alone (plain batch norm on them). There are no running statistics: train() and eval()
    compute the same thing.

    **How to call it.** The reference rows travel through G with the real batch. The layer's
    input holds the reference batch in its first `ref_size` rows and the batch after them; G's
    caller prepends its fixed reference noise and drops the reference rows at the end:

        z_ref = tg.randn(64, nz)               # drawn once, kept (and saved) for all training
        x_fake = G(tg.cat([z_ref, z], dim=0))[64:]

    Every VBN layer in G has the same ref_size, and every other layer must treat rows
    independently (Linear, Conv, activations; not BatchNorm or minibatch discrimination).

    **Cost.** The reference statistics must be recomputed at every step, with G's current
    weights, and gradients flow through them (mu_ref moves with G's weights, and that is the
    point): every step runs an extra forward and backward of the reference batch through G,
    about (ref_size + N) / N times the work of batch norm, twice for ref_size = N = 64, which
    is why the paper uses VBN in G only. A rough
    measurement agrees: G = Linear(100, 256), norm, ReLU, Linear(256, 784), tanh, float32,
    one forward + backward step, median of 200 `time.perf_counter` timings, on a 2-core
    "Intel(R) Xeon(R) Processor" that was running other jobs: BN 1.13 ms, VBN 2.28 ms, a ratio
    of 2.0, with one BLAS thread (OPENBLAS_NUM_THREADS=1). With two BLAS threads the medians
    were swamped by waits for the busy cores (2.4 between the fastest steps, 6 to 11 between
    medians), so that number says more about the machine than about VBN.
    """

    _input_ndims: tuple = ()
    _layout = ""

    def __init__(self, num_features: int, ref_size: int, eps: float = 1e-5,
                 affine: bool = True, dtype=None):
        super().__init__()
        if num_features < 1 or ref_size < 1:
            raise ValueError(f"{type(self).__name__}: num_features and ref_size must be "
                             f">= 1, got {num_features} and {ref_size}")
        self.num_features, self.ref_size, self.eps = num_features, ref_size, eps
        dtype = dtype or DEFAULT_DTYPE
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None   # gamma
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine else None    # beta

    def forward(self, x):
        self._check(x)
        n = self.ref_size
        ref, rest = x[:n], x[n:]                          # (n, C, ...), (N, C, ...)
        pos = tuple(range(2, x.ndim))                     # positions; () for (N, C) input
        # The reference batch's moments, per channel: one (1, C, 1, 1) tensor each.
        mu_ref = ref.mean(dim=(0, *pos), keepdim=True)
        e2_ref = (ref * ref).mean(dim=(0, *pos), keepdim=True)
        y_ref = (ref - mu_ref) / (e2_ref - mu_ref * mu_ref + self.eps).sqrt()
        # Each example's own moments (a mean over no axes is the value itself), then pooled.
        m = rest.mean(dim=pos, keepdim=True)              # (N, C, 1, 1)
        s = (rest * rest).mean(dim=pos, keepdim=True)
        mu = (n * mu_ref + m) / (n + 1)                   # mu_i
        e2 = (n * e2_ref + s) / (n + 1)                   # E2_i
        y_rest = (rest - mu) / (e2 - mu * mu + self.eps).sqrt()
        y = cat([y_ref, y_rest], dim=0)                   # (n + N, C, ...), input's row order
        return F._affine(y, self.weight, self.bias, (1, -1) + (1,) * len(pos))

    def _check(self, x):
        name = f"{type(self).__name__}({self.num_features}, ref_size={self.ref_size})"
        if x.ndim not in self._input_ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected input {self._layout} with "
                             f"{self.num_features} channels in dim 1, got shape {x.shape}")
        if x.shape[0] < self.ref_size:
            raise ValueError(f"{name}: input has {x.shape[0]} rows, fewer than the "
                             f"{self.ref_size} reference rows it must start with "
                             f"(got shape {x.shape}); prepend the reference batch")

    def extra_repr(self):
        return f"{self.num_features}, ref_size={self.ref_size}, eps={self.eps}"


class VirtualBatchNorm1d(_VirtualBatchNorm):
    """Virtual batch norm of (ref_size + N, C) or (ref_size + N, C, L); see `_VirtualBatchNorm`."""

    _input_ndims = (2, 3)
    _layout = "(ref_size + N, C) or (ref_size + N, C, L)"


class VirtualBatchNorm2d(_VirtualBatchNorm):
    """Virtual batch norm of (ref_size + N, C, H, W), statistics per channel over positions;
    see `_VirtualBatchNorm`."""

    _input_ndims = (4,)
    _layout = "(ref_size + N, C, H, W)"
