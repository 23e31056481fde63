"""Tests for tinygen.kernels: the spec (a naive loop), adjoint identities, twin equality, torch.

Every property test runs against both backends. All checks are float64 and exact up to
round-off; there are no timing assertions (see benchmarks/bench_kernels.py for speed).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinygen import kernels
from tinygen.kernels import numba_kernels, reference

BACKENDS = [reference, numba_kernels]
SETTINGS = settings(max_examples=25, deadline=None)
RTOL, ATOL = 1e-10, 1e-10


def inner(a, b):
    """<a, b>: the Euclidean inner product that defines an adjoint."""
    return float(np.sum(a * b))


def naive_conv2d(x, w, stride, padding, dilation):
    """The definition of conv2d (cross-correlation, as in PyTorch), written as plain loops."""
    (sh, sw), (ph, pw), (dh, dw) = [reference.pair(v) for v in (stride, padding, dilation)]
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((N, O, Ho, Wo))
    for n, o, oh, ow, c, i, j in np.ndindex(N, O, Ho, Wo, C, kh, kw):
        ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
        if 0 <= ih < H and 0 <= iw < W:  # taps that land in the zero padding add nothing
            y[n, o, oh, ow] += x[n, c, ih, iw] * w[o, c, i, j]
    return y


# ---------------------------------------------------------------------------------------------
# Strategies: small random conv and transposed-conv problems that are always valid.
# ---------------------------------------------------------------------------------------------


@st.composite
def conv_case(draw, max_n=2, max_c=3):
    """(x, w, stride, padding, dilation) with the dilated kernel fitting the padded input."""
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    hw = [draw(st.integers(max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a]), 7)) for a in range(2)]
    N, C, O = draw(st.integers(1, max_n)), draw(st.integers(1, max_c)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C, *hw))
    w = rng.standard_normal((O, C, *k))
    # Mix int and tuple forms so both go through the normalising helper.
    return x, w, s, (p[0] if p[0] == p[1] else p), d


@st.composite
def conv_transpose_case(draw):
    """(x, w, stride, padding, output_padding, dilation) for a valid transposed conv."""
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    # PyTorch's rule: output_padding < stride OR < dilation, i.e. < max(stride, dilation).
    op = (draw(st.integers(0, max(s[0], d[0]) - 1)), draw(st.integers(0, max(s[1], d[1]) - 1)))
    hw = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    out = [(hw[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1 for a in range(2)]
    assume(min(out) >= 1)
    N, C_in, C_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C_in, *hw))
    w = rng.standard_normal((C_in, C_out, *k))
    return x, w, s, p, op, d


# ---------------------------------------------------------------------------------------------
# The spec and the adjoint identities, for every backend.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
@SETTINGS
@given(case=conv_case())
def test_conv2d_forward_matches_naive_loop(K, case):
    x, w, s, p, d = case
    np.testing.assert_allclose(
        K.conv2d_forward(x, w, s, p, d), naive_conv2d(x, w, s, p, d), rtol=RTOL, atol=ATOL
    )


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
@SETTINGS
@given(case=conv_case(), seed=st.integers(0, 2**32 - 1))
def test_conv2d_adjoint_identities(K, case, seed):
    x, w, s, p, d = case
    y = K.conv2d_forward(x, w, s, p, d)
    gy = np.random.default_rng(seed).standard_normal(y.shape)
    # <conv(x, w), gy> = <x, conv_input_grad(gy, w)> = <w, conv_weight_grad(gy, x)>
    lhs = inner(y, gy)
    gx = K.conv2d_input_grad(gy, w, x.shape, s, p, d)
    gw = K.conv2d_weight_grad(gy, x, w.shape, s, p, d)
    assert np.isclose(lhs, inner(x, gx), rtol=1e-9, atol=1e-9)
    assert np.isclose(lhs, inner(w, gw), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
@SETTINGS
@given(case=conv_case(), seed=st.integers(0, 2**32 - 1),
       needs=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_conv2d_bias_and_joint_backward(K, case, seed, needs):
    """The bias adds per output channel; conv2d_backward gives exactly the gradients asked for,
    equal to the single-gradient kernels, and the bias gradient is gy summed per channel."""
    x, w, s, p, d = case
    rng = np.random.default_rng(seed)
    b = rng.standard_normal(w.shape[0])
    y = K.conv2d_forward(x, w, s, p, d, bias=b)
    np.testing.assert_allclose(y, naive_conv2d(x, w, s, p, d) + b[:, None, None],
                               rtol=RTOL, atol=ATOL)
    gy = rng.standard_normal(y.shape)
    gx, gw, gb = K.conv2d_backward(gy, x, w, s, p, d, needs=needs)
    want = (K.conv2d_input_grad(gy, w, x.shape, s, p, d),
            K.conv2d_weight_grad(gy, x, w.shape, s, p, d),
            np.array([gy[:, o].sum() for o in range(w.shape[0])]))
    for got, expected, need in zip((gx, gw, gb), want, needs, strict=True):
        if not need:
            assert got is None
            continue
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
@SETTINGS
@given(case=conv_case(), seed=st.integers(0, 2**32 - 1))
def test_im2col_col2im_adjoint(K, case, seed):
    x, w, s, p, d = case
    kh, kw = w.shape[2:]
    cols = K.im2col(x, kh, kw, s, p, d)
    c = np.random.default_rng(seed).standard_normal(cols.shape)
    assert np.isclose(
        inner(cols, c), inner(x, K.col2im(c, x.shape, kh, kw, s, p, d)), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
@SETTINGS
@given(case=conv_transpose_case(), seed=st.integers(0, 2**32 - 1))
def test_conv_transpose2d_shape_and_adjoints(K, case, seed):
    x, w, s, p, op, d = case
    y = K.conv_transpose2d_forward(x, w, s, p, op, d)
    k = w.shape[2:]
    expect = [
        (x.shape[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1 for a in range(2)
    ]
    assert y.shape == (x.shape[0], w.shape[1], *expect)
    gy = np.random.default_rng(seed).standard_normal(y.shape)
    lhs = inner(y, gy)
    # A transposed conv is the adjoint of the conv with the same weight:
    # <convT(x), z> = <x, conv(z)>
    conv_gy = K.conv2d_forward(gy, w, s, p, d)[:, :, : x.shape[2], : x.shape[3]]
    assert np.isclose(lhs, inner(x, conv_gy), rtol=1e-9, atol=1e-9)
    gx = K.conv_transpose2d_input_grad(gy, w, s, p, d, op)
    gw = K.conv_transpose2d_weight_grad(x, gy, w.shape, s, p, d)
    assert gx.shape == x.shape and gw.shape == w.shape
    assert np.isclose(lhs, inner(x, gx), rtol=1e-9, atol=1e-9)
    assert np.isclose(lhs, inner(w, gw), rtol=1e-9, atol=1e-9)
    both = K.conv_transpose2d_backward(gy, x, w, s, p, d, op, needs=(True, True))
    np.testing.assert_allclose(both[0], gx, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(both[1], gw, rtol=RTOL, atol=ATOL)
    assert K.conv_transpose2d_backward(gy, x, w, s, p, d, op, needs=(False, True))[0] is None


# ---------------------------------------------------------------------------------------------
# Twins: the Numba kernels equal the reference ones.
# ---------------------------------------------------------------------------------------------


def assert_twins(name, *args):
    want = getattr(reference, name)(*args)
    got = getattr(numba_kernels, name)(*args)
    assert got.shape == want.shape and got.dtype == want.dtype, name
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)


def assert_same_grads(got, want):
    """Two tuples of gradients from joint backward kernels: None in the same places, the rest
    equal in shape, dtype and value."""
    for g, r in zip(got, want, strict=True):
        assert (g is None) == (r is None)
        if r is not None:
            assert g.shape == r.shape and g.dtype == r.dtype
            np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL)


@SETTINGS
@given(case=conv_case(), seed=st.integers(0, 2**32 - 1))
def test_numba_conv_kernels_equal_reference(case, seed):
    x, w, s, p, d = case
    kh, kw = w.shape[2:]
    cols = reference.im2col(x, kh, kw, s, p, d)
    gy = np.random.default_rng(seed).standard_normal(reference.conv2d_forward(x, w, s, p, d).shape)
    assert_twins("im2col", x, kh, kw, s, p, d)
    assert_twins("col2im", cols, x.shape, kh, kw, s, p, d)
    assert_twins("conv2d_forward", x, w, s, p, d)
    assert_conv_twins(x, w, s, p, d, gy)


def assert_conv_twins(x, w, s, p, d, gy):
    """Every conv2d kernel, with and without bias, equal in the two backends."""
    b = np.linspace(-1, 1, w.shape[0])
    assert_twins("conv2d_forward", x, w, s, p, d)
    assert_twins("conv2d_forward", x, w, s, p, d, b)
    assert_twins("conv2d_input_grad", gy, w, x.shape, s, p, d)
    assert_twins("conv2d_weight_grad", gy, x, w.shape, s, p, d)
    for needs in [(True, True, True), (True, False, False), (False, True, True)]:
        want = reference.conv2d_backward(gy, x, w, s, p, d, needs)
        got = numba_kernels.conv2d_backward(gy, x, w, s, p, d, needs)
        assert_same_grads(got, want)
    # What the forward saves (its im2col) gives the same backward, and each backend ignores
    # the other's saved layout instead of misreading it (a backend switch mid-step).
    want = reference.conv2d_backward(gy, x, w, s, p, d)
    for fwd in (reference, numba_kernels):
        y, saved = fwd.conv2d_forward(x, w, s, p, d, bias=b, save=True)
        np.testing.assert_allclose(y, reference.conv2d_forward(x, w, s, p, d, bias=b),
                                   rtol=RTOL, atol=ATOL)
        for bwd in (reference, numba_kernels):
            assert_same_grads(bwd.conv2d_backward(gy, x, w, s, p, d, saved=saved), want)


@SETTINGS
@given(case=conv_transpose_case(), seed=st.integers(0, 2**32 - 1))
def test_numba_conv_transpose_kernels_equal_reference(case, seed):
    x, w, s, p, op, d = case
    y = reference.conv_transpose2d_forward(x, w, s, p, op, d)
    gy = np.random.default_rng(seed).standard_normal(y.shape)
    assert_twins("conv_transpose2d_forward", x, w, s, p, op, d)
    assert_twins("conv_transpose2d_input_grad", gy, w, s, p, d, op)
    assert_twins("conv_transpose2d_weight_grad", x, gy, w.shape, s, p, d)
    for needs in [(True, True), (True, False), (False, True)]:
        want = reference.conv_transpose2d_backward(gy, x, w, s, p, d, op, needs)
        got = numba_kernels.conv_transpose2d_backward(gy, x, w, s, p, d, op, needs)
        assert_same_grads(got, want)


@pytest.mark.parametrize("strategy", ["gemm", "direct"])
@settings(max_examples=10, deadline=None)
@given(case=conv_case(max_c=6), seed=st.integers(0, 2**32 - 1))
def test_numba_conv_strategies_equal_reference(strategy, case, seed):
    """numba_kernels picks the direct kernels or one big GEMM by C*kh*kw and Ho*Wo; force each."""
    x, w, s, p, d = case
    gy = np.random.default_rng(seed).standard_normal(reference.conv2d_forward(x, w, s, p, d).shape)
    numba_kernels._FORCE_STRATEGY = strategy
    try:
        assert_conv_twins(x, w, s, p, d, gy)
        # gy as a transposed conv's input, x as its output gradient: the joint backward
        want = reference.conv_transpose2d_backward(x, gy, w, s, p, d, 0)
        assert_same_grads(numba_kernels.conv_transpose2d_backward(x, gy, w, s, p, d, 0), want)
    finally:
        numba_kernels._FORCE_STRATEGY = None


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
def test_float32_in_float32_out(K):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8), dtype=np.float32)
    w = rng.standard_normal((4, 3, 4, 4), dtype=np.float32)
    y = K.conv2d_forward(x, w, 2, 1, 1)
    assert y.dtype == np.float32
    assert K.conv2d_input_grad(y, w, x.shape, 2, 1, 1).dtype == np.float32
    assert K.conv2d_weight_grad(y, x, w.shape, 2, 1, 1).dtype == np.float32
    assert all(g.dtype == np.float32 for g in K.conv2d_backward(y, x, w, 2, 1, 1))
    np.testing.assert_allclose(y, naive_conv2d(x, w, 2, 1, 1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
def test_results_are_not_scratch_buffers(K):
    """Reused scratch must never escape: a held result survives the next call unchanged."""
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((2, 2, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    y1 = K.conv2d_forward(x1, w, 1, 1, 1)
    saved = y1.copy()
    gx1 = K.conv2d_input_grad(y1, w, x1.shape, 1, 1, 1)
    gx_saved = gx1.copy()
    cols1 = K.im2col(x1, 3, 3, 1, 1, 1)
    cols_saved = cols1.copy()
    y2 = K.conv2d_forward(x2, w, 1, 1, 1)
    K.conv2d_input_grad(y2, w, x2.shape, 1, 1, 1)
    K.conv2d_weight_grad(y2, x2, w.shape, 1, 1, 1)
    K.im2col(x2, 3, 3, 1, 1, 1)
    np.testing.assert_array_equal(y1, saved)
    np.testing.assert_array_equal(gx1, gx_saved)
    np.testing.assert_array_equal(cols1, cols_saved)


def test_scratch_cache_reuses_and_stays_bounded():
    saved = numba_kernels._MAX_SCRATCH_BYTES
    numba_kernels.clear_scratch()
    numba_kernels._MAX_SCRATCH_BYTES = 1000
    try:
        a = numba_kernels._scratch("a", (100,), np.float32)  # 400 bytes
        assert numba_kernels._scratch("a", (100,), np.float32) is a  # same key: reused
        numba_kernels._scratch("b", (100,), np.float32)
        numba_kernels._scratch("c", (100,), np.float32)  # 1200 bytes > 1000: evicts "a"
        assert [k[0] for k in numba_kernels._local.buffers] == ["b", "c"]
    finally:
        numba_kernels._MAX_SCRATCH_BYTES = saved
        numba_kernels.clear_scratch()


# ---------------------------------------------------------------------------------------------
# Cross-check with PyTorch (optional extra): same weights, same layouts.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
@settings(max_examples=15, deadline=None)
@given(case=conv_case())
def test_conv2d_matches_torch(K, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, s, p, d = case
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    ty = F.conv2d(tx, tw, stride=s, padding=p, dilation=d)
    gy = np.cos(ty.detach().numpy())  # any fixed cotangent will do
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(
        K.conv2d_forward(x, w, s, p, d), ty.detach().numpy(), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        K.conv2d_input_grad(gy, w, x.shape, s, p, d), tx.grad.numpy(), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        K.conv2d_weight_grad(gy, x, w.shape, s, p, d), tw.grad.numpy(), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
@settings(max_examples=15, deadline=None)
@given(case=conv_transpose_case())
def test_conv_transpose2d_matches_torch(K, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, s, p, op, d = case
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    ty = F.conv_transpose2d(tx, tw, stride=s, padding=p, output_padding=op, dilation=d)
    gy = np.cos(ty.detach().numpy())
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(
        K.conv_transpose2d_forward(x, w, s, p, op, d), ty.detach().numpy(), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        K.conv_transpose2d_input_grad(gy, w, s, p, d, op), tx.grad.numpy(), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        K.conv_transpose2d_weight_grad(x, gy, w.shape, s, p, d),
        tw.grad.numpy(),
        rtol=1e-9,
        atol=1e-9,
    )


# ---------------------------------------------------------------------------------------------
# Errors: clear messages naming the op and the offending values.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
def test_bad_output_padding_raises(K):
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding must be smaller"):
        K.conv_transpose2d_forward(x, w, stride=2, padding=1, output_padding=2, dilation=1)
    # output_padding >= stride is fine while it is below the dilation (PyTorch's rule).
    assert K.conv_transpose2d_forward(x, w, 1, 0, 1, 2).shape == (1, 3, 9, 9)


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
def test_kernel_larger_than_padded_input_raises(K):
    x, w = np.zeros((1, 2, 3, 3)), np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: dilated kernel extent 5 along H"):
        K.conv2d_forward(x, w, 1, 0, 2)
    assert K.conv2d_forward(x, w, 1, 1, 2).shape == (1, 4, 1, 1)  # padding makes it fit
    with pytest.raises(ValueError, match=r"conv_transpose2d: output size"):
        K.conv_transpose2d_forward(np.zeros((1, 2, 1, 1)), np.zeros((2, 1, 1, 1)), 1, 1, 0, 1)


@pytest.mark.parametrize("K", BACKENDS, ids=lambda m: m.__name__.split(".")[-1])
def test_channel_and_dtype_mismatch_raise(K):
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"input has 2 channels but the weight expects 3"):
        K.conv2d_forward(x, np.zeros((4, 3, 3, 3)), 1, 0, 1)
    with pytest.raises(TypeError, match=r"must all be float32 or all float64"):
        K.conv2d_forward(x, np.zeros((4, 2, 3, 3), dtype=np.float32), 1, 0, 1)
    with pytest.raises(ValueError, match=r"conv2d: bias has shape \(3,\) .* must be \(4,\)"):
        K.conv2d_forward(x, np.zeros((4, 2, 3, 3)), 1, 0, 1, bias=np.zeros(3))
    with pytest.raises(TypeError, match=r"must all be float32 or all float64"):
        K.conv2d_forward(x, np.zeros((4, 2, 3, 3)), 1, 0, 1, bias=np.zeros(4, np.float32))


# ---------------------------------------------------------------------------------------------
# Backend selection.
# ---------------------------------------------------------------------------------------------


def test_set_backend_and_dispatch():
    before = kernels.get_backend()
    try:
        for name, module in [("reference", reference), ("numba", numba_kernels)]:
            kernels.set_backend(name)
            assert kernels.get_backend() is module
            x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
            np.testing.assert_array_equal(kernels.conv2d_forward(x, w, 1, 0, 1), 4.0)
    finally:
        kernels.set_backend({reference: "reference", numba_kernels: "numba"}[before])


def test_bad_backend_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"'cuda'.*numba.*reference"):
        kernels.set_backend("cuda")


def test_env_var_selects_backend_at_import():
    env = {**os.environ, "TINYGEN_KERNELS": "reference"}
    code = "from tinygen import kernels; print(kernels.get_backend().__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "tinygen.kernels.reference"
    env["TINYGEN_KERNELS"] = "bogus"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "TINYGEN_KERNELS" in bad.stderr


# ---------------------------------------------------------------------------------------------
# numba_kernels.ConvGeometry: the names every loop's sizes come from.
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 4),
       kw=st.integers(1, 4), s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       p=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       d=st.tuples(st.integers(1, 2), st.integers(1, 2)))
def test_conv_geometry_sizes_match_pytorchs_formula(c, h, w, kh, kw, s, p, d):
    # PyTorch's Conv2d docs: out = floor((in + 2p - d(k - 1) - 1) / s) + 1 per axis.
    ho = (h + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    wo = (w + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    assume(ho >= 1 and wo >= 1)
    g = numba_kernels.conv_geometry("test", (2, c, h, w), (kh, kw), s, p, d)
    assert (g.c, g.h, g.w, g.kh, g.kw) == (c, h, w, kh, kw)
    assert (g.sh, g.sw, g.ph, g.pw, g.dh, g.dw) == (*s, *p, *d)
    assert g.out_hw == (g.ho, g.wo) == (ho, wo)
    assert g.out_pixels == ho * wo
    assert g.patch_size == c * kh * kw
    # The im2col loops take (kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo), in that order.
    assert g.loop_args == (kh, kw, *s, *p, *d, ho, wo)
    assert all(type(v) is int for v in g)  # plain ints: what a Numba loop is typed on


def test_conv_geometry_matches_torch_output_shape():
    torch = pytest.importorskip("torch")
    for (h, w), k, s, p, d in [((28, 28), (4, 4), 2, 1, 1), ((7, 9), (3, 2), (2, 1), (1, 0), 2),
                               ((5, 5), (1, 1), 3, 2, 1)]:
        g = numba_kernels.conv_geometry("test", (1, 2, h, w), k, s, p, d)
        y = torch.nn.functional.conv2d(torch.zeros(1, 2, h, w), torch.zeros(3, 2, *k),
                                       stride=s, padding=p, dilation=d)
        assert g.out_hw == tuple(y.shape[2:])


def test_conv_geometry_rejects_a_kernel_that_does_not_fit():
    with pytest.raises(ValueError, match=r"conv2d: dilated kernel extent 5 along H"):
        numba_kernels.conv_geometry("conv2d", (1, 1, 3, 3), (3, 3), 1, 0, 2)


def test_kernel_names_are_the_backends_own_functions():
    """No wrapper between a caller and the backend: ``kernels.X`` is ``backend.X`` itself."""
    before = kernels.get_backend()
    try:
        for module in BACKENDS:
            with kernels.use_backend(module.__name__.rsplit(".", 1)[1].replace("_kernels", "")):
                assert kernels.conv2d_forward is module.conv2d_forward
                assert kernels.conv_transpose2d_backward is module.conv_transpose2d_backward
            assert kernels.get_backend() is before
            assert kernels.conv2d_forward is before.conv2d_forward
    finally:
        kernels.set_backend({reference: "reference", numba_kernels: "numba"}[before])


def test_a_conv_with_one_output_channel_takes_the_direct_path():
    """Its GEMM would be a matrix-vector product; the direct kernels do it faster (see
    `_takes_direct_path`), whatever the patch size. Many output channels keep the GEMM path."""
    g = numba_kernels.conv_geometry("conv2d", (8, 64, 14, 14), (3, 3), 1, 1, 1)   # K = 576
    assert numba_kernels._takes_direct_path(g, 1)
    assert not numba_kernels._takes_direct_path(g, 128)
