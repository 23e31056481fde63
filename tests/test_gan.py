"""GAN, DCGAN and cGAN on the shared adversarial skeleton: whole-objective gradients, each
player's step leaving the other bitwise unchanged, losses that move the right way, bitwise
resume with two optimizers, the health monitor, and the toy-mixture protocol."""

import json

import numpy as np
import pytest

import tinygen as tg
from tinygen.data import DataLoader
from tinygen.models import adversarial, cgan, dcgan, gan, health
from tinygen.report import _mode_metrics
from tinygen.train import fit

# (module, model class, config overrides): every adversarial network family, kept tiny.
MODELS = {
    "gan-points": (gan, gan.GAN, dict(dataset="ring8", hidden=8, latent=3)),
    "gan-images": (gan, gan.GAN, dict(dataset="digits", image_size=8, latent=3, g_hidden=16,
                                      d_hidden=8)),
    "dcgan": (dcgan, dcgan.DCGAN, dict(dataset="digits", image_size=8, latent=3, width=2)),
    "cgan-mlp": (cgan, cgan.CGAN, dict(dataset="digits", image_size=8, latent=3, arch="mlp",
                                       g_hidden=16, d_hidden=8)),
    "cgan-dcgan": (cgan, cgan.CGAN, dict(dataset="digits", image_size=8, latent=3, width=2)),
}


def build(name, **overrides):
    module, cls, kw = MODELS[name]
    tg.manual_seed(0)
    return cls(module.Config(**{**kw, **overrides}))


def batch(name, n=6, dtype=np.float32, seed=0):
    """Real examples for a model: ring8-like points or 8x8 images, with labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    if name == "gan-points":
        angle = 2 * np.pi * (y % 8) / 8
        x = 2 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    else:
        x = (rng.random((n, 1, 8, 8)) < 0.3).astype(float)
    return tg.tensor(x.astype(dtype)), tg.tensor(y)


def state(net):
    """Every parameter and buffer of a network, copied."""
    return {k: np.array(v, copy=True) for k, v in net.state_dict().items()}


def assert_bitwise(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k


# ----------------------------------------------------------------------------------------------
# Gradients of both players' whole objectives.


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("objective", adversarial.OBJECTIVES)
def test_d_and_g_loss_gradients(name, objective):
    model = build(name, objective=objective)
    for t in list(model.parameters()) + list(model.buffers()):
        if t.dtype.kind == "f":
            t.data = t.data.astype(np.float64)      # the fakes below are float64 too
    real = batch(name, dtype=np.float64)
    tg.manual_seed(3)
    with tg.no_grad():
        fake = model.fake(real)

    def d_objective():
        tg.manual_seed(1)                         # the same dropout masks on every call
        return model.d_loss(real, fake)[0]

    def g_objective():
        tg.manual_seed(1)                         # the same z (and masks) on every call
        return model.g_loss(real)[0]

    assert tg.gradcheck_module(model.D, d_objective, projections=2)
    assert tg.gradcheck_module(model.G, g_objective, projections=2)


def test_losses_are_softplus_of_logits_and_finite_for_any_logit():
    l = tg.tensor(np.array([-1e4, -30.0, 0.0, 30.0, 1e4]))
    for loss in (adversarial.d_loss_bce(l, l), adversarial.g_loss_bce(l, "minimax"),
                 adversarial.g_loss_bce(l, "nonsaturating")):
        assert np.isfinite(loss.item())
    # -log D(x) - log(1 - D(G(z))) at logit 0 is 2 log 2.
    zero = tg.tensor(np.zeros(4))
    assert adversarial.d_loss_bce(zero, zero).item() == pytest.approx(2 * np.log(2))


def test_minimax_saturates_where_non_saturating_does_not():
    """At D(G(z)) ~ 0 (a confident D), d loss / d logit is -D(G(z)) for the minimax loss and
    -(1 - D(G(z))) for the non-saturating one: the module docstring's argument, checked."""
    grads = {}
    for objective in adversarial.OBJECTIVES:
        l = tg.tensor(np.array([-8.0]), requires_grad=True)
        adversarial.g_loss_bce(l, objective).backward()
        grads[objective] = l.grad[0]
    d_fake = 1 / (1 + np.exp(8.0))
    assert grads["minimax"] == pytest.approx(-d_fake, rel=1e-6)
    assert grads["nonsaturating"] == pytest.approx(-(1 - d_fake), rel=1e-6)
    with pytest.raises(ValueError, match="objective"):
        adversarial.g_loss_bce(l, "wasserstein")


# ----------------------------------------------------------------------------------------------
# One player's step leaves the other bitwise unchanged (batch-norm statistics included).


@pytest.mark.parametrize("name", MODELS)
def test_d_step_leaves_g_unchanged_and_g_step_leaves_d_unchanged(name):
    model = build(name)
    real = batch(name, n=8)
    g_before, d_before = state(model.G), state(model.D)
    model.d_step(real)
    assert_bitwise(state(model.G), g_before)
    assert any(not np.array_equal(v, d_before[k]) for k, v in state(model.D).items())

    d_before, g_before = state(model.D), state(model.G)
    model.g_step(real)
    assert_bitwise(state(model.D), d_before)
    assert any(not np.array_equal(v, g_before[k]) for k, v in state(model.G).items())
    assert all(p.requires_grad for p in model.parameters())     # frozen() restores them


def test_dcgan_steps_keep_the_other_players_batch_norm_statistics():
    model = build("dcgan")
    bn_d = [m for m in model.D.modules() if isinstance(m, tg.nn.BatchNorm2d)][0]
    bn_g = [m for m in model.G.modules() if isinstance(m, tg.nn.BatchNorm2d)][0]
    g_stats = bn_g.running_mean.data.copy()
    model.d_step(batch("dcgan", n=8))
    assert not np.array_equal(bn_d.running_mean.data, 0)       # D's own statistics moved
    assert np.array_equal(bn_g.running_mean.data, g_stats)
    d_stats = bn_d.running_mean.data.copy()
    model.g_step(batch("dcgan", n=8))
    assert np.array_equal(bn_d.running_mean.data, d_stats)
    assert not np.array_equal(bn_g.running_mean.data, g_stats)  # G's own statistics moved


def test_k_d_steps_per_g_step():
    model = build("gan-points", d_steps=3)
    real = batch("gan-points", n=8)
    g_before = state(model.G)
    for _ in range(2):
        out = model.train_step(real)
        assert "loss_g" not in out
        assert_bitwise(state(model.G), g_before)
    out = model.train_step(real)
    assert "loss_g" in out and "loss_d" in out
    assert int(model.d_steps_taken.data) == 3


def test_separate_learning_rates_and_betas():
    model = build("gan-points", lr=1e-3, lr_d=3e-4, beta1=0.1, beta1_d=0.7, beta2_d=0.9)
    assert model.opt_G.param_groups[0]["lr"] == 1e-3
    assert model.opt_G.param_groups[0]["betas"] == (0.1, 0.999)
    assert model.opt_D.param_groups[0]["lr"] == 3e-4
    assert model.opt_D.param_groups[0]["betas"] == (0.7, 0.9)


# ----------------------------------------------------------------------------------------------
# Each player's loss moves the right way when only that player trains.


def _losses(model, real, seed=11):
    """(D loss, G loss) on fixed noise and dropout masks, changing nothing."""
    with tg.no_grad():
        tg.manual_seed(seed)
        with adversarial.frozen(model.G):
            fake = model.fake(real)
        with adversarial.frozen(model.D), adversarial.frozen(model.G):
            tg.manual_seed(seed + 1)
            d = model.d_loss(real, fake)[0].item()
            tg.manual_seed(seed)
            g = model.g_loss(real)[0].item()
    return d, g


@pytest.mark.parametrize("name", MODELS)
def test_each_players_loss_falls_when_it_alone_trains(name):
    model = build(name, lr=2e-3, lr_d=2e-3)
    real = batch(name, n=16)
    d0, _ = _losses(model, real)
    for _ in range(15):
        tg.manual_seed(11)                       # the same fakes as the measurement
        model.d_step(real)
    d1, g1 = _losses(model, real)
    assert d1 < d0
    for _ in range(15):
        tg.manual_seed(11)
        model.g_step(real)
    _, g2 = _losses(model, real)
    assert g2 < g1


# ----------------------------------------------------------------------------------------------
# Checkpoints: two networks, two optimizers, the k counter, bitwise resume.


def straight_and_resumed(make, x, y, tmp_path, batch_size, stop_after):
    """Two epochs of fit straight through, and the same stopped after `stop_after` steps and
    resumed from its checkpoint: (straight model, resumed model). Callers compare them."""
    def run(out, max_steps=None, resume=False):
        model = make()
        loader = DataLoader((x, y), batch_size=batch_size, shuffle=True, drop_last=True,
                            generator=0)
        fit(model, loader, 2, out, max_steps=max_steps, resume=resume, quiet=True,
            sample_every=0)
        return model

    straight = run(tmp_path / "a")
    run(tmp_path / "b", max_steps=stop_after)
    return straight, run(tmp_path / "b", resume=True)


@pytest.mark.parametrize("name", ["dcgan", "cgan-mlp"])
def test_resume_with_two_optimizers_is_bitwise(tmp_path, name):
    x, y = batch(name, n=48)
    straight, resumed = straight_and_resumed(      # stop mid-epoch, between G steps
        lambda: build(name, d_steps=2), x.data, y.data, tmp_path, batch_size=8, stop_after=7)
    assert_bitwise(state(resumed), state(straight))
    for opt in ("opt_G", "opt_D"):
        a = getattr(straight, opt).state_dict()
        b = getattr(resumed, opt).state_dict()
        assert json.dumps(a, default=lambda v: np.asarray(v).tolist()) == \
            json.dumps(b, default=lambda v: np.asarray(v).tolist())


# ----------------------------------------------------------------------------------------------
# The health monitor.


def test_monitor_warns_once_when_d_wins():
    monitor = health.HealthMonitor(stream=open("/dev/null", "w"))  # noqa: SIM115
    assert monitor.observe({"step": 1, "d_fake": 0.4, "gnorm_g": 2.0}, {}) == []
    assert monitor.observe({"step": 2, "d_fake": 0.01, "gnorm_g": 1.0}, {}) == []  # no drop
    warned = monitor.observe({"step": 3, "d_fake": 0.01, "gnorm_g": 0.05}, {})
    assert len(warned) == 1 and "D is winning" in warned[0]
    assert monitor.observe({"step": 4, "d_fake": 0.01, "gnorm_g": 0.01}, {}) == []  # once


def test_monitor_warns_when_the_probe_count_halves():
    monitor = health.HealthMonitor(stream=open("/dev/null", "w"))  # noqa: SIM115
    for step, modes in [(1, 3), (2, 8), (3, 6), (4, 5)]:
        assert monitor.observe({"step": step}, {"probe_modes": modes}) == []
    warned = monitor.observe({"step": 5}, {"probe_modes": 4})
    assert len(warned) == 1 and "4 modes, down from 8 at step 2" in warned[0]


def test_divergence_stops_and_names_the_op_and_line():
    class Diverging(gan.GAN):
        def d_loss(self, batch, fake):
            loss, stats = super().d_loss(batch, fake)
            return (loss - 10).log(), stats      # log of a negative number: NaN

    tg.manual_seed(0)
    model = Diverging(gan.Config(hidden=4, latent=2))
    before = state(model.D)
    with np.errstate(invalid="ignore"), pytest.raises(
            tg.AnomalyError, match=r"(?s)D step: log forward produced NaN.*test_gan.py:\d+"):
        model.train_step(batch("gan-points"))
    assert_bitwise(state(model.D), before)         # the failed step was not applied


def test_training_logs_health_numbers_and_writes_health_png(tmp_path):
    model = build("gan-points", dataset="ring8")
    x = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    loader = DataLoader((x, np.zeros(64, np.int64)), batch_size=16, shuffle=True)
    fit(model, loader, 2, tmp_path, quiet=True, log_every=2, sample_every=0)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss_d" in r]
    for key in ("d_real", "d_fake", "loss_d", "loss_g", "gnorm_d", "gnorm_g", "probe_modes",
                "probe_hq"):
        assert all(key in r for r in steps), key
    assert (tmp_path / "health.png").stat().st_size > 0


# ----------------------------------------------------------------------------------------------
# Sampling and the toy-mixture protocol.


@pytest.mark.parametrize("name", MODELS)
def test_samples_have_the_datas_shape_and_range(name):
    model = build(name)
    out = model.sample(5)
    if name == "gan-points":
        assert out.shape == (5, 2)
    else:
        assert out.shape == (5, 1, 8, 8) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", MODELS)
def test_d_sees_real_data_in_gs_output_range(name):
    model = build(name)
    x = batch(name, n=4)
    seen = model.real(x).data
    if name == "gan-points":
        assert np.array_equal(seen, x[0].data)                 # points are left as they are
    else:
        np.testing.assert_array_equal(seen, 2 * x[0].data - 1)  # [0, 1] -> tanh's [-1, 1]
        assert model.sample(3).min() >= 0                      # and samples come back


def test_cgan_draws_the_requested_labels_and_a_style_grid():
    model = build("cgan-dcgan")
    assert model.style_grid(3).shape == (30, 1, 8, 8)
    z = np.zeros((2, 3), np.float32)
    assert not np.array_equal(model.generate(z, [0, 0])[0], model.generate(z, [0, 1])[1])
    with pytest.raises(ValueError, match="labels"):
        model.generate(z)


def test_dcgan_refuses_points():
    with pytest.raises(ValueError, match="dcgan: needs images, but ring8 is a set of 2-D"):
        dcgan.DCGAN(dcgan.Config(dataset="ring8"))


def test_a_collapsed_sampler_reports_one_mode():
    centre = np.array([[2.0, 0.0]], np.float32)            # ring8's first centre
    m = _mode_metrics(np.repeat(centre, 2500, axis=0), "ring8")
    assert (m["modes"], m["modes_any"], m["n_modes"]) == (1, 1, 8)


def test_stray_samples_do_not_count_as_covered_modes():
    from tinygen.data import toy
    mixture = toy.ring8_mixture()
    points = np.concatenate([np.repeat(mixture.centers[:1], 2493, axis=0), mixture.centers[1:]])
    m = _mode_metrics(points.astype(np.float32), "ring8")
    assert (m["modes"], m["modes_any"]) == (1, 8)


def test_noise_interpolations_and_arithmetic_write_labelled_figures(tmp_path):
    from tinygen import latent
    model = build("dcgan")
    path = latent.save_noise_interpolations(model, tmp_path / "interp.png", steps=5, pairs=2)
    assert path.stat().st_size > 0

    def classify(images):                     # stands in for the MNIST classifier
        return np.argsort(np.argsort(images.mean(axis=(1, 2, 3)))) * 3 // len(images)

    path = latent.save_noise_arithmetic(model, tmp_path / "arith.png", classify, n=60)
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="conditional"):
        latent.save_noise_arithmetic(build("cgan-mlp"), tmp_path / "x.png", classify)


def test_slerp_keeps_the_norm_of_typical_noise():
    from tinygen import latent
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal(100), rng.standard_normal(100)
    mid_slerp = latent.interpolate(z0, z1, 3, "slerp")[1]
    mid_lerp = latent.interpolate(z0, z1, 3, "linear")[1]
    # Two independent 100-D Gaussians are nearly orthogonal: the straight line's midpoint has
    # norm about |z| / sqrt(2), far inside the shell where the prior's mass lies.
    assert np.linalg.norm(mid_slerp) == pytest.approx(np.linalg.norm(z0), rel=0.1)
    assert np.linalg.norm(mid_lerp) < 0.8 * np.linalg.norm(z0)


# ----------------------------------------------------------------------------------------------
# Minibatch discrimination (Salimans et al. 2016, Section 3.2).


@pytest.mark.parametrize("n, a, b, c", [(1, 3, 2, 2), (5, 4, 3, 2), (7, 2, 1, 3)])
def test_minibatch_discrimination_gradient_and_definition(n, a, b, c):
    from tinygen.models.improved import MinibatchDiscrimination
    tg.manual_seed(n)
    layer = MinibatchDiscrimination(a, b, c)
    layer.T.data = layer.T.data.astype(np.float64)
    f = tg.tensor(np.random.default_rng(n).standard_normal((n, a)), requires_grad=True)
    assert tg.gradcheck(lambda f: layer(f), f)
    assert tg.gradcheck_module(layer, lambda: layer(f).sum())
    # o(x_i)_b = sum_j exp(-|M_ib - M_jb|_1), straight from the definition.
    M = (f.data @ layer.T.data).reshape(n, b, c)
    o = np.exp(-np.abs(M[:, None] - M[None, :]).sum(-1)).sum(1)
    out = layer(f).data
    np.testing.assert_allclose(out[:, :a], f.data)
    np.testing.assert_allclose(out[:, a:], o, rtol=1e-12)


def test_minibatch_discrimination_sees_a_collapsed_batch():
    from tinygen.models.improved import MinibatchDiscrimination
    tg.manual_seed(0)
    layer = MinibatchDiscrimination(4, 6, 3)
    spread = tg.tensor(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    collapsed = tg.tensor(np.repeat(spread.data[:1], 8, axis=0))
    assert np.allclose(layer(collapsed).data[:, 4:], 8.0)        # every pair identical
    assert (layer(spread).data[:, 4:] < 8.0).all()


def test_minibatch_discrimination_off_gives_the_plain_gan():
    plain, switched_off = build("gan-points"), build("gan-points", minibatch_kernels=0)
    assert_bitwise(state(plain), state(switched_off))
    with_mbd = build("gan-points", minibatch_kernels=4)
    real = batch("gan-points", n=8)
    tg.manual_seed(2)
    assert with_mbd.d_loss(real, with_mbd.fake(real))[0].item() > 0


def test_a_short_ring8_run_with_the_defaults_covers_most_modes():
    """The CI-sized version of `tinygen train gan --dataset ring8`: a fifth of the default
    epochs (7,800 steps, about 35 s). "Covered" means at least 20 of 2,500 samples within 3 std
    of the mode's centre; the full run covers all 8 (README)."""
    from tinygen.collapse import run_setting
    r = run_setting("ring8", {}, seed=0, epochs=gan.Config.epochs // 5, snapshots=1)
    assert r["modes"] >= 5, r                 # most modes, each with a real share
    assert r["modes_any"] == 8, r             # and no mode left without any sample at all
