"""Layers: a float64 gradient check for every function in `tinygen.nn.functional`, plus the
value checks and error messages that need no PyTorch.

How to read these tests. Hypothesis draws the geometry (batch, channels, sizes, kernel,
stride, padding, dilation, output_padding) within the rules PyTorch enforces, and a seed for
the values, which NumPy then generates: drawing every entry through hypothesis would be slow and
would shrink towards all-zero arrays, which are full of ties. Inputs stay away from the places
where central differences mean nothing (minitorch's lesson): max pooling and the norms get
`distinct` values, so no window has a tied maximum and no group has a near-zero variance.

The conv tests run once per kernel backend (`reference`, `numba`) through the `backend`
fixture. Read `tests/test_losses.py` next, then `tests/test_layers_torch.py` for the PyTorch
cross-checks.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygen as tg
from tinygen import nn
from tinygen.nn import functional as F

# The backend fixture is function-scoped but changes nothing that one hypothesis example could
# leave behind for the next, so hypothesis's warning about such fixtures does not apply.
SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
seeds = st.integers(0, 2**32 - 1)


# ----------------------------------------------------------------------------------------------
# Values and geometry.


def leaf(rng, *shape):
    """A float64 leaf of standard normal values that requires grad."""
    return tg.tensor(rng.standard_normal(shape), requires_grad=True)


def distinct(rng, shape):
    """Values in (-2, 2), all different and at least g = 4 / size apart, in random order.

    No two entries tie, so a max has one winner; and any 2 or more of them have variance at
    least g^2 / 4, >= 6e-4 for our sizes (<= 81 entries), so a norm never divides by a
    near-zero spread (eps is only 1e-5). The gap dwarfs gradcheck's step of 1e-6.
    """
    n = int(np.prod(shape))
    values = (rng.permutation(n) + 0.5) * 4 / n - 2
    return tg.tensor(values.reshape(shape), requires_grad=True)


def pairs(lo, hi):
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


@st.composite
def conv_geometry(draw):
    """(kernel, stride, padding, dilation, (H, W)) with the dilated kernel inside the padded
    input on both axes: d (k - 1) + 1 <= H + 2 p."""
    k, s, p, d = draw(pairs(1, 3)), draw(pairs(1, 3)), draw(pairs(0, 2)), draw(pairs(1, 2))
    hw = tuple(draw(st.integers(max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a]), 6)) for a in range(2))
    return k, s, p, d, hw


@st.composite
def conv_transpose_geometry(draw):
    """(kernel, stride, padding, output_padding, dilation, (H, W)) that PyTorch accepts.

    output_padding < max(stride, dilation), and the padding is capped so the output size
    (H - 1) s - 2 p + d (k - 1) + output_padding + 1 stays >= 1.
    """
    k, s, d, hw = draw(pairs(1, 3)), draw(pairs(1, 3)), draw(pairs(1, 2)), draw(pairs(1, 4))
    op = tuple(draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    room = [((hw[a] - 1) * s[a] + d[a] * (k[a] - 1) + op[a]) // 2 for a in range(2)]
    p = tuple(draw(st.integers(0, min(2, room[a]))) for a in range(2))
    return k, s, p, op, d, hw


@st.composite
def pool_geometry(draw):
    """(kernel, stride, padding, (H, W)) with padding <= kernel / 2 and kernel <= padded input."""
    k, s = draw(pairs(1, 3)), draw(pairs(1, 3))
    p = tuple(draw(st.integers(0, k[a] // 2)) for a in range(2))
    hw = tuple(draw(st.integers(max(1, k[a] - 2 * p[a]), 5)) for a in range(2))
    return k, s, p, hw


# ----------------------------------------------------------------------------------------------
# Dense layers.


@SETTINGS
@given(lead=st.lists(st.integers(1, 3), max_size=2), n_in=st.integers(1, 4),
       n_out=st.integers(1, 4), with_bias=st.booleans(), seed=seeds)
def test_linear_gradcheck_with_leading_dims(lead, n_in, n_out, with_bias, seed):
    # The weight (out, in) and bias (out,) broadcast over every leading dim of x, so their
    # gradients must sum over those dims: unbroadcast and matmul's VJP both take part.
    rng = np.random.default_rng(seed)
    x, w = leaf(rng, *lead, n_in), leaf(rng, n_out, n_in)
    if with_bias:
        tg.gradcheck(lambda x, w, b: F.linear(x, w, b), x, w, leaf(rng, n_out))
    else:
        tg.gradcheck(lambda x, w: F.linear(x, w), x, w)


@SETTINGS
@given(num=st.integers(2, 5), dim=st.integers(1, 3), data=st.data(), seed=seeds)
def test_embedding_gradcheck_with_repeated_indices(num, dim, data, seed):
    # More lookups than rows, so some row is picked twice: its gradient is the sum of both.
    idx = data.draw(st.lists(st.integers(0, num - 1), min_size=num + 1, max_size=2 * num + 2))
    idx = np.array(idx, dtype=np.int64)
    assert np.unique(idx).size < idx.size
    shape = (2, idx.size // 2) if idx.size % 2 == 0 else (idx.size,)
    weight = leaf(np.random.default_rng(seed), num, dim)
    tg.gradcheck(lambda w: F.embedding(idx.reshape(shape), w), weight)


def test_embedding_gradient_counts_each_use():
    weight = tg.tensor(np.zeros((4, 2)), requires_grad=True)
    F.embedding(np.array([[1, 3], [1, 1]]), weight).sum().backward()
    np.testing.assert_array_equal(weight.grad, [[0, 0], [3, 3], [0, 0], [1, 1]])


# ----------------------------------------------------------------------------------------------
# Convolutions (kernel-backed: every test runs under both backends).


@SETTINGS
@given(geom=conv_geometry(), n=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3),
       with_bias=st.booleans(), seed=seeds)
def test_conv2d_gradcheck(backend, geom, n, c, o, with_bias, seed):
    k, s, p, d, hw = geom
    rng = np.random.default_rng(seed)
    inputs = [leaf(rng, n, c, *hw), leaf(rng, o, c, *k)] + ([leaf(rng, o)] if with_bias else [])
    tg.gradcheck(lambda *xwb: F.conv2d(*xwb, stride=s, padding=p, dilation=d), *inputs)


@pytest.mark.parametrize("strategy", ["gemm", "direct"])
def test_two_backward_passes_through_one_conv_give_twice_the_gradient(backend, strategy):
    """conv2d's forward saves its im2col for the backward (on the GEMM path); a second
    backward through the same graph must find it unchanged."""
    from tinygen.kernels import numba_kernels

    rng = np.random.default_rng(3)
    x, w, b = leaf(rng, 2, 3, 7, 7), leaf(rng, 4, 3, 3, 3), leaf(rng, 4)
    numba_kernels._FORCE_STRATEGY = strategy
    try:
        y = F.conv2d(x, w, b, stride=2, padding=1)
        gy = rng.standard_normal(y.shape)
        y.backward(gy)
        first = [t.grad.copy() for t in (x, w, b)]
        y.backward(gy)
    finally:
        numba_kernels._FORCE_STRATEGY = None
    for t, g in zip((x, w, b), first, strict=True):
        np.testing.assert_array_equal(t.grad, 2 * g)


@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_conv_gradients_do_not_depend_on_which_inputs_need_them(backend, transpose):
    """The joint VJP computes only what is asked for (a first layer's input needs no gradient,
    a frozen weight none either); each gradient it gives equals the all-inputs one."""
    rng = np.random.default_rng(0)
    conv = F.conv_transpose2d if transpose else F.conv2d
    # 3 input and 4 output channels, in each op's weight layout
    w_shape = (3, 4, 3, 3) if transpose else (4, 3, 3, 3)
    x0, w0, b0 = (rng.standard_normal(shape) for shape in [(2, 3, 6, 6), w_shape, (4,)])
    gy = None

    def grads(need_x, need_w, need_b):
        nonlocal gy
        x, w, b = (tg.tensor(a, requires_grad=r)
                   for a, r in ((x0, need_x), (w0, need_w), (b0, need_b)))
        y = conv(x, w, b, stride=2, padding=1)
        gy = rng.standard_normal(y.shape) if gy is None else gy
        y.backward(gy)
        return x.grad, w.grad, b.grad

    full = grads(True, True, True)
    for needs in [(False, True, True), (True, False, False), (False, False, True)]:
        for got, want, need in zip(grads(*needs), full, needs, strict=True):
            if need:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
            else:
                assert got is None


@SETTINGS
@given(geom=conv_transpose_geometry(), n=st.integers(1, 2), c_in=st.integers(1, 3),
       c_out=st.integers(1, 3), seed=seeds)
def test_conv_transpose2d_gradcheck(backend, geom, n, c_in, c_out, seed):
    k, s, p, op, d, hw = geom
    rng = np.random.default_rng(seed)
    x, w, b = leaf(rng, n, c_in, *hw), leaf(rng, c_in, c_out, *k), leaf(rng, c_out)

    def fn(x, w, b):
        return F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op, dilation=d)

    y = fn(x, w, b)
    expected = [(hw[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1 for a in range(2)]
    assert y.shape == (n, c_out, *expected)
    tg.gradcheck(fn, x, w, b)


def test_conv2d_with_a_one_hot_kernel_shifts_the_image(backend):
    # A 3x3 kernel whose only 1 sits at (0, 2) reads x[h - 1, w + 1] under padding 1.
    x = np.arange(2 * 1 * 4 * 5, dtype=np.float64).reshape(2, 1, 4, 5)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 2] = 1.0
    y = F.conv2d(tg.tensor(x), tg.tensor(w), padding=1).data
    expected = np.zeros_like(x)
    expected[:, :, 1:, :-1] = x[:, :, :-1, 1:]
    np.testing.assert_array_equal(y, expected)


def test_conv_transpose2d_is_the_adjoint_of_conv2d(backend):
    # <conv(x), y> = <x, conv_transpose(y)> for the same weight: the defining property.
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    geometry = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    y = F.conv2d(tg.tensor(x), tg.tensor(w), **geometry).data
    v = rng.standard_normal(y.shape)
    # output_padding restores the rows/columns the conv's floor division dropped.
    op = tuple((x.shape[2 + a] + 2 * geometry["padding"][a]
                - geometry["dilation"][a] * (w.shape[2 + a] - 1) - 1) % geometry["stride"][a]
               for a in range(2))
    xt = F.conv_transpose2d(tg.tensor(v), tg.tensor(w), output_padding=op, **geometry).data
    assert xt.shape == x.shape
    assert np.isclose(np.sum(y * v), np.sum(x * xt), rtol=1e-10)


# ----------------------------------------------------------------------------------------------
# Pooling and resizing.


@SETTINGS
@given(geom=pool_geometry(), n=st.integers(1, 2), c=st.integers(1, 2), seed=seeds)
def test_max_pool2d_gradcheck_without_ties(geom, n, c, seed):
    k, s, p, hw = geom
    x = distinct(np.random.default_rng(seed), (n, c, *hw))
    tg.gradcheck(lambda x: F.max_pool2d(x, k, s, p), x)


@SETTINGS
@given(geom=pool_geometry(), n=st.integers(1, 2), c=st.integers(1, 2), seed=seeds)
def test_avg_pool2d_gradcheck_with_padding(geom, n, c, seed):
    k, s, p, hw = geom
    x = leaf(np.random.default_rng(seed), n, c, *hw)
    tg.gradcheck(lambda x: F.avg_pool2d(x, k, s, p), x)


def test_pools_match_a_loop_over_windows():
    # The definition, one window at a time; padded cells are -inf for max and 0 for mean.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 6))
    k, s, p = (3, 2), (2, 3), (1, 1)
    xp_max = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    xp_avg = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ho, wo = (5 + 2 - 3) // 2 + 1, (6 + 2 - 2) // 3 + 1
    want_max, want_avg = np.empty((2, 3, ho, wo)), np.empty((2, 3, ho, wo))
    for r, c in np.ndindex(ho, wo):
        rows, cols = slice(r * 2, r * 2 + 3), slice(c * 3, c * 3 + 2)
        want_max[:, :, r, c] = xp_max[:, :, rows, cols].max(axis=(2, 3))
        want_avg[:, :, r, c] = xp_avg[:, :, rows, cols].mean(axis=(2, 3))
    np.testing.assert_allclose(F.max_pool2d(tg.tensor(x), k, s, p).data, want_max)
    np.testing.assert_allclose(F.avg_pool2d(tg.tensor(x), k, s, p).data, want_avg)


@SETTINGS
@given(scale=pairs(1, 3), n=st.integers(1, 2), c=st.integers(1, 2), hw=pairs(1, 3),
       seed=seeds)
def test_interpolate_integer_scale_gradcheck(scale, n, c, hw, seed):
    x = leaf(np.random.default_rng(seed), n, c, *hw)
    y = F.interpolate(x, scale_factor=scale)
    # Nearest upsampling by an integer factor repeats every pixel into an (sh, sw) block.
    want = np.repeat(np.repeat(x.data, scale[0], axis=2), scale[1], axis=3)
    np.testing.assert_array_equal(y.data, want)
    tg.gradcheck(lambda x: F.interpolate(x, scale_factor=scale), x)


@SETTINGS
@given(size=pairs(1, 7), n=st.integers(1, 2), c=st.integers(1, 2), hw=pairs(1, 4), seed=seeds)
def test_interpolate_arbitrary_size_gradcheck(size, n, c, hw, seed):
    # Shrinking drops pixels (zero gradient); growing by a non-integer ratio repeats some
    # pixels more than others, so their gradients sum unequal numbers of terms.
    x = leaf(np.random.default_rng(seed), n, c, *hw)
    assert F.interpolate(x, size=size).shape == (n, c, *size)
    tg.gradcheck(lambda x: F.interpolate(x, size=size), x)


def test_interpolate_fractional_scale_reads_row_i_over_scale():
    # PyTorch's documented rule: unless recompute_scale_factor=True, the given scale_factor
    # itself is used, so output row i reads input row floor(i / scale_factor).
    h, scale = 5, 1.3
    x = tg.tensor(np.arange(h, dtype=np.float64).reshape(1, 1, h, 1))
    y = F.interpolate(x, scale_factor=(scale, 1)).data.ravel()
    rows = np.floor(np.arange(int(h * scale)) / scale)
    np.testing.assert_array_equal(y, rows)


# ----------------------------------------------------------------------------------------------
# Normalisation.


@st.composite
def batch_shapes(draw):
    """(N, C), (N, C, L) or (N, C, H, W) with N >= 2, so every channel has >= 2 values."""
    spatial = draw(st.lists(st.integers(1, 3), max_size=2))
    return (draw(st.integers(2, 3)), draw(st.integers(1, 3)), *spatial)


@SETTINGS
@given(shape=batch_shapes(), seed=seeds)
def test_batch_norm_training_gradcheck(backend, shape, seed):
    # The batch statistics depend on x, so d/dx has three paths (direct, mean, variance).
    rng = np.random.default_rng(seed)
    x, w, b = distinct(rng, shape), leaf(rng, shape[1]), leaf(rng, shape[1])
    tg.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), x, w, b)
    tg.gradcheck(lambda x: F.batch_norm(x, None, None, training=True), x)   # no affine part


@SETTINGS
@given(shape=batch_shapes(), seed=seeds)
def test_batch_norm_eval_gradcheck(backend, shape, seed):
    rng = np.random.default_rng(seed)
    mean, var = rng.standard_normal(shape[1]), rng.uniform(0.5, 2.0, shape[1])
    x, w, b = leaf(rng, *shape), leaf(rng, shape[1]), leaf(rng, shape[1])
    tg.gradcheck(lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False), x, w, b)


@SETTINGS
@given(shape=batch_shapes(), seed=seeds, dtype=st.sampled_from([np.float32, np.float64]))
def test_fused_batch_norm_equals_its_composed_twin(backend, shape, seed, dtype):
    rng = np.random.default_rng(seed)
    x = tg.tensor((3 * rng.standard_normal(shape) + 1).astype(dtype), requires_grad=True)
    w, b = (tg.tensor(rng.standard_normal(shape[1]).astype(dtype), requires_grad=True)
            for _ in range(2))
    g = rng.standard_normal(shape).astype(dtype)
    results = []
    for fn in (lambda: F.batch_norm(x, None, None, w, b, training=True),
               lambda: F.batch_norm_composed(x, w, b)):
        for t in (x, w, b):
            t.grad = None
        y = fn()
        y.backward(g)
        results.append([y.data, x.grad, w.grad, b.grad])
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for fused, composed in zip(*results, strict=True):
        assert fused.dtype == composed.dtype
        np.testing.assert_allclose(fused, composed, rtol=tol, atol=tol)


def test_batch_norm_updates_running_stats_with_the_unbiased_variance():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 2, 5)) * [[[[1.0]], [[2.0]], [[0.5]]]] + 3.0
    mean0, var0 = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    running_mean, running_var = mean0.copy(), var0.copy()
    y = F.batch_norm(tg.tensor(x), running_mean, running_var, training=True, momentum=0.25,
                     eps=1e-5)
    batch_mean, axes = x.mean(axis=(0, 2, 3)), (0, 2, 3)
    np.testing.assert_allclose(running_mean, 0.75 * mean0 + 0.25 * batch_mean)
    np.testing.assert_allclose(running_var, 0.75 * var0 + 0.25 * x.var(axis=axes, ddof=1))
    # ... while the output is normalised with the biased variance, as in the paper.
    shape = (1, 3, 1, 1)
    want = (x - batch_mean.reshape(shape)) / np.sqrt(x.var(axis=axes).reshape(shape) + 1e-5)
    np.testing.assert_allclose(y.data, want, rtol=1e-12)


def test_batch_norm_eval_uses_the_running_stats():
    rng = np.random.default_rng(3)
    x, mean, var = rng.standard_normal((5, 2)), np.array([0.5, -1.0]), np.array([4.0, 0.25])
    w, b = np.array([2.0, 3.0]), np.array([0.1, -0.2])
    y = F.batch_norm(tg.tensor(x), mean, var, tg.tensor(w), tg.tensor(b), eps=0.0)
    np.testing.assert_allclose(y.data, (x - mean) / np.sqrt(var) * w + b, rtol=1e-12)


@SETTINGS
@given(n=st.integers(1, 2), c=st.integers(1, 3), spatial=st.lists(st.integers(1, 3), min_size=1,
       max_size=2).filter(lambda s: np.prod(s) >= 2), affine=st.booleans(), seed=seeds)
def test_instance_norm_gradcheck(n, c, spatial, affine, seed):
    rng = np.random.default_rng(seed)
    x = distinct(rng, (n, c, *spatial))
    if affine:
        w, b = leaf(rng, c), leaf(rng, c)
        tg.gradcheck(lambda x, w, b: F.instance_norm(x, w, b), x, w, b)
    else:
        tg.gradcheck(lambda x: F.instance_norm(x), x)


def _fused_and_composed_instance_norm(x, w, b, g):
    """[output, then the gradient of each of x, w, b that is given] for F.instance_norm and
    for F.instance_norm_composed, with output gradient g."""
    leaves = [t for t in (x, w, b) if t is not None]
    results = []
    for fn in (F.instance_norm, F.instance_norm_composed):
        for t in leaves:
            t.grad = None
        y = fn(x, w, b)
        y.backward(g)
        results.append([y.data] + [t.grad for t in leaves])
    return results


@SETTINGS
@given(n=st.integers(1, 3), c=st.integers(1, 4), spatial=st.lists(st.integers(1, 6), min_size=1,
       max_size=3).filter(lambda s: np.prod(s) >= 2), affine=st.booleans(), seed=seeds,
       dtype=st.sampled_from([np.float32, np.float64]))
def test_instance_norm_equals_its_composed_twin(backend, n, c, spatial, affine, seed, dtype):
    """The batch-norm primitive on the (1, N*C, ...) view against the chain of engine ops:
    output and the gradients of x, weight and bias (the repeated weight's summed back)."""
    rng = np.random.default_rng(seed)
    shape = (n, c, *spatial)
    x = tg.tensor((3 * rng.standard_normal(shape) + 1).astype(dtype), requires_grad=True)
    w, b = (tg.tensor(rng.standard_normal(c).astype(dtype), requires_grad=True) if affine
            else None for _ in range(2))
    g = rng.standard_normal(shape).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for fused, composed in zip(*_fused_and_composed_instance_norm(x, w, b, g), strict=True):
        assert fused.dtype == composed.dtype and fused.shape == composed.shape
        np.testing.assert_allclose(fused, composed, rtol=tol, atol=tol)


def test_instance_norm_of_a_big_batch_runs_on_the_fused_kernels(monkeypatch):
    """Above the kernels' size threshold the Numba loops do the work (the NumPy twins would
    raise), and still agree with the composed twin."""
    pytest.importorskip("numba")
    from tinygen import kernels
    from tinygen.kernels import reference

    def refuse(*args, **kwargs):
        raise AssertionError("the NumPy twin ran")
    for name in ("batch_norm_stats", "batch_norm_forward", "batch_norm_backward"):
        monkeypatch.setattr(reference, name, refuse)
    rng = np.random.default_rng(5)
    x = tg.tensor(rng.standard_normal((32, 8, 32, 32)).astype(np.float32) * 2 + 1,
                  requires_grad=True)
    w, b = (tg.tensor(rng.standard_normal(8).astype(np.float32), requires_grad=True)
            for _ in range(2))
    with kernels.use_backend("numba"):
        results = _fused_and_composed_instance_norm(x, w, b, np.ones(x.shape, np.float32))
    for fused, composed in zip(*results, strict=True):
        np.testing.assert_allclose(fused, composed, rtol=1e-3, atol=1e-3)


def test_feature_maps_take_the_loops_from_2_14_values_and_mlp_activations_from_2_18(monkeypatch):
    """The size rule of numba_pointwise: an MLP's (N, features) activations stay on the NumPy
    twins (no compile for MLP models), feature maps from 2^14 values run the loops."""
    pytest.importorskip("numba")
    from tinygen import kernels
    from tinygen.kernels import reference
    twin_calls = []
    real = reference.batch_norm_stats
    monkeypatch.setattr(reference, "batch_norm_stats",
                        lambda x: twin_calls.append(x.shape) or real(x))
    with kernels.use_backend("numba"):
        for shape in [(128, 1200), (1, 64, 16, 16), (1, 63, 16, 16), (64, 4096)]:
            kernels.batch_norm_stats(np.ones(shape, np.float32))
    assert twin_calls == [(128, 1200), (1, 63, 16, 16)]


def test_instance_norm_names_a_weight_of_the_wrong_size():
    x = tg.tensor(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"instance_norm: bias has shape \(4,\), but the input "
                                         r"\(2, 3, 4, 4\) has 3 channels"):
        F.instance_norm(x, tg.tensor(np.ones(3)), tg.tensor(np.zeros(4)))


def test_instance_norm_normalises_each_plane():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5)) * 3 + 1
    y = F.instance_norm(tg.tensor(x), eps=0.0).data
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, rtol=1e-12)


@SETTINGS
@given(lead=st.lists(st.integers(1, 3), max_size=2),
       normalized=st.lists(st.integers(1, 4), min_size=1, max_size=2)
       .filter(lambda s: np.prod(s) >= 2), seed=seeds)
def test_layer_norm_gradcheck(lead, normalized, seed):
    rng = np.random.default_rng(seed)
    x = distinct(rng, (*lead, *normalized))
    w, b = leaf(rng, *normalized), leaf(rng, *normalized)
    tg.gradcheck(lambda x, w, b: F.layer_norm(x, normalized, w, b), x, w, b)


def test_layer_norm_normalises_the_trailing_dims():
    x = np.random.default_rng(5).standard_normal((3, 4, 5)) * 2 - 1
    y = F.layer_norm(tg.tensor(x), (4, 5), eps=0.0).data
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Dropout.


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), p=st.sampled_from([0.2, 0.5]),
       seed=seeds)
def test_dropout_gradcheck_with_a_fixed_generator(shape, p, seed):
    # A fresh generator with the same seed on every call gives the same mask every time, so
    # the function gradcheck differentiates is deterministic.
    x = leaf(np.random.default_rng(seed), *shape)
    fn = lambda x: F.dropout(x, p, training=True, generator=np.random.default_rng(seed))
    tg.gradcheck(fn, x)


def test_dropout_zeroes_a_fraction_p_and_rescales_the_rest():
    p, x = 0.3, np.ones((200, 500))
    y = F.dropout(tg.tensor(x), p, generator=np.random.default_rng(0)).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / (1 - p))
    # The dropped fraction is a mean of 100,000 Bernoulli(p) draws: standard error 0.0014.
    assert abs((~kept).mean() - p) < 5 * np.sqrt(p * (1 - p) / x.size)


def test_dropout_is_the_identity_when_off():
    x = tg.tensor(np.random.default_rng(6).standard_normal((3, 4)))
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 0.0).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, np.zeros((3, 4)))


# ----------------------------------------------------------------------------------------------
# Bad inputs raise errors that say what was wrong.


def zeros(*shape):
    return tg.tensor(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(zeros(3, 8, 8), zeros(4, 3, 3, 3)), r"4-D input .*\(3, 8, 8\)"),
    (lambda: F.conv_transpose2d(zeros(3, 8, 8), zeros(3, 4, 3, 3)), r"4-D input .*\(3, 8, 8\)"),
    (lambda: F.conv2d(zeros(1, 2, 8, 8), zeros(4, 3, 3, 3)), "2 channels .* expects 3"),
    (lambda: F.conv2d(zeros(1, 3, 2, 2), zeros(4, 3, 3, 3)), "larger than the padded input"),
    (lambda: F.max_pool2d(zeros(1, 1, 2, 2), 3), r"kernel \(3, 3\) is larger .* \(2, 2\)"),
    (lambda: F.avg_pool2d(zeros(1, 1, 2, 5), 3), r"kernel \(3, 3\) is larger .* \(2, 5\)"),
    (lambda: F.max_pool2d(zeros(1, 1, 4, 4), 2, padding=2), "at most half the kernel"),
    (lambda: F.max_pool2d(zeros(4, 4), 2), r"4-D input .*\(4, 4\)"),
    (lambda: F.interpolate(zeros(1, 1, 2, 2), size=4, scale_factor=2), "exactly one of"),
    (lambda: F.interpolate(zeros(1, 1, 2, 2), scale_factor=2, mode="bilinear"), "nearest"),
    (lambda: F.layer_norm(zeros(2, 3), (4,)), r"does not end in \(4,\)"),
    (lambda: F.batch_norm(zeros(1, 3), None, None, training=True), "more than one value"),
    (lambda: F.batch_norm(zeros(2, 3), None, None, training=False), "running_mean"),
    (lambda: F.dropout(zeros(2), p=1.5), r"p must be in \[0, 1\]"),
    (lambda: nn.Linear(4, 2)(zeros(5, 3)), "input has 3 features but weight .* expects 4"),
    (lambda: nn.BatchNorm2d(3)(zeros(2, 4, 3, 3)), "3 channels in dim 1, got shape"),
    (lambda: nn.BatchNorm1d(3)(zeros(2, 3, 4, 4)), "2-D or 3-D"),
    (lambda: nn.MaxPool2d(4)(zeros(1, 1, 3, 8)), "larger than the padded input"),
])
def test_bad_layer_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_embedding_rejects_bad_indices():
    weight = zeros(5, 2)
    with pytest.raises(IndexError, match=r"\[0, 5\), got range \[2, 5\]"):
        F.embedding(np.array([2, 5]), weight)
    with pytest.raises(IndexError, match=r"got range \[-1, 0\]"):
        F.embedding(np.array([0, -1]), weight)
    with pytest.raises(TypeError, match="integers"):
        F.embedding(np.array([0.0, 1.0]), weight)


def test_load_state_dict_lists_every_missing_unexpected_and_misshaped_key():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    before = model.state_dict()
    bad = dict(before)
    del bad["0.bias"], bad["1.running_var"]
    bad["3.weight"], bad["extra"] = np.zeros(1), np.zeros(2)
    bad["0.weight"], bad["2.bias"] = np.zeros((2, 3)), np.zeros(2)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(bad)
    text = str(info.value)
    for key in ("0.bias", "1.running_var", "3.weight", "extra", "0.weight", "2.bias"):
        assert key in text
    assert "(2, 3)" in text and "(3, 2)" in text          # both shapes of the mis-shaped key
    # Nothing was loaded: the model is exactly as it was.
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
