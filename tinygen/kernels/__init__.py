"""Conv, activation, batch-norm and minibatch kernels; backends ``numba`` (default), ``reference``.

What this file teaches: how to give one API two interchangeable implementations. Both
backends define the same functions with the same signatures, and this module's names are
simply bound to the current backend's functions (``kernels.conv2d_forward`` IS
``numba_kernels.conv2d_forward`` while numba is selected), so a caller writes
``kernels.conv2d_forward(x, w, ...)``, never cares which one runs, and pays no extra call.
Pick the backend with the environment variable ``TINYGEN_KERNELS=numba|reference`` (read
once, at import) or at run time with ``set_backend(name)``. The reference backend never
imports Numba. Callers must look the names up at call time (``kernels.conv2d_forward(...)``,
not ``from tinygen.kernels import conv2d_forward``), so that a switch reaches them.

Read ``reference.py`` first (the math), then ``numba_kernels.py`` (the speed; its activation
and batch-norm kernels are in ``numba_pointwise.py``).
"""

import contextlib
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
    _bind(_load(name, "set_backend"))


def get_backend():
    """The module currently serving kernel calls."""
    return _backend


@contextlib.contextmanager
def use_backend(name):
    """Run a block with backend ``name``, then restore whichever backend was current."""
    previous = _backend
    set_backend(name)
    try:
        yield _backend
    finally:
        _bind(previous)


def _bind(module):
    """Point this module's kernel names at ``module``'s functions, one line each."""
    global _backend, im2col, col2im, conv2d_forward, conv2d_backward, conv2d_input_grad
    global conv2d_weight_grad, conv_transpose2d_forward, conv_transpose2d_backward
    global conv_transpose2d_input_grad, conv_transpose2d_weight_grad
    global leaky_relu_forward, leaky_relu_backward, relu_backward
    global batch_norm_stats, batch_norm_forward, batch_norm_backward
    global minibatch_closeness_forward, minibatch_closeness_backward, adam_update
    _backend = module
    im2col = module.im2col
    col2im = module.col2im
    conv2d_forward = module.conv2d_forward
    conv2d_backward = module.conv2d_backward
    conv2d_input_grad = module.conv2d_input_grad
    conv2d_weight_grad = module.conv2d_weight_grad
    conv_transpose2d_forward = module.conv_transpose2d_forward
    conv_transpose2d_backward = module.conv_transpose2d_backward
    conv_transpose2d_input_grad = module.conv_transpose2d_input_grad
    conv_transpose2d_weight_grad = module.conv_transpose2d_weight_grad
    leaky_relu_forward = module.leaky_relu_forward
    leaky_relu_backward = module.leaky_relu_backward
    relu_backward = module.relu_backward
    batch_norm_stats = module.batch_norm_stats
    batch_norm_forward = module.batch_norm_forward
    batch_norm_backward = module.batch_norm_backward
    minibatch_closeness_forward = module.minibatch_closeness_forward
    minibatch_closeness_backward = module.minibatch_closeness_backward
    adam_update = module.adam_update


_bind(_load(os.environ.get("TINYGEN_KERNELS", "numba"), "TINYGEN_KERNELS"))
