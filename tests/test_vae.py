"""VAE and conditional VAE: whole-objective gradients, learning, shapes, and the ELBO's parts."""

import dataclasses

import numpy as np
import pytest

import tinygen as tg
from tinygen.data import DataLoader
from tinygen.models import cvae, vae

SMALL = dict(dataset="digits", image_size=8, hidden=12, latent=3)


def batch(n=6, seed=0, dtype=np.float64):
    """Binary images built from four random prototypes, so a model can learn them quickly
    (uniform noise would leave the reconstruction loss at its entropy floor)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((4, 1, 8, 8)) < 0.4
    y = rng.integers(0, 4, n)
    return prototypes[y].astype(dtype), y


def model_of(kind, **overrides):
    tg.manual_seed(0)
    if kind == "cvae":
        return cvae.CVAE(cvae.Config(**SMALL, **overrides))
    return vae.VAE(vae.Config(**SMALL, **overrides))


VARIANTS = [("vae", {}), ("vae", {"arch": "conv"}), ("vae", {"decoder": "gaussian"}),
            ("vae", {"kl_weight": 0.25}), ("vae", {"hidden_layers": 2}), ("cvae", {}),
            ("cvae", {"arch": "conv"}), ("cvae", {"hidden_layers": 3})]


@pytest.mark.parametrize("kind, overrides", VARIANTS)
def test_whole_objective_gradient(kind, overrides):
    model = model_of(kind, **overrides)
    x, y = batch()
    xt = tg.tensor(x)
    cond = model.condition(y)

    def objective():
        tg.manual_seed(1)                         # the same eps on every call
        return model.losses(xt, cond)[0]

    assert tg.gradcheck_module(model, objective, projections=2)


@pytest.mark.parametrize("kind, overrides", VARIANTS)
def test_loss_falls_on_a_fixed_batch(kind, overrides):
    model = model_of(kind, lr=3e-3, **overrides)
    x, y = batch(32, dtype=np.float32)
    b = (tg.tensor(x), tg.tensor(y))
    first = np.mean([model.train_step(b)["loss"] for _ in range(3)])
    for _ in range(60):
        model.train_step(b)
    last = np.mean([model.train_step(b)["loss"] for _ in range(3)])
    assert last < 0.8 * first


@pytest.mark.parametrize("kind, overrides", VARIANTS)
def test_samples_and_reconstructions_are_images_in_unit_range(kind, overrides):
    model = model_of(kind, **overrides)
    x, y = batch(5, dtype=np.float32)
    for out in (model.sample(7), model.reconstruct(x, y)):
        assert out.ndim == 4 and out.shape[1:] == (1, 8, 8)
        assert out.min() >= 0 and out.max() <= 1
    assert model.sample(7).shape[0] == 7
    assert model.latent(x, y).shape == (5, 3)


def test_kl_term_is_the_closed_form_and_matches_monte_carlo():
    model = model_of("vae")
    x, _ = batch(4, dtype=np.float32)
    mu, logvar = (t.data.astype(np.float64) for t in model.encode(tg.tensor(x)))
    closed = 0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=1).mean()
    _, _, kl = model.losses(tg.tensor(x))
    np.testing.assert_allclose(kl.item(), closed, rtol=1e-5)
    # Monte Carlo: E_q[log q(z) - log p(z)] with z ~ q.
    rng = np.random.default_rng(0)
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal((200_000, *mu.shape))
    log_q = -0.5 * (((z - mu) ** 2) / np.exp(logvar) + logvar).sum(-1)
    log_p = -0.5 * (z ** 2).sum(-1)
    per_sample = (log_q - log_p).mean(-1)
    se = per_sample.std() / np.sqrt(len(per_sample))
    assert abs(per_sample.mean() - closed) < 5 * se


def test_kl_weight_scales_only_the_kl_term():
    x, _ = batch(4, dtype=np.float32)
    out = []
    for w in (1.0, 0.25):
        model = model_of("vae", kl_weight=w)
        tg.manual_seed(3)
        total, recon, kl = model.losses(tg.tensor(x))
        out.append((total.item(), recon.item(), kl.item()))
    (t1, r1, k1), (t2, r2, k2) = out
    np.testing.assert_allclose([r1, k1], [r2, k2], rtol=1e-6)
    np.testing.assert_allclose(t2, r2 + 0.25 * k2, rtol=1e-5)


def test_cvae_decodes_the_label_it_is_given():
    model = model_of("cvae")
    grid = model.style_grid(3)
    assert grid.shape == (30, 1, 8, 8)
    with pytest.raises(ValueError, match="pass the labels"):
        model.reconstruct(batch(2, dtype=np.float32)[0])


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="arch must be"):
        model_of("vae", arch="transformer")
    with pytest.raises(ValueError, match="hidden_layers must be >= 1, got 0"):
        model_of("vae", hidden_layers=0)


@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_hidden_layers_stack_in_both_networks(kind):
    model = model_of(kind, hidden_layers=3)
    extra = 10 if kind == "cvae" else 0
    widths = [[p.shape for p in net.parameters() if p.ndim == 2] for net in
              (model.encoder, model.decoder)]
    # Linear weights are (out, in): 64 (+ labels) -> 12 -> 12 -> 12 -> 2 * 3, and back.
    assert widths[0] == [(12, 64 + extra), (12, 12), (12, 12), (6, 12)]
    assert widths[1] == [(12, 3 + extra), (12, 12), (12, 12), (64, 12)]


@pytest.fixture(scope="module")
def mnist():
    from tinygen.data.datasets import load_dataset
    try:
        return load_dataset("mnist", "train"), load_dataset("mnist", "test")
    except (FileNotFoundError, ValueError) as err:
        pytest.skip(f"real MNIST not available: {err}")


def test_short_real_mnist_vae_run(mnist):
    """pytorch/examples' VAE reaches about 127 after one full epoch; 150 steps must beat 160."""
    (x, y), (xt, yt) = mnist
    tg.manual_seed(0)
    model = vae.VAE(vae.Config(dataset="mnist"))
    loader = DataLoader((x, y), batch_size=128, shuffle=True, drop_last=True, generator=0)
    for step, (xb, _) in enumerate(loader):
        if step == 150:
            break
        model.train_step((tg.tensor(xb),))
    model.eval()
    loss = model.evaluate(DataLoader((xt[:2000], yt[:2000]), batch_size=500))["loss"]
    assert loss < 160, f"test loss {loss:.1f} after 150 steps"


def test_vae_config_defaults_are_pytorch_examples():
    cfg = vae.Config()
    assert (cfg.hidden, cfg.latent, cfg.batch_size, cfg.lr) == (400, 20, 128, 1e-3)
    assert dataclasses.asdict(cvae.Config())["n_classes"] == 10
