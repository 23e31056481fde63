"""Every differentiable op: a forward on ndarrays, its VJP right beside it, one registration line.

A VJP ("vector-Jacobian product") answers: if the loss changes by `g` per unit of this op's
output, how much does it change per unit of input i? Each VJP here is a small pure function
of `(g, out, *inputs, **kwargs)`, where `out` is the forward result (handy: d exp = exp).
There is one VJP per input, so the engine only computes the gradients it needs: `x @ W` with a
constant `x` never computes d/dx.

No VJP handles broadcasting: `autograd.unbroadcast` sums each gradient down to its input's shape
in one central place. So `add`'s VJP is just `g`, even for `(3, 1) + (4,)`.

The last sections give the primitives PyTorch-style wrappers (`dim`, `keepdim`), compose a few
more ops from them (`var`, `split`, `chunk`, `squeeze`, ...), and attach the math methods to
`Tensor`, one greppable line each.
Read `tinygen/gradcheck.py` next to see how every VJP here is verified.
"""

from __future__ import annotations

import builtins
import types

import numpy as np

from tinygen.autograd import DEFAULT_DTYPE, Tensor, apply

# ----------------------------------------------------------------------------------------------
# The Primitive record and how arguments become tensors.


class Primitive:
    """A named forward function plus its VJPs, given in one of three forms:

    - one VJP per input, `vjp_i(g, out, *inputs, **kwargs)` (almost every op);
    - `variadic_vjp(i, g, out, *inputs, **kwargs)` for ops with any number of inputs (`cat`);
    - `joint_vjp(needs, g, out, *inputs, **kwargs)`, which returns one gradient per input (None
      where `needs[i]` is False) from a single call. Convolutions use it: the input, weight and
      bias gradients all read the same output gradient, and one pass over it is cheaper than
      three (PyTorch's `convolution_backward` takes an `output_mask` for the same reason).

    With `saves=True` the forward also returns something for the VJP to reuse (see
    `autograd.apply`), like `ctx.save_for_backward` in a PyTorch autograd Function.
    """

    __slots__ = ("name", "forward", "vjps", "variadic_vjp", "joint_vjp", "saves")

    def __init__(self, name, forward, *vjps, variadic_vjp=None, joint_vjp=None, saves=False):
        self.name = name
        self.forward = forward
        self.vjps = vjps
        self.variadic_vjp = variadic_vjp
        self.joint_vjp = joint_vjp
        self.saves = saves

    def vjp(self, i, g, out, arrays, kwargs):
        """The gradient for input i alone."""
        if self.vjps:
            return self.vjps[i](g, out, *arrays, **kwargs)
        if self.variadic_vjp is not None:
            return self.variadic_vjp(i, g, out, *arrays, **kwargs)
        needs = tuple(j == i for j in range(len(arrays)))
        return self.joint_vjp(needs, g, out, *arrays, **kwargs)[i]

    def __call__(self, *args, **kwargs) -> Tensor:
        return apply(self, *_lift(args), **kwargs)

    def __get__(self, obj, objtype=None):
        # Lets a primitive be a Tensor method: `Tensor.exp = exp` makes `x.exp()` mean exp(x).
        return self if obj is None else types.MethodType(self, obj)

    def __repr__(self):
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}


def primitive(name, forward, *vjps, variadic_vjp=None, joint_vjp=None, saves=False) -> Primitive:
    """Register an op under `name` (tests use the registry to find ops without a gradcheck)."""
    op = Primitive(name, forward, *vjps, variadic_vjp=variadic_vjp, joint_vjp=joint_vjp,
                   saves=saves)
    PRIMITIVES[name] = op
    return op


def _lift(args):
    """Make every argument a Tensor. A Python scalar takes the dtype of the float tensors around
    it, so `x * 2.0` stays float32; an integer tensor mixed with floats is cast up to them."""
    if builtins.all(isinstance(a, Tensor) for a in args):
        dtypes = {a.data.dtype for a in args}
        if len(dtypes) == 1:
            return args
    floats = [a.data.dtype for a in args if isinstance(a, Tensor) and a.data.dtype.kind == "f"]
    if floats:
        ftype = np.result_type(*floats)
    elif builtins.any(isinstance(a, float | np.floating) for a in args):
        ftype = np.dtype(DEFAULT_DTYPE)     # int tensor * 0.5 is float32, as in PyTorch
    else:
        ftype = None
    out = []
    for a in args:
        if not isinstance(a, Tensor):
            a = Tensor(a, dtype=ftype if ftype is not None and _is_number(a) else None)
        elif ftype is not None and a.data.dtype.kind != "f":
            a = Tensor(a.data.astype(ftype))
        out.append(a)
    return out


def _is_number(a) -> bool:
    return isinstance(a, int | float | bool | np.number) or (
        isinstance(a, np.ndarray) and a.dtype.kind in "iub")


def _expand(g, axis, keepdims):
    """Re-insert reduced axes into a reduction's output (or its gradient) for broadcasting."""
    if axis is None or keepdims:
        return g
    return np.expand_dims(g, axis)


# ----------------------------------------------------------------------------------------------
# Elementwise binary ops. Their VJPs ignore broadcasting: `unbroadcast` sums afterwards.


def add_fwd(a, b):
    return a + b


add = primitive("add", add_fwd,
                lambda g, out, a, b: g,                      # d(a+b)/da = 1
                lambda g, out, a, b: g)                      # d(a+b)/db = 1


def sub_fwd(a, b):
    return a - b


sub = primitive("sub", sub_fwd,
                lambda g, out, a, b: g,                      # d(a-b)/da = 1
                lambda g, out, a, b: -g)                     # d(a-b)/db = -1


def mul_fwd(a, b):
    return a * b


mul = primitive("mul", mul_fwd,
                lambda g, out, a, b: g * b,                  # d(ab)/da = b
                lambda g, out, a, b: g * a)                  # d(ab)/db = a


def div_fwd(a, b):
    return a / b


div = primitive("div", div_fwd,
                lambda g, out, a, b: g / b,                  # d(a/b)/da = 1/b
                lambda g, out, a, b: -g * out / b)           # d(a/b)/db = -a/b^2 = -out/b


def pow_fwd(a, b):
    return a ** b


# tensor ** tensor; tensor ** number is `pow_scalar` below, which needs no log(a).
pow = primitive("pow", pow_fwd,
                lambda g, out, a, b: g * b * a ** (b - 1),   # d(a^b)/da = b a^(b-1)
                lambda g, out, a, b: g * out * np.log(a))    # d(a^b)/db = a^b ln a


def _tie_split(a, b, g):
    # Where a == b, either input could be "the" max: give each half, as PyTorch does.
    return g * ((a > b) + 0.5 * (a == b)).astype(g.dtype)


maximum = primitive("maximum", np.maximum,
                    lambda g, out, a, b: _tie_split(a, b, g),
                    lambda g, out, a, b: _tie_split(b, a, g))
minimum = primitive("minimum", np.minimum,
                    lambda g, out, a, b: _tie_split(b, a, g),
                    lambda g, out, a, b: _tie_split(a, b, g))


def where_fwd(a, b, *, cond):
    return np.where(cond, a, b)


_where = primitive("where", where_fwd,
                   lambda g, out, a, b, cond: g * cond,
                   lambda g, out, a, b, cond: g * ~cond)


def where(cond, a, b) -> Tensor:
    """`a` where `cond` is true, else `b` (all three broadcast). No gradient flows to `cond`."""
    cond = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
    return _where(a, b, cond=cond.astype(bool))


# ----------------------------------------------------------------------------------------------
# Elementwise unary ops and activations.


neg = primitive("neg", np.negative, lambda g, out, x: -g)             # d(-x) = -1
exp = primitive("exp", np.exp, lambda g, out, x: g * out)             # d e^x = e^x
log = primitive("log", np.log, lambda g, out, x: g / x)               # d ln x = 1/x
sqrt = primitive("sqrt", np.sqrt, lambda g, out, x: g * 0.5 / out)    # d sqrt x = 1/(2 sqrt x)
abs = primitive("abs", np.abs, lambda g, out, x: g * np.sign(x))      # d|x| = sign x
tanh = primitive("tanh", np.tanh, lambda g, out, x: g * (1 - out * out))  # d tanh = 1 - tanh^2


def pow_scalar_fwd(x, *, exponent):
    return x ** exponent


pow_scalar = primitive("pow_scalar", pow_scalar_fwd,
                       # d x^c = c x^(c-1)
                       lambda g, out, x, exponent: g * exponent * x ** (exponent - 1))


def clamp_fwd(x, *, min=None, max=None):  # PyTorch's argument names
    return np.clip(x, min, max)


def clamp_vjp(g, out, x, min=None, max=None):
    # Gradient 1 inside [min, max] (edges included, as PyTorch), 0 where the value was clipped.
    inside = np.ones(x.shape, dtype=bool)
    if min is not None:
        inside &= x >= min
    if max is not None:
        inside &= x <= max
    return g * inside


clamp_p = primitive("clamp", clamp_fwd, clamp_vjp)


def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: give at least one of min= and max=")
    return clamp_p(x, min=min, max=max)


def relu_fwd(x):
    return np.maximum(x, 0)


def relu_vjp(g, out, x):
    # d relu = [x > 0]; kernels is imported here so that `import tinygen` does not load Numba
    from tinygen import kernels
    return kernels.relu_backward(g, x)


relu = primitive("relu", relu_fwd, relu_vjp)


# leaky_relu(x) = x for x > 0, slope x otherwise; d = 1 or slope. The loops are kernels
# (tinygen/kernels/reference.py has the NumPy twins), imported at the first call so that
# `import tinygen` does not load Numba.
def leaky_relu_fwd(x, *, negative_slope=0.01):
    from tinygen import kernels
    return kernels.leaky_relu_forward(x, negative_slope)


def leaky_relu_vjp(g, out, x, negative_slope):
    from tinygen import kernels
    return kernels.leaky_relu_backward(g, x, negative_slope)


leaky_relu_p = primitive("leaky_relu", leaky_relu_fwd, leaky_relu_vjp)


def elu_fwd(x, *, alpha=1.0):
    # expm1 of min(x, 0): the positive branch never evaluates exp(huge).
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


elu_p = primitive("elu", elu_fwd,
                  # d = 1 for x > 0; for x <= 0, d(alpha (e^x - 1)) = alpha e^x = out + alpha
                  lambda g, out, x, alpha: np.where(x > 0, g, g * (out + alpha)))


def leaky_relu(x, negative_slope=0.01):
    return leaky_relu_p(x, negative_slope=negative_slope)


def elu(x, alpha=1.0):
    return elu_p(x, alpha=alpha)


def sigmoid_fwd(x):
    # 1/(1+e^-x) overflows e^-x for x << 0. With e = exp(-|x|) <= 1 both branches are safe:
    # x >= 0: 1/(1+e);  x < 0: e^x/(1+e^x) = e/(1+e).
    e = np.exp(-np.abs(x))
    s = 1 / (1 + e)
    neg = x < 0
    # Select with exact arithmetic (a * True = a, a * False = 0) rather than np.where, whose
    # branchy loop is several times slower when signs are mixed.
    return s * ~neg + (e * s) * neg


sigmoid = primitive("sigmoid", sigmoid_fwd,
                    lambda g, out, x: g * out * (1 - out))   # d sigma = sigma (1 - sigma)


def _log1p_exp_neg_abs(x):
    """log(1 + e^-|x|), to full precision, without NumPy's log1p (not vectorised for
    float32, and 5x slower than log). With u = 1 + e, log(u) is off by the rounding error of
    u; that error, (u - 1) - e, is exact in floating point, and subtracting it divided by u
    restores log1p's accuracy."""
    e = np.exp(-np.abs(x))
    u = 1 + e
    return np.log(u) - ((u - 1) - e) / u


def softplus_fwd(x):
    # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): no overflow, and no cancellation.
    return np.maximum(x, 0) + _log1p_exp_neg_abs(x)


softplus = primitive("softplus", softplus_fwd,
                     # d softplus = sigmoid(x) = e^x / (1 + e^x) = exp(x - softplus(x)):
                     # reuses the output, and x - out <= 0, so the exp cannot overflow
                     lambda g, out, x: g * np.exp(x - out))


def logsigmoid_fwd(x):
    # log sigma(x) = -softplus(-x) = min(x, 0) - log(1 + e^-|x|)
    return np.minimum(x, 0) - _log1p_exp_neg_abs(x)


logsigmoid = primitive("logsigmoid", logsigmoid_fwd,
                       # d log sigma(x) = sigma(-x) = exp(log sigma(x) - x) = exp(out - x)
                       lambda g, out, x: g * np.exp(out - x))


def cast_fwd(x, *, dtype):
    return x.astype(dtype, copy=False)


cast = primitive("cast", cast_fwd,
                 lambda g, out, x, dtype: g.astype(x.dtype, copy=False))


# ----------------------------------------------------------------------------------------------
# Reductions. `axis` is None or a tuple of non-negative ints (the wrappers normalise it).


def sum_fwd(x, *, axis=None, keepdims=False):
    return np.sum(x, axis=axis, keepdims=keepdims)


sum_p = primitive("sum", sum_fwd,
                # every input element contributes once: copy g back over the reduced axes
                lambda g, out, x, axis, keepdims:
                    np.broadcast_to(_expand(g, axis, keepdims), x.shape))


def mean_fwd(x, *, axis=None, keepdims=False):
    return np.mean(x, axis=axis, keepdims=keepdims)


mean_p = primitive("mean", mean_fwd,
                 # like sum, divided by how many elements each output averaged
                 lambda g, out, x, axis, keepdims:
                     np.broadcast_to(_expand(g, axis, keepdims) / (x.size // builtins.max(
                         out.size, 1)), x.shape))


def _extremum_vjp(g, out, x, axis, keepdims):
    # Only the winning elements get gradient; ties share it equally.
    winners = x == _expand(out, axis, keepdims)
    count = winners.sum(axis=axis, keepdims=True, dtype=g.dtype)
    return winners * (_expand(g, axis, keepdims) / count)


def amax_fwd(x, *, axis=None, keepdims=False):
    return np.max(x, axis=axis, keepdims=keepdims)


def amin_fwd(x, *, axis=None, keepdims=False):
    return np.min(x, axis=axis, keepdims=keepdims)


max_p = primitive("max", amax_fwd, _extremum_vjp)
min_p = primitive("min", amin_fwd, _extremum_vjp)


def logsumexp_fwd(x, *, axis=None, keepdims=False):
    # log sum e^x = m + log sum e^(x - m) with m = max x: the exponentials stay <= 1.
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # an all -inf row gives -inf, not NaN
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis)


logsumexp_p = primitive("logsumexp", logsumexp_fwd,
                      # d logsumexp = softmax(x) = e^(x - logsumexp)
                      lambda g, out, x, axis, keepdims:
                          _expand(g, axis, keepdims) * np.exp(x - _expand(out, axis, keepdims)))


def softmax_fwd(x, *, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


softmax_p = primitive("softmax", softmax_fwd,
                      # J = diag(s) - s s^T, so g J = s * (g - <g, s>)
                      lambda g, out, x, axis:
                          out * (g - np.sum(g * out, axis=axis, keepdims=True)))


def log_softmax_fwd(x, *, axis):
    return x - logsumexp_fwd(x, axis=(axis,), keepdims=True)


log_softmax_p = primitive("log_softmax", log_softmax_fwd,
                          # d(x_i - lse)/dx_j = [i=j] - softmax_j
                          lambda g, out, x, axis:
                              g - np.exp(out) * np.sum(g, axis=axis, keepdims=True))


# ----------------------------------------------------------------------------------------------
# Matrix multiply, with NumPy's rules: 1-D operands and broadcast batch dimensions.


def _swap(a):
    return np.swapaxes(a, -1, -2)


def matmul_vjp_a(g, out, a, b):
    if b.ndim == 1:                      # out[..., m] = sum_k a[..., m, k] b[k]
        return g[..., None] * b
    if a.ndim == 1:                      # out[..., n] = sum_k a[k] b[..., k, n]
        return (b @ g[..., None])[..., 0]
    return g @ _swap(b)                  # dA = G B^T


def matmul_vjp_b(g, out, a, b):
    if a.ndim == 1 and b.ndim == 1:      # dot product: d<a,b>/db = a
        return g * a
    if a.ndim == 1:
        return a[:, None] * g[..., None, :]
    if b.ndim == 1:
        return (_swap(a) @ g[..., None])[..., 0]
    return _swap(a) @ g                  # dB = A^T G (summed over batch by unbroadcast)


matmul = primitive("matmul", np.matmul, matmul_vjp_a, matmul_vjp_b)


# ----------------------------------------------------------------------------------------------
# Shape ops: their VJPs move gradient entries back to where the input's entries came from.


def reshape_fwd(x, *, shape):
    return np.reshape(x, shape)


reshape_p = primitive("reshape", reshape_fwd,
                      lambda g, out, x, shape: g.reshape(x.shape))


def permute_fwd(x, *, axes):
    return np.transpose(x, axes)


permute_p = primitive("permute", permute_fwd,
                      # undo the permutation with its inverse
                      lambda g, out, x, axes: np.transpose(g, np.argsort(axes)))


def expand_fwd(x, *, shape):
    return np.broadcast_to(x, shape)


# Broadcasting's VJP is exactly what `unbroadcast` does, so this one passes g straight through.
expand_p = primitive("expand", expand_fwd, lambda g, out, x, shape: g)


def getitem_fwd(x, *, index):
    return x[index]


def getitem_vjp(g, out, x, index):
    # Scatter g back into a zero array. Integer-array indices may repeat (x[[0, 0]]), so they
    # must add with np.add.at; slices and boolean masks never repeat, so plain assignment works.
    gx = np.zeros(x.shape, dtype=g.dtype)
    if _has_int_array(index):
        np.add.at(gx, index, g)
    else:
        gx[index] = g
    return gx


getitem_p = primitive("getitem", getitem_fwd, getitem_vjp)


def _has_int_array(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts)


def cat_fwd(*xs, axis):
    return np.concatenate(xs, axis=axis)


def cat_vjp(i, g, out, *xs, axis):
    start = builtins.sum(x.shape[axis] for x in xs[:i])
    return np.take(g, np.arange(start, start + xs[i].shape[axis]), axis=axis)


cat_p = primitive("cat", cat_fwd, variadic_vjp=cat_vjp)


def stack_fwd(*xs, axis):
    return np.stack(xs, axis=axis)


stack_p = primitive("stack", stack_fwd,
                    variadic_vjp=lambda i, g, out, *xs, axis: np.take(g, i, axis=axis))


def pad_fwd(x, *, widths, value):
    return np.pad(x, widths, mode="constant", constant_values=value)


def pad_vjp(g, out, x, widths, value):
    # The padded border is a constant: keep only the gradient of the original interior.
    return g[tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape, strict=True))]


pad_p = primitive("pad", pad_fwd, pad_vjp)


# ----------------------------------------------------------------------------------------------
# Public wrappers: PyTorch argument names (`dim`, `keepdim`) and NumPy's (`axis`, `keepdims`).


def _dim(op, d, ndim, new=0):
    """One dim index, negatives counting from the end, checked like PyTorch: for an n-D
    tensor it must lie in -n..n-1 (a 0-D tensor accepts -1 and 0). `d % ndim` alone would
    quietly turn dim 5 of a 2-D tensor into dim 1. `new=1` is for ops that insert a dim
    (unsqueeze, stack), where n + 1 positions exist."""
    if isinstance(d, bool) or not isinstance(d, int | np.integer):
        raise TypeError(f"{op}: dim must be an int, got {d!r}")
    n = builtins.max(ndim + new, 1)
    if not -n <= d < n:
        raise IndexError(f"{op}: dim {d} out of range for a {ndim}-D tensor "
                         f"(expected {-n}..{n - 1})")
    return int(d) % n


def _axes(ndim, dim=None, axis=None, op="reduction"):
    """Normalise dim/axis (None, int or sequence, negatives allowed) to None or a sorted tuple."""
    d = dim if dim is not None else axis
    if d is None:
        return None
    d = (d,) if isinstance(d, int | np.integer) else tuple(d)
    out = [_dim(op, a, ndim) for a in d]
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {tuple(d)} repeats a dimension")
    return tuple(sorted(out))


def _reduce(op, x, dim, keepdim, axis, keepdims):
    x = _tensor(x)
    keep = bool(keepdim or keepdims)
    return op(x, axis=_axes(x.ndim, dim, axis, op=op.name), keepdims=keep)


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=False):
    return _reduce(sum_p, x, dim, keepdim, axis, keepdims)


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=False):
    return _reduce(mean_p, x, dim, keepdim, axis, keepdims)


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=False):
    """Max values over `dim` (like `torch.amax`: values only, ties share the gradient)."""
    return _reduce(max_p, x, dim, keepdim, axis, keepdims)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=False):
    return _reduce(min_p, x, dim, keepdim, axis, keepdims)


def logsumexp(x, dim=None, keepdim=False, *, axis=None, keepdims=False):
    return _reduce(logsumexp_p, x, dim, keepdim, axis, keepdims)


def var(x, dim=None, keepdim=False, *, correction=1, axis=None, keepdims=False):
    """Variance over `dim`, divided by N - correction (PyTorch's default correction=1)."""
    x = _tensor(x)
    axes = _axes(x.ndim, dim, axis, op="var")
    n = x.data.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
    centred = x - mean(x, dim=axes, keepdim=True)
    return sum(centred * centred, dim=axes, keepdim=keepdim or keepdims) / builtins.max(
        n - correction, 0)


def _one_axis(op, ndim, dim, axis):
    """The single axis of softmax-like ops, given as `dim=` (PyTorch) or `axis=` (NumPy)."""
    if dim is not None and axis is not None:
        raise TypeError(f"{op}: give dim= or axis=, not both (got dim={dim}, axis={axis})")
    d = axis if dim is None else dim
    d = -1 if d is None else d
    if not isinstance(d, int | np.integer):
        raise TypeError(f"{op}: dim must be one int, got {d!r}")
    return _axes(ndim, d, op=op)[0]


def softmax(x, dim=None, *, axis=None):
    """softmax over `dim` (default the last); `axis=` is accepted too, like the reductions."""
    x = _tensor(x)
    return softmax_p(x, axis=_one_axis("softmax", x.ndim, dim, axis))


def log_softmax(x, dim=None, *, axis=None):
    x = _tensor(x)
    return log_softmax_p(x, axis=_one_axis("log_softmax", x.ndim, dim, axis))


def _shape_arg(shape):
    """Accept both f(2, 3) and f((2, 3)), with Python or NumPy integers."""
    if len(shape) == 1 and not isinstance(shape[0], int | np.integer):
        return tuple(shape[0])
    return tuple(int(n) for n in shape)


def reshape(x, *shape):
    return reshape_p(_tensor(x), shape=_shape_arg(shape))


def permute(x, *dims):
    x = _tensor(x)
    dims = _shape_arg(dims)
    if len(dims) != x.ndim:
        raise ValueError(f"permute: {dims} names {len(dims)} dims, but the input has "
                         f"{x.ndim} (shape {x.shape})")
    axes = tuple(_dim("permute", d, x.ndim) for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of {x.ndim} dims "
                         f"(a dim repeats; input shape {x.shape})")
    return permute_p(x, axes=axes)


def transpose(x, dim0=-2, dim1=-1):
    x = _tensor(x)
    if x.ndim < 2 and (dim0, dim1) == (-2, -1):
        raise ValueError(f"transpose: needs at least 2 dims to swap, got shape {x.shape}")
    d0, d1 = _dim("transpose", dim0, x.ndim), _dim("transpose", dim1, x.ndim)
    axes = list(range(x.ndim))
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return permute_p(x, axes=tuple(axes))


def flatten(x, start_dim=0, end_dim=-1):
    x = _tensor(x)
    s, e = _dim("flatten", start_dim, x.ndim), _dim("flatten", end_dim, x.ndim)
    if x.ndim == 0:
        return reshape(x, 1)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"(input shape {x.shape})")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


def squeeze(x, dim=None):
    x = _tensor(x)
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dims = _axes(x.ndim, dim, op="squeeze")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in dims or n != 1))


def unsqueeze(x, dim):
    x = _tensor(x)
    dim = _dim("unsqueeze", dim, x.ndim, new=1)      # the new dim may also go last
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def broadcast_to(x, shape):
    return expand_p(_tensor(x), shape=tuple(shape))


def expand(x, *sizes):
    """PyTorch's expand: -1 keeps a dimension, new leading dimensions may be added."""
    x = _tensor(x)
    sizes = _shape_arg(sizes)
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    return broadcast_to(x, shape)


def cat(tensors, dim=0):
    tensors = _lift(list(tensors))
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    return cat_p(*tensors, axis=_dim("cat", dim, tensors[0].ndim))


def stack(tensors, dim=0):
    tensors = _lift(list(tensors))
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    return stack_p(*tensors, axis=_dim("stack", dim, tensors[0].ndim, new=1))


def split(x, split_size_or_sections, dim=0):
    """Split along `dim` into chunks of a given size (int) or of the listed sizes."""
    x = _tensor(x)
    if x.ndim == 0:
        raise ValueError("split: cannot split a 0-D tensor")
    dim = _dim("split", dim, x.ndim)
    n = x.shape[dim]
    if isinstance(split_size_or_sections, int | np.integer):
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: split_size must be a positive int, got {step} "
                             f"(input shape {x.shape}, dim {dim})")
        # An empty dim still gives one (empty) piece, as in PyTorch.
        sizes = [builtins.min(step, n - s) for s in range(0, n, step)] or [0]
    else:
        sizes = [int(k) for k in split_size_or_sections]
        if builtins.any(k < 0 for k in sizes) or builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} must be >= 0 and add up to {n}, the size "
                             f"of dim {dim} of input shape {x.shape}")
    starts = np.cumsum([0] + sizes[:-1])
    lead = (slice(None),) * dim
    return tuple(x[lead + (slice(int(s), int(s) + k),)] for s, k in zip(starts, sizes, strict=True))


def chunk(x, chunks, dim=0):
    """Split into `chunks` nearly equal pieces (fewer if dim is short), as `torch.chunk`."""
    x = _tensor(x)
    if isinstance(chunks, bool) or not isinstance(chunks, int | np.integer) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r} "
                         f"(input shape {x.shape})")
    if x.ndim == 0:
        raise ValueError("chunk: cannot chunk a 0-D tensor")
    n = x.shape[_dim("chunk", dim, x.ndim)]
    return split(x, builtins.max(-(-n // chunks), 1), dim)


def pad(x, pad, value=0.0):
    """PyTorch's F.pad for constant padding: `pad` lists (left, right) pairs, last dim first."""
    x = _tensor(x)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected pairs for at most {x.ndim} dims, got pad={pad}")
    if builtins.any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {pad} is not supported")
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)][::-1]
    widths = ((0, 0),) * (x.ndim - len(pairs)) + tuple(pairs)
    return pad_p(x, widths=widths, value=value)


def getitem(x, index):
    return getitem_p(x, index=_index(index))


def _index(index):
    """Tensors and lists inside an index become arrays, so NumPy's indexing rules apply."""
    def conv(i):
        if isinstance(i, Tensor):
            return i.data
        if isinstance(i, list):
            return np.asarray(i)
        return i
    return tuple(conv(i) for i in index) if isinstance(index, tuple) else conv(index)


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _no_grad_result(data) -> Tensor:
    return Tensor(np.asarray(data))


# ----------------------------------------------------------------------------------------------
# The Tensor's methods, one line each, so `grep "Tensor.exp ="` leads straight to the op.
# Reflected operators (`2 * x`, `1 - x`) swap the arguments; scalars are lifted by `_lift`.

Tensor.__add__ = lambda a, b: add(a, b)
Tensor.__radd__ = lambda a, b: add(b, a)
Tensor.__sub__ = lambda a, b: sub(a, b)
Tensor.__rsub__ = lambda a, b: sub(b, a)
Tensor.__mul__ = lambda a, b: mul(a, b)
Tensor.__rmul__ = lambda a, b: mul(b, a)
Tensor.__truediv__ = lambda a, b: div(a, b)
Tensor.__rtruediv__ = lambda a, b: div(b, a)
Tensor.__pow__ = lambda a, b: (pow(a, b) if isinstance(b, Tensor)
                               else pow_scalar(a, exponent=b))
Tensor.__rpow__ = lambda a, b: pow(b, a)
Tensor.__neg__ = lambda a: neg(a)
Tensor.__matmul__ = lambda a, b: matmul(a, b)
Tensor.__rmatmul__ = lambda a, b: matmul(b, a)
Tensor.__getitem__ = getitem

# Comparisons give boolean tensors outside the graph (like PyTorch).
for _name, _fn in [("__lt__", np.less), ("__le__", np.less_equal), ("__gt__", np.greater),
                   ("__ge__", np.greater_equal), ("__eq__", np.equal), ("__ne__", np.not_equal)]:
    setattr(Tensor, _name, lambda a, b, _fn=_fn: _no_grad_result(
        _fn(a.data, b.data if isinstance(b, Tensor) else b)))

Tensor.neg = neg
Tensor.exp = exp
Tensor.log = log
Tensor.sqrt = sqrt
Tensor.abs = abs
Tensor.tanh = tanh
Tensor.sigmoid = sigmoid
Tensor.relu = relu
Tensor.softplus = softplus
Tensor.clamp = clamp
Tensor.clip = Tensor.clamp
Tensor.maximum = lambda a, b: maximum(a, b)
Tensor.minimum = lambda a, b: minimum(a, b)
Tensor.leaky_relu = leaky_relu
Tensor.elu = elu
Tensor.logsigmoid = logsigmoid
Tensor.softmax = softmax
Tensor.log_softmax = log_softmax

Tensor.sum = sum
Tensor.mean = mean
Tensor.max = max
Tensor.min = min
Tensor.amax = max
Tensor.amin = min
Tensor.var = var
Tensor.logsumexp = logsumexp
Tensor.matmul = matmul
Tensor.argmax = lambda x, dim=None, keepdim=False: _no_grad_result(np.argmax(
    x.data, axis=None if dim is None else _dim("argmax", dim, x.ndim), keepdims=keepdim))
Tensor.argmin = lambda x, dim=None, keepdim=False: _no_grad_result(np.argmin(
    x.data, axis=None if dim is None else _dim("argmin", dim, x.ndim), keepdims=keepdim))
# PyTorch's size(): the whole shape, or the entry of one (checked) dim.
Tensor.size = lambda x, dim=None: x.shape if dim is None else x.shape[_dim("size", dim, x.ndim)]

Tensor.reshape = reshape
Tensor.view = reshape
Tensor.permute = permute
Tensor.transpose = transpose
Tensor.T = property(lambda x: permute(x, *range(x.ndim - 1, -1, -1)))
Tensor.flatten = flatten
Tensor.squeeze = squeeze
Tensor.unsqueeze = unsqueeze
Tensor.expand = expand
Tensor.broadcast_to = broadcast_to
Tensor.split = split
Tensor.chunk = chunk

Tensor.to = lambda x, dtype: x if x.dtype == np.dtype(dtype) else cast(x, dtype=np.dtype(dtype))
Tensor.float = lambda x: Tensor.to(x, np.float32)
Tensor.double = lambda x: Tensor.to(x, np.float64)
Tensor.long = lambda x: Tensor.to(x, np.int64)
