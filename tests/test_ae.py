"""Autoencoders (ae.py) and denoising autoencoders (dae.py): gradients of the whole objective,
training, output ranges, what each corruption does, the linear AE's PCA subspace, and the
command line. The demos are run by tests/test_demos.py."""

import dataclasses

import numpy as np
import pytest

import tinygen as tg
from tinygen.cli import main as cli_main
from tinygen.data import DataLoader
from tinygen.data.datasets import load_dataset
from tinygen.models import ae, dae
from tinygen.train import fit

# Small networks on 4x4 "images": every gradient check stays cheap.
SMALL = dae.Config(image_size=4, latent=3)
MODELS = {
    "ae": lambda: ae.AE(SMALL),
    "ae hidden sigmoid code": lambda: ae.AE(dataclasses.replace(
        SMALL, hidden=5, act="sigmoid", code_act="sigmoid")),
    "ae conv relu code": lambda: ae.AE(dataclasses.replace(SMALL, arch="conv", code_act="relu")),
    "linear ae": lambda: ae.LinearAE(dataclasses.replace(SMALL, hidden=5)),
    "dae masking": lambda: dae.DAE(dataclasses.replace(SMALL, noise="masking", noise_level=0.3)),
    "dae salt_pepper": lambda: dae.DAE(dataclasses.replace(SMALL, noise="salt_pepper",
                                                           noise_level=0.3)),
    "dae gaussian": lambda: dae.DAE(dataclasses.replace(SMALL, noise="gaussian",
                                                        noise_level=0.1, hidden=5)),
}


def set_tensor(model, dotted, value):
    """model.<dotted> = value, where the path may step into Sequentials by index."""
    *path, last = dotted.split(".")
    obj = model
    for part in path:
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    setattr(obj, last, value)


def images(n=2, side=4, seed=0):
    """Pixels in [0.35, 0.65]: Gaussian noise of std 0.1 would need 3.5 sigma to be clipped,
    so the check stays away from clamp's kinks."""
    rng = np.random.default_rng(seed)
    return tg.tensor(rng.uniform(0.35, 0.65, (n, 1, side, side)))


# ----------------------------------------------------------------------------------------------
# Gradients.


@pytest.mark.parametrize("name", MODELS)
def test_gradcheck_of_the_whole_objective(name):
    """d loss / d (input batch and every parameter), corruption included: fn plugs the checked
    tensors into the model and reseeds the noise, so every call sees the same corruption."""
    tg.manual_seed(0)
    model = MODELS[name]()
    names, params = zip(*model.named_parameters(), strict=True)

    def objective(x, *weights):
        for n, w in zip(names, weights, strict=True):
            set_tensor(model, n, w)
        tg.manual_seed(123)
        return model.objective(x)[0]

    x = tg.tensor(images().data, requires_grad=True)   # gradcheck checks only flagged inputs
    assert tg.gradcheck(objective, x, *params)


# ----------------------------------------------------------------------------------------------
# Training and outputs.


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn", reason="the offline digits need scikit-learn")
    return load_dataset("digits", "train")


@pytest.mark.parametrize("name", ["ae", "ae conv relu code", "linear ae", "dae masking"])
def test_loss_falls_on_a_fixed_batch(name, digits):
    tg.manual_seed(0)
    model = _digits_model(name)
    x = tg.tensor(digits[0][:64])
    tg.manual_seed(1)
    before = model.objective(x)[0].item()
    for _ in range(60):
        model.train_step((x,))
    tg.manual_seed(1)                                 # the same corruption as `before` saw
    after = model.objective(x)[0].item()
    assert after < 0.7 * before


def _digits_model(name):
    """Models for 8x8 digits with an 8-number code."""
    cfg = dataclasses.replace(SMALL, image_size=8, latent=8, lr=1e-2)
    return {
        "ae": lambda: ae.AE(cfg),
        "ae conv relu code": lambda: ae.AE(dataclasses.replace(cfg, arch="conv",
                                                               code_act="relu")),
        "linear ae": lambda: ae.LinearAE(cfg),
        "dae masking": lambda: dae.DAE(cfg),
        "dae salt_pepper": lambda: dae.DAE(dataclasses.replace(cfg, noise="salt_pepper")),
    }[name]()


@pytest.mark.parametrize("name", ["ae", "ae conv relu code", "linear ae", "dae salt_pepper"])
def test_outputs_have_the_right_shapes_and_lie_in_0_1(name, digits):
    tg.manual_seed(0)
    model = _digits_model(name)
    x = digits[0][:10]
    for _ in range(5):
        model.train_step((tg.tensor(x),))
    assert model.latent(x).shape == (10, 8)
    for out, n in [(model.sample(7), 7), (model.reconstruct(x), 10),
                   (model.generate(np.zeros((3, 8))), 3)]:
        assert out.shape == (n, 1, 8, 8)
        assert out.min() >= 0 and out.max() <= 1
    assert np.isfinite(model.code_var.data).all() and (model.code_var.data >= 0).all()


# ----------------------------------------------------------------------------------------------
# Corruptions.


def corrupt(noise, p, x, seed=0):
    model = dae.DAE(dataclasses.replace(SMALL, noise=noise, noise_level=p))
    return model.corrupt(tg.tensor(x), np.random.default_rng(seed)).data


def test_masking_zeroes_about_p_of_the_pixels_and_keeps_the_rest():
    x = np.full((4, 1, 50, 50), 0.7, np.float32)
    out = corrupt("masking", 0.3, x)
    zeroed = out == 0
    assert abs(zeroed.mean() - 0.3) < 0.02
    np.testing.assert_array_equal(out[~zeroed], np.float32(0.7))
    assert out.dtype == np.float32


def test_salt_and_pepper_sets_about_p_of_the_pixels_to_0_or_1():
    x = np.full((4, 1, 50, 50), 0.5, np.float32)
    out = corrupt("salt_pepper", 0.2, x)
    hit = out != 0.5
    assert abs(hit.mean() - 0.2) < 0.02
    assert set(np.unique(out[hit])) == {0.0, 1.0}
    assert abs((out[hit] == 1).mean() - 0.5) < 0.05          # salt and pepper equally often


def test_gaussian_adds_noise_of_the_given_std_and_clips_to_0_1():
    out = corrupt("gaussian", 0.1, np.full((4, 1, 50, 50), 0.5, np.float32))
    assert abs((out - 0.5).std() - 0.1) < 0.005 and abs((out - 0.5).mean()) < 0.005
    near_edge = corrupt("gaussian", 0.1, np.full((4, 1, 50, 50), 0.95, np.float32))
    assert near_edge.max() == 1.0 and (near_edge == 1.0).mean() > 0.2   # clipped, not beyond


def test_corruption_is_reproducible_from_tinygens_default_generator():
    model = dae.DAE(SMALL)
    x = tg.tensor(np.full((2, 1, 4, 4), 0.5, np.float32))
    tg.manual_seed(5)
    a = model.corrupt(x).data
    tg.manual_seed(5)
    np.testing.assert_array_equal(a, model.corrupt(x).data)
    assert not np.array_equal(a, model.corrupt(x).data)     # and the stream moves on


def test_dae_reconstructs_the_clean_input_from_the_corrupted_one():
    tg.manual_seed(0)
    model = dae.DAE(dataclasses.replace(SMALL, noise="masking", noise_level=0.5))
    x = images(4)
    tg.manual_seed(7)
    loss = model.objective(x)[0].item()
    tg.manual_seed(7)
    noisy = model.corrupt(x)
    out = model.decode(model.encode(noisy))
    assert loss == pytest.approx(model.reconstruction_loss(out, x).item(), rel=1e-6)
    assert loss != pytest.approx(model.reconstruction_loss(out, noisy).item(), rel=1e-3)


def test_dae_training_resumes_bitwise_with_the_same_noise(tmp_path, digits):
    def run(out, **kw):
        tg.manual_seed(0)
        model = dae.DAE(dataclasses.replace(SMALL, image_size=8, noise="salt_pepper"))
        loader = DataLoader(digits, batch_size=200, shuffle=True, drop_last=True, generator=0)
        fit(model, loader, 2, out, quiet=True, sample_every=0, checkpoint_every=1, **kw)
        return model.state_dict()

    expected = run(tmp_path / "full")
    run(tmp_path / "part", max_steps=5)                     # stops mid-epoch 1 (7 per epoch)
    tg.manual_seed(99)                                      # resuming must restore the RNG
    resumed = run(tmp_path / "part", resume=True)
    for k in expected:
        np.testing.assert_array_equal(resumed[k], expected[k], err_msg=k)


# ----------------------------------------------------------------------------------------------
# The linear autoencoder finds PCA's subspace (Baldi & Hornik 1989).


def test_linear_ae_spans_the_top_k_principal_subspace():
    d, k, n = 16, 3, 2000
    rng = np.random.default_rng(0)
    axes, _ = np.linalg.qr(rng.standard_normal((d, d)))           # a random rotation
    stds = np.array([3.0, 2.0, 1.5] + [0.3] * (d - k))          # a clear gap after k = 3
    flat = 0.5 + (rng.standard_normal((n, d)) * stds) @ axes.T
    x = flat.reshape(n, 1, 4, 4).astype(np.float32)
    centred = flat - flat.mean(axis=0)
    top_k = np.linalg.svd(centred, full_matrices=False)[2][:k].T   # (d, k), from the sample

    tg.manual_seed(0)
    model = ae.LinearAE(dataclasses.replace(SMALL, latent=k, lr=1e-2))
    batch = (tg.tensor(x),)        # full batch: no gradient noise to blur the final angles
    for _ in range(500):
        model.train_step(batch)
    w2 = model.decoder[0].weight.data                              # (d, k) decoder columns
    assert ae.principal_angles(w2, top_k).max() < 1.0              # degrees


def test_principal_angles_of_a_space_with_itself_and_an_orthogonal_one():
    q = np.eye(5)
    np.testing.assert_allclose(ae.principal_angles(q[:, :2] @ [[2, 1], [0, 3]], q[:, :2]), 0,
                               atol=1e-6)
    np.testing.assert_allclose(ae.principal_angles(q[:, :2], q[:, 2:4]), 90)


# ----------------------------------------------------------------------------------------------
# Configuration errors and the command line (demos are run by tests/test_demos.py).


@pytest.mark.parametrize("bad", [dict(arch="rnn"), dict(code_act="tanh"),
                                 dict(linear=True, arch="conv"), dict(noise="blur"),
                                 dict(noise_level=1.5)])
def test_bad_configs_say_what_is_allowed(bad):
    with pytest.raises(ValueError, match="must|needs"):
        dae.DAE(dataclasses.replace(SMALL, **bad))


@pytest.mark.parametrize("model", ["ae", "dae"])
def test_cli_trains_a_few_steps(model, tmp_path, digits):
    out = tmp_path / "run"
    argv = ["train", model, "--dataset", "digits", "--epochs", "1", "--max-steps", "3",
            "--out", str(out), "--quiet"]
    assert cli_main(argv) == 0
    assert (out / "checkpoint.npz").exists()
