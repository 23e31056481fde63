"""Weight initialisation, in place, with PyTorch's names and fan conventions.

Why it matters: a layer's output variance is about fan_in * Var(w) * Var(x). Xavier (Glorot)
keeps it steady for tanh-like units with Var(w) = 2 / (fan_in + fan_out); Kaiming (He) keeps it
steady for ReLU with Var(w) = 2 / fan_in. PyTorch's *default* for Linear and Conv is
kaiming_uniform_ with a = sqrt(5), which works out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

Fans follow PyTorch: for a weight of shape (d0, d1, k...), fan_in = d1 * prod(k) and
fan_out = d0 * prod(k). For ConvTranspose2d's (in, out, kh, kw) layout that makes fan_in
use the *out* channels; we keep PyTorch's quirk so the same seed-free statistics result.
Randomness comes from `generator=` or tinygen's default generator (`tinygen.manual_seed`).
"""

import math

import numpy as np

from tinygen.autograd import default_generator


def calculate_fan_in_and_fan_out(t) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"init: fans need a tensor with at least 2 dims, got shape {t.shape}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity: str, param=None) -> float:
    if nonlinearity in ("linear", "conv2d", "conv_transpose2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def _fill(t, values):
    t.data[...] = values
    return t


def _gen(generator):
    return generator if generator is not None else default_generator()


def uniform_(t, a=0.0, b=1.0, generator=None):
    return _fill(t, _gen(generator).uniform(a, b, t.shape))


def normal_(t, mean=0.0, std=1.0, generator=None):
    return _fill(t, _gen(generator).normal(mean, std, t.shape))


def constant_(t, value):
    return _fill(t, value)


def zeros_(t):
    return _fill(t, 0)


def ones_(t):
    return _fill(t, 1)


def xavier_uniform_(t, gain=1.0, generator=None):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))   # U(-b, b) has variance b^2 / 3
    return uniform_(t, -bound, bound, generator)


def xavier_normal_(t, gain=1.0, generator=None):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(t, a, mode, nonlinearity):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity), generator)
