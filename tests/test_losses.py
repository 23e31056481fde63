"""Losses: float64 gradient checks for every loss and reduction, and the numerical promises
`tinygen/nn/losses.py` makes: no overflow, no silent NaN, the closed-form Gaussian KL.

Values stay away from the places where central differences break: |input - target| >= 0.25 for
l1 (its kink), probabilities in (0.05, 0.95) for binary cross-entropy (its log). The extreme
cases (logits of 1e4, probabilities of exactly 0 and 1) get their own value tests against
formulas written here in float64, never against numbers copied from tinygen's output.
Read `tests/test_layers_torch.py` next for the same losses checked against PyTorch.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen as tg
from tinygen.nn import functional as F

SETTINGS = settings(max_examples=15, deadline=None)
REDUCTIONS = ["mean", "sum", "none"]
seeds = st.integers(0, 2**32 - 1)
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def leaf(values):
    return tg.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def softplus(x):
    """log(1 + e^x) in float64 without overflow: max(x, 0) + log1p(e^-|x|)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x):
    """1 / (1 + e^-x) without overflow, by the sign of x."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ----------------------------------------------------------------------------------------------
# Gradient checks, one per loss, each for all three reductions.


@pytest.mark.parametrize("reduction", REDUCTIONS)
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_mse_loss_gradcheck(reduction, shape, seed):
    rng = np.random.default_rng(seed)
    x, t = leaf(rng.standard_normal(shape)), leaf(rng.standard_normal(shape))
    tg.gradcheck(lambda x, t: F.mse_loss(x, t, reduction=reduction), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_l1_loss_gradcheck_away_from_the_kink(reduction, shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    gap = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.25, 2.0, shape)   # |x - t| >= 0.25
    tg.gradcheck(lambda x, t: F.l1_loss(x, t, reduction=reduction), leaf(x), leaf(x + gap))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_binary_cross_entropy_gradcheck_wrt_input_and_target(reduction, shape, seed):
    rng = np.random.default_rng(seed)
    p, t = leaf(rng.uniform(0.05, 0.95, shape)), leaf(rng.uniform(0.05, 0.95, shape))
    tg.gradcheck(lambda p, t: F.binary_cross_entropy(p, t, reduction=reduction), p, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@SETTINGS
@given(shape=shapes, with_pos_weight=st.booleans(), seed=seeds)
def test_bce_with_logits_gradcheck(reduction, shape, with_pos_weight, seed):
    rng = np.random.default_rng(seed)
    logits, t = leaf(3 * rng.standard_normal(shape)), leaf(rng.uniform(0, 1, shape))
    if not with_pos_weight:
        fn = lambda l, t: F.binary_cross_entropy_with_logits(l, t, reduction=reduction)
        tg.gradcheck(fn, logits, t)
        return
    # One weight per class (the last dim), broadcast over the rest, as in PyTorch.
    w = leaf(rng.uniform(0.5, 3.0, shape[-1]))
    fn = lambda l, t, w: F.binary_cross_entropy_with_logits(l, t, reduction=reduction,
                                                            pos_weight=w)
    tg.gradcheck(fn, logits, t, w)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@SETTINGS
@given(n=st.integers(1, 4), c=st.integers(1, 5), label_smoothing=st.sampled_from([0, 0.1, 0.4]),
       data=st.data(), seed=seeds)
def test_cross_entropy_gradcheck(reduction, n, c, label_smoothing, data, seed):
    target = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    logits = leaf(2 * np.random.default_rng(seed).standard_normal((n, c)))
    fn = lambda x: F.cross_entropy(x, target, reduction=reduction,
                                   label_smoothing=label_smoothing)
    tg.gradcheck(fn, logits)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@SETTINGS
@given(n=st.integers(1, 4), c=st.integers(1, 5), data=st.data(), seed=seeds)
def test_nll_loss_gradcheck(reduction, n, c, data, seed):
    target = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    log_probs = leaf(np.random.default_rng(seed).standard_normal((n, c)))
    tg.gradcheck(lambda lp: F.nll_loss(lp, target, reduction=reduction), log_probs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_kl_normal_gradcheck(reduction, shape, seed):
    rng = np.random.default_rng(seed)
    mu, logvar = leaf(rng.standard_normal(shape)), leaf(rng.standard_normal(shape))
    tg.gradcheck(lambda m, lv: F.kl_normal(m, lv, reduction=reduction), mu, logvar)


# ----------------------------------------------------------------------------------------------
# What each reduction means.


def test_reductions_are_mean_sum_and_elementwise():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    none = F.mse_loss(tg.tensor(x), tg.tensor(t), reduction="none").data
    np.testing.assert_allclose(none, (x - t) ** 2)
    np.testing.assert_allclose(F.mse_loss(tg.tensor(x), tg.tensor(t)).data, none.mean())
    np.testing.assert_allclose(F.l1_loss(tg.tensor(x), tg.tensor(t), reduction="sum").data,
                               np.abs(x - t).sum())


def test_cross_entropy_is_minus_log_softmax_mixed_with_the_uniform_target():
    # (1 - eps) * one_hot + eps / C as the target distribution, written out by hand.
    rng = np.random.default_rng(1)
    x, target, eps = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2]), 0.2
    log_p = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    q = (1 - eps) * np.eye(5)[target] + eps / 5
    want = -(q * log_p).sum(axis=1)
    got = F.cross_entropy(tg.tensor(x), target, reduction="none", label_smoothing=eps)
    np.testing.assert_allclose(got.data, want, rtol=1e-12)
    np.testing.assert_allclose(F.nll_loss(tg.tensor(log_p), target).data,
                               -log_p[np.arange(4), target].mean(), rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# The Gaussian KL: closed form and Monte Carlo.


def test_kl_normal_matches_the_general_two_gaussian_formula():
    # KL(N(m, s^2) || N(0, 1)) = log(1 / s) + (s^2 + m^2) / 2 - 1/2, per dimension, written in
    # terms of s rather than of logvar, summed over every dim but the batch.
    rng = np.random.default_rng(2)
    mu, logvar = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    s = np.exp(logvar / 2)
    per_example = (np.log(1 / s) + (s**2 + mu**2) / 2 - 0.5).sum(axis=(1, 2))
    m, lv = tg.tensor(mu), tg.tensor(logvar)
    np.testing.assert_allclose(F.kl_normal(m, lv, reduction="none").data, per_example)
    np.testing.assert_allclose(F.kl_normal(m, lv, reduction="sum").data, per_example.sum())
    np.testing.assert_allclose(F.kl_normal(m, lv).data, per_example.mean())
    # q = p gives zero.
    zero = F.kl_normal(tg.tensor(np.zeros((2, 3))), tg.tensor(np.zeros((2, 3))), "none")
    np.testing.assert_array_equal(zero.data, 0)


def test_kl_normal_matches_a_monte_carlo_estimate():
    # KL(q || p) = E_q[log q(z) - log p(z)]: average it over samples of z ~ q and allow five
    # standard errors of that average.
    rng = np.random.default_rng(3)
    mu = np.array([[0.5, -1.0, 0.0], [1.5, 0.2, -0.3]])
    logvar = np.array([[0.0, -1.0, 0.7], [-0.5, 0.3, 0.0]])
    sigma = np.exp(logvar / 2)
    z = mu + sigma * rng.standard_normal((100_000, *mu.shape))      # (S, N, D)
    log_q = -0.5 * (((z - mu) / sigma) ** 2 + np.log(2 * np.pi * sigma**2))
    log_p = -0.5 * (z**2 + np.log(2 * np.pi))
    samples = (log_q - log_p).sum(axis=2)                            # (S, N)
    estimate = samples.mean(axis=0)
    stderr = samples.std(axis=0) / np.sqrt(len(samples))
    kl = F.kl_normal(tg.tensor(mu), tg.tensor(logvar), reduction="none").data
    assert np.all(np.abs(kl - estimate) < 5 * stderr), (kl, estimate, stderr)


# ----------------------------------------------------------------------------------------------
# Extreme values: finite and correct.


@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_is_exact_for_huge_logits(with_pos_weight):
    logits = np.array([-1e4, -1e3, -50.0, -1.0, 0.0, 1.0, 50.0, 1e3, 1e4, 1e4, -1e4])
    target = np.array([1.0, 0.0, 0.3, 0.5, 1.0, 0.0, 0.7, 1.0, 0.0, 0.25, 0.6])
    w = np.full_like(logits, 2.5) if with_pos_weight else np.ones_like(logits)
    # -(w t log sigma(l) + (1 - t) log sigma(-l)), with log sigma(l) = -softplus(-l).
    want = w * target * softplus(-logits) + (1 - target) * softplus(logits)
    want_grad = -w * target * sigmoid(-logits) + (1 - target) * sigmoid(logits)
    l = leaf(logits)
    pos_weight = tg.tensor(w) if with_pos_weight else None
    loss = F.binary_cross_entropy_with_logits(l, tg.tensor(target), reduction="none",
                                              pos_weight=pos_weight)
    loss.sum().backward()
    assert np.all(np.isfinite(loss.data)) and np.all(np.isfinite(l.grad))
    np.testing.assert_allclose(loss.data, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(l.grad, want_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_at_zero_and_one_is_clamped_not_infinite(dtype):
    # PyTorch's documented rule: each log term is clamped at -100, so a confident wrong
    # prediction costs 100 per element instead of inf, and the gradient stays finite.
    p = tg.tensor(np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0], dtype=dtype), requires_grad=True)
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.3], dtype=dtype)
    loss = F.binary_cross_entropy(p, tg.tensor(t), reduction="none")
    log_p = np.array([-100, -100, 0, 0, -100, 0])          # max(log p, -100)
    log_1mp = np.array([0, 0, -100, -100, 0, -100])        # max(log(1 - p), -100)
    np.testing.assert_allclose(loss.data, -(t * log_p + (1 - t) * log_1mp), rtol=1e-6)
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad))
    # The sign still says which way to move: towards the target.
    np.testing.assert_array_equal(np.sign(p.grad), np.sign(p.data - t))
    tgt = tg.tensor(t, requires_grad=True)
    F.binary_cross_entropy(tg.tensor(p.data), tgt).backward()
    assert np.all(np.isfinite(tgt.grad))


# ----------------------------------------------------------------------------------------------
# Bad inputs raise errors that say what was wrong.


def ones(*shape):
    return tg.tensor(np.full(shape, 0.5))


@pytest.mark.parametrize("loss", [F.mse_loss, F.l1_loss, F.binary_cross_entropy,
                                  F.binary_cross_entropy_with_logits])
def test_elementwise_losses_reject_a_shape_mismatch(loss):
    with pytest.raises(ValueError, match=r"\(2, 3\) .* \(3, 2\)"):
        loss(ones(2, 3), ones(3, 2))


@pytest.mark.parametrize("call", [
    lambda r: F.mse_loss(ones(2), ones(2), reduction=r),
    lambda r: F.binary_cross_entropy_with_logits(ones(2), ones(2), reduction=r),
    lambda r: F.cross_entropy(ones(2, 3), np.array([0, 1]), reduction=r),
    lambda r: F.kl_normal(ones(2, 3), ones(2, 3), reduction=r),
])
def test_an_unknown_reduction_is_named_in_the_error(call):
    with pytest.raises(ValueError, match="'mean', 'sum' or 'none', got 'avg'"):
        call("avg")


@pytest.mark.parametrize("p", [[0.5, 1.5], [-0.1, 0.5]])
def test_binary_cross_entropy_rejects_values_outside_0_1(p):
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*with_logits"):
        F.binary_cross_entropy(tg.tensor(np.array(p)), ones(2))


def test_binary_cross_entropy_rejects_nan_and_says_so():
    with pytest.raises(ValueError, match="(?i)nan"):
        F.binary_cross_entropy(tg.tensor(np.array([np.nan, 0.5])), ones(2))


def test_class_losses_reject_targets_out_of_range_or_not_integer():
    x = ones(2, 3)
    with pytest.raises(IndexError, match=r"\[0, 3\), got range \[0, 3\]"):
        F.nll_loss(x, np.array([0, 3]))
    with pytest.raises(IndexError, match=r"got range \[-1, 1\]"):
        F.cross_entropy(x, np.array([-1, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.nll_loss(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(N, C\) and target \(N,\)"):
        F.nll_loss(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, np.array([0, 1]), label_smoothing=1.5)


def test_kl_normal_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"mu \(2, 3\) and logvar \(3, 2\)"):
        F.kl_normal(ones(2, 3), ones(3, 2))
