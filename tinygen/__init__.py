"""tinygen: deep generative models from scratch, on a small autodiff engine over NumPy.

Reading order for the engine: `autograd.py` (the graph and backward), `ops.py` (each op and
its VJP), `gradcheck.py` (how the VJPs are verified), then `nn/functional.py` and `kernels/`.
"""

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
