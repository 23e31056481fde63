"""Adam's one-pass update (`kernels/numba_optim.py`) against its NumPy twin
(`reference.adam_update`), bitwise, and the optimizer the same under both backends."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen as tg
from tinygen import kernels, nn, optim
from tinygen.kernels import numba_optim, reference


@pytest.fixture
def numba_on_every_shape(monkeypatch):
    """Small parameters normally go to the NumPy twin; here the loop runs on every size."""
    monkeypatch.setattr(numba_optim, "_NUMPY_BELOW", 0)


@given(dtype=st.sampled_from([np.float32, np.float64]),
       shape=st.lists(st.integers(1, 40), min_size=1, max_size=3),
       beta1=st.floats(0.0, 0.99), beta2=st.floats(0.0, 0.9999),
       eps=st.sampled_from([1e-8, 1e-3, 0.0]), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_the_loop_equals_the_numpy_twin_bitwise(dtype, shape, beta1, beta2, eps, seed):
    numba_optim._NUMPY_BELOW, below = 0, numba_optim._NUMPY_BELOW
    try:
        rng = np.random.default_rng(seed)
        ours = [rng.standard_normal(shape).astype(dtype), np.zeros(shape, dtype),
                np.zeros(shape, dtype)]
        twin = [a.copy() for a in ours]
        for t in range(1, 4):
            g = rng.standard_normal(shape).astype(dtype)
            g[rng.random(shape) < 0.2] = 0                   # zero gradients: v can stay 0
            scalars = (beta1, beta2, 1e-2 / (1 - beta1**t), (1 - beta2**t) ** 0.5, eps)
            numba_optim.adam_update(*ours[:1], g, *ours[1:], None, *scalars)
            with np.errstate(invalid="ignore", divide="ignore"):   # eps 0: 0 / 0, m / 0
                reference.adam_update(*twin[:1], g, *twin[1:], None, *scalars)
            for a, b in zip(ours, twin, strict=True):
                np.testing.assert_array_equal(a, b)          # NaN (0/0 with eps 0) equals NaN
    finally:
        numba_optim._NUMPY_BELOW = below


def test_big_parameters_take_the_loop_and_others_the_twin(monkeypatch):
    calls = []
    monkeypatch.setattr(numba_optim, "_adam", lambda *a: calls.append(a[0].size))
    n = numba_optim._NUMPY_BELOW

    def update(size=n, g=None, vmax=None):
        z = np.zeros(size, np.float32)
        numba_optim.adam_update(z, np.ones(size, np.float32) if g is None else g, z.copy(),
                                z.copy(), vmax, 0.9, 0.999, 1e-3, 1.0, 1e-8)
    update()                                             # the loop
    update(size=n - 1)                                   # small: the twin
    update(vmax=np.zeros(n, np.float32))                 # amsgrad: the twin
    update(g=np.ones(2 * n, np.float32)[::2])            # a strided gradient: the twin
    assert calls == [n]


@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.1}, {"amsgrad": True},
                                     {"maximize": True}, {"betas": (0.5, 0.99), "eps": 1e-3}])
@pytest.mark.parametrize("make", [optim.Adam, optim.AdamW])
def test_the_optimizer_is_the_same_under_both_backends(options, make, numba_on_every_shape):
    def run(backend):
        tg.manual_seed(0)
        net = nn.Sequential(nn.Linear(7, 30), nn.ReLU(), nn.Linear(30, 3))
        opt = make(net.parameters(), lr=1e-2, **options)
        x = tg.tensor(np.random.default_rng(1).standard_normal((16, 7)).astype(np.float32))
        with kernels.use_backend(backend):
            for _ in range(5):
                opt.zero_grad()
                (net(x) ** 2).mean().backward()
                opt.step()
        return [p.data.copy() for p in net.parameters()]
    for a, b in zip(run("numba"), run("reference"), strict=True):
        np.testing.assert_array_equal(a, b)
