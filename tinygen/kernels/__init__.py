"""Conv kernels with a switchable backend: ``numba`` (fast, the default) or ``reference``.

What this file teaches: how to give one API two interchangeable implementations. Both
backends define the same functions with the same signatures; the functions below forward each
call to whichever module is current, so a caller writes ``kernels.conv2d_forward(x, w, ...)``
and never cares which one runs. Pick the backend with the environment variable
``TINYGEN_KERNELS=numba|reference`` (read once, at import) or at run time with
``set_backend(name)``. The reference backend never imports Numba.

Read ``reference.py`` first (the math), then ``numba_kernels.py`` (the speed).
"""

import contextlib
import functools
import importlib
import os

from . import reference

# name -> module path; the module is imported only when first selected.
_BACKENDS = {"numba": "tinygen.kernels.numba_kernels", "reference": "tinygen.kernels.reference"}
BACKENDS = tuple(sorted(_BACKENDS))


def _load(name, source):
    if name not in _BACKENDS:
        raise ValueError(
            f"unknown tinygen kernel backend {name!r} (from {source}); "
            f"valid names: {', '.join(BACKENDS)}"
        )
    return importlib.import_module(_BACKENDS[name])


def set_backend(name):
    """Make ``name`` ('numba' or 'reference') the backend every kernel call goes to."""
    global _backend
    _backend = _load(name, "set_backend")


def get_backend():
    """The module currently serving kernel calls."""
    return _backend


@contextlib.contextmanager
def use_backend(name):
    """Run a block with backend ``name``, then restore whichever backend was current."""
    global _backend
    previous = _backend
    set_backend(name)
    try:
        yield _backend
    finally:
        _backend = previous


_backend = _load(os.environ.get("TINYGEN_KERNELS", "numba"), "TINYGEN_KERNELS")


def _dispatch(name):
    """A function with reference's signature and docstring that calls the current backend."""

    @functools.wraps(getattr(reference, name))
    def call(*args, **kwargs):
        # An empty batch (N = 0) has nothing to compute. The Numba kernels would split it into
        # zero chunks and reshape empty arrays with -1; the reference kernels get its shapes
        # right, and cost nothing here, so they serve it whichever backend is current.
        backend = reference if _empty_batch(args) else _backend
        return getattr(backend, name)(*args, **kwargs)

    return call


def _empty_batch(args) -> bool:
    first = args[0] if args else None
    return getattr(first, "ndim", 0) == 4 and first.shape[0] == 0


im2col = _dispatch("im2col")
col2im = _dispatch("col2im")
conv2d_forward = _dispatch("conv2d_forward")
conv2d_backward = _dispatch("conv2d_backward")
conv2d_input_grad = _dispatch("conv2d_input_grad")
conv2d_weight_grad = _dispatch("conv2d_weight_grad")
conv_transpose2d_forward = _dispatch("conv_transpose2d_forward")
conv_transpose2d_backward = _dispatch("conv_transpose2d_backward")
conv_transpose2d_input_grad = _dispatch("conv_transpose2d_input_grad")
conv_transpose2d_weight_grad = _dispatch("conv_transpose2d_weight_grad")
