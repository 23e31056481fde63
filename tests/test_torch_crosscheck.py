"""Forward values and gradients compared with PyTorch, on the same random float64 inputs.

gradcheck (tests/test_ops_grad.py) proves each VJP matches *our* forward; it cannot notice a
forward that is itself wrong, or a convention that differs from PyTorch's (which input gets the
gradient at a tie, whether clamp's edge counts as inside). This file pins both down.

Each case is `fn(L, *xs)`, written once for both libraries: `L` is `tinygen` or a small
namespace of the matching torch functions, and tensor methods (`x.exp()`, `x.amax(1)`) are
spelled the same in both. Skipped when torch is not installed.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")

import tinygen as tg  # noqa: E402

# The torch counterparts of tinygen's top-level functions used below.
T = types.SimpleNamespace(
    cat=torch.cat, stack=torch.stack, maximum=torch.maximum, minimum=torch.minimum,
    pad=F.pad, elu=F.elu, leaky_relu=F.leaky_relu, softplus=F.softplus, logsigmoid=F.logsigmoid,
    where=lambda cond, a, b: torch.where(torch.as_tensor(cond), a, b),
)


# ----------------------------------------------------------------------------------------------
# Input makers: functions of a NumPy Generator.


def normal(*shape, scale=1.0):
    return lambda rng: scale * rng.standard_normal(shape)


def positive(*shape):  # for log, sqrt, fractional powers
    return lambda rng: rng.uniform(0.5, 3.0, shape)


def away(*shape):  # |x| >= 0.25: no division blow-up
    return lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.25, 2.0, shape)


def fixed(values):  # exact kink points and ties, the same for every seed
    return lambda rng: np.asarray(values, dtype=np.float64)


def weighted_cat(L, pieces, dim):
    return L.cat([p * (i + 1) for i, p in enumerate(pieces)], dim)


MASK = np.array([[True, False, True, True], [False, False, True, False], [True] * 4])
KINKS = [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0]

CASES = {
    # elementwise, broadcasting included
    "add": (lambda L, a, b: a + b, normal(3, 1), normal(4)),
    "sub": (lambda L, a, b: a - b, normal(2, 3), normal(3)),
    "mul": (lambda L, a, b: a * b, normal(2, 1, 3), normal(4, 1)),
    "div": (lambda L, a, b: a / b, normal(3, 4), away(4)),
    "pow": (lambda L, a, b: a ** b, positive(3, 4), normal(4)),
    "pow_scalar 3": (lambda L, x: x ** 3, normal(5)),
    "pow_scalar -1.5": (lambda L, x: x ** -1.5, positive(5)),
    "reflected": (lambda L, x: (2 - x) * (2 / x) + 2 ** x, away(2, 3)),
    "neg exp": (lambda L, x: (-x).exp(), normal(4)),
    "log": (lambda L, x: x.log(), positive(4)),
    "sqrt": (lambda L, x: x.sqrt(), positive(4)),
    "abs": (lambda L, x: x.abs(), away(4)),
    "tanh": (lambda L, x: x.tanh(), normal(4)),
    "sigmoid": (lambda L, x: x.sigmoid(), normal(6, scale=8)),
    "relu": (lambda L, x: x.relu(), normal(6)),
    "leaky_relu": (lambda L, x: L.leaky_relu(x, 0.2), normal(6)),
    "elu": (lambda L, x: L.elu(x, 0.7), normal(6)),
    "softplus": (lambda L, x: L.softplus(x), normal(6, scale=10)),
    "logsigmoid": (lambda L, x: L.logsigmoid(x), normal(6, scale=10)),
    "clamp": (lambda L, x: x.clamp(-0.5, 0.5), normal(8)),
    "maximum": (lambda L, a, b: L.maximum(a, b), normal(3, 4), normal(4)),
    "minimum": (lambda L, a, b: L.minimum(a, b), normal(3, 1), normal(4)),
    "where": (lambda L, a, b: L.where(MASK, a, b), normal(3, 4), normal(4)),
    # reductions with dims
    "sum dims keepdim": (lambda L, x: x.sum((0, 2), keepdim=True), normal(2, 3, 4)),
    "mean dim": (lambda L, x: x.mean(1), normal(2, 3, 4)),
    "mean all": (lambda L, x: x.mean(), normal(2, 3)),
    "amax dim": (lambda L, x: x.amax(-1), normal(3, 5)),
    "amin dim keepdim": (lambda L, x: x.amin(0, keepdim=True), normal(3, 5)),
    "var dim": (lambda L, x: x.var(1), normal(3, 5)),
    "var correction 0": (lambda L, x: x.var((0, 1), correction=0), normal(3, 5)),
    "logsumexp dim": (lambda L, x: x.logsumexp(1), normal(3, 4, scale=30)),
    "softmax": (lambda L, x: x.softmax(0), normal(3, 4)),
    "log_softmax": (lambda L, x: x.log_softmax(-1), normal(3, 4, scale=30)),
    # matmul
    "matmul batched": (lambda L, a, b: a @ b, normal(2, 1, 3, 4), normal(5, 4, 2)),
    "matmul 1-D@batched": (lambda L, a, b: a @ b, normal(4), normal(2, 4, 3)),
    "matmul batched@1-D": (lambda L, a, b: a @ b, normal(2, 3, 4), normal(4)),
    "matmul 1-D@1-D": (lambda L, a, b: a @ b, normal(4), normal(4)),
    # indexing
    "index repeats": (lambda L, x: x[[0, 2, 0, 0]], normal(3, 4)),
    "index repeats dim 1": (lambda L, x: x[:, [3, 1, 3]], normal(3, 4)),
    "index pairs": (lambda L, x: x[[0, 1, 0], [2, 2, 2]], normal(3, 4)),
    "index mask": (lambda L, x: x[MASK], normal(3, 4)),
    "index slices": (lambda L, x: x[1:, ::2, 1], normal(3, 4, 2)),
    # joining and shape ops
    "cat": (lambda L, a, b: L.cat([a, b], 1), normal(2, 3), normal(2, 1)),
    "stack": (lambda L, a, b: L.stack([a, b], -1), normal(2, 3), normal(2, 3)),
    "pad": (lambda L, x: L.pad(x, (1, 2, 0, 1), value=0.5), normal(2, 3, 4)),
    "split": (lambda L, x: weighted_cat(L, x.split([1, 3], 1), 1), normal(2, 4)),
    "chunk": (lambda L, x: weighted_cat(L, x.chunk(3, 0), 0), normal(5, 2)),
    "permute": (lambda L, x: x.permute(2, 0, 1), normal(2, 3, 4)),
    "transpose flatten": (lambda L, x: x.transpose(0, 2).flatten(1), normal(2, 3, 4)),
    "expand": (lambda L, x: x.expand(2, 3, 4), normal(3, 1)),
    "squeeze unsqueeze": (lambda L, x: x.squeeze(1).unsqueeze(0), normal(3, 1, 2)),
    # conventions at kinks and ties (no gradcheck can judge these: they are choices)
    "relu at 0": (lambda L, x: x.relu(), fixed(KINKS)),
    "abs at 0": (lambda L, x: x.abs(), fixed(KINKS)),
    "leaky_relu at 0": (lambda L, x: L.leaky_relu(x, 0.1), fixed(KINKS)),
    "elu at 0": (lambda L, x: L.elu(x, 0.5), fixed(KINKS)),
    "clamp at edges": (lambda L, x: x.clamp(-0.5, 0.5), fixed(KINKS)),
    "maximum ties": (lambda L, a, b: L.maximum(a, b), fixed(KINKS), fixed(KINKS[::-1])),
    "minimum ties": (lambda L, a, b: L.minimum(a, b), fixed(KINKS), fixed(KINKS[::-1])),
    "amax ties": (lambda L, x: x.amax(1), fixed([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])),
    "amin ties all": (lambda L, x: x.amin(), fixed([[1.0, -3.0, -3.0], [2.0, -3.0, 0.0]])),
}


def _run_ours(fn, arrays, v):
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = fn(tg, *xs)
    out.backward(v)
    return out.data, [x.grad for x in xs]


def _run_torch(fn, arrays, v):
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(T, *xs)
    out.backward(torch.from_numpy(v))
    return out.detach().numpy(), [x.grad.numpy() for x in xs]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name, seed):
    fn, *makers = CASES[name]
    rng = np.random.default_rng(seed)
    arrays = [make(rng) for make in makers]
    assert all(a.dtype == np.float64 for a in arrays)
    probe = fn(tg, *[tg.tensor(a) for a in arrays])
    v = rng.standard_normal(probe.shape)
    ours, our_grads = _run_ours(fn, arrays, v)
    theirs, their_grads = _run_torch(fn, arrays, v)
    assert ours.shape == theirs.shape
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    for i, (g, h) in enumerate(zip(our_grads, their_grads, strict=True)):
        assert g.shape == h.shape, f"grad of input {i}"
        np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-12, err_msg=f"grad of input {i}")
