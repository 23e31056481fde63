"""Every op's gradient, checked against central differences in float64 on random shapes.

The table `CASES` holds one line per op (or per variant: matmul's five shape rules, getitem's
three kinds of index). A case is a function of tensors plus a hypothesis strategy drawing
`(arrays, params)`: the arrays become float64 leaves, `params` (a dim, an exponent, a mask)
pass through as keyword arguments. `test_gradient` hands each case to `tinygen.gradcheck`.

Inputs come from `tests/conftest.py` and stay away from kinks, ties and domain edges: log and
sqrt see [0.5, 3], relu and abs see |x| >= 0.25, max/min/clamp see values 0.25 apart.

`test_every_primitive_has_a_case` keeps the table honest: it runs each case once, collects
the primitives recorded in its graph, and fails if a registered primitive appears in none.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np
import pytest
from conftest import (
    arrays,
    broadcast_shapes,
    distinct_arrays,
    graph_ops,
    leaves,
    reduce_dims,
    shapes,
)
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygen as tg
import tinygen.nn.functional as F  # registers its own primitives (conv, pooling, BCE)
from tinygen import ops

# ----------------------------------------------------------------------------------------------
# Input strategies. Each draws `(arrays, params)`.


def _with(arrays_strategy, **params):
    """Pair drawn arrays with keyword params, each drawn from its own strategy."""
    return st.tuples(arrays_strategy, st.fixed_dictionaries(params))


def one(kind="any", min_dims=0, **params):
    """One array of any shape."""
    return _with(shapes(min_dims).flatmap(lambda s: st.tuples(arrays(s, kind))), **params)


def two(kind_a="any", kind_b="any", **params):
    """Two arrays whose shapes broadcast together (equal shapes included)."""
    pair = broadcast_shapes(2).flatmap(
        lambda ss: st.tuples(arrays(ss[0], kind_a), arrays(ss[1], kind_b)))
    return _with(pair, **params)


def distinct(n=1, **params):
    """n broadcastable arrays with no ties and no zeros anywhere (for max, min, clamp, relu)."""
    return _with(broadcast_shapes(n).flatmap(lambda ss: distinct_arrays(*ss)), **params)


@st.composite
def reduction(draw, kind="any", var=False):
    """An array plus `dim` (None, int or tuple) and `keepdim`; for var also `correction`."""
    shape = draw(shapes())
    x = draw(distinct_arrays(shape))[0] if kind == "distinct" else draw(arrays(shape, kind))
    dim = draw(reduce_dims(len(shape)))
    params = {"dim": dim, "keepdim": draw(st.booleans())}
    if var:
        axes = range(len(shape)) if dim is None else np.atleast_1d(dim)
        n = int(np.prod([shape[a] for a in axes]))
        params["correction"] = 0 if n == 1 else draw(st.sampled_from([0, 1]))  # no 0/0
    return (x,), params


@st.composite
def along_dim(draw, kind="any"):
    """An array with >= 1 dims and one `dim` (maybe negative), for softmax and friends."""
    shape = draw(shapes(min_dims=1))
    return (draw(arrays(shape, kind)),), {"dim": draw(st.integers(-len(shape), len(shape) - 1))}


SIDE = st.integers(1, 4)


@st.composite
def matmul_inputs(draw, left, right):
    """`left`/`right` are "vec", "mat" or "batch"; batch dims broadcast against each other."""
    m, k, n = draw(st.tuples(SIDE, SIDE, SIDE))
    ba, bb = draw(broadcast_shapes(2, min_dims=1, max_dims=2, max_side=3))
    a_shape = {"vec": (k,), "mat": (m, k), "batch": (*ba, m, k)}[left]
    b_shape = {"vec": (k,), "mat": (k, n), "batch": (*bb, k, n)}[right]
    return (draw(arrays(a_shape)), draw(arrays(b_shape))), {}


@st.composite
def closeness_inputs(draw):
    """M (N, kernels, dims) for minibatch_closeness, entries distinct: no |.| sits on its kink."""
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return draw(distinct_arrays(shape)), {}


@st.composite
def reshape_inputs(draw):
    shape = draw(shapes())
    n = int(np.prod(shape))
    d = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    target = draw(st.sampled_from([(n,), (-1,), (d, -1), (1, d, n // d), (-1, d)]))
    return (draw(arrays(shape)),), {"target": target}


@st.composite
def permute_inputs(draw):
    shape = draw(shapes())
    return (draw(arrays(shape)),), {"dims": tuple(draw(st.permutations(range(len(shape)))))}


@st.composite
def dim_pair_inputs(draw):
    """Two dims (maybe negative, maybe equal) of an array with >= 1 dims: transpose, flatten."""
    shape = draw(shapes(min_dims=1))
    dim = st.integers(-len(shape), len(shape) - 1)
    return (draw(arrays(shape)),), {"d0": draw(dim), "d1": draw(dim)}


@st.composite
def squeeze_inputs(draw):
    """Shapes full of 1s; `dim` is None, or one dim that may or may not have size 1."""
    shape = draw(shapes(max_dims=4, max_side=2))
    dims = st.integers(-len(shape), len(shape) - 1) if shape else st.nothing()
    return (draw(arrays(shape)),), {"dim": draw(st.none() | dims)}


@st.composite
def unsqueeze_inputs(draw):
    shape = draw(shapes())
    return (draw(arrays(shape)),), {"dim": draw(st.integers(-len(shape) - 1, len(shape)))}


@st.composite
def expand_inputs(draw):
    """A shape with 1s; the target grows the 1s, keeps others (sometimes as -1), may add lead."""
    shape = draw(shapes(max_side=2))
    sizes = [draw(SIDE) if n == 1 else draw(st.sampled_from([n, -1])) for n in shape]
    lead = draw(st.lists(SIDE, max_size=1))
    return (draw(arrays(shape)),), {"sizes": tuple(lead + sizes)}


@st.composite
def broadcast_to_inputs(draw):
    shape = draw(shapes(max_side=2))
    target = draw(hnp.mutually_broadcastable_shapes(num_shapes=1, base_shape=shape,
                                                    max_side=3)).result_shape
    return (draw(arrays(shape)),), {"shape": target}


@st.composite
def cat_inputs(draw):
    """1-3 arrays equal in every dim except `dim`."""
    shape = list(draw(shapes(min_dims=1)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    xs = []
    for _ in range(draw(st.integers(1, 3))):
        shape[dim] = draw(SIDE)
        xs.append(draw(arrays(tuple(shape))))
    return tuple(xs), {"dim": dim}


@st.composite
def stack_inputs(draw):
    shape = draw(shapes())
    xs = tuple(draw(arrays(shape)) for _ in range(draw(st.integers(1, 3))))
    return xs, {"dim": draw(st.integers(-len(shape) - 1, len(shape)))}


@st.composite
def split_inputs(draw):
    """`sections` is an int chunk size or a list of sizes adding up to the dim's length."""
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    cuts = sorted(draw(st.sets(st.integers(1, n - 1))) if n > 1 else set())
    listed = list(np.diff([0, *cuts, n]).tolist())
    sections = draw(st.one_of(st.integers(1, n + 1), st.just(listed)))
    return (draw(arrays(shape)),), {"sections": sections, "dim": dim}


@st.composite
def chunk_inputs(draw):
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return (draw(arrays(shape)),), {"chunks": draw(st.integers(1, 5)), "dim": dim}


@st.composite
def pad_inputs(draw):
    """PyTorch-style flat (left, right, ...) widths for the last 1..ndim dims."""
    shape = draw(shapes(min_dims=1))
    n_dims = draw(st.integers(1, len(shape)))
    widths = draw(st.lists(st.integers(0, 2), min_size=2 * n_dims, max_size=2 * n_dims))
    value = draw(st.sampled_from([0.0, -1.5]))
    return (draw(arrays(shape)),), {"widths": tuple(widths), "value": value}


@st.composite
def basic_index_inputs(draw):
    """Ints, slices (any step, negative too), `...` and `None`, as NumPy's basic indexing."""
    shape = draw(shapes(min_dims=1))
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return (draw(arrays(shape)),), {"index": index}


@st.composite
def int_array_index_inputs(draw):
    """An integer array along one dim, with at least one index repeated (so grads must add)."""
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(0, len(shape) - 1))
    n = shape[dim]
    picks = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5))
    picks.append(picks[0])  # a guaranteed repeat
    index_shape = draw(st.sampled_from([(len(picks),), (2, len(picks) // 2)]))
    idx = np.asarray(picks[:int(np.prod(index_shape))]).reshape(index_shape)
    return (draw(arrays(shape)),), {"index": (slice(None),) * dim + (idx,)}


@st.composite
def paired_int_arrays_inputs(draw):
    """x[i, j] with two integer arrays broadcast together, repeats included."""
    shape = draw(shapes(min_dims=2))
    i = draw(hnp.arrays(np.int64, 4, elements=st.integers(0, shape[0] - 1)))
    j = draw(hnp.arrays(np.int64, 4, elements=st.integers(-shape[1], shape[1] - 1)))
    i[-1], j[-1] = i[0], j[0] % shape[1]  # the same entry picked twice
    return (draw(arrays(shape)),), {"index": (i, j)}


@st.composite
def mask_index_inputs(draw):
    """A boolean mask over the whole array, or over its leading dims."""
    shape = draw(shapes(min_dims=1))
    lead = draw(st.integers(1, len(shape)))
    mask = draw(hnp.arrays(np.bool_, shape[:lead]))
    return (draw(arrays(shape)),), {"index": mask}


@st.composite
def where_inputs(draw):
    sc, sa, sb = draw(broadcast_shapes(3))
    cond = draw(hnp.arrays(np.bool_, sc))
    return (draw(arrays(sa)), draw(arrays(sb))), {"cond": cond}


@st.composite
def ndarray_and_tensor(draw):
    """A float64 ndarray constant `c` and a tensor, broadcastable: for `c - x`, `c @ x`."""
    sc, sx = draw(broadcast_shapes(2))
    return (draw(arrays(sx)),), {"c": draw(arrays(sc))}


@st.composite
def linear_inputs(draw):
    """x (..., in) with 0-2 leading dims, W (out, in) and b (out,)."""
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return (draw(arrays((*lead, n_in))), draw(arrays((n_out, n_in))), draw(arrays((n_out,)))), {}


@st.composite
def batch_norm_inputs(draw):
    """x (N, C[, L[, W]]) with distinct entries (so no channel has zero variance), w, b (C,)."""
    c = draw(st.integers(1, 3))
    shape = (draw(st.integers(2, 3)), c, *draw(st.lists(st.integers(1, 3), max_size=2)))
    return (draw(distinct_arrays(shape))[0], draw(arrays((c,))), draw(arrays((c,)))), {}


@st.composite
def conv_inputs(draw, transpose=False):
    """Small NCHW input and weight; stride, padding, dilation (and output_padding) drawn so
    that every output size is at least 1."""
    n, c, o, kh, kw = (draw(st.integers(1, 2)) for _ in range(5))
    stride, padding, dilation = (draw(st.integers(1, 2)), draw(st.integers(0, 1)),
                                 draw(st.integers(1, 2)))
    span = dilation * (max(kh, kw) - 1) + 1
    h, w = (draw(st.integers(max(1, span - 2 * padding), 4)) for _ in range(2))
    params = {"stride": stride, "padding": padding, "dilation": dilation}
    if transpose:  # PyTorch requires output_padding < max(stride, dilation)
        params["output_padding"] = op = draw(st.integers(0, max(stride, dilation) - 1))
        # output size (H - 1) s - 2 p + d (k - 1) + op + 1 is always >= 1 without padding
        sizes = [(n_in - 1) * stride + dilation * (k - 1) + op + 1 - 2 * padding
                 for n_in, k in [(h, kh), (w, kw)]]
        params["padding"] = padding if min(sizes) >= 1 else 0
        w_shape = (c, o, kh, kw)
    else:
        w_shape = (o, c, kh, kw)
    return (draw(arrays((n, c, h, w))), draw(arrays(w_shape)), draw(arrays((o,)))), params


@st.composite
def pool_inputs(draw, distinct=False):
    """NCHW input, kernel, stride (None means the kernel) and padding <= kernel // 2. For max
    pooling the values are distinct, so no window has a tie."""
    k = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(k, 4)),
             draw(st.integers(k, 4)))
    x = draw(distinct_arrays(shape))[0] if distinct else draw(arrays(shape))
    params = {"k": k, "s": draw(st.none() | st.integers(1, 2)), "p": draw(st.integers(0, k // 2))}
    return (x,), params


@st.composite
def bce_inputs(draw):
    """Probabilities in [0.1, 0.9] (away from the clamped logs at 0 and 1), targets in [0, 1]."""
    shape = draw(shapes())
    p = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.1, 0.9), fill=st.nothing()))
    t = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0), fill=st.nothing()))
    return (p, t), {"reduction": draw(st.sampled_from(["mean", "sum", "none"]))}


def first_as_constant(inputs):
    """Turn the first drawn array into a plain ndarray param `c` (for `ndarray @ tensor`)."""
    return inputs.map(lambda drawn: (drawn[0][1:], {**drawn[1], "c": drawn[0][0]}))


def pieces_weighted(pieces, dim):
    """Glue split/chunk outputs back together, each piece scaled differently, so a gradient
    routed to the wrong piece cannot pass."""
    return tg.cat([p * (i + 1) for i, p in enumerate(pieces)], dim=dim)


# ----------------------------------------------------------------------------------------------
# The table: one line per op.


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    fn: Callable[..., tg.Tensor]  # fn(*tensors, **params)
    inputs: st.SearchStrategy     # draws (arrays, params)


INT_EXPONENTS = st.sampled_from([0, 1, 2, 3, -1, -2])
FRACTIONAL_EXPONENTS = st.sampled_from([0.5, -0.5, 1.5, -1.5, 2.5, 1 / 3])
CLAMP_BOUNDS = st.sampled_from([{"min": -0.5}, {"max": 0.5}, {"min": -0.5, "max": 1.0}])

CASES = [
    # elementwise binary, with broadcasting
    Case("add", lambda a, b: a + b, two()),
    Case("sub", lambda a, b: a - b, two()),
    Case("mul", lambda a, b: a * b, two()),
    Case("div", lambda a, b: a / b, two("any", "away")),
    Case("pow", lambda a, b: a ** b, two("positive", "any")),
    Case("maximum", tg.maximum, distinct(2)),
    Case("minimum", lambda a, b: a.minimum(b), distinct(2)),
    Case("where", lambda a, b, cond: tg.where(cond, a, b), where_inputs()),
    # reflected scalar ops (and an ndarray on the left)
    Case("radd", lambda x: 2 + x, one()),
    Case("rsub", lambda x: 2 - x, one()),
    Case("rmul", lambda x: 2 * x, one()),
    Case("rdiv", lambda x: 2 / x, one("away")),
    Case("rpow", lambda x: 2 ** x, one("small")),
    Case("rsub_ndarray", lambda x, c: c - x, ndarray_and_tensor()),
    Case("rmatmul_ndarray", lambda b, c: c @ b, first_as_constant(matmul_inputs("mat", "mat"))),
    # elementwise unary and activations
    Case("neg", lambda x: -x, one()),
    Case("exp", lambda x: x.exp(), one()),
    Case("log", lambda x: x.log(), one("positive")),
    Case("sqrt", tg.sqrt, one("positive")),
    Case("abs", lambda x: x.abs(), one("away")),
    Case("tanh", tg.tanh, one()),
    Case("sigmoid", lambda x: x.sigmoid(), one()),
    Case("relu", lambda x: x.relu(), one("away")),
    Case("leaky_relu", tg.leaky_relu,
         one("away", negative_slope=st.sampled_from([0.01, 0.2, 1.5]))),
    Case("elu", tg.elu, one("away", alpha=st.sampled_from([1.0, 0.5]))),
    Case("softplus", tg.softplus, one()),
    Case("logsigmoid", tg.logsigmoid, one()),
    Case("clamp", lambda x, bounds: x.clamp(**bounds), distinct(bounds=CLAMP_BOUNDS)),
    Case("pow_scalar int", lambda x, c: x ** c, one("away", c=INT_EXPONENTS)),
    Case("pow_scalar fractional", lambda x, c: x ** c, one("positive", c=FRACTIONAL_EXPONENTS)),
    Case("cast float64->float64", lambda x: ops.cast(x, dtype=np.float64), one()),
    # reductions, with dim (None, int, negative, tuple) and keepdim
    Case("sum", lambda x, dim, keepdim: x.sum(dim, keepdim), reduction()),
    Case("mean", lambda x, dim, keepdim: x.mean(dim, keepdim), reduction()),
    Case("max", lambda x, dim, keepdim: x.max(dim, keepdim), reduction("distinct")),
    Case("min", lambda x, dim, keepdim: tg.min(x, dim, keepdim), reduction("distinct")),
    Case("var", lambda x, **kw: x.var(**kw), reduction(var=True)),
    Case("logsumexp", lambda x, dim, keepdim: x.logsumexp(dim, keepdim), reduction()),
    Case("softmax", lambda x, dim: x.softmax(dim), along_dim()),
    Case("log_softmax", lambda x, dim: tg.log_softmax(x, dim), along_dim()),
    # matmul under every NumPy shape rule
    Case("matmul 2-D", lambda a, b: a @ b, matmul_inputs("mat", "mat")),
    Case("matmul batched", lambda a, b: a @ b, matmul_inputs("batch", "batch")),
    Case("matmul batched@2-D", tg.matmul, matmul_inputs("batch", "mat")),
    Case("matmul 1-D@2-D", lambda a, b: a @ b, matmul_inputs("vec", "mat")),
    Case("matmul 1-D@batched", lambda a, b: a @ b, matmul_inputs("vec", "batch")),
    Case("matmul 2-D@1-D", lambda a, b: a @ b, matmul_inputs("mat", "vec")),
    Case("matmul batched@1-D", lambda a, b: a @ b, matmul_inputs("batch", "vec")),
    Case("matmul 1-D@1-D", lambda a, b: a.matmul(b), matmul_inputs("vec", "vec")),
    # shape ops
    Case("reshape", lambda x, target: x.reshape(*target), reshape_inputs()),
    Case("view", lambda x, target: x.view(target), reshape_inputs()),
    Case("permute", lambda x, dims: x.permute(*dims), permute_inputs()),
    Case("transpose", lambda x, d0, d1: x.transpose(d0, d1), dim_pair_inputs()),
    Case("T", lambda x: x.T, one()),
    Case("flatten", lambda x, d0, d1: x.flatten(*sorted([d0 % x.ndim, d1 % x.ndim])),
         dim_pair_inputs()),
    Case("squeeze", lambda x, dim: x.squeeze(dim), squeeze_inputs()),
    Case("unsqueeze", lambda x, dim: x.unsqueeze(dim), unsqueeze_inputs()),
    Case("expand", lambda x, sizes: x.expand(*sizes), expand_inputs()),
    Case("broadcast_to", lambda x, shape: tg.broadcast_to(x, shape), broadcast_to_inputs()),
    Case("cat", lambda *xs, dim: tg.cat(xs, dim), cat_inputs()),
    Case("stack", lambda *xs, dim: tg.stack(xs, dim), stack_inputs()),
    Case("split", lambda x, sections, dim: pieces_weighted(x.split(sections, dim), dim),
         split_inputs()),
    Case("chunk", lambda x, chunks, dim: pieces_weighted(x.chunk(chunks, dim), dim),
         chunk_inputs()),
    Case("pad", lambda x, widths, value: tg.pad(x, widths, value), pad_inputs()),
    # indexing
    Case("getitem basic", lambda x, index: x[index], basic_index_inputs()),
    Case("getitem int array, repeats", lambda x, index: x[index], int_array_index_inputs()),
    Case("getitem int list, repeats", lambda x: x[[0, -1, 0]], one(min_dims=1)),
    Case("getitem paired int arrays", lambda x, index: x[index], paired_int_arrays_inputs()),
    Case("getitem bool mask", lambda x, index: x[index], mask_index_inputs()),
    Case("getitem bool tensor", lambda x: x[x.detach() > 0], one("away")),  # mask fixed by sign
    # Primitives that tinygen.nn registers in the same registry. Their full tests live in
    # tests/test_layers.py and tests/test_losses.py; these lines keep the completeness check
    # below the same whether this file runs alone or with the whole suite.
    Case("linear", F.linear, linear_inputs()),
    Case("conv2d", F.conv2d, conv_inputs()),
    Case("conv_transpose2d", F.conv_transpose2d, conv_inputs(transpose=True)),
    Case("max_pool2d", lambda x, k, s, p: F.max_pool2d(x, k, s, p), pool_inputs(distinct=True)),
    Case("avg_pool2d", lambda x, k, s, p: F.avg_pool2d(x, k, s, p), pool_inputs()),
    Case("minibatch_closeness", F.minibatch_closeness, closeness_inputs()),
    Case("binary_cross_entropy", F.binary_cross_entropy, bce_inputs()),
    Case("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
         batch_norm_inputs()),
]


# ----------------------------------------------------------------------------------------------
# The tests.


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@given(data=st.data())
def test_gradient(case, data):
    arrays_, params = data.draw(case.inputs, label="inputs")
    xs = leaves(*arrays_)
    out = case.fn(*xs, **params)
    assert out.dtype == np.float64, "float64 inputs must give a float64 output"
    assert tg.gradcheck(lambda *ts: case.fn(*ts, **params), *xs)


@functools.cache
def case_primitives() -> dict[str, frozenset[str]]:
    """Case id -> the primitives recorded in its graph, on the simplest input it can draw."""
    simplest = settings(database=None, phases=[Phase.generate], max_examples=1)
    found = {}
    for case in CASES:
        arrays_, params = find(case.inputs, lambda _: True, settings=simplest)
        found[case.id] = frozenset(graph_ops(case.fn(*leaves(*arrays_), **params)))
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_records_an_op(case):
    # A case whose graph is empty (say, `.to(float64)` on a float64 tensor returns the input
    # itself) checks nothing, so it must not count towards coverage.
    assert case_primitives()[case.id], f"case {case.id!r} records no primitive"


def test_every_primitive_has_a_case():
    covered = frozenset().union(*case_primitives().values())
    missing = sorted(set(ops.PRIMITIVES) - covered)
    assert not missing, f"registered primitives with no gradient case in CASES: {missing}"


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
