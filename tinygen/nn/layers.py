"""Layer classes: each holds its parameters and calls one function of `nn.functional`.

The math lives in `functional.py`; a layer adds only state (weights with PyTorch's shapes and
default initialisation, running statistics) and the train/eval switch. Reading any class here
should take a few seconds.
"""

from __future__ import annotations

import math

import numpy as np

from tinygen import ops
from tinygen.autograd import DEFAULT_DTYPE
from tinygen.nn import functional as F
from tinygen.nn import init
from tinygen.nn.module import Module, Parameter


def _param(*shape, dtype=None) -> Parameter:
    return Parameter(np.zeros(shape, dtype=dtype or DEFAULT_DTYPE))


def _check_input_dtype(layer, x):
    """The conv kernels need the input and weights in one float dtype; say so, naming the
    layer, rather than failing inside a kernel whose name the user never called."""
    if getattr(x, "dtype", None) != layer.weight.dtype:
        raise TypeError(f"{type(layer).__name__}({layer.extra_repr()}): input dtype "
                        f"{getattr(x, 'dtype', type(x).__name__)} does not match the weights' "
                        f"{layer.weight.dtype}; convert the input (x.float()) or the layer "
                        f"(layer.double())")


def _default_init(weight, bias, fan_in):
    # PyTorch's default for Linear and Conv: kaiming_uniform_(a=sqrt(5)) on the weight, which is
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same range for the bias.
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


# ----------------------------------------------------------------------------------------------
# Layers with weights.


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        F._check_sizes("Linear", 1, in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _param(out_features, in_features, dtype=dtype)    # (out, in)
        self.bias = _param(out_features, dtype=dtype) if bias else None
        _default_init(self.weight, self.bias, in_features)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, dtype=None):
        super().__init__()
        F._check_sizes("Conv2d", 1, in_channels=in_channels, out_channels=out_channels,
                       kernel_size=kernel_size, stride=stride, dilation=dilation)
        F._check_sizes("Conv2d", 0, padding=padding)
        kh, kw = F._pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = (kh, kw), F._pair(stride)
        self.padding, self.dilation = F._pair(padding), F._pair(dilation)
        self.weight = _param(out_channels, in_channels, kh, kw, dtype=dtype)  # (out, in, kh, kw)
        self.bias = _param(out_channels, dtype=dtype) if bias else None
        _default_init(self.weight, self.bias, in_channels * kh * kw)

    def forward(self, x):
        _check_input_dtype(self, x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}"


class ConvTranspose2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, bias=True, dilation=1, dtype=None):
        super().__init__()
        F._check_sizes("ConvTranspose2d", 1, in_channels=in_channels, out_channels=out_channels,
                       kernel_size=kernel_size, stride=stride, dilation=dilation)
        F._check_sizes("ConvTranspose2d", 0, padding=padding, output_padding=output_padding)
        kh, kw = F._pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = (kh, kw), F._pair(stride)
        self.padding, self.output_padding = F._pair(padding), F._pair(output_padding)
        self.dilation = F._pair(dilation)
        self.weight = _param(in_channels, out_channels, kh, kw, dtype=dtype)  # (in, out, kh, kw)
        self.bias = _param(out_channels, dtype=dtype) if bias else None
        # PyTorch computes this layer's fan_in from weight.shape[1], i.e. out_channels.
        _default_init(self.weight, self.bias, out_channels * kh * kw)

    def forward(self, x):
        _check_input_dtype(self, x)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.dilation)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}"


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim, dtype=None):
        super().__init__()
        F._check_sizes("Embedding", 1, num_embeddings=num_embeddings,
                       embedding_dim=embedding_dim)
        self.weight = _param(num_embeddings, embedding_dim, dtype=dtype)
        init.normal_(self.weight)                     # PyTorch's default: N(0, 1)

    def forward(self, indices):
        return F.embedding(indices, self.weight)


# ----------------------------------------------------------------------------------------------
# Normalisation.


class _BatchNorm(Module):
    _input_ndims: tuple = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        F._check_sizes(type(self).__name__, 1, num_features=num_features)
        if momentum is None or not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__}: momentum must be a number in [0, 1] "
                             f"(PyTorch's momentum=None cumulative average is not supported), "
                             f"got {momentum}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=dtype or DEFAULT_DTYPE)) \
            if affine else None
        self.bias = _param(num_features, dtype=dtype) if affine else None
        self.track_running_stats = track_running_stats
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype or
                                                          DEFAULT_DTYPE))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype or
                                                        DEFAULT_DTYPE))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x):
        if x.ndim not in self._input_ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected input of "
                             f"{' or '.join(f'{n}-D' for n in self._input_ndims)} with "
                             f"{self.num_features} channels in dim 1, got shape {x.shape}")
        use_batch = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
        stats = (self.running_mean, self.running_var) if self.track_running_stats \
            else (None, None)
        return F.batch_norm(x, *stats, self.weight, self.bias, use_batch,
                            self.momentum, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    _input_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    _input_ndims = (4,)


class InstanceNorm2d(Module):
    """Per-sample, per-channel normalisation (CycleGAN's choice); affine=False by default as in
    PyTorch, and no running statistics."""

    def __init__(self, num_features, eps=1e-5, affine=False, dtype=None):
        super().__init__()
        F._check_sizes("InstanceNorm2d", 1, num_features=num_features)
        self.num_features, self.eps = num_features, eps
        self.weight = Parameter(np.ones(num_features, dtype=dtype or DEFAULT_DTYPE)) \
            if affine else None
        self.bias = _param(num_features, dtype=dtype) if affine else None

    def forward(self, x):
        return F.instance_norm(x, self.weight, self.bias, self.eps)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        dtype = dtype or DEFAULT_DTYPE
        self.weight = Parameter(np.ones(shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape, dtype=dtype)) if elementwise_affine else None

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


# ----------------------------------------------------------------------------------------------
# Layers without weights: pooling, resizing, reshaping and activations.


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        F._check_sizes(name, 1, kernel_size=kernel_size, **({} if stride is None else
                                                             {"stride": stride}))
        F._check_sizes(name, 0, padding=padding)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class Upsample(Module):
    def __init__(self, size=None, scale_factor=None, mode="nearest"):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode)


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)


class Unflatten(Module):
    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        d = self.dim % x.ndim
        return x.reshape(x.shape[:d] + self.unflattened_size + x.shape[d + 1:])


class Identity(Module):
    def forward(self, x):
        return x


class _Activation(Module):
    """An activation with no state: `fn` is the functional form, `kwargs` its settings."""

    fn = None

    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, x):
        return type(self).fn(x, **self.kwargs)

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.kwargs.items())


class ReLU(_Activation):
    fn = staticmethod(ops.relu)


class Sigmoid(_Activation):
    fn = staticmethod(ops.sigmoid)


class Tanh(_Activation):
    fn = staticmethod(ops.tanh)


class Softplus(_Activation):
    fn = staticmethod(ops.softplus)


class LogSigmoid(_Activation):
    fn = staticmethod(ops.logsigmoid)


class LeakyReLU(_Activation):
    fn = staticmethod(ops.leaky_relu)

    def __init__(self, negative_slope=0.01):
        super().__init__(negative_slope=negative_slope)


class ELU(_Activation):
    fn = staticmethod(ops.elu)

    def __init__(self, alpha=1.0):
        super().__init__(alpha=alpha)


class Softmax(_Activation):
    fn = staticmethod(ops.softmax)

    def __init__(self, dim=-1):
        super().__init__(dim=dim)


class LogSoftmax(_Activation):
    fn = staticmethod(ops.log_softmax)

    def __init__(self, dim=-1):
        super().__init__(dim=dim)
