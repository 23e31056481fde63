"""Neural-network layers as functions of tensors: `import tinygen.nn.functional as F`.

Most layers here are *compositions* of engine ops, so their gradients come for free and are
exactly as trustworthy as the ops: layer norm is a mean, a variance and a division. Seven are
primitives with their own VJPs, because composing them would be slow or would hide the idea:

- `linear` is `x @ W^T + b` with one joint VJP for x, W and b (read `linear_vjp`): composed
  from `matmul`, `.T` and `add` it computes the same products but pays for an extra op and a
  copy of the weight gradient, which made small layers 30% slower.
- `conv2d` and `conv_transpose2d` call the kernels in `tinygen/kernels/` (read `reference.py`
  there to see im2col). Their VJPs are the same kernels run the other way round: the gradient of
  a convolution with respect to its input *is* a transposed convolution. Each has one joint VJP
  that returns the input, weight (and bias) gradients from a single kernel call, because they
  all read the same output gradient; conv2d adds its bias inside the kernel too, and keeps its
  im2col matrix for the backward (`saves=True`, see `conv2d_fwd`).
- `max_pool2d` / `avg_pool2d` loop over the kernel's taps, never over pixels.
- `batch_norm` in training folds the normalisation into one scale and one shift per channel,
  and its VJP is the closed form (read `batch_norm_backward` in `tinygen/kernels/reference.py`;
  the fused loops are in `numba_pointwise.py`). Composed from engine ops it
  made a pass over the activations per op and per broadcast sum, about ten forward and more
  backward; `batch_norm_composed` keeps that version as its readable twin, and the tests
  hold the two equal.
- `minibatch_closeness`, minibatch discrimination's o(x), compares every pair of a batch:
  composed, it is a pass per op over an (N, N, B, C) array; its kernels visit each pair once.

Names, arguments and weight layouts are PyTorch's, so a PyTorch weight copied in gives the same
output: Linear `(out, in)`, Conv2d `(out, in, kh, kw)`, ConvTranspose2d `(in, out, kh, kw)`.
The losses live in `tinygen/nn/losses.py` and are re-exported here.
"""

from __future__ import annotations

import itertools

import numpy as np

from tinygen import kernels
from tinygen.autograd import Tensor, default_generator
from tinygen.nn.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    kl_normal,
    l1_loss,
    mse_loss,
    nll_loss,
)
from tinygen.ops import (
    elu,
    leaky_relu,
    log_softmax,
    logsigmoid,
    pad,
    primitive,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv2d", "conv_transpose2d", "cross_entropy", "dropout", "elu", "embedding",
    "instance_norm", "interpolate", "kl_normal", "l1_loss", "layer_norm", "leaky_relu", "linear",
    "log_softmax", "logsigmoid", "max_pool2d", "mse_loss", "nll_loss", "pad", "relu", "sigmoid",
    "softmax", "softplus", "tanh",
]


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _check_sizes(op, minimum, **sizes):
    """Each argument must be an int (or a pair of ints) >= minimum; the error names the op
    and the argument. Without it `Conv2d(1, 2, 0)` died in init with a ZeroDivisionError."""
    for name, v in sizes.items():
        values = (v,) if np.isscalar(v) else tuple(v)
        if len(values) not in (1, 2) or not all(
                isinstance(n, int | np.integer) and not isinstance(n, bool) for n in values):
            raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        if any(n < minimum for n in values):
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")


def _check_ndim(op, x, ndim, layout):
    if x.ndim != ndim:
        raise ValueError(f"{op}: expected a {ndim}-D input {layout}, got shape {x.shape}")


# ----------------------------------------------------------------------------------------------
# Dense layers.


def linear_fwd(x, w, b=None):
    y = x @ w.T                            # (..., in) @ (in, out) -> (..., out), a fresh array
    if b is not None:
        y += b                             # in place: no second (..., out) array
    return y


def linear_vjp(needs, g, out, x, w, b=None):
    # The same three products as composing `x @ W.T + b` gives, minus two costs: dL/dW comes
    # out in W's own (out, in) layout instead of as a transposed view that has to be copied,
    # and there is no separate add op. 30% off a Linear(400, 20) step at batch 128.
    g2 = g.reshape(-1, g.shape[-1])        # every leading dim is a batch dim
    gx = g @ w if needs[0] else None                                      # dL/dx = G W
    gw = g2.T @ x.reshape(-1, x.shape[-1]) if needs[1] else None          # dL/dW = G^T X
    if b is None:
        return gx, gw
    return gx, gw, (g2.sum(axis=0) if needs[2] else None)                 # dL/db = sum of G


linear_p = primitive("linear", linear_fwd, joint_vjp=linear_vjp)


def linear(x, weight, bias=None):
    """y = x W^T + b with W of shape (out, in), as `torch.nn.functional.linear`."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features but weight {weight.shape} "
                         f"expects {weight.shape[1]} (input shape {x.shape})")
    return linear_p(x, weight) if bias is None else linear_p(x, weight, bias)


def embedding(indices, weight):
    """Rows of `weight` (num_embeddings, dim) picked by integer `indices`; any index shape."""
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= weight.shape[0]):
        raise IndexError(f"embedding: indices must lie in [0, {weight.shape[0]}), got range "
                         f"[{idx.min()}, {idx.max()}]")
    return weight[idx]                    # backward scatter-adds rows (repeats accumulate)


# ----------------------------------------------------------------------------------------------
# Convolutions: primitives whose forward and both VJPs are kernels.


def conv2d_fwd(x, w, b=None, *, stride, padding, dilation, save):
    # When the graph is recorded (save=True) the kernel also returns its im2col matrix, which
    # the backward reuses for dL/dw instead of building it again.
    if save:
        return kernels.conv2d_forward(x, w, stride, padding, dilation, bias=b, save=True)
    return kernels.conv2d_forward(x, w, stride, padding, dilation, bias=b), None


def conv2d_vjp(needs, g, out, x, w, b=None, *, stride, padding, dilation, saved=None):
    # One kernel call for all the gradients asked for: they all read g. dL/dx scatters each
    # output gradient back through the kernel (a transposed conv), dL/dw correlates the input
    # with the output gradient, and dL/db sums it over the batch and every position.
    need_b = len(needs) == 3 and needs[2]
    gx, gw, gb = kernels.conv2d_backward(g, x, w, stride, padding, dilation,
                                         needs=(needs[0], needs[1], need_b), saved=saved)
    return (gx, gw) if b is None else (gx, gw, gb)


conv2d_p = primitive("conv2d", conv2d_fwd, joint_vjp=conv2d_vjp, saves=True)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D cross-correlation, x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, Ho, Wo).

    The bias is added inside the kernel, and its gradient comes out of the same backward pass.
    """
    _check_ndim("conv2d", x, 4, "(N, C, H, W)")
    _check_sizes("conv2d", 1, stride=stride, dilation=dilation)
    _check_sizes("conv2d", 0, padding=padding)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return conv2d_p(*inputs, stride=_pair(stride), padding=_pair(padding),
                    dilation=_pair(dilation))


def conv_transpose2d_fwd(x, w, *, stride, padding, output_padding, dilation):
    return kernels.conv_transpose2d_forward(x, w, stride, padding, output_padding, dilation)


def conv_transpose2d_vjp(needs, g, out, x, w, *, stride, padding, output_padding, dilation):
    # The forward is conv2d's input-gradient, so its input-gradient is conv2d's forward; both
    # gradients multiply the patches of g, and one kernel call computes them together.
    return kernels.conv_transpose2d_backward(g, x, w, stride, padding, dilation, output_padding,
                                             needs=needs)


conv_transpose2d_p = primitive("conv_transpose2d", conv_transpose2d_fwd,
                               joint_vjp=conv_transpose2d_vjp)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    """Transposed conv, x (N, C_in, H, W), weight (C_in, C_out, kh, kw).

    Output size per axis: (H - 1) s - 2 p + d (k - 1) + output_padding + 1.
    """
    _check_ndim("conv_transpose2d", x, 4, "(N, C, H, W)")
    _check_sizes("conv_transpose2d", 1, stride=stride, dilation=dilation)
    _check_sizes("conv_transpose2d", 0, padding=padding, output_padding=output_padding)
    if x.dtype != weight.dtype:   # else the kernel's error would name conv2d_input_grad
        raise TypeError(f"conv_transpose2d: input dtype {x.dtype} and weight dtype "
                        f"{weight.dtype} must match (input {x.shape}, weight {weight.shape})")
    y = conv_transpose2d_p(x, weight, stride=_pair(stride), padding=_pair(padding),
                           output_padding=_pair(output_padding), dilation=_pair(dilation))
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


# ----------------------------------------------------------------------------------------------
# Pooling: loop over the kh * kw taps, each a strided slice of the padded input.


def _tap(a, i, j, s, out_hw):
    """The strided view a[:, :, i + s_h r, j + s_w c] over all output positions (r, c)."""
    (sh, sw), (ho, wo) = s, out_hw
    return a[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def _offsets(k):
    return itertools.product(range(k[0]), range(k[1]))


def _pool_geometry(op, x, kernel_size, stride, padding):
    _check_sizes(op, 1, kernel_size=kernel_size, **({} if stride is None else {"stride": stride}))
    _check_sizes(op, 0, padding=padding)
    k = _pair(kernel_size)
    s = _pair(stride if stride is not None else kernel_size)
    p = _pair(padding)
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k}")
    h, w = x.shape[2] + 2 * p[0], x.shape[3] + 2 * p[1]
    if h < k[0] or w < k[1]:
        raise ValueError(f"{op}: kernel {k} is larger than the padded input {(h, w)} "
                         f"(input shape {x.shape}, padding {p})")
    return k, s, p, ((h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1)


def _pad_hw(x, p, value):
    widths = ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))
    return np.pad(x, widths, constant_values=value) if any(p) else x


def max_pool2d_fwd(x, *, k, s, p, out_hw):
    xp = _pad_hw(x, p, -np.inf)
    out = _tap(xp, 0, 0, s, out_hw).copy()
    for i, j in _offsets(k):
        np.maximum(out, _tap(xp, i, j, s, out_hw), out=out)
    return out


def _padded_zeros(x, p, dtype):
    n, c, h, w = x.shape
    return np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), dtype=dtype)


def _unpad(gxp, x, p):
    return gxp[:, :, p[0]:p[0] + x.shape[2], p[1]:p[1] + x.shape[3]]


def max_pool2d_vjp(g, out, x, k, s, p, out_hw):
    # Each output's gradient goes to the first tap that holds the max (PyTorch's tie rule).
    xp, gxp = _pad_hw(x, p, -np.inf), _padded_zeros(x, p, g.dtype)
    unclaimed = np.ones(out.shape, dtype=bool)
    for i, j in _offsets(k):
        hit = unclaimed & (_tap(xp, i, j, s, out_hw) == out)
        unclaimed &= ~hit
        _tap(gxp, i, j, s, out_hw)[...] += g * hit      # the view writes into gxp
    return _unpad(gxp, x, p)


max_pool2d_p = primitive("max_pool2d", max_pool2d_fwd, max_pool2d_vjp)


def avg_pool2d_fwd(x, *, k, s, p, out_hw):
    xp = _pad_hw(x, p, 0)
    total = sum(_tap(xp, i, j, s, out_hw) for i, j in _offsets(k))
    return total / (k[0] * k[1])          # zeros in the padding count (PyTorch's default)


def avg_pool2d_vjp(g, out, x, k, s, p, out_hw):
    gxp = _padded_zeros(x, p, g.dtype)
    share = g / (k[0] * k[1])             # every tap receives an equal share
    for i, j in _offsets(k):
        _tap(gxp, i, j, s, out_hw)[...] += share
    return _unpad(gxp, x, p)


avg_pool2d_p = primitive("avg_pool2d", avg_pool2d_fwd, avg_pool2d_vjp)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    _check_ndim("max_pool2d", x, 4, "(N, C, H, W)")
    k, s, p, out_hw = _pool_geometry("max_pool2d", x, kernel_size, stride, padding)
    return max_pool2d_p(x, k=k, s=s, p=p, out_hw=out_hw)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    _check_ndim("avg_pool2d", x, 4, "(N, C, H, W)")
    k, s, p, out_hw = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding)
    return avg_pool2d_p(x, k=k, s=s, p=p, out_hw=out_hw)


def minibatch_closeness_fwd(M):
    return kernels.minibatch_closeness_forward(M)


def minibatch_closeness_vjp(g, out, M):
    return kernels.minibatch_closeness_backward(g, M)


minibatch_closeness_p = primitive("minibatch_closeness", minibatch_closeness_fwd,
                                  minibatch_closeness_vjp)


def minibatch_closeness(M):
    """o[i, b] = sum_j exp(-||M[i, b] - M[j, b]||_1) for M (N, B, C): (N, B).

    Minibatch discrimination's o(x) (`tinygen.models.improved.MinibatchDiscrimination`). The same
    as ``(-(M.unsqueeze(1) - M.unsqueeze(0)).abs().sum(dim=3)).exp().sum(dim=1)`` in engine ops,
    which builds (N, N, B, C) arrays; this primitive's kernels visit each pair once.
    """
    _check_ndim("minibatch_closeness", M, 3, "(N, kernels, kernel_dims)")
    return minibatch_closeness_p(M)


def interpolate(x, size=None, scale_factor=None, mode="nearest"):
    """Nearest-neighbour resizing of (N, C, H, W).

    An integer scale factor is a broadcast: view each pixel as a (1, 1) block, expand it to
    (s, s), and let `unbroadcast` sum the block's gradients back. Other sizes pick source rows
    and columns with index arrays, using PyTorch's rules (see below).
    """
    if mode != "nearest":
        raise ValueError(f"interpolate: only mode='nearest' is implemented, got {mode!r}")
    _check_ndim("interpolate", x, 4, "(N, C, H, W)")
    n, c, h, w = x.shape
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size= and scale_factor=")
    if size is None:
        sh, sw = (scale_factor, scale_factor) if np.isscalar(scale_factor) else scale_factor
        if not (np.isfinite(sh) and np.isfinite(sw) and sh > 0 and sw > 0):
            raise ValueError(f"interpolate: scale_factor must be positive and finite, got "
                             f"{scale_factor} (input shape {x.shape})")
        if float(sh).is_integer() and float(sw).is_integer():
            sh, sw = int(sh), int(sw)
            blocks = x.reshape(n, c, h, 1, w, 1).expand(n, c, h, sh, w, sw)
            return blocks.reshape(n, c, h * sh, w * sw)
        # PyTorch's rule for a given scale: output i reads input floor(i / scale).
        ho, wo = int(np.floor(h * sh)), int(np.floor(w * sw))
        rows = np.minimum(np.floor(np.arange(ho) / sh).astype(np.int64), h - 1)
        cols = np.minimum(np.floor(np.arange(wo) / sw).astype(np.int64), w - 1)
    else:
        # For a given size: output i reads input floor(i * H_in / H_out).
        _check_sizes("interpolate", 1, size=size)
        ho, wo = _pair(size)
        rows = (np.arange(ho) * h) // ho if ho > 0 else np.arange(0)
        cols = (np.arange(wo) * w) // wo if wo > 0 else np.arange(0)
    if ho <= 0 or wo <= 0:
        raise ValueError(f"interpolate: output size ({ho}, {wo}) must be positive "
                         f"(input shape {x.shape}, size={size}, scale_factor={scale_factor})")
    return x[:, :, rows[:, None], cols[None, :]]


# ----------------------------------------------------------------------------------------------
# Normalisation and dropout, composed from engine ops.


def _normalize(x, axes, eps):
    mean = x.mean(dim=axes, keepdim=True)
    var = x.var(dim=axes, keepdim=True, correction=0)   # biased, as in the papers
    return (x - mean) / (var + eps).sqrt(), mean, var


def _affine(y, weight, bias, shape):
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel (dim 1) over the batch and spatial dims.

    Training uses the batch's statistics and updates the running ones in place, with the
    unbiased variance as PyTorch does: running = (1 - momentum) running + momentum batch.
    Evaluation uses the running statistics.

    In training it runs as one primitive (`batch_norm_train_p`, with the closed-form VJP);
    `batch_norm_composed` is the same computation as a chain of engine ops, kept as its
    reference twin (the tests hold the two equal).
    """
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm: expected (N, C), (N, C, L) or (N, C, H, W), got {x.shape}")
    axes, shape = _channel_axes(x)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
        mean = _data(running_mean).reshape(shape)
        std = np.sqrt(_data(running_var).reshape(shape) + eps)
        return _affine((x - mean.astype(x.dtype)) / std.astype(x.dtype), weight, bias, shape)
    count = x.data.size // x.shape[1]
    if count < 2:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got "
                         f"input shape {x.shape}")
    mean, var = kernels.batch_norm_stats(x.data)   # (C,) each; var biased, as in the papers
    c = x.shape[1]              # no affine part: a constant scale of 1 and shift of 0
    weight = weight if weight is not None else Tensor(np.ones(c, x.dtype))
    bias = bias if bias is not None else Tensor(np.zeros(c, x.dtype))
    y = batch_norm_train_p(x, weight, bias, mean=mean, var=var, eps=eps)
    if running_mean is not None:
        _ema_update(running_mean, mean, momentum)
    if running_var is not None:
        _ema_update(running_var, var * count / (count - 1), momentum)
    return y


def _channel_axes(x):
    """The axes batch norm reduces over, and the shape that broadcasts a (C,) vector."""
    return (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)


# The primitive's forward and VJP: the math is in tinygen/kernels/reference.py
# (`batch_norm_forward`, `batch_norm_backward`, with the closed-form gradient written out),
# the fused loops in tinygen/kernels/numba_pointwise.py. mean and var are (C,).


def batch_norm_train_fwd(x, w, b, *, mean, var, eps):
    # y = (x - mean) / sqrt(var + eps) * w + b = x * scale + shift, per channel.
    scale = w / np.sqrt(var + eps)
    return kernels.batch_norm_forward(x, scale, b - mean * scale)


def batch_norm_train_vjp(needs, g, out, x, w, b, *, mean, var, eps):
    gx, gw, gb = kernels.batch_norm_backward(g, x, mean, 1 / np.sqrt(var + eps), w, needs[0])
    return gx, gw.reshape(w.shape), gb.reshape(b.shape)


batch_norm_train_p = primitive("batch_norm_train", batch_norm_train_fwd,
                               joint_vjp=batch_norm_train_vjp)


def batch_norm_composed(x, weight=None, bias=None, eps=1e-5):
    """Training-mode batch norm as engine ops (mean, variance, division): the readable twin of
    `batch_norm_train_p`, whose gradient the engine derives by itself."""
    axes, shape = _channel_axes(x)
    y, _, _ = _normalize(x, axes, eps)
    return _affine(y, weight, bias, shape)


def _data(t):
    return t.data if isinstance(t, Tensor) else np.asarray(t)


def _ema_update(buffer, value, momentum):
    target = buffer.data if isinstance(buffer, Tensor) else buffer
    target *= 1 - momentum
    target += momentum * value.astype(target.dtype)


def instance_norm(x, weight=None, bias=None, eps=1e-5):
    """Normalise each (sample, channel) plane over its spatial dims (no running statistics).

    Instance norm is batch norm in which every (sample, channel) plane is a channel of its own:
    x (N, C, *spatial) seen as (1, N * C, *spatial). So it runs as the training-mode batch-norm
    primitive on that view (`batch_norm_train_p`: the fused loops and the closed-form VJP),
    with the (C,) weight and bias repeated for each of the N samples; the repeat is an engine
    op, so their gradients come back summed over the samples. `instance_norm_composed` is the
    same computation as a chain of engine ops, kept as its reference twin.
    """
    if x.ndim < 3:
        raise ValueError(f"instance_norm: expected (N, C, ...) with spatial dims, got {x.shape}")
    n, c = x.shape[:2]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != (c,):
            raise ValueError(f"instance_norm: {name} has shape {tuple(p.shape)}, but the input "
                             f"{tuple(x.shape)} has {c} channels")
    planes = x.reshape(1, n * c, *x.shape[2:])
    mean, var = kernels.batch_norm_stats(planes.data)    # (N * C,) each, var biased
    per_sample = Tensor(np.ones((n, 1), x.dtype))         # repeats a (C,) vector N times
    weight, bias = (p.reshape(1, c) * per_sample if p is not None
                    else Tensor(np.full((n, c), fill, x.dtype))
                    for p, fill in ((weight, 1), (bias, 0)))
    y = batch_norm_train_p(planes, weight.reshape(n * c), bias.reshape(n * c), mean=mean,
                           var=var, eps=eps)
    return y.reshape(x.shape)


def instance_norm_composed(x, weight=None, bias=None, eps=1e-5):
    """Instance norm as engine ops (mean, variance, division over each plane): the readable
    twin of `instance_norm`, whose gradient the engine derives by itself."""
    y, _, _ = _normalize(x, tuple(range(2, x.ndim)), eps)
    return _affine(y, weight, bias, (1, -1) + (1,) * (x.ndim - 2))


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing `normalized_shape` dims of each sample."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(f"layer_norm: input shape {x.shape} does not end in {shape}")
    y, _, _ = _normalize(x, tuple(range(x.ndim - len(shape), x.ndim)), eps)
    return _affine(y, weight, bias, shape)


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1-p) ("inverted" dropout,
    so evaluation needs no rescaling)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    gen = generator if generator is not None else default_generator()
    keep = gen.random(x.shape, dtype=np.float32) >= p
    return x * (keep.astype(x.dtype) / (1 - p))

