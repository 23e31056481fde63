"""The engine's edge cases: graph shapes, accumulation, grad modes, dtypes, errors, gradcheck.

Each expected gradient here is derived by hand in the comment beside it. `tests/test_ops_grad.py`
checks each op's VJP; this file checks what the engine does *between* ops: summing gradients
from several consumers, walking deep graphs, not recording under `no_grad`, naming the culprit
of a NaN or a shape mismatch, and whether `gradcheck` itself can catch a wrong VJP.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np
import pytest
from conftest import leaves

import tinygen as tg
from tinygen import ops


def f64(values, requires_grad=True):
    return tg.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# ----------------------------------------------------------------------------------------------
# Graph shapes: fan-out, diamonds, reuse, depth.


def test_fan_out():
    x = f64([1.0, -2.0, 3.0])
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)  # d(x^2 + x) = 2x + 1


def test_diamond():
    # x -> a -> {b, c} -> d: the two paths through `a` must add up at `a`.
    x = f64([0.5, -1.0])
    a = x * 3
    d = (a * a + a.exp()).sum()
    d.backward()
    np.testing.assert_allclose(x.grad, 3 * (2 * a.data + np.exp(a.data)))  # 3 (2a + e^a)


def test_reused_subexpression():
    x, y = f64([1.5, -0.5]), f64([2.0, 3.0])
    s = x * y
    (s * s + s * x).sum().backward()
    # out = (xy)^2 + x^2 y:  d/dx = 2xy^2 + 2xy,  d/dy = 2x^2 y + x^2
    xd, yd = x.data, y.data
    np.testing.assert_allclose(x.grad, 2 * xd * yd ** 2 + 2 * xd * yd)
    np.testing.assert_allclose(y.grad, 2 * xd ** 2 * yd + xd ** 2)


def test_same_tensor_as_both_inputs():
    x = f64([3.0])
    (x * x).backward()  # d x^2 = 2x, from two VJP calls writing to one key
    np.testing.assert_allclose(x.grad, [6.0])


def test_deep_chain_has_no_recursion_error():
    depth = 10_000
    assert sys.getrecursionlimit() < 2 * depth  # a recursive sort would overflow
    x = f64([1.0, 2.0])
    c = 1.0001
    y = x
    for _ in range(depth):
        y = y * c + 0.0  # two ops per step: 20,000 nodes
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [c ** depth] * 2, rtol=1e-9)  # d(c^n x) = c^n
    del y  # freeing a 20,000-node graph must not overflow either


# ----------------------------------------------------------------------------------------------
# Accumulation across backward calls, and what must not leak between them.


def test_two_backward_calls_accumulate():
    x = f64([1.0, 2.0])
    (x * x).sum().backward()  # 2x
    (3 * x).sum().backward()  # + 3
    np.testing.assert_allclose(x.grad, 2 * x.data + 3)


def test_backward_twice_through_one_graph_adds_exactly_twice():
    x = f64([1.0, -2.0])
    h = x * x
    y = h.sum()
    y.backward()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * (2 * x.data))
    assert h.grad is None  # intermediates keep nothing unless retain_grad() was called


def test_second_graph_from_same_leaves_sees_no_stale_gradients():
    x, w = f64([1.0, 2.0]), f64([3.0, -1.0])
    h = x * w
    (h * h).sum().backward()  # builds up gradient at h (2h) during this call only
    x.zero_grad()
    w.zero_grad()
    (x * w).sum().backward()  # a new graph over the same leaves
    np.testing.assert_allclose(x.grad, w.data)
    np.testing.assert_allclose(w.grad, x.data)


def test_zero_grad_clears():
    x = f64([1.0])
    (x * 2).backward()
    x.zero_grad()
    assert x.grad is None


def test_retain_grad():
    x = f64([1.0, -3.0])
    h = (x * 2).retain_grad()
    k = x * 5  # not retained
    (h * h + k).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)  # d h^2 = 2h
    np.testing.assert_allclose(x.grad, 2 * 2 * h.data + 5)
    assert k.grad is None


def test_retained_grad_accumulates_like_a_leaf():
    x = f64([2.0])
    h = (x * 3).retain_grad()
    y = (h * h).sum()
    y.backward()
    y.backward()
    np.testing.assert_allclose(h.grad, 2 * (2 * h.data))


def test_backward_with_explicit_grad():
    x = f64([1.0, 2.0, 3.0])
    y = x * x
    y.backward(np.array([1.0, 0.0, -2.0]))
    np.testing.assert_allclose(x.grad, [2.0, 0.0, -12.0])  # v * 2x


def test_the_callers_output_gradient_never_becomes_a_grad():
    """backward() does not copy the gradient it is given, so it must never hand that array
    out as a `.grad`: changing it afterwards must not change any gradient."""
    v = np.array([1.0, 2.0, 3.0])
    leaf = f64([0.5, 0.5, 0.5])
    leaf.backward(v)                 # the root is itself a leaf
    a, b = f64([1.0, 1.0, 1.0]), f64([2.0, 2.0, 2.0])
    (a + b).backward(v)              # add's VJP passes the gradient through unchanged
    v[:] = -1.0
    for t in (leaf, a, b):
        np.testing.assert_array_equal(t.grad, [1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------------------------
# Broadcasting.


def test_broadcast_add_unbroadcasts_grads():
    a, b = f64(np.arange(3.0).reshape(3, 1)), f64(np.arange(4.0))
    out = a + b
    assert out.shape == (3, 4)
    v = np.arange(12.0).reshape(3, 4)
    out.backward(v)
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(a.grad, v.sum(axis=1, keepdims=True))  # each a_i used 4 times
    np.testing.assert_allclose(b.grad, v.sum(axis=0))                # each b_j used 3 times


def test_broadcast_scalar_tensor_and_mul():
    s, m = f64(2.0), f64(np.ones((2, 3)))
    (s * m).sum().backward()
    assert s.grad.shape == ()
    assert s.grad == 6.0  # sum of m
    np.testing.assert_allclose(m.grad, np.full((2, 3), 2.0))


# ----------------------------------------------------------------------------------------------
# Grad modes: no_grad, enable_grad, detach, requires_grad rules.


def test_joint_vjp_is_called_once_with_the_inputs_that_need_gradients():
    """A primitive with a joint VJP (as conv2d has) gets one call per backward, told which
    inputs need a gradient, and `Primitive.vjp` still gives any single input's gradient."""
    calls = []

    def joint(needs, g, out, a, b, c):  # out = a * b + c
        calls.append(needs)
        return (g * b if needs[0] else None, g * a if needs[1] else None,
                g if needs[2] else None)

    op = ops.Primitive("mul_add", lambda a, b, c: a * b + c, joint_vjp=joint)
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0])
    c = tg.tensor([5.0, 6.0], requires_grad=True)
    op(a, b, c).sum().backward()
    assert calls == [(True, False, True)]
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])
    np.testing.assert_array_equal(c.grad, [1.0, 1.0])
    assert b.grad is None
    g = np.array([1.0, 10.0])
    np.testing.assert_array_equal(op.vjp(1, g, None, [a.data, b.data, c.data], {}), [1.0, 20.0])
    assert calls[-1] == (False, True, False)


def test_a_saving_primitive_saves_only_when_recording_and_its_vjp_gets_it():
    """`saves=True`: the forward learns whether the graph is recorded and returns
    (out, saved); the VJP receives `saved` (conv2d keeps its im2col this way)."""
    seen = []

    def forward(a, *, save):
        seen.append(save)
        return np.exp(a), (np.exp(a) if save else None)

    def vjp(g, out, a, saved=None):
        assert saved is not None, "the VJP must receive what the forward saved"
        return g * saved

    op = ops.Primitive("exp_saving", forward, vjp, saves=True)
    x = f64([0.0, 1.0])
    op(x).sum().backward()
    np.testing.assert_allclose(x.grad, np.exp([0.0, 1.0]))
    with tg.no_grad():
        op(x)
    op(f64([0.0, 1.0]).detach())  # no input needs a gradient
    assert seen == [True, False, False]


def test_no_grad_records_nothing():
    x = f64([1.0, 2.0])
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = (x * 2).exp().sum()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y._inputs == ()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_enable_grad_nests_inside_no_grad():
    x = f64([1.0])
    with tg.no_grad():
        with tg.enable_grad():
            assert tg.is_grad_enabled()
            y = x * 2
        z = x * 2
        assert not tg.is_grad_enabled()
    assert y.requires_grad and not z.requires_grad
    y.backward()
    np.testing.assert_allclose(x.grad, [2.0])


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), tg.no_grad():
        raise ZeroDivisionError
    assert tg.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = f64([1.0, 2.0])
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.data, 2 * x.data)
    (d * x).sum().backward()
    np.testing.assert_allclose(x.grad, d.data)  # d is a constant: not 4x


def test_ops_on_constants_record_nothing():
    a, b = f64([1.0], requires_grad=False), f64([2.0], requires_grad=False)
    assert not (a * b).requires_grad


@pytest.mark.parametrize("make", [
    lambda: tg.tensor([1, 2], requires_grad=True),
    lambda: tg.arange(3, requires_grad=True),
    lambda: tg.tensor([1, 2]).requires_grad_(),
    lambda: tg.tensor([True, False], requires_grad=True),
])
def test_integer_tensors_cannot_require_grad(make):
    with pytest.raises(TypeError, match="floating"):
        make()


def test_requires_grad_false_on_non_leaf_raises():
    x = f64([1.0])
    with pytest.raises(RuntimeError, match="detach"):
        (x * 2).requires_grad_(False)


def test_non_scalar_backward_needs_grad():
    x = f64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad"):
        (x * 2).backward()


def test_backward_grad_of_wrong_shape_is_a_shape_error():
    x = f64([1.0, 2.0])
    with pytest.raises(tg.ShapeError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))


# ----------------------------------------------------------------------------------------------
# Dtypes.


def test_python_floats_give_float32():
    assert tg.tensor(1.5).dtype == np.float32
    assert tg.tensor([1.0, 2.0]).dtype == np.float32
    assert tg.tensor([[1.0], [2.0]], requires_grad=True).dtype == np.float32


def test_python_ints_give_int64():
    assert tg.tensor([1, 2]).dtype == np.int64


@pytest.mark.parametrize("op", [
    lambda x: x * 2.0, lambda x: 2.0 * x, lambda x: x + 1, lambda x: x / 3, lambda x: 1 - x,
    lambda x: x ** 2, lambda x: 2 ** x, lambda x: x.mean(), lambda x: x.var(),
    lambda x: tg.where(x.detach() > 0, x, 0.0), lambda x: x.clamp(min=0.5),
])
def test_scalars_keep_float32(op):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = op(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_float64_end_to_end():
    x = tg.tensor([0.5, 1.5], dtype=np.float64, requires_grad=True)
    w = tg.randn(2, 3, dtype=np.float64, requires_grad=True)
    y = ((x @ w).tanh() * 2.0 + 1).softmax(-1).log().sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64 and w.grad.dtype == np.float64


def test_ndarray_float64_keeps_float64():
    assert tg.tensor(np.zeros(3)).dtype == np.float64
    assert tg.tensor(np.float64(1.0)).dtype == np.float64
    assert tg.tensor(np.zeros(3, dtype=np.float32)).dtype == np.float32


def test_explicit_dtype_wins():
    assert tg.tensor([1.0], dtype=np.float64).dtype == np.float64
    assert tg.tensor(np.zeros(2), dtype=np.float32).dtype == np.float32


def test_cast_round_trip_gradient():
    x = f64([0.25, -1.5])
    y = x.to(np.float32)
    assert y.dtype == np.float32
    z = y.to(np.float64)
    assert z.dtype == np.float64
    (z * z).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, 2 * x.data)  # both values are exact in float32


def test_to_same_dtype_is_identity():
    x = f64([1.0])
    assert x.to(np.float64) is x


def test_int_tensor_times_python_float_is_float32():
    # Python floats default to float32 (PyTorch: torch.arange(3) * 0.5 is float32).
    assert (tg.arange(3) * 0.5).dtype == np.float32


def test_leaf_grad_keeps_leaf_dtype_with_mixed_precision():
    # A float32 parameter times a float64 input: PyTorch keeps param.grad float32, so an
    # optimizer's float32 state is not silently promoted.
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    x = tg.tensor(np.array([3.0, 4.0]))
    (w * x).sum().backward()
    assert w.grad.dtype == np.float32


def test_shape_arguments_accept_numpy_integers():
    x = tg.randn(2, 3)
    n = np.prod(x.shape)  # a NumPy integer, as shape arithmetic usually gives
    assert x.reshape(n).shape == (6,)


# ----------------------------------------------------------------------------------------------
# Anomaly detection.


def test_detect_anomaly_names_op_shapes_and_line():
    x = f64(-np.ones((2, 3)))
    with np.errstate(invalid="ignore"), tg.detect_anomaly():
        with pytest.raises(tg.AnomalyError) as info:
            line = sys._getframe().f_lineno + 1
            tg.log(x)
    message = str(info.value)
    assert message.startswith("log forward produced NaN")
    assert "(2, 3)" in message
    assert f"{os.path.abspath(__file__)}:{line}" in message


def test_detect_anomaly_catches_backward_inf():
    x = f64([0.0, 4.0])
    with np.errstate(divide="ignore"), tg.detect_anomaly():
        y = tg.sqrt(x).sum()  # forward is finite: sqrt(0) = 0
        with pytest.raises(tg.AnomalyError, match=r"sqrt backward \(input 0\) produced Inf"):
            y.backward()  # but d sqrt = 1 / (2 sqrt x) is inf at 0


def test_detect_anomaly_says_when_inputs_were_already_bad():
    x = f64([np.nan, 1.0])
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match="already contained"):
        x * 2


def test_outside_detect_anomaly_nan_and_inf_pass_silently():
    x, z = f64([-1.0]), f64([0.0])
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(tg.log(x).data).all()
        tg.sqrt(z).sum().backward()
    assert np.isinf(z.grad).all()


def test_detect_anomaly_restores_state():
    with pytest.raises(tg.AnomalyError), np.errstate(invalid="ignore"), tg.detect_anomaly():
        tg.log(f64([-1.0]))
    with np.errstate(invalid="ignore"):
        tg.log(f64([-1.0]))  # no error: anomaly mode is off again


# ----------------------------------------------------------------------------------------------
# Shape errors name the op and every shape.


@pytest.mark.parametrize("fn, shapes, op", [
    (lambda a, b: a @ b, [(2, 3), (4, 5)], "matmul"),
    (lambda a, b: a + b, [(3,), (4,)], "add"),
    (lambda a, b: a * b, [(2, 3), (3, 2)], "mul"),
    (lambda a: a.reshape(4, 2), [(2, 3)], "reshape"),
    (lambda a, b: tg.cat([a, b], dim=0), [(2, 3), (2, 4)], "cat"),
    (lambda a, b: tg.stack([a, b]), [(2, 3), (3, 2)], "stack"),
])
def test_shape_error_names_op_and_shapes(fn, shapes, op):
    xs = [tg.zeros(s, requires_grad=True) for s in shapes]
    with pytest.raises(tg.ShapeError) as info:
        fn(*xs)
    message = str(info.value)
    assert message.startswith(f"{op}:")
    for s in shapes:
        assert str(s) in message
    assert isinstance(info.value, ValueError)  # callers catching ValueError still work


def test_reshape_error_names_target_shape():
    with pytest.raises(tg.ShapeError, match=r"\(4, 2\)"):
        tg.zeros(2, 3).reshape(4, 2)


# ----------------------------------------------------------------------------------------------
# gradcheck must catch a wrong VJP. The throwaway primitive is removed from the registry after
# each test, so the completeness test in test_ops_grad.py never sees it.


@pytest.fixture
def bad_square():
    """x^2 with the VJP `g * x` (the factor 2 forgotten)."""
    op = ops.primitive("bad_square", lambda x: x * x, lambda g, out, x: g * x)
    try:
        yield op
    finally:
        del ops.PRIMITIVES["bad_square"]


@pytest.fixture
def bad_first_entry():
    """Identity with a VJP that drops the gradient of entry 0 only: wrong in one place."""
    def vjp(g, out, x):
        g = g.copy()
        g.flat[0] = 0.0
        return g
    op = ops.primitive("bad_first_entry", lambda x: x.copy(), vjp)
    try:
        yield op
    finally:
        del ops.PRIMITIVES["bad_first_entry"]


def test_gradcheck_passes_a_correct_vjp():
    assert tg.gradcheck(lambda x: (x * x).sum(), f64([0.1, 3.0, 0.2]))


def test_gradcheck_per_element_names_input_and_worst_entry(bad_square):
    a, b = f64([1.0, 2.0]), f64([0.1, 3.0, 0.2])
    with pytest.raises(tg.GradcheckError) as info:
        tg.gradcheck(lambda a, b: a.sum() + bad_square(b).sum(), a, b)
    # error at entry i is |v| |b_i| (analytic v b_i vs true 2 v b_i): worst where |b| is largest
    message = str(info.value)
    assert "input 1 of shape (3,)" in message
    assert "entry (1,)" in message


def test_gradcheck_can_return_false(bad_square):
    assert tg.gradcheck(bad_square, f64([1.0]), raise_exception=False) is False


def test_gradcheck_projections_catch_wrong_vjp(bad_square):
    x = tg.tensor(np.random.default_rng(0).uniform(0.5, 1.5, (10, 10)), requires_grad=True)
    with pytest.raises(tg.GradcheckError, match=r"input 0 of shape \(10, 10\) at random direc"):
        tg.gradcheck(bad_square, x)  # 100 entries > max_elements: random directions


def test_gradcheck_projections_catch_a_single_wrong_entry(bad_first_entry):
    x = tg.tensor(np.random.default_rng(1).standard_normal((8, 9)), requires_grad=True)
    with pytest.raises(tg.GradcheckError, match="random direction"):
        tg.gradcheck(bad_first_entry, x)
    with pytest.raises(tg.GradcheckError, match=r"entry \(0, 0\)"):
        tg.gradcheck(bad_first_entry, x, max_elements=100)


def test_gradcheck_only_checks_flagged_inputs(bad_square):
    a = f64([1.0, 2.0])
    b = f64([0.5], requires_grad=False)
    # the wrong VJP sits on b, which is not flagged, so only a (correct) is checked
    assert tg.gradcheck(lambda a, b: (a * 3).sum() + bad_square(b).sum(), a, b)


def test_bad_primitives_are_gone():
    assert "bad_square" not in ops.PRIMITIVES
    assert "bad_first_entry" not in ops.PRIMITIVES


# ----------------------------------------------------------------------------------------------
# Numerical stability at extreme inputs: no overflow warnings, correct limits.


EXTREMES = [-1e4, -1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0, 1e4]


def _sigmoid_reference(x):
    # the branch that never overflows: e^x / (1 + e^x) for x < 0, 1 / (1 + e^-x) otherwise
    return math.exp(x) / (1 + math.exp(x)) if x < 0 else 1 / (1 + math.exp(-x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_extremes(dtype):
    x = tg.tensor(np.array(EXTREMES, dtype=dtype), requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = x.sigmoid()
        y.sum().backward()
    expected = np.array([_sigmoid_reference(v) for v in EXTREMES])
    slope = np.array([_sigmoid_reference(v) * _sigmoid_reference(-v) for v in EXTREMES])
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.data, expected, rtol=rtol, atol=0)
    # d sigma = sigma (1 - sigma); computing 1 - sigma from the output loses everything below
    # the dtype's epsilon (at x = 30 float32 sigma rounds to 1), so allow that absolute error.
    np.testing.assert_allclose(x.grad, slope, rtol=rtol, atol=np.finfo(dtype).eps)
    assert y.data[0] == 0.0 and y.data[-1] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_and_logsigmoid_extremes(dtype):
    x = tg.tensor(np.array(EXTREMES, dtype=dtype), requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        sp, ls = x.softplus(), x.logsigmoid()
        (sp + ls).sum().backward()
    assert np.isfinite(sp.data).all() and np.isfinite(ls.data).all()
    assert np.isfinite(x.grad).all()
    # softplus(x) -> x for x >> 0 and -> 0 for x << 0; logsigmoid(x) = x - softplus(x)
    assert sp.data[-1] == 1e4 and sp.data[0] == 0.0
    assert ls.data[0] == -1e4 and ls.data[-1] == 0.0
    np.testing.assert_allclose(sp.data[4], math.log(2), rtol=1e-6)
    np.testing.assert_allclose(ls.data, x.data.astype(np.float64) - sp.data, rtol=1e-6, atol=1e-6)
    # d softplus + d logsigmoid = sigmoid(x) + sigmoid(-x) = 1 everywhere
    np.testing.assert_allclose(x.grad, np.ones(len(EXTREMES)), rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# Creation functions.


def test_randn_is_reproducible_under_manual_seed():
    tg.manual_seed(123)
    a = tg.randn(3, 4)
    tg.manual_seed(123)
    b = tg.randn(3, 4)
    c = tg.randn(3, 4)  # the stream moves on
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(b.data, c.data)
    assert a.dtype == np.float32 and a.shape == (3, 4)


def test_explicit_generator_is_used_and_leaves_default_alone():
    tg.manual_seed(7)
    expected = tg.randn(5).data
    tg.manual_seed(7)
    g1 = tg.randn(5, generator=np.random.default_rng(99)).data
    after = tg.randn(5).data  # the default stream was not consumed by the line above
    g2 = tg.randn(5, generator=np.random.default_rng(99)).data
    np.testing.assert_array_equal(after, expected)
    np.testing.assert_array_equal(g1, g2)
    assert not np.array_equal(g1, expected)


@pytest.mark.parametrize("make", [tg.randn, tg.rand, tg.zeros, tg.ones])
def test_shape_as_varargs_or_tuple(make):
    assert make(2, 3).shape == (2, 3)
    assert make((2, 3)).shape == (2, 3)
    assert make([2, 3]).shape == (2, 3)
    assert make(4).shape == (4,)
    assert make(2, 3).dtype == np.float32


def test_constant_values():
    np.testing.assert_array_equal(tg.zeros(2, 2).data, [[0, 0], [0, 0]])
    np.testing.assert_array_equal(tg.ones(3).data, [1, 1, 1])
    np.testing.assert_array_equal(tg.full((2,), 7.0).data, [7, 7])
    np.testing.assert_array_equal(tg.eye(2).data, [[1, 0], [0, 1]])


def test_rand_is_in_unit_interval():
    r = tg.rand(1000, generator=np.random.default_rng(0)).data
    assert r.min() >= 0 and r.max() < 1


@pytest.mark.parametrize("like, fill", [
    (tg.zeros_like, 0.0), (tg.ones_like, 1.0), (lambda t: tg.full_like(t, 2.5), 2.5),
])
def test_constant_like_copies_shape_and_dtype(like, fill):
    t = tg.tensor(np.zeros((2, 3)))  # float64
    out = like(t)
    assert out.shape == (2, 3) and out.dtype == np.float64
    np.testing.assert_array_equal(out.data, np.full((2, 3), fill))


@pytest.mark.parametrize("like", [tg.randn_like, tg.rand_like])
def test_random_like_copies_shape_and_dtype(like):
    for dtype in (np.float32, np.float64):
        out = like(tg.zeros(3, 2, dtype=dtype))
        assert out.shape == (3, 2) and out.dtype == dtype
        assert len(np.unique(out.data)) > 1


def test_like_can_require_grad():
    assert tg.zeros_like(tg.ones(2), requires_grad=True).requires_grad


def test_arange_dtypes():
    ints = tg.arange(5)
    assert ints.dtype == np.int64
    np.testing.assert_array_equal(ints.data, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(tg.arange(2, 8, 3).data, [2, 5])
    floats = tg.arange(0.0, 1.0, 0.25)
    assert floats.dtype == np.float32
    np.testing.assert_array_equal(floats.data, [0.0, 0.25, 0.5, 0.75])
    assert tg.arange(3, dtype=np.float64).dtype == np.float64


def test_randint():
    r = tg.randint(2, 5, (100,), generator=np.random.default_rng(0))
    assert r.dtype == np.int64 and r.shape == (100,)
    assert set(np.unique(r.data)) == {2, 3, 4}


def test_leaves_helper_makes_float64_leaves():
    (x,) = leaves(np.zeros(2, dtype=np.float32))
    assert x.dtype == np.float64 and x.requires_grad and x.is_leaf
