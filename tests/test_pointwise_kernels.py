"""The activation and batch-norm kernels: each against its definition, and Numba against NumPy.

`tinygen/kernels/reference.py` ends with the NumPy twins, `numba_pointwise.py` has the fused
loops. Both are held to a naive definition here; the gradchecks through `F.batch_norm`,
`leaky_relu` and `relu` (tests/test_layers.py, tests/test_ops_grad.py) check the derivatives.
Shapes include arrays above `numba_pointwise._SMALL`, where the thread team splits the work.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygen.kernels import numba_kernels, numba_pointwise, reference

BACKENDS = [reference, numba_kernels]
ids = lambda m: m.__name__.split(".")[-1]  # noqa: E731
SETTINGS = settings(max_examples=15, deadline=None)
BIG = (32, 8, 64, 64)  # 2^20 values: not below _SMALL, so the team splits it
BIG_ROWS = (256, 4096)  # the same for BatchNorm1d's (N, C) kernels


@pytest.fixture(autouse=True)
def numba_on_every_shape(monkeypatch):
    """Small arrays normally go to the NumPy twin; here the Numba loops run on every shape."""
    monkeypatch.setattr(numba_pointwise, "_NUMPY_BELOW", 0)
    monkeypatch.setattr(numba_pointwise, "_NUMPY_BELOW_MAPS", 0)


def test_the_big_shapes_are_split_between_threads():
    for shape in (BIG, BIG_ROWS):  # else the big cases test nothing extra
        assert np.prod(shape) >= numba_pointwise._SMALL


@st.composite
def arrays(draw, min_ndim=1):
    """A float32 or float64 array of mixed signs (some exact zeros), shape drawn or BIG."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kind = draw(st.sampled_from(["big", "big rows", "small", "small"]))
    if kind == "big":
        shape = BIG
    elif kind == "big rows":
        shape = BIG_ROWS
    else:
        shape = tuple(draw(st.lists(st.integers(1, 5), min_size=min_ndim, max_size=4)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.05] = 0
    return x.astype(dtype), rng


@pytest.mark.parametrize("K", BACKENDS, ids=ids)
@SETTINGS
@given(case=arrays(), slope=st.sampled_from([0.0, 0.01, 0.2, 1.0, 3.0]))
def test_leaky_relu_matches_its_definition(K, case, slope):
    x, rng = case
    g = rng.standard_normal(x.shape).astype(x.dtype)
    s = x.dtype.type(slope)
    y, gx = K.leaky_relu_forward(x, slope), K.leaky_relu_backward(g, x, slope)
    assert y.dtype == gx.dtype == x.dtype and y.shape == gx.shape == x.shape
    np.testing.assert_array_equal(y, np.where(x > 0, x, x * s))
    np.testing.assert_array_equal(gx, np.where(x > 0, g, g * s))


@pytest.mark.parametrize("K", BACKENDS, ids=ids)
@SETTINGS
@given(case=arrays())
def test_relu_backward_matches_its_definition(K, case):
    x, rng = case
    g = rng.standard_normal(x.shape).astype(x.dtype)
    gx = K.relu_backward(g, x)
    assert gx.dtype == x.dtype
    np.testing.assert_array_equal(gx, np.where(x > 0, g, 0))


def test_activation_kernels_take_strided_inputs():
    x = np.random.default_rng(0).standard_normal((6, 8)).T  # not C-contiguous
    for K in BACKENDS:
        np.testing.assert_array_equal(K.leaky_relu_forward(x, 0.2), np.where(x > 0, x, 0.2 * x))
        np.testing.assert_array_equal(K.relu_backward(x, x), np.maximum(x, 0))


def test_relu_backward_keeps_a_nan_gradient():
    # g * [x > 0], as the reference multiplies: a NaN in the gradient is not hidden as 0.
    g, x = np.array([np.nan, np.nan]), np.array([1.0, -1.0])
    for K in BACKENDS:
        assert np.isnan(K.relu_backward(g, x)).all()


# ---------------------------------------------------------------------------------------------
# Batch norm.


def naive_stats(x):
    """Per-channel mean and biased variance in float64, by the definition."""
    v = np.moveaxis(x.astype(np.float64), 1, 0).reshape(x.shape[1], -1)
    mean = v.mean(axis=1)
    return mean, ((v - mean[:, None]) ** 2).mean(axis=1)


def naive_backward(g, x, mean, inv, w):
    """The closed form, one channel at a time, in float64."""
    gx, gw, gb = np.empty(x.shape), np.empty(x.shape[1]), np.empty(x.shape[1])
    for c in range(x.shape[1]):
        gc, xh = g[:, c].astype(np.float64), (x[:, c] - mean[c]) * inv[c]
        gb[c], gw[c] = gc.sum(), (gc * xh).sum()
        gx[:, c] = w[c] * inv[c] * (gc - gb[c] / gc.size - xh * gw[c] / gc.size)
    return gx, gw, gb


def tolerance(dtype):
    return {"rtol": 2e-4, "atol": 2e-4} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-9}


@pytest.mark.parametrize("K", BACKENDS, ids=ids)
@SETTINGS
@given(case=arrays(min_ndim=2), offset=st.sampled_from([0.0, 5.0, -300.0]))
def test_batch_norm_stats_match_the_definition(K, case, offset):
    x, _ = case
    x = (x + offset).astype(x.dtype)  # a large mean must not cancel the variance away
    mean, var = K.batch_norm_stats(x)
    want_mean, want_var = naive_stats(x)
    assert mean.dtype == var.dtype == x.dtype and mean.shape == var.shape == (x.shape[1],)
    np.testing.assert_allclose(mean, want_mean, **tolerance(x.dtype))
    scale = 1e-5 * max(1.0, abs(offset)) ** 2 if x.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(var, want_var, rtol=2e-4, atol=scale)


@pytest.mark.parametrize("K", BACKENDS, ids=ids)
@SETTINGS
@given(case=arrays(min_ndim=2), need_x=st.booleans())
def test_batch_norm_forward_and_backward_match_the_closed_form(K, case, need_x):
    x, rng = case
    C = x.shape[1]
    scale, shift, w = (rng.standard_normal(C).astype(x.dtype) for _ in range(3))
    g = rng.standard_normal(x.shape).astype(x.dtype)
    mean, var = naive_stats(x)
    mean, inv = mean.astype(x.dtype), (1 / np.sqrt(var + 1e-5)).astype(x.dtype)
    spread = (1, -1) + (1,) * (x.ndim - 2)
    y = K.batch_norm_forward(x, scale, shift)
    np.testing.assert_allclose(y, x * scale.reshape(spread) + shift.reshape(spread),
                               **tolerance(x.dtype))
    gx, gw, gb = K.batch_norm_backward(g, x, mean, inv, w, need_x)
    want = naive_backward(g, x, mean, inv, w)
    tol = tolerance(x.dtype)
    if x.dtype == np.float32:  # sums of up to 10^4 float32 terms, each of size ~1
        tol = {"rtol": 1e-3, "atol": 1e-3 * np.sqrt(x.size / C)}
    np.testing.assert_allclose(gw, want[1], **tol)
    np.testing.assert_allclose(gb, want[2], **tol)
    assert (gx is None) == (not need_x)
    if need_x:
        assert gx.dtype == x.dtype and gx.shape == x.shape
        np.testing.assert_allclose(gx, want[0], **tol)


@SETTINGS
@given(case=arrays(min_ndim=2))
def test_numba_batch_norm_equals_the_reference(case):
    x, rng = case
    C = x.shape[1]
    w = rng.standard_normal(C).astype(x.dtype)
    g = rng.standard_normal(x.shape).astype(x.dtype)
    fast, slow = numba_kernels, reference
    for a, b in zip(fast.batch_norm_stats(x), slow.batch_norm_stats(x), strict=True):
        np.testing.assert_allclose(a, b, **tolerance(x.dtype))
    mean, var = slow.batch_norm_stats(x)
    inv = (1 / np.sqrt(var + 1e-5)).astype(x.dtype)
    tol = tolerance(x.dtype) if x.dtype == np.float64 else {"rtol": 1e-3, "atol": 1e-3}
    for a, b in zip(fast.batch_norm_backward(g, x, mean, inv, w),
                    slow.batch_norm_backward(g, x, mean, inv, w), strict=True):
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("shape", [BIG, BIG_ROWS])
def test_numba_batch_norm_is_the_same_on_any_thread_count(shape):
    import numba
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    g = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, before):
            numba.set_num_threads(threads)
            mean, var = numba_kernels.batch_norm_stats(x)
            inv = 1 / np.sqrt(var + 1e-5)
            results.append([mean, var, *numba_kernels.batch_norm_backward(g, x, mean, inv, mean)])
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
