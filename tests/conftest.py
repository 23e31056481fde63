"""Shared test machinery: hypothesis profiles, strategies for shapes and safe inputs, helpers.

Profiles (choose with `pytest --hypothesis-profile=dev`, or TINYGEN_HYPOTHESIS_PROFILE=dev):

- `ci` (the default): few examples, derandomized, so the whole engine suite is reproducible and
  takes well under a minute on two cores.
- `dev`: more examples and fresh randomness on every run, for hunting bugs locally.
- `thorough`: many examples; run it after changing a VJP.

The input strategies follow minitorch's lesson: gradient checks use central differences, so an
input that sits on a kink (relu at 0), a tie (max of equal values) or a domain edge (log at 0)
gives a meaningless numerical gradient. Each strategy below says which of those it avoids.
Read `tests/test_ops_grad.py` next: it turns these strategies into one line per op.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygen as tg
from tinygen import kernels

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("TINYGEN_HYPOTHESIS_PROFILE", "ci"))

# Small sides keep every input at <= 64 entries, so gradcheck compares entry by entry.
MAX_SIDE = 4
MAX_DIMS = 3


# ----------------------------------------------------------------------------------------------
# Shapes.


def shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcast_shapes(n=2, min_dims=0, max_dims=MAX_DIMS, max_side=MAX_SIDE):
    """`n` shapes that broadcast together, e.g. (3, 1) and (4,): a tuple of n tuples."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=min_dims, max_dims=max_dims,
                                             max_side=max_side).map(lambda b: b.input_shapes)


# ----------------------------------------------------------------------------------------------
# Values. Every entry is drawn on its own (`fill=st.nothing()`), so arrays are not mostly one
# repeated value, which would create ties.


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


# What each kind of input avoids:
#   any:      nothing; for smooth ops (exp, tanh, add, ...).
#   positive: the domain edge at 0; for log, sqrt, fractional powers, pow's base.
#   away:     the kink at 0 (|x| >= 0.25); for relu, abs, leaky_relu, elu, divisors.
#   small:    overflow; for exponentials of exponentials (2 ** x).
VALUE_RANGES = {
    "any": _floats(-2.0, 2.0),
    "positive": _floats(0.5, 3.0),
    "away": st.one_of(_floats(-2.0, -0.25), _floats(0.25, 2.0)),
    "small": _floats(-1.0, 1.0),
}


def arrays(shape, kind="any"):
    return hnp.arrays(np.float64, shape, elements=VALUE_RANGES[kind], fill=st.nothing())


@st.composite
def distinct_arrays(draw, *shapes_):
    """Arrays whose entries, across all of them, are distinct, >= 0.25 apart and never 0.

    Every value is (k + 1/2) / 4 for a shuffled integer k, so max/min have a unique winner,
    maximum(a, b) never sees a tie, and relu/clamp never sit on their kink. The gap of 0.25 is
    far wider than gradcheck's step of 1e-6.
    """
    sizes = [int(np.prod(s)) for s in shapes_]
    total = sum(sizes)
    ks = draw(st.permutations(range(total)))
    values = (np.asarray(ks, dtype=np.float64) - total // 2 + 0.5) / 4
    out, start = [], 0
    for s, n in zip(shapes_, sizes, strict=True):
        out.append(values[start:start + n].reshape(s))
        start += n
    return tuple(out)


@st.composite
def reduce_dims(draw, ndim):
    """A `dim` argument for an `ndim`-dim tensor: None, one int (maybe negative), or a tuple."""
    if ndim == 0:
        return None
    one = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)
    return draw(st.one_of(st.none(), one, several.map(tuple)))


# ----------------------------------------------------------------------------------------------
# Helpers.


def leaves(*arrays_, dtype=np.float64):
    """Leaf tensors that require grad, from ndarrays."""
    return [tg.tensor(a, dtype=dtype, requires_grad=True) for a in arrays_]


def graph_ops(out: tg.Tensor) -> set[str]:
    """Names of the primitives recorded in the graph that produced `out`."""
    names, stack, seen = set(), [out], set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t._op is not None:
            names.add(t._op.name)
            stack.extend(t._inputs)
    return names


@pytest.fixture(params=kernels.BACKENDS)
def backend(request):
    """Run the test once with each conv kernel backend, restoring the previous one after."""
    if request.param == "numba":
        pytest.importorskip("numba")
    with kernels.use_backend(request.param):
        yield request.param
