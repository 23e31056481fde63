"""The improved-GAN switches (Salimans et al. 2016) on gan, dcgan and cgan: each one's gradient,
its definition checked against NumPy, and "off" giving back the plain model's loss exactly."""

import numpy as np
import pytest
from test_gan import MODELS, assert_bitwise, batch, build, state

import tinygen as tg
from tinygen.models import adversarial
from tinygen.models.improved import HistoricalAverage, feature_matching_loss

IMAGE_MODELS = ["gan-images", "dcgan", "cgan-mlp", "cgan-dcgan"]


def as_float64(model):
    for t in list(model.parameters()) + list(model.buffers()):
        if t.dtype.kind == "f":
            t.data = t.data.astype(np.float64)
    return model


def d_objective_on_fixed_fakes(model, real):
    """D's loss as a function of D's parameters alone: the same fakes and masks each call."""
    tg.manual_seed(3)
    with tg.no_grad():
        fake = model.fake(real)

    def d_objective():
        tg.manual_seed(1)
        return model.d_loss(real, fake)[0]

    return d_objective


def losses(model, real, seed=5):
    """(D loss, G loss) of one model on fixed noise and dropout masks."""
    tg.manual_seed(seed)
    with tg.no_grad():
        fake = model.fake(real)
    tg.manual_seed(seed + 1)
    d = model.d_loss(real, fake)[0].item()
    tg.manual_seed(seed + 2)
    g = model.g_loss(real)[0].item()
    return d, g


# ----------------------------------------------------------------------------------------------
# Switched off, every technique gives back the plain model bitwise.


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("off", [dict(feature_matching=False, fm_layer=2),
                                 dict(label_smoothing=False, smooth_alpha=0.7),
                                 dict(label_smoothing=True, smooth_alpha=1.0),
                                 dict(historical_averaging=0.0),
                                 dict(minibatch_kernels=0, minibatch_dims=9),
                                 dict(vbn=False, vbn_ref=5)])
def test_a_switched_off_technique_gives_the_plain_models_losses_exactly(name, off):
    plain, switched_off = build(name), build(name, **off)
    assert_bitwise(state(plain), state(switched_off))
    real = batch(name, n=8)
    assert losses(plain, real) == losses(switched_off, real)
    # ...and a step of each trains the same weights.
    for m in (plain, switched_off):
        tg.manual_seed(9)
        m.train_step(real)
    assert_bitwise(state(plain), state(switched_off))


# ----------------------------------------------------------------------------------------------
# One-sided label smoothing.


def test_one_sided_label_smoothing_is_the_cross_entropy_against_alpha():
    rng = np.random.default_rng(0)
    lr, lf = rng.standard_normal(7) * 3, rng.standard_normal(5) * 3
    alpha = 0.9
    sig = lambda l: 1 / (1 + np.exp(-l))                                  # noqa: E731
    expected = (-(alpha * np.log(sig(lr)) + (1 - alpha) * np.log(1 - sig(lr))).mean()
                - np.log(1 - sig(lf)).mean())
    got = adversarial.d_loss_bce(tg.tensor(lr), tg.tensor(lf), alpha).item()
    assert got == pytest.approx(expected, rel=1e-12)
    # Its minimiser in a real logit is log(alpha / (1 - alpha)), not +inf: D(x) -> alpha.
    l = tg.tensor(np.array([np.log(alpha / (1 - alpha))]), requires_grad=True)
    adversarial.d_loss_bce(l, tg.tensor(np.array([-50.0])), alpha).backward()
    assert abs(l.grad[0]) < 1e-12


def test_label_smoothing_refuses_a_target_outside_0_1():
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="smooth_alpha"):
            build("dcgan", label_smoothing=True, smooth_alpha=bad)


@pytest.mark.parametrize("name", MODELS)
def test_label_smoothed_d_loss_gradient(name):
    model = as_float64(build(name, label_smoothing=True))
    real = batch(name, dtype=np.float64)
    d_objective = d_objective_on_fixed_fakes(model, real)
    assert tg.gradcheck_module(model.D, d_objective, projections=2)
    smoothed = d_objective().item()
    plain = as_float64(build(name))
    assert smoothed != d_objective_on_fixed_fakes(plain, real)().item()


# ----------------------------------------------------------------------------------------------
# Feature matching.


def test_feature_matching_loss_is_the_squared_gap_of_the_means():
    rng = np.random.default_rng(1)
    fr, ff = rng.standard_normal((6, 4, 2)), rng.standard_normal((3, 4, 2))
    gap = fr.reshape(6, -1).mean(0) - ff.reshape(3, -1).mean(0)
    assert feature_matching_loss(tg.tensor(fr), tg.tensor(ff)).item() == pytest.approx(
        float(gap @ gap), rel=1e-12)
    assert feature_matching_loss(tg.tensor(fr), tg.tensor(fr[::-1].copy())).item() == \
        pytest.approx(0.0, abs=1e-24)                # only the means count, not the order


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("fm_layer", [-1, 1])
def test_feature_matching_g_loss_gradient(name, fm_layer):
    model = as_float64(build(name, feature_matching=True, fm_layer=fm_layer))
    real = batch(name, dtype=np.float64)

    def g_objective():
        tg.manual_seed(1)                             # the same z and dropout masks
        return model.g_loss(real)[0]

    assert tg.gradcheck_module(model.G, g_objective, projections=2)
    # It is the definition: f is the input of D's module at fm_layer, on real and fake data.
    tg.manual_seed(1)
    fake = model.fake(real)
    cond = (model.one_hot(real[1]),) if hasattr(model, "one_hot") else ()
    f_real = model.D[:fm_layer](model.d_input(model.real(real), *cond)).data
    f_fake = model.D[:fm_layer](model.d_input(fake, *cond)).data
    gap = f_real.reshape(len(f_real), -1).mean(0) - f_fake.reshape(len(f_fake), -1).mean(0)
    if "dropout" not in repr(model.D).lower():       # dropout draws new masks per call
        assert g_objective().item() == pytest.approx(float(gap @ gap), rel=1e-9)


def test_feature_matching_refuses_a_layer_that_is_not_intermediate():
    n = len(build("dcgan").D)
    for bad in (0, n, -n, n + 3):
        with pytest.raises(ValueError, match="fm_layer"):
            build("dcgan", feature_matching=True, fm_layer=bad)


# ----------------------------------------------------------------------------------------------
# Historical averaging.


def test_historical_average_is_the_mean_of_every_parameter_value_so_far():
    model = build("gan-points", historical_averaging=0.5)
    real = batch("gan-points", n=8)
    trajectory = [state(model.G)]
    for _ in range(4):
        model.train_step(real)
        trajectory.append(state(model.G))
    history = model.history["g"]
    assert int(history.t.data) == 5
    for (name, _), mean in zip(model.G.named_parameters(), history.means(), strict=True):
        expected = np.mean([s[name] for s in trajectory], axis=0)
        np.testing.assert_allclose(mean.data, expected, rtol=1e-5, atol=1e-7)
    # O(parameters) memory: one mean per parameter, whatever the number of steps.
    assert len(list(history.buffers())) == len(list(model.G.parameters())) + 1


def test_historical_averaging_penalty_gradient_and_value():
    tg.manual_seed(0)
    net = tg.nn.Linear(3, 2)
    for p in net.parameters():
        p.data = p.data.astype(np.float64)
    history = HistoricalAverage(net.parameters(), weight=0.3)
    for p in net.parameters():
        p.data = p.data + 0.1                          # move away from the mean
    expected = 0.3 * sum(float(((p.data - m.data) ** 2).sum())
                         for p, m in zip(net.parameters(), history.means(), strict=True))
    assert history.penalty().item() == pytest.approx(expected, rel=1e-12)
    assert tg.gradcheck_module(net, history.penalty)
    with pytest.raises(ValueError, match="weight"):
        HistoricalAverage(net.parameters(), weight=0.0)
    with pytest.raises(ValueError, match="historical_averaging"):
        build("gan-points", historical_averaging=-1.0)


@pytest.mark.parametrize("name", MODELS)
def test_historical_averaging_adds_its_penalty_to_both_players(name):
    model = build(name, historical_averaging=2.0)
    real = batch(name, n=8)
    model.train_step(real)                             # the parameters leave their mean
    out = model.train_step(real)
    assert out["hist_d"] > 0 and out["hist_g"] > 0
    keys = set(model.state_dict())
    assert {"history.g.t", "history.d.t"} <= keys      # checkpointed, so resume is bitwise


# ----------------------------------------------------------------------------------------------
# Minibatch discrimination on images (the layer itself is tested in test_gan.py).


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_minibatch_discrimination_on_images_gradient(name):
    from tinygen.models.improved import MinibatchDiscrimination
    model = as_float64(build(name, minibatch_kernels=3, minibatch_dims=2))
    assert isinstance(model.D[-2], MinibatchDiscrimination)
    real = batch(name, dtype=np.float64)
    assert tg.gradcheck_module(model.D, d_objective_on_fixed_fakes(model, real), projections=2)


# ----------------------------------------------------------------------------------------------
# Virtual batch normalization in G (the layer itself is tested in test_gan_layers.py).


@pytest.mark.parametrize("name", ["gan-images", "dcgan"])
def test_vbn_makes_each_sample_independent_of_its_batch(name):
    with_bn, with_vbn = build(name), build(name, vbn=True, vbn_ref=4)
    assert not any(isinstance(m, tg.nn.BatchNorm1d | tg.nn.BatchNorm2d)
                   for m in with_vbn.G.modules())
    z = tg.tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    other = tg.tensor(np.concatenate([z.data[:1], 3 * z.data[1:]]))  # same z_0, new others
    for model, independent in ((with_vbn, True), (with_bn, False)):
        model.train()                                   # batch norm uses the batch here
        with tg.no_grad():
            a, b = model.run_G(z).data[0], model.run_G(other).data[0]
        assert np.allclose(a, b, atol=1e-6) == independent


@pytest.mark.parametrize("name", ["gan-images", "dcgan"])
def test_vbn_g_loss_gradient(name):
    model = as_float64(build(name, vbn=True, vbn_ref=3))
    real = batch(name, dtype=np.float64)

    def g_objective():
        tg.manual_seed(1)
        return model.g_loss(real)[0]

    assert tg.gradcheck_module(model.G, g_objective, projections=2)
    assert model.vbn_ref_z.shape == (3, 3) and "vbn_ref_z" in model.state_dict()


def test_vbn_is_refused_where_there_is_no_batch_norm_to_replace():
    with pytest.raises(ValueError, match="vbn"):
        build("gan-points", vbn=True)
    with pytest.raises(ValueError, match="vbn"):
        build("cgan-dcgan", vbn=True)
