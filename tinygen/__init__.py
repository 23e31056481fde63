"""tinygen: deep generative models from scratch, on a small autodiff engine over NumPy.

Reading order for the engine: `autograd.py` (the graph and backward), `ops.py` (each op and
its VJP), `gradcheck.py` (how the VJPs are verified), then `nn/functional.py` and `kernels/`.

`import tinygen as tg` gives the engine at once, and `tg.nn`, `tg.optim`, `tg.data` (and the
other subpackages) on first use, as PyTorch users expect. They are imported lazily because
`tg.nn` pulls in the Numba kernels, which would make `import tinygen` five times slower.
"""

import importlib

import numpy as np

from tinygen import _malloc  # noqa: F401  (faster allocation of NumPy temporaries; see file)
from tinygen.autograd import (
    AnomalyError,
    ShapeError,
    Tensor,
    default_generator,
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    manual_seed,
    no_grad,
)
from tinygen.creation import (
    arange,
    eye,
    from_numpy,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from tinygen.gradcheck import GradcheckError, gradcheck, gradcheck_module
from tinygen.ops import (
    abs,
    broadcast_to,
    cat,
    chunk,
    clamp,
    elu,
    exp,
    expand,
    flatten,
    leaky_relu,
    log,
    log_softmax,
    logsigmoid,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    neg,
    pad,
    permute,
    relu,
    reshape,
    sigmoid,
    softmax,
    softplus,
    split,
    sqrt,
    squeeze,
    stack,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from tinygen.serialization import CheckpointError, load, save

float32 = np.float32
float64 = np.float64
int64 = np.int64

__version__ = "0.1.0"


# Subpackages reachable as attributes (`tg.nn.Linear`), imported on first use (PEP 562).
_LAZY_SUBPACKAGES = ("nn", "optim", "data", "models", "metrics", "kernels", "plotting",
                     "latent", "report", "train")


def __getattr__(name):
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"tinygen.{name}")  # also binds tinygen.<name>
    raise AttributeError(f"module 'tinygen' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
