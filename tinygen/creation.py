"""Making leaf tensors: from data, constants and random numbers, with PyTorch's names.

Randomness comes from a NumPy `Generator`: pass one as `generator=`, or seed tinygen's default
with `tinygen.manual_seed(0)`. Float results are float32 unless `dtype=` says otherwise.
"""

from __future__ import annotations

import numpy as np

from tinygen.autograd import DEFAULT_DTYPE, Tensor, default_generator


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new leaf tensor. Python floats become float32; NumPy arrays keep their dtype.

    Unlike `torch.tensor`, an ndarray of the right dtype is wrapped, not copied (the models
    wrap every batch this way); call `.copy()` on it first if you will edit it afterwards.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares memory with `array`, as `torch.from_numpy`: writing to one is seen
    by the other. The dtype is kept, float64 included."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def _shape(op, shape) -> tuple:
    """Accept f(2, 3), f((2, 3)) and f([2, 3]); every size an int >= 0 (0 makes an empty
    tensor, as in PyTorch). Checked here so the error names the function, not NumPy."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not isinstance(n, int | np.integer):
            raise TypeError(f"{op}: size must be a tuple of ints, got {tuple(shape)!r}")
        if n < 0:
            raise ValueError(f"{op}: size {tuple(shape)} has a negative entry {n}")
    return tuple(int(n) for n in shape)


def _leaf(array, requires_grad) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


def zeros(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _leaf(np.zeros(_shape("zeros", shape), dtype=dtype or DEFAULT_DTYPE), requires_grad)


def ones(*shape, dtype=None, requires_grad=False) -> Tensor:
    return _leaf(np.ones(_shape("ones", shape), dtype=dtype or DEFAULT_DTYPE), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return _leaf(np.full(_shape("full", (shape,)), fill_value, dtype=dtype or DEFAULT_DTYPE),
                 requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False) -> Tensor:
    rows, cols = _shape("eye", (n, n if m is None else m))
    return _leaf(np.eye(rows, cols, dtype=dtype or DEFAULT_DTYPE), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    """Integers give int64 (like PyTorch); any float argument gives float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError(f"arange: step must be nonzero (start={start}, end={end})")
    if dtype is None and any(isinstance(v, float) for v in (start, end, step)):
        dtype = DEFAULT_DTYPE
    return _leaf(np.arange(start, end, step, dtype=dtype), requires_grad)


def _gen(generator) -> np.random.Generator:
    return generator if generator is not None else default_generator()


def randn(*shape, generator=None, dtype=None, requires_grad=False) -> Tensor:
    """Standard normal samples."""
    dtype = np.dtype(dtype or DEFAULT_DTYPE)
    return _leaf(_gen(generator).standard_normal(_shape("randn", shape), dtype=dtype),
                 requires_grad)


def rand(*shape, generator=None, dtype=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1)."""
    dtype = np.dtype(dtype or DEFAULT_DTYPE)
    return _leaf(_gen(generator).random(_shape("rand", shape), dtype=dtype), requires_grad)


def randint(low, high, size, generator=None) -> Tensor:
    """Integers drawn uniformly from [low, high), as int64."""
    if not low < high:
        raise ValueError(f"randint: low must be below high, got low={low}, high={high}")
    size = _shape("randint", (size,) if isinstance(size, tuple | list) else (size,))
    return Tensor(_gen(generator).integers(low, high, size=size, dtype=np.int64))


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
