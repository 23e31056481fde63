"""The layers of `tinygen/nn/gan_layers.py`: weight norm, Gaussian noise, virtual batch norm.

Each layer gets a float64 gradient check (central differences, shapes drawn by hypothesis)
for its input and every parameter, then the property that defines it:

- weight norm: the weight it computes is g v / ||v||, it changes nothing until g moves, its
  data-dependent init standardises each unit, its state_dict survives a save and load, and it
  agrees with PyTorch's weight norm (when torch is installed);
- Gaussian noise: the requested standard deviation on 100,000 draws, seeded, off in eval();
- virtual batch norm: an example's output never depends on the other examples in its batch,
  and it equals a NumPy version written the other way round (append the example to the
  reference batch, then batch-norm that pooled batch).

Read `tests/test_layers.py` first for the conventions.
"""

import copy
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen as tg
from tinygen import nn

SETTINGS = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)
f64 = np.float64


def distinct(rng, shape, requires_grad=False):
    """All-different values in (-2, 2) in random order: any 2 of them have a spread far above
    eps, so no normalisation divides by a near-zero standard deviation."""
    n = int(np.prod(shape))
    values = ((rng.permutation(n) + 0.5) * 4 / n - 2).reshape(shape)
    return tg.tensor(values, requires_grad=requires_grad)


def units_axes(y, unit_axis):
    """Every axis of y except the one that holds the units: what a per-unit statistic uses."""
    return tuple(a for a in range(y.ndim) if a != unit_axis % y.ndim)


# ----------------------------------------------------------------------------------------------
# Weight normalization.


@st.composite
def weight_norm_cases(draw):
    """(kind, c_in, c_out, kernel, bias, dim, batch): a small layer and its weight-norm dim.

    dim is any valid dim (negative too) or None (the norm of the whole weight)."""
    kind = draw(st.sampled_from(["linear", "conv2d", "conv_transpose2d"]))
    ndim = 2 if kind == "linear" else 4
    dim = draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1)))
    return (kind, draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2)),
            draw(st.booleans()), dim, draw(st.integers(1, 2)))


def build(case, seed):
    """A float64 weight-normed layer with g moved off ||v||, and an input for it."""
    kind, c_in, c_out, k, bias, dim, n = case
    tg.manual_seed(seed)
    if kind == "linear":
        layer, shape = nn.Linear(c_in, c_out, bias=bias, dtype=f64), (n, c_in)
    elif kind == "conv2d":
        layer, shape = nn.Conv2d(c_in, c_out, k, padding=1, bias=bias, dtype=f64), (n, c_in, 3, 3)
    else:
        layer = nn.ConvTranspose2d(c_in, c_out, k, stride=2, bias=bias, dtype=f64)
        shape = (n, c_in, 2, 2)
    nn.weight_norm(layer, dim=dim)
    rng = np.random.default_rng(seed)
    layer.weight_g.data = rng.uniform(0.5, 2.0, layer.weight_g.shape)
    return layer, tg.tensor(rng.standard_normal(shape))


def expected_weight(g, v, dim):
    """g v / ||v|| in NumPy, the norm taken over every axis but `dim` (all of them for None)."""
    axes = None if dim is None else tuple(a for a in range(v.ndim) if a != dim % v.ndim)
    return g * v / np.sqrt((v ** 2).sum(axis=axes, keepdims=dim is not None))


@SETTINGS
@given(case=weight_norm_cases(), seed=seeds)
def test_weight_norm_gradcheck(case, seed):
    # Parameters weight_g, weight_v and bias, then the input: w = g v / ||v|| reaches v twice
    # (the direction and the norm), which is what makes dL/dv a projection (eq. 3).
    layer, x = build(case, seed)
    c = np.random.default_rng(seed + 1).standard_normal(layer(x).shape)
    assert tg.gradcheck_module(layer, lambda: (layer(x) * c).sum())
    assert tg.gradcheck(lambda x: layer(x), x.detach().requires_grad_(True))


@SETTINGS
@given(case=weight_norm_cases(), seed=seeds)
def test_the_weight_used_is_g_v_over_norm_v(case, seed):
    layer, x = build(case, seed)
    y = layer(x)
    w = expected_weight(layer.weight_g.data, layer.weight_v.data, case[5])
    np.testing.assert_allclose(layer.weight.data, w, rtol=1e-12)
    plain = {"linear": nn.functional.linear, "conv2d": nn.functional.conv2d,
             "conv_transpose2d": nn.functional.conv_transpose2d}[case[0]]
    kwargs = {} if case[0] == "linear" else dict(stride=layer.stride, padding=layer.padding)
    want = plain(x, tg.tensor(w), layer.bias, **kwargs)
    np.testing.assert_allclose(y.data, want.data, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make, x_shape", [
    (lambda: nn.Linear(5, 4), (3, 5)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 2, 4, 4)),
    (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2), (2, 2, 3, 3)),
])
def test_weight_norm_starts_with_g_equal_to_norm_v_so_nothing_changes(make, x_shape):
    tg.manual_seed(0)
    plain, normed = make(), make()
    normed.load_state_dict(plain.state_dict())
    nn.weight_norm(normed)
    assert list(normed.state_dict()) == ["bias", "weight_g", "weight_v"]   # PyTorch's keys
    assert {id(p) for p in normed.parameters()} == {
        id(normed.bias), id(normed.weight_g), id(normed.weight_v)}
    x = tg.randn(*x_shape)
    np.testing.assert_allclose(normed(x).data, plain(x).data, rtol=1e-5, atol=1e-6)


def test_g_has_one_entry_per_index_of_dim():
    shapes = {0: (4, 1, 1, 1), 1: (1, 3, 1, 1), -1: (1, 1, 1, 2), None: ()}
    for dim, shape in shapes.items():
        layer = nn.weight_norm(nn.Conv2d(3, 4, (5, 2)), dim=dim)
        assert layer.weight_g.shape == shape, dim
    assert nn.weight_norm(nn.Linear(3, 4)).weight_g.shape == (4, 1)


def test_a_weight_normed_model_survives_save_and_load(tmp_path):
    def model():
        return nn.Sequential(nn.weight_norm(nn.Linear(3, 5)), nn.Tanh(),
                             nn.weight_norm(nn.Conv2d(5, 2, 1)))
    tg.manual_seed(0)
    a = model()
    a[0].weight_g.data *= 3.0                       # g off ||v||: the checkpoint must keep it
    tg.save({"model": a.state_dict()}, tmp_path / "ckpt.npz")
    tg.manual_seed(1)
    b = model()
    b.load_state_dict(tg.load(tmp_path / "ckpt.npz")["model"])
    assert list(b.state_dict()) == ["0.bias", "0.weight_g", "0.weight_v",
                                    "2.bias", "2.weight_g", "2.weight_v"]
    x = tg.randn(4, 3)
    run = lambda m: m[2](m[1](m[0](x)).reshape(4, 5, 1, 1)).data
    np.testing.assert_array_equal(run(a), run(b))


def test_a_deep_copy_of_a_weight_normed_layer_is_independent():
    # What an exponential moving average of D's weights does: copy D, then move the copy.
    layer = nn.weight_norm(nn.Linear(3, 2))
    twin, x = copy.deepcopy(layer), tg.randn(4, 3)
    np.testing.assert_array_equal(twin(x).data, layer(x).data)
    twin.weight_g.data *= 2.0
    before = layer(x).data
    assert not np.allclose(twin(x).data, before)
    np.testing.assert_array_equal(layer(x).data, before)


# Data-dependent init (Salimans & Kingma, section 3).


@pytest.mark.parametrize("make, dim, x_shape", [
    (lambda: nn.Linear(6, 5, dtype=f64), 0, (64, 6)),
    (lambda: nn.Linear(6, 5, dtype=f64), 0, (8, 4, 6)),                  # leading dims
    (lambda: nn.Conv2d(3, 4, 3, dtype=f64), 0, (8, 3, 6, 6)),
    (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, dtype=f64), 1, (8, 3, 3, 3)),
])
def test_data_dependent_init_standardises_every_unit_on_the_batch(make, dim, x_shape):
    tg.manual_seed(0)
    layer = nn.weight_norm(make(), dim=dim)
    x = tg.tensor(3 * np.random.default_rng(0).standard_normal(x_shape) + 1)
    out = nn.init_weight_norm_(layer, x)
    y = layer(x).data
    unit_axis = -1 if isinstance(layer, nn.Linear) else 1
    np.testing.assert_allclose(y.mean(axis=units_axes(y, unit_axis)), 0, atol=1e-10)
    np.testing.assert_allclose(y.std(axis=units_axes(y, unit_axis)), 1, rtol=1e-10)
    np.testing.assert_allclose(out.data, y, rtol=1e-12, atol=1e-12)
    # v was redrawn from N(0, 0.05^2): 90+ entries, so the sample std is within 25%.
    assert layer.weight_v.data.std() == pytest.approx(0.05, rel=0.25)


def test_data_dependent_init_goes_layer_by_layer_through_a_model():
    # Layer 2 is initialised on what the *initialised* layer 1 feeds it, so both are
    # standardised on the batch, the output of the whole model too.
    tg.manual_seed(0)
    model = nn.Sequential(nn.weight_norm(nn.Linear(4, 8, dtype=f64)), nn.ReLU(),
                          nn.weight_norm(nn.Linear(8, 3, dtype=f64)))
    x = tg.tensor(np.random.default_rng(1).standard_normal((50, 4)) * 5)
    v_before = model[2].weight_v.data.copy()
    nn.init_weight_norm_(model, x, v_std=None)      # keep v; set only g and b
    np.testing.assert_array_equal(model[2].weight_v.data, v_before)
    for y in (model[0](x).data, model(x).data):
        np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-10)
        np.testing.assert_allclose(y.std(axis=0), 1, rtol=1e-10)


def test_data_dependent_init_refuses_what_it_cannot_do():
    x = tg.randn(4, 3)
    with pytest.raises(ValueError, match="Linear has no weight-normed layer"):
        nn.init_weight_norm_(nn.Linear(3, 2), x)
    convt = nn.weight_norm(nn.ConvTranspose2d(3, 2, 2))             # dim=0: input channels
    with pytest.raises(ValueError, match=r"weight dim 1, .* so use weight_norm\(module, dim=1\)"):
        nn.init_weight_norm_(convt, tg.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"unit\(s\) \[0, 1\] have the same pre-activation"):
        nn.init_weight_norm_(nn.weight_norm(nn.Linear(3, 2)), tg.randn(1, 3))
    model = OneOfTwo()
    with pytest.raises(ValueError, match=r"never called .* \['spare'\]"):
        nn.init_weight_norm_(model, x)
    assert not any(h.init_pending for h in model.spare._forward_pre_hooks)


class OneOfTwo(nn.Module):
    """Two weight-normed layers, of which forward uses one."""

    def __init__(self):
        super().__init__()
        self.used, self.spare = nn.weight_norm(nn.Linear(3, 2)), nn.weight_norm(nn.Linear(3, 2))

    def forward(self, x):
        return self.used(x)


# The PyTorch cross-check: same g, v and b in, same output and gradients out.


@pytest.mark.parametrize("make, dim, x_shape", [
    (lambda m, dt: m.Linear(4, 3, dtype=dt), 0, (5, 4)),
    (lambda m, dt: m.Linear(4, 3, dtype=dt), None, (5, 4)),
    (lambda m, dt: m.Conv2d(2, 3, 3, padding=1, dtype=dt), 0, (2, 2, 5, 5)),
    (lambda m, dt: m.ConvTranspose2d(2, 3, 3, stride=2, dtype=dt), 1, (2, 2, 3, 3)),
])
def test_weight_norm_matches_pytorch(make, dim, x_shape):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.utils.parametrizations.weight_norm(make(torch.nn, torch.float64), dim=dim)
    params = theirs.parametrizations.weight
    with torch.no_grad():
        params.original0.uniform_(0.5, 2.0)       # g off ||v||, so a swapped g and v shows
    ours = nn.weight_norm(make(nn, f64), dim=dim)
    ours.load_state_dict({"weight_g": params.original0.detach().numpy(),
                          "weight_v": params.original1.detach().numpy(),
                          "bias": theirs.bias.detach().numpy()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    x_ours, x_theirs = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
    np.testing.assert_allclose(y_ours.data, y_theirs.detach().numpy(), rtol=1e-9, atol=1e-10)
    cot = rng.standard_normal(y_ours.shape)
    y_ours.backward(cot)
    y_theirs.backward(torch.tensor(cot))
    for mine, other in [(x_ours, x_theirs), (ours.weight_g, params.original0),
                        (ours.weight_v, params.original1), (ours.bias, theirs.bias)]:
        np.testing.assert_allclose(mine.grad, other.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_a_state_dict_from_pytorchs_old_weight_norm_loads_by_name():
    torch = pytest.importorskip("torch")
    if not hasattr(torch.nn.utils, "weight_norm"):
        pytest.skip("this torch has only the parametrizations API")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)     # deprecated, but its names are ours
        theirs = torch.nn.utils.weight_norm(torch.nn.Linear(4, 3))
    ours = nn.weight_norm(nn.Linear(4, 3))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(tg.tensor(x)).data,
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Gaussian noise.


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=seeds)
def test_gaussian_noise_gradcheck(shape, seed):
    # Reseeding inside the function gives gradcheck the same noise on every call.
    layer = nn.GaussianNoise(0.5)
    x = tg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)

    def noisy(x):
        tg.manual_seed(seed)
        return layer(x)
    assert noisy(x).dtype == f64                  # the noise follows the input's dtype
    assert tg.gradcheck(noisy, x)


def test_gaussian_noise_has_the_requested_std_and_zero_mean():
    tg.manual_seed(0)
    sigma, x = 0.3, tg.full((100, 1000), 2.0)
    noise = (nn.GaussianNoise(sigma)(x) - x).data
    # 100,000 draws: the sample std has a standard error of sigma / sqrt(2 n) = 0.2%, so 5% is
    # 20+ standard errors, and a wrong scale (sigma^2 = 0.09, or sqrt(sigma) = 0.55) is far off.
    assert noise.std() == pytest.approx(sigma, rel=0.05)
    assert abs(noise.mean()) < 5 * sigma / np.sqrt(noise.size)      # 5 standard errors
    assert noise.dtype == np.float32


def test_gaussian_noise_is_reproducible_and_off_in_eval():
    layer, x = nn.GaussianNoise(0.5), tg.randn(3, 4)
    draws = []
    for seed in (7, 7, 8):
        tg.manual_seed(seed)
        draws.append(layer(x).data)
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.allclose(draws[0], draws[2])
    assert layer.eval()(x) is x
    assert nn.GaussianNoise(0.0).train()(x) is x


# ----------------------------------------------------------------------------------------------
# Virtual batch normalization.


def vbn_numpy(x, ref_size, gamma, beta, eps=1e-5):
    """VBN the long way: each example is appended to the reference batch, and that pooled
    batch's mean and (biased) variance normalise it; the reference rows use the reference
    batch alone."""
    ref = x[:ref_size]
    axes = (0, *range(2, x.ndim))                           # batch and positions
    out = np.empty_like(x)
    out[:ref_size] = (ref - ref.mean(axes, keepdims=True)) / np.sqrt(
        ref.var(axes, keepdims=True) + eps)
    for i in range(ref_size, len(x)):
        pooled = np.concatenate([ref, x[i:i + 1]])
        mean, var = pooled.mean(axes, keepdims=True), pooled.var(axes, keepdims=True)
        out[i] = ((x[i:i + 1] - mean) / np.sqrt(var + eps))[0]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return out * gamma.reshape(shape) + beta.reshape(shape)


@st.composite
def vbn_cases(draw):
    """(layer class, ref_size, input shape): (n + N, C), (n + N, C, L) or (n + N, C, H, W),
    with N >= 0 examples after the n >= 2 reference rows."""
    two_d = draw(st.booleans())
    spatial = [draw(st.integers(1, 3)) for _ in range(2)] if two_d else \
        draw(st.lists(st.integers(1, 3), max_size=1))
    ref_size, n, c = draw(st.integers(2, 3)), draw(st.integers(0, 3)), draw(st.integers(1, 3))
    cls = nn.VirtualBatchNorm2d if two_d else nn.VirtualBatchNorm1d
    return cls, ref_size, (ref_size + n, c, *spatial)


def vbn_layer(cls, ref_size, c, rng):
    layer = cls(c, ref_size, dtype=f64)
    layer.weight.data, layer.bias.data = rng.uniform(0.5, 1.5, c), rng.uniform(-1, 1, c)
    return layer


@SETTINGS
@given(case=vbn_cases(), seed=seeds)
def test_virtual_batch_norm_gradcheck(case, seed):
    # The input gradient includes the reference rows: every output depends on them.
    cls, ref_size, shape = case
    rng = np.random.default_rng(seed)
    layer, x = vbn_layer(cls, ref_size, shape[1], rng), distinct(rng, shape, requires_grad=True)
    c = rng.standard_normal(shape)
    assert tg.gradcheck(lambda x: layer(x), x)
    assert tg.gradcheck_module(layer, lambda: (layer(x) * c).sum())


@SETTINGS
@given(case=vbn_cases(), seed=seeds)
def test_virtual_batch_norm_equals_normalising_each_example_with_the_reference(case, seed):
    cls, ref_size, shape = case
    rng = np.random.default_rng(seed)
    layer = vbn_layer(cls, ref_size, shape[1], rng)
    x = 2 * rng.standard_normal(shape) + 1
    want = vbn_numpy(x, ref_size, layer.weight.data, layer.bias.data)
    np.testing.assert_allclose(layer(tg.tensor(x)).data, want, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(layer.eval()(tg.tensor(x)).data, layer.train()(
        tg.tensor(x)).data)                       # no running statistics: one behaviour


def test_reference_rows_are_batch_normed_with_the_reference_statistics():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 3, 2, 2)) * [[[[1.0]], [[3.0]], [[0.5]]]] - 2
    y = nn.VirtualBatchNorm2d(3, 4, eps=0.0, dtype=f64)(tg.tensor(x)).data
    ref = x[:4]
    want = (ref - ref.mean((0, 2, 3), keepdims=True)) / ref.std((0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y[:4], want, rtol=1e-10)
    np.testing.assert_allclose(y[:4].mean((0, 2, 3)), 0, atol=1e-12)


@pytest.mark.parametrize("cls, shape", [(nn.VirtualBatchNorm1d, (4, 3)),
                                        (nn.VirtualBatchNorm2d, (4, 3, 2, 2))])
def test_an_example_does_not_depend_on_the_rest_of_its_batch(cls, shape):
    # The defining property, which batch norm lacks: change example j, example i stays put.
    rng = np.random.default_rng(0)
    ref, batch = rng.standard_normal((5, *shape[1:])), rng.standard_normal(shape)
    vbn, bn = cls(shape[1], ref_size=5, dtype=f64), nn.BatchNorm1d(3) if len(shape) == 2 \
        else nn.BatchNorm2d(3)
    changed = batch.copy()
    changed[2] = 10 * rng.standard_normal(shape[1:]) + 5
    run = lambda b: vbn(tg.tensor(np.concatenate([ref, b]))).data[5:]     # drop the ref rows
    same = [0, 1, 3]
    np.testing.assert_array_equal(run(batch)[same], run(changed)[same])
    # ... nor on the batch size: alone after the reference rows, it gets the same output.
    np.testing.assert_allclose(run(batch[1:2])[0], run(batch)[1], rtol=1e-12)
    assert not np.allclose(bn(tg.tensor(batch)).data[same], bn(tg.tensor(changed)).data[same])
    # The reference batch, on the other hand, moves every output.
    ref2 = ref.copy()
    ref2[0] += 1.0
    moved = vbn(tg.tensor(np.concatenate([ref2, batch]))).data[5:]
    assert np.all(np.abs(moved - run(batch)) > 0)


def test_virtual_batch_norm_inside_a_generator():
    # How G uses it: prepend the fixed reference noise, drop the reference rows at the end.
    tg.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 6), nn.VirtualBatchNorm1d(6, ref_size=8), nn.ReLU(),
                      nn.Linear(6, 2))
    z_ref, z = tg.randn(8, 4), tg.randn(5, 4)
    fake = G(tg.cat([z_ref, z], dim=0))[8:]
    fake.sum().backward()
    assert fake.shape == (5, 2)
    assert all(p.grad is not None for p in G.parameters())
    one = G(tg.cat([z_ref, z[3:4]], dim=0))[8:]
    np.testing.assert_allclose(one.data[0], fake.data[3], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Bad inputs raise errors that name the layer and the shapes.


def zeros(*shape):
    return tg.zeros(*shape)


@pytest.mark.parametrize("call, message", [
    (lambda: nn.VirtualBatchNorm1d(3, ref_size=4)(zeros(3, 3)),
     r"VirtualBatchNorm1d\(3, ref_size=4\): input has 3 rows, fewer than the 4 reference rows"),
    (lambda: nn.VirtualBatchNorm2d(3, ref_size=2)(zeros(4, 2, 2, 2)),
     r"VirtualBatchNorm2d\(3, ref_size=2\): expected input \(ref_size \+ N, C, H, W\) with 3 "
     r"channels in dim 1, got shape \(4, 2, 2, 2\)"),
    (lambda: nn.VirtualBatchNorm2d(3, ref_size=2)(zeros(4, 3)), r"got shape \(4, 3\)"),
    (lambda: nn.VirtualBatchNorm1d(3, ref_size=0), "ref_size must be >= 1, got 3 and 0"),
    (lambda: nn.weight_norm(nn.ReLU()), r"ReLU has no parameter 'weight' \(its parameters: \[\]"),
    (lambda: nn.weight_norm(nn.Linear(2, 2), name="gain"),
     r"Linear has no parameter 'gain' \(its parameters: \['weight', 'bias'\]\)"),
    (lambda: nn.weight_norm(nn.weight_norm(nn.Linear(2, 2))), "Linear.weight is already"),
    (lambda: nn.weight_norm(nn.Linear(2, 2), dim=2), r"dim=2 .* Linear.weight of shape \(2, 2\)"),
    (lambda: nn.GaussianNoise(-0.1), r"GaussianNoise: sigma must be >= 0, got -0.1"),
    (lambda: nn.GaussianNoise(float("nan")), "sigma must be >= 0, got nan"),
])
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
