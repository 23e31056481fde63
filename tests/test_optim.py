"""Tests for `tinygen.optim`: optimizers, checkpoints, learning-rate schedules and clipping.

How the update rules are checked, twice and independently of the library code:

1. **By hand.** For a one-entry parameter on f(x) = 0.5 * a * x^2 (gradient a * x), the
   `*_reference` functions below replay the textbook rule with Python floats, one option at a
   time, and the first three steps must match. A few tests also pin literal numbers worked out
   on paper, so a reference function cannot drift along with the code.
2. **Against PyTorch** (skipped if torch is missing): random shapes and values from hypothesis,
   two parameter groups with different learning rates, ten steps in float64, rtol 1e-6.

Then: checkpoints round-trip through `.npz` + JSON and continue bit for bit; schedulers match
closed forms and PyTorch; clipping matches hand computation and PyTorch; bad options raise.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygen as tg
from tinygen.optim import SGD, Adam, AdamW, RMSprop, clip_grad_norm_, clip_grad_value_
from tinygen.optim import lr_scheduler as sched


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def param(values, dtype=np.float64):
    return tg.tensor(np.array(values, dtype=dtype), dtype=dtype, requires_grad=True)


def quadratic_grad(p, a) -> None:
    """Set p.grad to the gradient of 0.5 * sum(a * x^2), as a fresh array."""
    p.grad = a * p.data


# ------------------------------------------------------------------------------------------------
# Reference update rules: plain Python floats, one entry, no arrays. Each returns x after every
# step of gradient descent on 0.5 * a * x^2.


def sgd_reference(x, a, steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False, maximize=False):
    xs, buf = [], None
    for _ in range(steps):
        g = -a * x if maximize else a * x
        g += weight_decay * x
        if momentum:
            buf = g if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        x -= lr * g
        xs.append(x)
    return xs


def adam_reference(x, a, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   amsgrad=False, maximize=False, decoupled=False):
    b1, b2 = betas
    m = v = v_max = 0.0
    xs = []
    for t in range(1, steps + 1):
        g = -a * x if maximize else a * x
        if decoupled:
            x *= 1 - lr * weight_decay
        else:
            g += weight_decay * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = max(v_max, v)
        m_hat = m / (1 - b1**t)
        v_hat = (v_max if amsgrad else v) / (1 - b2**t)
        x -= lr * m_hat / (math.sqrt(v_hat) + eps)
        xs.append(x)
    return xs


def adamw_reference(x, a, steps, weight_decay=1e-2, **kw):
    return adam_reference(x, a, steps, weight_decay=weight_decay, decoupled=True, **kw)


def rmsprop_reference(x, a, steps, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                      momentum=0.0, centered=False, maximize=False):
    s = mean = buf = 0.0
    xs = []
    for _ in range(steps):
        g = -a * x if maximize else a * x
        g += weight_decay * x
        s = alpha * s + (1 - alpha) * g * g
        mean = alpha * mean + (1 - alpha) * g
        r = math.sqrt(s - mean * mean if centered else s) + eps
        buf = momentum * buf + g / r
        x -= lr * (buf if momentum else g / r)
        xs.append(x)
    return xs


OPTIMIZERS = {  # name -> (tinygen class, reference, torch class name)
    "sgd": (SGD, sgd_reference, "SGD"),
    "adam": (Adam, adam_reference, "Adam"),
    "adamw": (AdamW, adamw_reference, "AdamW"),
    "rmsprop": (RMSprop, rmsprop_reference, "RMSprop"),
}

# Every option, alone and combined. Learning rates are large so three steps move x visibly.
CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.1, weight_decay=0.2)),
    ("sgd", dict(lr=0.1, maximize=True)),
    ("sgd", dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True, maximize=True)),
    ("adam", dict(lr=0.1)),
    ("adam", dict(lr=0.1, betas=(0.5, 0.6), eps=1e-3)),
    ("adam", dict(lr=0.1, weight_decay=0.3)),
    ("adam", dict(lr=0.4, betas=(0.5, 0.5), amsgrad=True)),
    ("adam", dict(lr=0.1, maximize=True)),
    ("adam", dict(lr=0.4, betas=(0.3, 0.5), weight_decay=0.1, amsgrad=True, maximize=True)),
    ("adamw", dict(lr=0.1)),
    ("adamw", dict(lr=0.1, weight_decay=0.5)),
    ("adamw", dict(lr=0.4, betas=(0.5, 0.5), weight_decay=0.2, amsgrad=True, maximize=True)),
    ("rmsprop", dict(lr=0.01)),
    ("rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-3)),
    ("rmsprop", dict(lr=0.01, weight_decay=0.3)),
    ("rmsprop", dict(lr=0.01, momentum=0.9)),
    ("rmsprop", dict(lr=0.01, centered=True)),
    ("rmsprop", dict(lr=0.01, maximize=True)),
    ("rmsprop", dict(lr=0.01, alpha=0.8, weight_decay=0.1, momentum=0.5, centered=True,
                     maximize=True)),
]
CASE_IDS = [f"{name}-" + "-".join(f"{k}={v}" for k, v in kw.items()) for name, kw in CASES]


# ------------------------------------------------------------------------------------------------
# Update rules by hand.


@pytest.mark.parametrize("name, options", CASES, ids=CASE_IDS)
def test_first_three_steps_match_the_reference_rule(name, options):
    cls, reference, _ = OPTIMIZERS[name]
    x0, a = 1.5, 2.0
    p = param([x0])
    opt = cls([p], **options)
    got = []
    for _ in range(3):
        quadratic_grad(p, a)
        opt.step()
        got.append(p.data[0])
    assert got == pytest.approx(reference(x0, a, 3, **options), rel=1e-12, abs=1e-15)


def test_amsgrad_cases_really_exercise_the_max():
    # The max of v only matters once v shrinks; make sure the amsgrad cases above reach that.
    options = dict(lr=0.4, betas=(0.5, 0.5))
    plain = adam_reference(1.5, 2.0, 3, **options)
    assert adam_reference(1.5, 2.0, 3, amsgrad=True, **options) != pytest.approx(plain)


def test_sgd_literal_numbers():
    # lr = 0.1, a = 2, x0 = 1. Plain SGD: x <- x - 0.1 * 2x = 0.8 x.
    p = param([1.0])
    opt = SGD([p], lr=0.1)
    for expected in [0.8, 0.64, 0.512]:
        quadratic_grad(p, 2.0)
        opt.step()
        assert p.data[0] == pytest.approx(expected, rel=1e-14)
    p = param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9, dampening=0.5)  # dampening spares the first step
    quadratic_grad(p, 2.0)
    opt.step()
    assert p.data[0] == pytest.approx(0.8, rel=1e-14)  # b_1 = g_1, not (1 - 0.5) * g_1


def test_sgd_momentum_literal_numbers():
    p = param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    for expected in [0.8, 0.46, 0.062]:
        quadratic_grad(p, 2.0)
        opt.step()
        assert p.data[0] == pytest.approx(expected, rel=1e-12)


def test_adam_first_step_has_length_lr():
    # After bias correction m_hat = g and v_hat = g^2, so the first step is lr * g / (|g| + eps).
    p = param([1.0, -3.0])
    opt = Adam([p], lr=0.1)
    quadratic_grad(p, np.array([2.0, 5.0]))
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 2 / (2 + 1e-8), -3.0 + 0.1 * 15 / (15 + 1e-8)],
                               rtol=1e-15)


def test_rmsprop_first_step_is_lr_over_sqrt_one_minus_alpha():
    # s_1 = (1 - alpha) g^2, so the step is lr * g / (sqrt(1 - alpha) |g| + eps) ~ 10 lr.
    p = param([1.0])
    opt = RMSprop([p], lr=0.01, alpha=0.99)
    quadratic_grad(p, 2.0)
    opt.step()
    assert p.data[0] == pytest.approx(1.0 - 0.01 * 2 / (math.sqrt(0.01) * 2 + 1e-8), rel=1e-14)


def test_engine_gradients_drive_the_optimizer():
    a = np.array([1.0, 4.0])
    x = param([2.0, -1.0])
    opt = Adam([x], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        loss = (0.5 * a * x * x).sum()
        loss.backward()
        opt.step()
    assert np.abs(x.data).max() < 0.05


# ------------------------------------------------------------------------------------------------
# Against PyTorch: random shapes and values, two groups, ten steps, float64.


def two_shapes():
    return st.tuples(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                     hnp.array_shapes(min_dims=0, max_dims=2, max_side=5))


@st.composite
def quadratic_problems(draw):
    """Two parameters with entries in [-2, 2] and curvatures in [0.1, 3].

    Hypothesis draws the shapes and a seed; NumPy draws the values from the seed. Drawing each
    float through hypothesis costs more than the ten optimizer steps it feeds.
    """
    shapes = draw(two_shapes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    xs = [rng.uniform(-2, 2, size=s) for s in shapes]
    curvatures = [rng.uniform(0.1, 3.0, size=s) for s in shapes]
    return xs, curvatures


def run_tinygen(name, options, xs, curvatures, steps):
    ps = [param(x) for x in xs]
    opt = OPTIMIZERS[name][0]([{"params": [ps[0]]},
                               {"params": [ps[1]], "lr": options["lr"] * 0.5}], **options)
    for _ in range(steps):
        for p, a in zip(ps, curvatures, strict=True):
            quadratic_grad(p, a)
        opt.step()
    return [p.data for p in ps]


def run_torch(torch, name, options, xs, curvatures, steps):
    ps = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    cls = getattr(torch.optim, OPTIMIZERS[name][2])
    opt = cls([{"params": [ps[0]]}, {"params": [ps[1]], "lr": options["lr"] * 0.5}], **options)
    for _ in range(steps):
        for p, a in zip(ps, curvatures, strict=True):
            p.grad = torch.from_numpy(a) * p.detach()
        opt.step()
    return [p.detach().numpy() for p in ps]


@pytest.mark.parametrize("name, options", CASES, ids=CASE_IDS)
@settings(deadline=None)
@given(problem=quadratic_problems())
def test_matches_torch_for_ten_steps(torch, name, options, problem):
    xs, curvatures = problem
    ours = run_tinygen(name, options, xs, curvatures, steps=10)
    theirs = run_torch(torch, name, options, xs, curvatures, steps=10)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# The Optimizer contract: groups, skipping, in-place updates, dtypes, zero_grad, closure.


def test_param_groups_use_their_own_lr_and_defaults():
    p, q = param([1.0]), param([1.0])
    opt = SGD([{"params": [p]}, {"params": q, "lr": 0.01, "momentum": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert [g["momentum"] for g in opt.param_groups] == [0.0, 0.5]
    p.grad, q.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    assert p.data[0] == pytest.approx(0.9) and q.data[0] == pytest.approx(0.99)


def test_add_param_group_takes_defaults_and_rejects_duplicates():
    p, q = param([1.0]), param([2.0])
    opt = Adam([p], lr=0.1, betas=(0.8, 0.9))
    opt.add_param_group({"params": [q], "lr": 0.5})
    assert opt.param_groups[1]["betas"] == (0.8, 0.9) and opt.param_groups[1]["lr"] == 0.5
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [p]})
    with pytest.raises(ValueError, match="more than once"):
        SGD([q, q], lr=0.1)


def test_bad_params_argument():
    with pytest.raises(TypeError, match="single tensor"):
        SGD(param([1.0]), lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        SGD([tg.tensor(np.array([1, 2]))], lr=0.1)
    with pytest.raises(ValueError, match="'params' entry"):
        SGD([{"lr": 0.1}], lr=0.1)


@pytest.mark.parametrize("name, options", CASES[::3], ids=CASE_IDS[::3])
def test_step_skips_params_without_grad(name, options):
    p, q = param([1.0, 2.0]), param([3.0])
    opt = OPTIMIZERS[name][0]([p, q], **options)
    quadratic_grad(p, 1.0)
    opt.step()
    assert q.data[0] == 3.0 and q not in opt.state and p in opt.state


@pytest.mark.parametrize("name, options", CASES, ids=CASE_IDS)
def test_update_is_in_place_keeps_dtype_and_leaves_grad_alone(name, options):
    p = param([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    data = p.data
    opt = OPTIMIZERS[name][0]([p], **options)
    for _ in range(2):
        quadratic_grad(p, np.float32(2.0))
        grad_before = p.grad.copy()
        opt.step()
        np.testing.assert_array_equal(p.grad, grad_before)
    assert p.data is data and p.data.dtype == np.float32
    assert not np.array_equal(p.data, [[1.0, -2.0], [0.5, 3.0]])
    arrays = [v for v in opt.state[p].values() if isinstance(v, np.ndarray)]
    assert all(v.dtype == np.float32 for v in arrays)  # (plain SGD has no arrays)


def test_zero_grad():
    p = param([1.0, 2.0])
    opt = SGD([p], lr=0.1)
    p.grad = np.array([3.0, 4.0])
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and not p.grad.any()
    opt.zero_grad()
    assert p.grad is None


def test_step_returns_the_closure_loss():
    p = param([2.0])

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    opt = SGD([p], lr=0.25)
    loss = opt.step(closure)
    assert loss.item() == 4.0 and p.data[0] == pytest.approx(1.0)  # 2 - 0.25 * 4


BAD_OPTIONS = [
    (SGD, dict(lr=-0.1), "lr"),
    (SGD, dict(lr=0.1, momentum=-0.5), "momentum"),
    (SGD, dict(lr=0.1, weight_decay=-1.0), "weight_decay"),
    (SGD, dict(lr=0.1, nesterov=True), "Nesterov"),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (Adam, dict(lr=-1e-3), "lr"),
    (Adam, dict(lr=float("nan")), "lr"),
    (Adam, dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    (Adam, dict(betas=(0.9, -0.1)), r"betas\[1\]"),
    (Adam, dict(betas=(0.9, 0.99, 0.999)), "pair"),
    (Adam, dict(eps=-1e-8), "eps"),
    (Adam, dict(weight_decay=-0.1), "weight_decay"),
    (AdamW, dict(betas=(0.9, 1.0)), r"betas\[1\]"),
    (AdamW, dict(weight_decay=-0.1), "weight_decay"),
    (RMSprop, dict(lr=-0.1), "lr"),
    (RMSprop, dict(alpha=1.5), "alpha"),
    (RMSprop, dict(alpha=-0.1), "alpha"),
    (RMSprop, dict(eps=-1.0), "eps"),
    (RMSprop, dict(momentum=-0.9), "momentum"),
    (RMSprop, dict(weight_decay=-0.9), "weight_decay"),
]


@pytest.mark.parametrize("cls, options, match", BAD_OPTIONS)
def test_bad_hyper_parameters_raise(cls, options, match):
    with pytest.raises(ValueError, match=match):
        cls([param([1.0])], **options)


def test_bad_hyper_parameter_in_a_group_raises():
    with pytest.raises(ValueError, match="lr"):
        SGD([{"params": [param([1.0])], "lr": -1.0}], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([{"params": [param([1.0])], "nesterov": True}], lr=0.1, momentum=0.0)


# ------------------------------------------------------------------------------------------------
# Checkpoints.


def through_npz_and_json(state_dict):
    """Write a state dict as the checkpoint format does (arrays to .npz, the rest to JSON) and
    read it back. JSON turns the integer state keys into strings and tuples into lists."""
    arrays, meta = {}, {"state": {}, "param_groups": state_dict["param_groups"]}
    for index, entries in state_dict["state"].items():
        meta["state"][index] = {k: v for k, v in entries.items() if not isinstance(v, np.ndarray)}
        arrays.update({f"{index}/{k}": v for k, v in entries.items() if isinstance(v, np.ndarray)})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    meta = json.loads(json.dumps(meta))
    with np.load(buffer) as npz:
        for key in npz.files:
            index, name = key.split("/")
            meta["state"][index][name] = npz[key]
    return meta


ROUND_TRIP_CASES = [CASES[3], CASES[6], CASES[12], CASES[15], CASES[22]]


def make_params(seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [param(rng.normal(size=s), dtype=dtype) for s in [(3, 2), (4,), ()]]


def three_steps(opt, params, curvatures):
    for _ in range(3):
        for p, a in zip(params, curvatures, strict=True):
            quadratic_grad(p, a)
        opt.step()


@pytest.mark.parametrize("name, options", ROUND_TRIP_CASES)
def test_state_dict_round_trip_continues_bit_for_bit(name, options):
    cls = OPTIMIZERS[name][0]
    curvatures = [np.float32(c) for c in (0.5, 2.0, 1.5)]
    a = make_params(0)
    opt_a = cls([{"params": a[:2]}, {"params": a[2:], "lr": options["lr"] / 2}], **options)
    three_steps(opt_a, a, curvatures)
    saved = through_npz_and_json(opt_a.state_dict())
    b = [param(p.data.copy(), dtype=np.float32) for p in a]
    opt_b = cls([{"params": b[:2]}, {"params": b[2:]}], lr=1.0)  # options come from the file
    opt_b.load_state_dict(saved)
    assert [g.keys() for g in opt_b.param_groups] == [g.keys() for g in opt_a.param_groups]
    three_steps(opt_a, a, curvatures)
    three_steps(opt_b, b, curvatures)
    for pa, pb in zip(a, b, strict=True):
        assert np.array_equal(pa.data, pb.data)
        for key, value in opt_a.state[pa].items():
            assert np.array_equal(value, opt_b.state[pb][key])


def test_state_dict_layout_and_snapshot():
    p, q = param([1.0, 2.0]), param([3.0])
    opt = SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=0.1, momentum=0.9)
    quadratic_grad(q, 1.0)
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][1]["params"] == [1]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert list(sd["state"]) == [1]  # p never had a gradient, so it has no state
    json.dumps(_without_arrays(sd))  # everything but the arrays is plain JSON
    buffer = sd["state"][1]["momentum_buffer"].copy()
    opt.step()
    np.testing.assert_array_equal(sd["state"][1]["momentum_buffer"], buffer)  # a snapshot


def _without_arrays(sd):
    return {"param_groups": sd["param_groups"],
            "state": {str(i): {k: v for k, v in s.items() if not isinstance(v, np.ndarray)}
                      for i, s in sd["state"].items()}}


def test_state_dict_turns_numpy_scalar_options_into_python_numbers():
    opt = Adam([param([1.0])], lr=np.float32(0.5), betas=(np.float64(0.8), 0.9))
    group = opt.state_dict()["param_groups"][0]
    assert type(group["lr"]) is float and type(group["betas"][0]) is float
    json.dumps(group)


def test_load_state_dict_reports_what_differs():
    p, q = param([[1.0, 2.0]]), param([3.0])
    opt = Adam([p, q], lr=0.1)
    quadratic_grad(p, 1.0)
    quadratic_grad(q, 1.0)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="groups differs: 1 in the state dict, 2 in the optimizer"):
        Adam([{"params": [p]}, {"params": [q]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state dict, 1 in"):
        Adam([p]).load_state_dict(sd)
    other = Adam([param([1.0, 2.0]), param([3.0])])
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(1, 2\)"):
        other.load_state_dict(sd)
    assert other.state == {}  # nothing was loaded half-way


# ------------------------------------------------------------------------------------------------
# Learning-rate schedulers.


def sgd_with_lrs(*lrs):
    return SGD([{"params": [param([1.0])], "lr": lr} for lr in lrs], lr=lrs[0])


def lrs_of(scheduler, steps):
    """The first lr of group 0 at steps 0 .. steps - 1 (construction applies step 0)."""
    out = [scheduler.get_last_lr()[0]]
    for _ in range(steps - 1):
        scheduler.optimizer.step()
        scheduler.step()
        out.append(scheduler.get_last_lr()[0])
    return out


C = math.cos(math.pi / 4)
HAND_SCHEDULES = [
    (lambda o: sched.StepLR(o, step_size=3, gamma=0.5), [1, 1, 1, 0.5, 0.5, 0.5, 0.25]),
    (lambda o: sched.ExponentialLR(o, gamma=0.5), [1, 0.5, 0.25, 0.125, 0.0625]),
    (lambda o: sched.CosineAnnealingLR(o, T_max=4),
     [1, (1 + C) / 2, 0.5, (1 - C) / 2, 0, (1 - C) / 2, 0.5, (1 + C) / 2, 1]),
    (lambda o: sched.CosineAnnealingLR(o, T_max=2, eta_min=0.2), [1, 0.6, 0.2, 0.6, 1]),
    (lambda o: sched.LinearLR(o, start_factor=0.25, total_iters=3), [0.25, 0.5, 0.75, 1, 1]),
    (lambda o: sched.LinearLR(o, start_factor=1.0, end_factor=0.5, total_iters=2),
     [1, 0.75, 0.5, 0.5]),
    (lambda o: sched.LambdaLR(o, lambda t: 1 / (t + 1)), [1, 1 / 2, 1 / 3, 1 / 4]),
]


@pytest.mark.parametrize("make, expected", HAND_SCHEDULES)
def test_schedules_by_hand(make, expected):
    scheduler = make(sgd_with_lrs(1.0))
    assert lrs_of(scheduler, len(expected)) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_constructing_a_scheduler_records_initial_lr_and_applies_step_zero():
    opt = sgd_with_lrs(0.3, 0.6)
    scheduler = sched.LinearLR(opt, start_factor=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.3, 0.6]
    assert [g["lr"] for g in opt.param_groups] == [0.15, 0.3]
    assert scheduler.get_last_lr() == [0.15, 0.3] and scheduler.last_epoch == 0
    assert scheduler.base_lrs == [0.3, 0.6]


TORCH_SCHEDULES = [
    ("StepLR", dict(step_size=4, gamma=0.7)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=8)),
    ("LambdaLR", dict(lr_lambda=lambda t: 0.95**t + 0.1 * (t % 3))),
]


@pytest.mark.parametrize("name, options", TORCH_SCHEDULES)
def test_schedules_match_torch(torch, name, options):
    steps, base = 25, [0.1, 0.03]
    ours = getattr(sched, name)(sgd_with_lrs(*base), **options)
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in base]
    torch_opt = torch.optim.SGD(groups)
    theirs = getattr(torch.optim.lr_scheduler, name)(torch_opt, **options)
    for _ in range(steps):
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-10,
                                   atol=1e-16)
        assert ours.last_epoch == theirs.last_epoch
        ours.optimizer.step()
        torch_opt.step()
        ours.step()
        theirs.step()


@pytest.mark.parametrize("name, options", TORCH_SCHEDULES)
def test_scheduler_state_dict_round_trip(name, options):
    opt = sgd_with_lrs(0.1, 0.03)
    scheduler = getattr(sched, name)(opt, **options)
    for _ in range(5):
        opt.step()
        scheduler.step()
    saved_opt = json.loads(json.dumps(opt.state_dict()))
    saved_sched = json.loads(json.dumps(scheduler.state_dict()))
    assert "lr_lambda" not in saved_sched and "lr_lambdas" not in saved_sched
    opt2 = SGD([{"params": [p]} for g in opt.param_groups for p in g["params"]], lr=1.0)
    scheduler2 = getattr(sched, name)(opt2, **options)
    opt2.load_state_dict(saved_opt)
    scheduler2.load_state_dict(saved_sched)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    for _ in range(10):
        scheduler.step()
        scheduler2.step()
        assert scheduler2.get_last_lr() == scheduler.get_last_lr()
        assert [g["lr"] for g in opt2.param_groups] == scheduler.get_last_lr()


def test_scheduler_resume_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(sgd_with_lrs(0.1), step_size=2, last_epoch=4)
    opt = sgd_with_lrs(0.1)
    sched.StepLR(opt, step_size=2)
    resumed = sched.StepLR(opt, step_size=2, gamma=0.5, last_epoch=3)
    assert resumed.last_epoch == 4 and resumed.get_last_lr() == [pytest.approx(0.025)]


@pytest.mark.parametrize("make, match", [
    (lambda o: sched.StepLR(o, step_size=0), "step_size"),
    (lambda o: sched.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: sched.LinearLR(o, start_factor=0.0), "start_factor"),
    (lambda o: sched.LinearLR(o, end_factor=1.5), "end_factor"),
    (lambda o: sched.LinearLR(o, total_iters=0), "total_iters"),
    (lambda o: sched.LambdaLR(o, [lambda t: 1.0] * 2), "one per group"),
])
def test_bad_scheduler_options_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make(sgd_with_lrs(0.1))


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        sched.StepLR([param([1.0])], step_size=1)


# ------------------------------------------------------------------------------------------------
# Gradient clipping.


def params_with_grads(*grads):
    ps = [param(np.zeros(np.shape(g))) for g in grads]
    for p, g in zip(ps, grads, strict=True):
        p.grad = None if g is None else np.array(g, dtype=np.float64)
    return ps


def test_clip_grad_norm_by_hand():
    # |(3, 4, 12)| = 13, so max_norm 6.5 scales by 6.5 / (13 + 1e-6), just under 1/2.
    ps = params_with_grads([3.0, 4.0], [[12.0]])
    total = clip_grad_norm_(ps, max_norm=6.5)
    assert total == 13.0 and isinstance(total, float)
    scale = 6.5 / (13 + 1e-6)
    np.testing.assert_allclose(ps[0].grad, [3 * scale, 4 * scale], rtol=1e-15)
    np.testing.assert_allclose(ps[1].grad, [[12 * scale]], rtol=1e-15)


def test_clip_grad_norm_leaves_small_gradients_alone():
    ps = params_with_grads([3.0, 4.0], [[12.0]], None)
    grads = [p.grad.copy() for p in ps[:2]]
    assert clip_grad_norm_(ps, max_norm=20.0) == 13.0
    for p, g in zip(ps, grads, strict=False):
        np.testing.assert_array_equal(p.grad, g)
    assert ps[2].grad is None


def test_clip_grad_norm_other_norms_and_edge_cases():
    assert clip_grad_norm_(params_with_grads([3.0, -4.0], [-12.0]), 100, norm_type=1) == 19.0
    ps = params_with_grads([3.0, -4.0], [-12.0])
    assert clip_grad_norm_(ps, 6.0, norm_type="inf") == 12.0
    np.testing.assert_allclose(ps[1].grad, [-12 * 6 / (12 + 1e-6)], rtol=1e-15)
    single = params_with_grads([0.0, 2.0])[0]
    assert clip_grad_norm_(single, 1.0) == 2.0  # a lone tensor is accepted, as in PyTorch
    assert clip_grad_norm_([param([1.0])], 1.0) == 0.0  # no gradients at all
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_(params_with_grads([1.0]), 1.0, norm_type=0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(params_with_grads([1.0]), -1.0)


def test_clip_grad_norm_nonfinite():
    ps = params_with_grads([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="inf"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    ps = params_with_grads([np.nan, 1.0])
    assert math.isnan(clip_grad_norm_(ps, 1.0))
    assert np.isnan(ps[0].grad).all()  # PyTorch multiplies by a NaN coefficient too


@settings(deadline=None)
@given(grads=two_shapes().flatmap(lambda s: st.tuples(
           *[hnp.arrays(np.float64, shape, elements=st.floats(-10, 10)) for shape in s])),
       max_norm=st.floats(0.1, 10.0), norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]))
def test_clip_grad_norm_matches_torch(torch, grads, max_norm, norm_type):
    ours = params_with_grads(*grads)
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(theirs, grads, strict=True):
        t.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    torch_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert total == pytest.approx(torch_total.item(), rel=1e-12, abs=1e-300)
    for p, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-300)


CLIP_VALUE_GRADS = [np.array([-3.0, 0.5, 2.0]), np.array([[1.0, -1.0000001]])]


def test_clip_grad_value_by_hand():
    ps = params_with_grads(*CLIP_VALUE_GRADS)
    clip_grad_value_(ps, 1.0)
    np.testing.assert_array_equal(ps[0].grad, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(ps[1].grad, [[1.0, -1.0]])
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(ps, -1.0)


def test_clip_grad_value_matches_torch(torch):
    grads = CLIP_VALUE_GRADS
    ps = params_with_grads(*grads)
    clip_grad_value_(ps, 1.0)
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(ts, grads, strict=True):
        t.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_value_(ts, 1.0)
    for p, t in zip(ps, ts, strict=True):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())


# ----------------------------------------------------------------------------------------------
# Issue 15: hyper-parameters that are not finite numbers, gradients of the wrong shape, and
# state dicts from another optimizer class are refused where they are made, not later.

NOT_A_NUMBER = [
    (SGD, dict(lr="0.1"), r"SGD: invalid lr: '0.1' \(must be a number, got str\)"),
    (SGD, dict(lr=None), r"SGD: invalid lr: None"),
    (SGD, dict(lr=float("inf")), r"SGD: invalid lr: inf \(must be finite\)"),
    (SGD, dict(lr=0.1, momentum=float("inf")), r"SGD: invalid momentum: inf"),
    (SGD, dict(lr=0.1, dampening=-0.5), r"SGD: invalid dampening"),
    (SGD, dict(lr=(0.1, 0.2)), r"SGD: invalid lr: \(0.1, 0.2\) \(must be a number"),
    (Adam, dict(lr=float("inf")), r"Adam: invalid lr: inf"),
    (Adam, dict(eps=float("inf")), r"Adam: invalid eps: inf"),
    (Adam, dict(eps="1e-8"), r"Adam: invalid eps: '1e-8'"),
    (Adam, dict(betas=0.9), r"Adam: betas must be a pair \(beta1, beta2\), got 0.9"),
    (Adam, dict(betas=(0.9,)), r"Adam: betas must be a pair"),
    (Adam, dict(betas=("0.9", 0.99)), r"Adam: invalid betas\[0\]: '0.9'"),
    (Adam, dict(betas=(0.9, float("nan"))), r"Adam: invalid betas\[1\]: nan"),
    (AdamW, dict(lr=-1.0), r"AdamW: invalid lr: -1.0 \(must be >= 0\)"),
    (RMSprop, dict(alpha=float("inf")), r"RMSprop: invalid alpha: inf"),
    (RMSprop, dict(eps=None), r"RMSprop: invalid eps: None"),
]


@pytest.mark.parametrize("cls, options, match", NOT_A_NUMBER)
def test_hyper_parameters_must_be_finite_numbers(cls, options, match):
    with pytest.raises(ValueError, match=match):
        cls([param([1.0])], **options)


def test_betas_as_a_list_are_accepted():
    assert Adam([param([1.0])], betas=[0.5, 0.6]).defaults["betas"] == (0.5, 0.6)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop])
def test_a_gradient_of_another_shape_is_an_error_not_a_broadcast(cls):
    p, q = param(np.zeros((4, 3))), param(np.zeros((2,)))
    opt = cls([q, p], lr=0.1)
    p.grad = np.ones((1, 3), dtype=p.dtype)      # would broadcast over (4, 3)
    q.grad = np.ones(2, dtype=q.dtype)
    before = q.data.copy()
    with pytest.raises(tg.ShapeError, match=rf"{cls.__name__}.step: parameter 1 has shape "
                                            r"\(4, 3\) but its .grad has shape \(1, 3\)"):
        opt.step()
    assert not p.data.any()
    np.testing.assert_array_equal(q.data, before)   # checked before anything was updated


def test_load_state_dict_from_another_optimizer_class_is_refused_at_load():
    p = param(np.zeros(3))
    adam = Adam([p], lr=0.1)
    p.grad = np.ones(3, dtype=p.dtype)
    adam.step()
    saved = adam.state_dict()
    sgd = SGD([param(np.zeros(3))], lr=0.1)
    with pytest.raises(ValueError, match="SGD.load_state_dict: the state dict was saved by Adam"):
        sgd.load_state_dict(saved)
    with pytest.raises(ValueError, match="AdamW.load_state_dict: .* saved by Adam"):
        AdamW([param(np.zeros(3))]).load_state_dict(saved)
    # An older checkpoint without the class name: judged by its options.
    legacy = {k: v for k, v in saved.items() if k != "optimizer"}
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: parameter group 0 lacks "
                                         r"\['dampening', 'momentum', 'nesterov'\]"):
        sgd.load_state_dict(legacy)
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        sgd.load_state_dict({"model": {}})
    Adam([param(np.zeros(3))]).load_state_dict(legacy)       # the right class still loads
