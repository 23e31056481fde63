"""Minibatch discrimination's closeness o[i, b] = sum_j exp(-||M[i, b] - M[j, b]||_1).

Both backends (`reference.py`'s broadcast NumPy, `numba_minibatch.py`'s pair loops) are held
to the definition written as plain loops, and the Numba backward to the reference's closed
form, on drawn shapes and dtypes, with repeated rows (a collapsed batch: sign 0 at the ties).
The gradient itself is checked against central differences in tests/test_ops_grad.py (case
"minibatch_closeness") and here once more under the reference backend.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen as tg
import tinygen.nn.functional as F
from tinygen import kernels
from tinygen.kernels import numba_minibatch, reference

BACKENDS = [reference, numba_minibatch]
ids = lambda m: m.__name__.split(".")[-1]  # noqa: E731
SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def batches(draw):
    """(M, g): M (N, B, C) of either float dtype, some rows repeated; g = dL/do (N, B)."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n, b, c = draw(st.integers(1, 12)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    M = rng.standard_normal((n, b, c))
    if n > 2 and draw(st.booleans()):
        M[1] = M[0]                                          # a tie: every difference is 0
    return M.astype(dtype), rng.standard_normal((n, b)).astype(dtype)


def closeness_by_loops(M):
    n, b, _ = M.shape
    o = np.zeros((n, b))
    for i in range(n):
        for j in range(n):
            o[i] += np.exp(-np.abs(M[i].astype(np.float64) - M[j]).sum(axis=1))
    return o


def tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 0}


@pytest.mark.parametrize("K", BACKENDS, ids=ids)
@SETTINGS
@given(batches())
def test_forward_matches_the_definition(K, case):
    M, _ = case
    o = K.minibatch_closeness_forward(M)
    assert o.shape == M.shape[:2] and o.dtype == M.dtype
    np.testing.assert_allclose(o, closeness_by_loops(M), **tolerance(M.dtype))


@SETTINGS
@given(batches())
def test_numba_backward_equals_the_reference(case):
    M, g = case
    got = numba_minibatch.minibatch_closeness_backward(g, M)
    want = reference.minibatch_closeness_backward(g, M)
    assert got.shape == want.shape == M.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, **tolerance(M.dtype))


def test_a_collapsed_batch_has_the_largest_closeness_and_no_gradient_between_copies():
    M = np.repeat(np.random.default_rng(0).standard_normal((1, 3, 2)), 5, axis=0)
    for K in BACKENDS:
        np.testing.assert_allclose(K.minibatch_closeness_forward(M), 5.0)
        assert not K.minibatch_closeness_backward(np.ones((5, 3)), M).any()


def test_the_gradient_under_the_reference_backend():
    M = tg.tensor(np.random.default_rng(1).standard_normal((6, 3, 4)), requires_grad=True)
    with kernels.use_backend("reference"):
        assert tg.gradcheck(F.minibatch_closeness, M)


def test_a_wrong_shape_names_the_op_and_the_shape():
    with pytest.raises(ValueError, match=r"minibatch_closeness.*3-D.*\(4, 6\)"):
        F.minibatch_closeness(tg.ones(4, 6))
