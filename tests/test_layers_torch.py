"""PyTorch cross-checks: every layer and loss, with identical weights, gives PyTorch's outputs
and gradients.

The pattern, repeated for each layer: build the PyTorch layer, copy its `state_dict()` into the
tinygen layer of the same name by `load_state_dict`, push the same input through both, pull the
same random cotangent back through both, and compare the outputs, the input gradients and every
parameter gradient by name. Because the weights are copied rather than re-created, the test also
checks that tinygen's parameter names and layouts are PyTorch's. Everything runs in float64
(except the whole-model test, which uses both libraries' float32 defaults), so the tolerances
only have to absorb a different order of summation.

Skipped cleanly when torch is not installed. Read `tests/test_layers.py` first.
"""

import numpy as np
import pytest

import tinygen as tg
from tinygen import nn
from tinygen.nn import functional as F

torch = pytest.importorskip("torch")
tnn = torch.nn
tF = torch.nn.functional

RTOL, ATOL = 1e-9, 1e-10          # float64; different summation orders, nothing more
REDUCTIONS = ["mean", "sum", "none"]


# ----------------------------------------------------------------------------------------------
# Helpers.


def copy_weights(ours, theirs):
    """Load a PyTorch module's state_dict into ours, key for key (strict: names must match)."""
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def close(a, b, rtol=RTOL, atol=ATOL, what=""):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def assert_same_layer(ours, theirs, x, seed=0, rtol=RTOL, atol=ATOL):
    """Same output, same input gradient and same gradient for every parameter, by name."""
    x_ours, x_theirs = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
    close(y_ours.data, y_theirs, rtol, atol, "output")
    g = np.random.default_rng(seed).standard_normal(y_ours.shape).astype(x.dtype)
    y_ours.backward(g)
    y_theirs.backward(torch.tensor(g))
    close(x_ours.grad, x_theirs.grad, rtol, atol, "input gradient")
    params_theirs = dict(theirs.named_parameters())
    params_ours = dict(ours.named_parameters())
    assert params_ours.keys() == params_theirs.keys()
    for name, p in params_ours.items():
        close(p.grad, params_theirs[name].grad, rtol, atol, f"gradient of {name}")


def pair_of(ours_cls, theirs_cls, *args, **kwargs):
    """The same layer from both libraries in float64, with PyTorch's weights copied into ours."""
    theirs = theirs_cls(*args, **kwargs, dtype=torch.float64)
    ours = ours_cls(*args, **kwargs, dtype=np.float64)
    copy_weights(ours, theirs)
    return ours, theirs


def randomize_affine(theirs):
    """Move a norm layer's weight and bias off their 1 / 0 defaults, so the test sees them."""
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1.0, 1.0)


def away_from_zero(rng, shape):
    """Values with |x| in [0.25, 2]: no activation sits on its kink."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.25, 2.0, shape)


def distinct(rng, shape):
    """All-different values in (-2, 2): a max-pool window never has a tie."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) + 0.5) * 4 / n - 2).reshape(shape)


# ----------------------------------------------------------------------------------------------
# Layers with weights.


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
def test_linear(lead, bias):
    ours, theirs = pair_of(nn.Linear, tnn.Linear, 4, 3, bias=bias)
    x = np.random.default_rng(0).standard_normal((*lead, 4))
    assert_same_layer(ours, theirs, x)


CONV_VARIANTS = [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=2, out_channels=3, kernel_size=(3, 2), stride=2, padding=1),
    dict(in_channels=2, out_channels=3, kernel_size=3, stride=(2, 1), padding=(0, 2),
         dilation=(2, 1)),
    dict(in_channels=2, out_channels=2, kernel_size=3, padding=2, dilation=2, bias=False),
    dict(in_channels=3, out_channels=2, kernel_size=1),
]


@pytest.mark.parametrize("kwargs", CONV_VARIANTS)
def test_conv2d(backend, kwargs):
    ours, theirs = pair_of(nn.Conv2d, tnn.Conv2d, **kwargs)
    x = np.random.default_rng(1).standard_normal((2, kwargs["in_channels"], 7, 6))
    assert_same_layer(ours, theirs, x)


CONV_TRANSPOSE_VARIANTS = [
    dict(in_channels=3, out_channels=2, kernel_size=3),
    dict(in_channels=2, out_channels=3, kernel_size=4, stride=2, padding=1),     # DCGAN's
    dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(in_channels=2, out_channels=2, kernel_size=(3, 2), stride=(3, 2), padding=(1, 0),
         output_padding=(2, 1)),
    # output_padding >= stride is allowed when it is below the dilation.
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, output_padding=1,
         dilation=2, bias=False),
]


@pytest.mark.parametrize("kwargs", CONV_TRANSPOSE_VARIANTS)
def test_conv_transpose2d(backend, kwargs):
    ours, theirs = pair_of(nn.ConvTranspose2d, tnn.ConvTranspose2d, **kwargs)
    x = np.random.default_rng(2).standard_normal((2, kwargs["in_channels"], 4, 3))
    assert_same_layer(ours, theirs, x)


def test_embedding_with_repeated_indices():
    ours, theirs = pair_of(nn.Embedding, tnn.Embedding, 6, 3)
    idx = np.array([[0, 5, 2, 5], [2, 2, 1, 0]])
    y_ours, y_theirs = ours(idx), theirs(torch.tensor(idx))
    close(y_ours.data, y_theirs)
    g = np.random.default_rng(3).standard_normal(y_ours.shape)
    y_ours.backward(g)
    y_theirs.backward(torch.tensor(g))
    close(ours.weight.grad, theirs.weight.grad)


# ----------------------------------------------------------------------------------------------
# Normalisation.


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("ours_cls, theirs_cls, shape", [
    (nn.BatchNorm1d, tnn.BatchNorm1d, (6, 3)),
    (nn.BatchNorm1d, tnn.BatchNorm1d, (4, 3, 5)),
    (nn.BatchNorm2d, tnn.BatchNorm2d, (3, 3, 4, 2)),
], ids=["1d-NC", "1d-NCL", "2d"])
def test_batch_norm_train_steps_then_eval(ours_cls, theirs_cls, shape, affine):
    theirs = theirs_cls(3, momentum=0.2, affine=affine, dtype=torch.float64)
    if affine:
        randomize_affine(theirs)
    ours = ours_cls(3, momentum=0.2, affine=affine, dtype=np.float64)
    copy_weights(ours, theirs)
    rng = np.random.default_rng(4)
    for step in range(3):
        x = rng.standard_normal(shape) * 2.0 + step       # the statistics drift between steps
        assert_same_layer(ours, theirs, x, seed=step)
        for module in (ours, theirs):
            module.zero_grad()
    # Three updates of the running mean and (unbiased) variance, and the counter.
    state_ours, state_theirs = ours.state_dict(), theirs.state_dict()
    assert list(state_ours) == list(state_theirs)
    for name, value in state_theirs.items():
        close(state_ours[name], value, what=name)
    assert state_ours["num_batches_tracked"] == state_theirs["num_batches_tracked"].item() == 3
    ours.eval()
    theirs.eval()
    assert_same_layer(ours, theirs, rng.standard_normal(shape), seed=9)


@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm2d(affine):
    ours, theirs = pair_of(nn.InstanceNorm2d, tnn.InstanceNorm2d, 3, affine=affine)
    if affine:
        randomize_affine(theirs)
        copy_weights(ours, theirs)
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5)) * 3 + 1
    assert_same_layer(ours, theirs, x)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("normalized_shape", [5, (4, 5)])
def test_layer_norm(normalized_shape, affine):
    ours, theirs = pair_of(nn.LayerNorm, tnn.LayerNorm, normalized_shape,
                           elementwise_affine=affine)
    if affine:
        randomize_affine(theirs)
        copy_weights(ours, theirs)
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)) * 2 - 1
    assert_same_layer(ours, theirs, x)


# ----------------------------------------------------------------------------------------------
# Layers without weights.


POOL_VARIANTS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2)),
    dict(kernel_size=(3, 1), stride=(2, 1), padding=(1, 0)),
]


@pytest.mark.parametrize("kwargs", POOL_VARIANTS)
@pytest.mark.parametrize("ours_cls, theirs_cls", [(nn.MaxPool2d, tnn.MaxPool2d),
                                                  (nn.AvgPool2d, tnn.AvgPool2d)],
                         ids=["max", "avg"])
def test_pooling(ours_cls, theirs_cls, kwargs):
    x = distinct(np.random.default_rng(7), (2, 3, 7, 6))
    assert_same_layer(ours_cls(**kwargs), theirs_cls(**kwargs), x)


@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2),
    dict(scale_factor=(2, 3)),
    dict(size=(5, 7)),
    dict(size=3),                           # shrinking drops rows and columns
    dict(scale_factor=1.7),
    dict(scale_factor=(0.7, 1.25)),
])
def test_upsample_nearest(kwargs):
    x = np.random.default_rng(8).standard_normal((2, 3, 4, 5))
    assert_same_layer(nn.Upsample(**kwargs), tnn.Upsample(mode="nearest", **kwargs), x)


@pytest.mark.parametrize("ours, theirs", [
    (nn.ReLU(), tnn.ReLU()),
    (nn.LeakyReLU(0.2), tnn.LeakyReLU(0.2)),
    (nn.ELU(0.7), tnn.ELU(0.7)),
    (nn.Sigmoid(), tnn.Sigmoid()),
    (nn.Tanh(), tnn.Tanh()),
    (nn.Softplus(), tnn.Softplus()),
    (nn.LogSigmoid(), tnn.LogSigmoid()),
    (nn.Softmax(dim=1), tnn.Softmax(dim=1)),
    (nn.LogSoftmax(dim=-1), tnn.LogSoftmax(dim=-1)),
    (nn.Flatten(), tnn.Flatten()),
    (nn.Unflatten(1, (2, 2)), tnn.Unflatten(1, (2, 2))),
    (nn.Identity(), tnn.Identity()),
    (nn.Dropout(0.5).eval(), tnn.Dropout(0.5).eval()),
], ids=lambda m: type(m).__name__)
def test_activations_and_reshapes(ours, theirs):
    x = away_from_zero(np.random.default_rng(9), (3, 4, 5))
    assert_same_layer(ours, theirs, x)


# ----------------------------------------------------------------------------------------------
# Losses against torch.nn.functional.


def assert_same_loss(ours_fn, theirs_fn, *arrays, seed=0, rtol=RTOL):
    """Same loss and same gradient for every array argument."""
    ours_in = [tg.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    y_ours, y_theirs = ours_fn(*ours_in), theirs_fn(*theirs_in)
    close(y_ours.data, y_theirs, rtol, what="loss")
    g = np.random.default_rng(seed).standard_normal(y_ours.shape)
    y_ours.backward(g)
    y_theirs.backward(torch.tensor(g))
    for i, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
        close(a.grad, b.grad, rtol, what=f"gradient of argument {i}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_and_l1_losses(reduction):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 4))
    t = x + away_from_zero(rng, (3, 4))                    # l1's kink is at x == t
    assert_same_loss(lambda x, t: F.mse_loss(x, t, reduction=reduction),
                     lambda x, t: tF.mse_loss(x, t, reduction=reduction), x, t)
    assert_same_loss(lambda x, t: F.l1_loss(x, t, reduction=reduction),
                     lambda x, t: tF.l1_loss(x, t, reduction=reduction), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    rng = np.random.default_rng(11)
    p, t = rng.uniform(0.02, 0.98, (3, 4)), rng.uniform(0, 1, (3, 4))
    t[0] = [0.0, 1.0, 0.0, 1.0]                             # hard labels too
    assert_same_loss(lambda p, t: F.binary_cross_entropy(p, t, reduction=reduction),
                     lambda p, t: tF.binary_cross_entropy(p, t, reduction=reduction), p, t)


def test_binary_cross_entropy_at_exactly_zero_and_one():
    # Both libraries clamp each log term at -100 and the gradient's denominator at 1e-12.
    # PyTorch's 1e-12 is a C++ float, 4e-9 away from the float64 1e-12: hence rtol=1e-8.
    p = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.4, 0.4])
    assert_same_loss(lambda p: F.binary_cross_entropy(p, tg.tensor(t), reduction="none"),
                     lambda p: tF.binary_cross_entropy(p, torch.tensor(t), reduction="none"), p,
                     rtol=1e-8)


@pytest.mark.parametrize("with_pos_weight", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction, with_pos_weight):
    rng = np.random.default_rng(12)
    logits, t = 4 * rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))
    logits[0] = [-1e4, 1e4, -60.0, 60.0]
    if not with_pos_weight:
        assert_same_loss(
            lambda l, t: F.binary_cross_entropy_with_logits(l, t, reduction=reduction),
            lambda l, t: tF.binary_cross_entropy_with_logits(l, t, reduction=reduction),
            logits, t)
        return
    # One weight per class (the last dim); a constant, as PyTorch gives it no gradient.
    w = rng.uniform(0.5, 3.0, 4)
    assert_same_loss(
        lambda l, t: F.binary_cross_entropy_with_logits(l, t, reduction=reduction,
                                                        pos_weight=tg.tensor(w)),
        lambda l, t: tF.binary_cross_entropy_with_logits(l, t, reduction=reduction,
                                                         pos_weight=torch.tensor(w)),
        logits, t)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy(reduction, label_smoothing):
    rng = np.random.default_rng(13)
    logits, target = 3 * rng.standard_normal((5, 4)), np.array([0, 3, 3, 1, 2])
    assert_same_loss(
        lambda x: F.cross_entropy(x, target, reduction=reduction,
                                  label_smoothing=label_smoothing),
        lambda x: tF.cross_entropy(x, torch.tensor(target), reduction=reduction,
                                   label_smoothing=label_smoothing),
        logits)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    rng = np.random.default_rng(14)
    log_probs, target = rng.standard_normal((5, 4)), np.array([0, 3, 3, 1, 2])
    assert_same_loss(lambda lp: F.nll_loss(lp, target, reduction=reduction),
                     lambda lp: tF.nll_loss(lp, torch.tensor(target), reduction=reduction),
                     log_probs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_normal_against_torch_distributions(reduction):
    # PyTorch has no kl_normal; its distributions package computes the same KL per dimension.
    Normal, kl_divergence = torch.distributions.Normal, torch.distributions.kl_divergence

    def theirs(mu, logvar):
        per_dim = kl_divergence(Normal(mu, (logvar / 2).exp()), Normal(0.0, 1.0))
        per_example = per_dim.sum(dim=(1, 2))
        return {"mean": per_example.mean(), "sum": per_example.sum(),
                "none": per_example}[reduction]

    rng = np.random.default_rng(15)
    mu, logvar = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    assert_same_loss(lambda m, lv: F.kl_normal(m, lv, reduction=reduction), theirs, mu, logvar)


# ----------------------------------------------------------------------------------------------
# A whole model: PyTorch's state_dict loads by name and gives the same output.


def torch_model():
    encoder = tnn.Sequential(
        tnn.Conv2d(1, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.LeakyReLU(0.2),
        tnn.MaxPool2d(2),                                                   # (N, 4, 4, 4)
        tnn.Conv2d(4, 8, 3, stride=2, padding=1), tnn.InstanceNorm2d(8, affine=True),
        tnn.ReLU())                                                         # (N, 8, 2, 2)
    decoder = tnn.Sequential(
        tnn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), tnn.Tanh(),    # (N, 4, 4, 4)
        tnn.Upsample(scale_factor=2), tnn.AvgPool2d(2),                     # (N, 4, 4, 4)
        tnn.Flatten(), tnn.Linear(64, 16), tnn.LayerNorm(16), tnn.ELU(), tnn.Dropout(0.3),
        tnn.Linear(16, 5), tnn.BatchNorm1d(5))
    return tnn.Sequential(encoder, decoder)


def tinygen_model():
    encoder = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.InstanceNorm2d(8, affine=True), nn.ReLU())
    decoder = nn.Sequential(
        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), nn.Tanh(),
        nn.Upsample(scale_factor=2), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(64, 16), nn.LayerNorm(16), nn.ELU(), nn.Dropout(0.3),
        nn.Linear(16, 5), nn.BatchNorm1d(5))
    return nn.Sequential(encoder, decoder)


def test_a_pytorch_sequential_state_dict_loads_and_gives_the_same_output(backend):
    torch.manual_seed(0)
    theirs, ours = torch_model(), tinygen_model()
    # Same keys in the same order ("0.0.weight", ..., "1.10.num_batches_tracked"), same shapes.
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in state.items()}
    # One training step in PyTorch moves the batch-norm statistics off their defaults first.
    x_train = np.random.default_rng(16).standard_normal((4, 1, 8, 8)).astype(np.float32)
    theirs.train()[1][8].eval()                      # dropout off: its masks are random
    theirs(torch.tensor(x_train))
    copy_weights(ours, theirs)
    # Both libraries' float32 defaults: tolerances for float32 round-off through 17 layers.
    x = np.random.default_rng(17).standard_normal((3, 1, 8, 8)).astype(np.float32)
    theirs.eval()
    ours.eval()
    assert_same_layer(ours, theirs, x, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Default initialisation: PyTorch's distributions (compared by their bounds, never by values).


@pytest.mark.parametrize("make, fan_in", [
    (lambda lib: lib.Linear(256, 128), 256),
    (lambda lib: lib.Conv2d(16, 32, 3), 16 * 3 * 3),
    # PyTorch documents U(-sqrt(k), sqrt(k)) with k = 1 / (C_out * kh * kw) for the transposed
    # conv: its fan_in comes from weight.shape[1], which is the *output* channels.
    (lambda lib: lib.ConvTranspose2d(16, 32, (3, 2)), 32 * 3 * 2),
], ids=["Linear", "Conv2d", "ConvTranspose2d"])
def test_default_init_is_uniform_within_pytorchs_bound(make, fan_in):
    bound = 1 / np.sqrt(fan_in)
    tg.manual_seed(0)
    torch.manual_seed(0)
    for layer in (make(nn), make(tnn)):              # the same check passes for PyTorch itself
        for name, p in layer.named_parameters():
            values = np.asarray(p.detach().numpy() if isinstance(p, torch.Tensor) else p.data)
            assert np.abs(values).max() <= bound, name
            # The range is used to its ends: with n >= 32 draws, missing the outer half of
            # one side has probability 0.75^n < 1e-4 (and the weights have thousands).
            assert values.max() > 0.5 * bound and values.min() < -0.5 * bound, name
            if name == "weight":                     # U(-b, b) has standard deviation b / sqrt 3
                assert values.std() == pytest.approx(bound / np.sqrt(3), rel=0.03)
                assert abs(values.mean()) < 0.03 * bound


def test_default_embedding_init_is_standard_normal():
    tg.manual_seed(0)
    torch.manual_seed(0)
    for layer in (nn.Embedding(1000, 16), tnn.Embedding(1000, 16)):
        w = np.asarray(layer.weight.detach().numpy() if isinstance(layer, tnn.Module)
                       else layer.weight.data)
        assert abs(w.mean()) < 0.02 and w.std() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("make", [
    lambda lib: lib.BatchNorm1d(5), lambda lib: lib.BatchNorm2d(5),
    lambda lib: lib.InstanceNorm2d(5, affine=True), lambda lib: lib.LayerNorm((2, 5)),
], ids=["BatchNorm1d", "BatchNorm2d", "InstanceNorm2d", "LayerNorm"])
def test_default_norm_state_is_pytorchs(make):
    # These defaults are constants (weight 1, bias 0, running mean 0 and variance 1, counter
    # 0), so the two state_dicts must be equal entry for entry.
    ours, theirs = make(nn).state_dict(), make(tnn).state_dict()
    assert list(ours) == list(theirs)
    for name, value in theirs.items():
        np.testing.assert_array_equal(ours[name], value.numpy(), err_msg=name)
        assert ours[name].dtype == value.numpy().dtype, name
