"""The adversarial autoencoder: each phase's gradient, which networks each phase may change,
the priors, resume, and a short run whose codes take the prior's shape."""

import numpy as np
import pytest
from test_gan import assert_bitwise, state, straight_and_resumed

import tinygen as tg
from tinygen.data import DataLoader
from tinygen.models import aae


def build(**kw):
    tg.manual_seed(0)
    return aae.AAE(aae.Config(**{"image_size": 8, "hidden": 6, "latent": 2, **kw}))


def data(n=12, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 1, 8, 8)) < 0.4).astype(dtype)
    return tg.tensor(x), tg.tensor(rng.integers(0, 10, n))


def as_float64(model):
    for t in list(model.parameters()) + list(model.buffers()):
        if t.dtype.kind == "f":
            t.data = t.data.astype(np.float64)
    return model


# ----------------------------------------------------------------------------------------------
# Gradients of the three losses.


@pytest.mark.parametrize("posterior", aae.POSTERIORS)
@pytest.mark.parametrize("prior", aae.PRIORS)
def test_each_phases_loss_gradient(prior, posterior):
    model = as_float64(build(prior=prior, posterior=posterior))
    real = data(dtype=np.float64)

    def seeded(f):
        def objective():
            tg.manual_seed(1)                 # the same eps and prior samples on every call
            return f()[0]
        return objective

    tg.manual_seed(2)
    with tg.no_grad():
        codes = model.fake(real)
    assert tg.gradcheck_module(model.autoencoder, seeded(lambda: model.reconstruction_loss(real)),
                               projections=2)
    assert tg.gradcheck_module(model.D, seeded(lambda: model.d_loss(real, codes)), projections=2)
    assert tg.gradcheck_module(model.G, seeded(lambda: model.g_loss(real)), projections=2)


def test_the_reconstruction_loss_is_the_per_pixel_bce_of_the_decoded_code():
    model = build()
    x, y = data()
    loss = model.reconstruction_loss((x, y))[0].item()
    p = np.clip(model.reconstruct(x.data).reshape(len(x.data), -1), 1e-12, 1)
    t = x.data.reshape(len(x.data), -1)
    expected = -(t * np.log(p) + (1 - t) * np.log(np.clip(1 - p, 1e-12, 1))).mean()
    assert loss == pytest.approx(expected, rel=1e-4)


# ----------------------------------------------------------------------------------------------
# Which networks each phase changes.


def test_each_phase_changes_only_its_own_networks():
    model = build()
    real = data()
    nets = {"encoder": model.G, "decoder": model.decoder, "D": model.D}

    def snapshot():
        return {k: state(v) for k, v in nets.items()}

    def changed(before):
        return {k for k, v in nets.items()
                if any(not np.array_equal(a, before[k][n]) for n, a in state(v).items())}

    before = snapshot()
    model._step(model.autoencoder, model.opt_AE, lambda: model.reconstruction_loss(real), "rec")
    assert changed(before) == {"encoder", "decoder"}
    before = snapshot()
    model.d_step(real)                                 # D learns; the autoencoder is untouched
    assert changed(before) == {"D"}
    assert_bitwise(state(model.autoencoder), {**{f"0.{k}": v for k, v in before["encoder"]
                                                 .items()},
                                              **{f"1.{k}": v for k, v in before["decoder"]
                                                 .items()}})
    before = snapshot()
    model.g_step(real)                                 # the encoder fools D; D is untouched
    assert changed(before) == {"encoder"}


# ----------------------------------------------------------------------------------------------
# The priors.


def test_the_priors():
    tg.manual_seed(0)
    g = aae.sample_prior("gaussian", 20_000, 3)
    assert g.shape == (20_000, 3) and g.dtype == np.float32
    assert np.abs(g.mean(0)).max() < 0.05 and np.abs(g.std(0) - 1).max() < 0.05
    m = aae.sample_prior("mixture10", 20_000, 2)
    radius, angle = np.hypot(*m.T), np.arctan2(m[:, 1], m[:, 0])
    assert abs(np.median(radius) - 4.0) < 0.1
    # Ten modes: the angles bunch around the ten centres 2 pi k / 10. Within a quarter of the
    # spacing (0.157 rad) of a centre lie 79% of the samples (angle std 0.5 / 4 = 0.125 rad),
    # and 50% of uniformly spread ones.
    offset = (angle / (2 * np.pi / 10) + 0.5) % 1 - 0.5          # distance to nearest centre
    assert np.mean(np.abs(offset) < 0.25) == pytest.approx(0.79, abs=0.02)
    s = aae.sample_prior("swiss_roll", 20_000, 2)
    assert s.shape == (20_000, 2) and 2.5 < np.hypot(*s.T).max() < 5
    with pytest.raises(ValueError, match="prior must be one of"):
        build(prior="uniform")
    with pytest.raises(ValueError, match="posterior must be one of"):
        build(posterior="laplace")
    with pytest.raises(ValueError, match="--latent 2"):
        build(prior="mixture10", latent=3)


# ----------------------------------------------------------------------------------------------
# Resume, and a short run.


def test_resume_is_bitwise(tmp_path):
    x, y = data(n=48)
    straight, resumed = straight_and_resumed(build, x.data, y.data, tmp_path, batch_size=8,
                                             stop_after=7)
    assert_bitwise(state(resumed), state(straight))


def test_a_short_run_gives_codes_the_priors_shape():
    """On the 8x8 digits, 40 epochs: the codes of the training images come to look like
    N(0, I). Measured: means -0.14 and 0.16, stds 1.00 and 1.01; the same network trained
    with the reconstruction phase alone had means -1.6 and -4.3, stds 2.8 and 3.1."""
    sklearn = pytest.importorskip("sklearn")                          # noqa: F841
    from tinygen.data.datasets import load_dataset
    x, y = load_dataset("digits", "train")
    model = build(hidden=64, batch_size=64, lr=1e-3, lr_d=1e-3)
    loader = DataLoader((x, y), batch_size=64, shuffle=True, drop_last=True, generator=0)
    for _ in range(40):
        for b in loader:
            model.train_step(tuple(tg.tensor(a) for a in b))
    codes = model.latent(x)
    assert np.abs(codes.mean(0)).max() < 0.35
    assert np.all((codes.std(0) > 0.8) & (codes.std(0) < 1.25))
    assert model.evaluate([(x, y)])["recon_bce"] < 0.5


# ----------------------------------------------------------------------------------------------
# The supervised AAE (style and content).


def test_the_supervised_decoder_reads_the_label_and_its_gradient_checks():
    model = as_float64(build(supervised=True))
    x, y = data(dtype=np.float64)
    assert model.decoder[0].weight.shape[1] == 2 + 10               # g(z, one-hot y)
    assert tg.gradcheck_module(model.autoencoder, lambda: model.reconstruction_loss((x, y))[0],
                               projections=2)
    other = tg.tensor((y.data + 1) % 10)                            # the label changes the image
    a = model.reconstruction_loss((x, y))[0].item()
    assert model.reconstruction_loss((x, other))[0].item() != a
    with pytest.raises(ValueError, match="pass the labels"):
        model.generate(np.zeros((2, 2)))


def test_the_style_grid_decodes_one_code_per_row_with_every_label(tmp_path):
    model = build(supervised=True)
    tg.manual_seed(5)
    grid = model.style_grid(3)
    assert grid.shape == (30, 1, 8, 8)
    tg.manual_seed(5)
    z = aae.sample_prior("gaussian", 3, 2)
    np.testing.assert_array_equal(grid[10:20], model.generate(np.repeat(z[1:2], 10, 0),
                                                               np.arange(10)))
    model.write_figures(tmp_path)
    assert (tmp_path / "styles.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="--supervised"):
        build().style_grid()
