"""Making leaf tensors: from data, constants and random numbers, with PyTorch's names.

Randomness comes from a NumPy `Generator`: pass one as `generator=`, or seed tinygen's default
with `tinygen.manual_seed(0)`. Float results are float32 unless `dtype=` says otherwise.
"""

from __future__ import annotations

import numpy as np

from tinygen.autograd import DEFAULT_DTYPE, Tensor, default_generator


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new leaf tensor. Python floats become float32; NumPy arrays keep their dtype."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        return tuple(shape[0])
    return tuple(shape)


def _leaf(array, requires_grad) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


def zeros(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _leaf(np.zeros(_shape(shape), dtype=dtype or DEFAULT_DTYPE), requires_grad)


def ones(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _leaf(np.ones(_shape(shape), dtype=dtype or DEFAULT_DTYPE), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return _leaf(np.full(_shape((shape,)), fill_value, dtype=dtype or DEFAULT_DTYPE),
                 requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False) -> Tensor:
    return _leaf(np.eye(n, m, dtype=dtype or DEFAULT_DTYPE), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    """Integers give int64 (like PyTorch); any float argument gives float32."""
    if end is None:
        start, end = 0, start
    if dtype is None and any(isinstance(v, float) for v in (start, end, step)):
        dtype = DEFAULT_DTYPE
    return _leaf(np.arange(start, end, step, dtype=dtype), requires_grad)


def _gen(generator) -> np.random.Generator:
    return generator if generator is not None else default_generator()


def randn(*shape, generator=None, dtype=None, requires_grad=False) -> Tensor:
    """Standard normal samples."""
    dtype = np.dtype(dtype or DEFAULT_DTYPE)
    return _leaf(_gen(generator).standard_normal(_shape(shape), dtype=dtype), requires_grad)


def rand(*shape, generator=None, dtype=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1)."""
    dtype = np.dtype(dtype or DEFAULT_DTYPE)
    return _leaf(_gen(generator).random(_shape(shape), dtype=dtype), requires_grad)


def randint(low, high, size, generator=None) -> Tensor:
    return Tensor(_gen(generator).integers(low, high, size=_shape((size,)), dtype=np.int64))


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn_like(t: Tensor, generator=None, dtype=None, requires_grad=False) -> Tensor:
    return randn(t.shape, generator=generator, dtype=dtype or t.dtype,
                 requires_grad=requires_grad)


def rand_like(t: Tensor, generator=None, dtype=None, requires_grad=False) -> Tensor:
    return rand(t.shape, generator=generator, dtype=dtype or t.dtype,
                requires_grad=requires_grad)
