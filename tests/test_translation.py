"""CycleGAN and pix2pix: each loss term's gradient, the cycle loss of identity generators, the
image pool, each player's step leaving the other bitwise unchanged, the lr schedule, resume,
short runs whose losses fall, the resizes and scores, bad options, and the CLI's figure."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gan import assert_bitwise, state, straight_and_resumed

import tinygen as tg
from tinygen import nn
from tinygen.cli import main
from tinygen.data.translation import area_downsample, resize, resize_matrix
from tinygen.models import adversarial, cyclegan, pix2pix
from tinygen.translation import psnr

SIZE = 8                                   # 8x8 images keep every network tiny


def images(n=4, seed=0, dtype=np.float32, size=SIZE):
    """Binary images in [0, 1] (so in [-1, 1] they are exactly -1 or 1, and |G(x) - x| with
    G's tanh output never sits on the kink of |.|), with labels."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, 1, size, size)) < 0.4).astype(dtype), rng.integers(0, 10, n)


def build_cyclegan(**kw):
    tg.manual_seed(0)
    cfg = cyclegan.Config(**{"dataset": "digits", "image_size": SIZE, "width": 2, "blocks": 1,
                             "pool_size": 3, **kw})
    model = cyclegan.CycleGAN(cfg)
    for split, seed in (("train", 5), ("test", 6)):
        model.set_domain_b(split, *images(10, seed, size=model.cfg.image_size))
    return model


def build_pix2pix(**kw):
    tg.manual_seed(0)
    return pix2pix.Pix2Pix(pix2pix.Config(**{"dataset": "digits", "image_size": SIZE,
                                             "width": 2, **kw}))


def as_float64(model):
    for t in list(model.parameters()) + list(model.buffers()):
        if t.dtype.kind == "f":
            t.data = t.data.astype(np.float64)
    return model


def pm1(x):
    return tg.tensor(2 * x - 1)             # images as the networks see them, in [-1, 1]


# ----------------------------------------------------------------------------------------------
# Gradients: the loss functions over small shapes, then each term through the whole model.

SHAPES = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))


@given(SHAPES, st.integers(0, 2 ** 16))
def test_least_squares_gan_losses_gradients(shape, seed):
    rng = np.random.default_rng(seed)
    real, fake = (tg.tensor(rng.standard_normal(shape), requires_grad=True) for _ in "rf")
    assert tg.gradcheck(adversarial.d_loss_ls, real, fake)
    assert tg.gradcheck(adversarial.g_loss_ls, fake)


@given(SHAPES, st.sampled_from(cyclegan.CYCLE_LOSSES), st.integers(0, 2 ** 16))
def test_cycle_loss_gradient(shape, kind, seed):
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal(shape))
    gap = rng.uniform(0.25, 1, shape) * rng.choice([-1, 1], shape)  # off |.|'s kink at 0
    rec = tg.tensor(x.data + gap, requires_grad=True)
    assert tg.gradcheck(lambda r: cyclegan.cycle_loss(x, r, kind), rec)


def test_least_squares_losses_are_their_formulas():
    real, fake = tg.tensor(np.array([1.0, 0.0])), tg.tensor(np.array([0.0, 2.0]))
    # 1/2 mean((D(x) - 1)^2) + 1/2 mean(D(G)^2) = 1/2 (0 + 1)/2 + 1/2 (0 + 4)/2
    assert adversarial.d_loss_ls(real, fake).item() == pytest.approx(0.25 + 1.0)
    assert adversarial.g_loss_ls(fake).item() == pytest.approx((1 + 1) / 2)


def _seeded(f):
    def objective():
        tg.manual_seed(1)                   # the same dropout masks on every call
        return f()
    return objective


# The whole-model checks use 12x12 images, so instance norm at G's bottleneck averages 3x3
# values (at 8x8 only 2x2, where a near-constant plane makes the normalisation so steep that
# central differences stop being accurate), and one random direction per parameter tensor
# (entry by entry took minutes).
WHOLE = {"projections": 1, "max_elements": 0}


@pytest.mark.parametrize("gan_loss, terms", [("lsgan", ("adv", "cycle", "identity")),
                                             ("bce", ("adv",))])
def test_cyclegan_each_loss_term_gradient(gan_loss, terms):
    model = as_float64(build_cyclegan(gan_loss=gan_loss, lambda_identity=0.5, image_size=12))
    batch = tuple(pm1(images(2, s, np.float64, size=12)[0]) for s in (1, 2))
    with tg.no_grad():
        fake = model.fake(batch)
    assert tg.gradcheck_module(model.D, lambda: model.d_loss(batch, fake)[0], **WHOLE)
    for term in terms:
        assert tg.gradcheck_module(model.G, lambda t=term: model.generator_terms(*batch)[t],
                                   **WHOLE), term


@pytest.mark.parametrize("gan_loss, terms", [("bce", ("l1", "adv")), ("lsgan", ("adv",))])
def test_pix2pix_each_loss_term_gradient(gan_loss, terms):
    model = as_float64(build_pix2pix(gan_loss=gan_loss, image_size=12))
    y = images(2, 1, np.float64, size=12)[0]
    batch = (tg.tensor(model.g_input(model.degrade(y))), pm1(y))
    tg.manual_seed(1)
    with tg.no_grad():
        fake = model.fake(batch)
    assert tg.gradcheck_module(model.D, lambda: model.d_loss(batch, fake)[0], **WHOLE)
    for term in terms:
        assert tg.gradcheck_module(model.G, _seeded(lambda t=term: model.generator_terms(
            *batch)[t]), **WHOLE), term


def test_cycle_and_identity_losses_are_zero_for_identity_generators():
    model = build_cyclegan(lambda_identity=0.5)
    model.G.G_AB, model.G.G_BA = nn.Identity(), nn.Identity()
    batch = (pm1(images(4, 1)[0]), pm1(images(4, 2)[0]))
    for kind in cyclegan.CYCLE_LOSSES:
        model.cfg.cycle_loss = kind
        terms = model.generator_terms(*batch)
        assert terms["cycle"].item() == 0.0 and terms["identity"].item() == 0.0
    model.G.G_AB = nn.Tanh()                # not the identity: the cycle term sees it
    assert model.generator_terms(*batch)["cycle"].item() > 0


def test_l1_only_pix2pix_never_calls_d():
    model = build_pix2pix(lambda_gan=0.0)
    d_before = state(model.D)
    out = model.train_step((tg.tensor(images(4)[0]), tg.tensor(np.zeros(4))))
    assert "loss_adv" not in out and "loss_d" not in out
    assert_bitwise(state(model.D), d_before)


# ----------------------------------------------------------------------------------------------
# The image pool.


def test_image_pool_fills_then_swaps_half_the_time():
    tg.manual_seed(0)
    pool = cyclegan.ImagePool(50, (1, 2, 2))
    first = np.arange(50 * 4, dtype=np.float32).reshape(50, 1, 2, 2)
    for chunk in np.split(first, 5):          # filling: each fake is returned and stored
        assert np.array_equal(pool.query(chunk), chunk)
    assert int(pool.count.data) == 50 and np.array_equal(pool.images.data, first)
    past, swaps = {a.tobytes() for a in first}, 0
    for k in range(2000):
        new = np.full((1, 1, 1, 2, 2), -1.0 - k, np.float32)[0]
        before = pool.images.data.copy()
        out = pool.query(new)
        if np.array_equal(out, new):          # kept the new one out, pool unchanged
            assert np.array_equal(pool.images.data, before)
        else:                                 # returned a past fake; the new one took its slot
            swaps += 1
            assert out[0].tobytes() in past
            slot = np.flatnonzero((before == out[0]).all(axis=(1, 2, 3)))
            assert len(slot) == 1 and np.array_equal(pool.images.data[slot[0]], new[0])
            past.discard(out[0].tobytes())
            past.add(new[0].tobytes())
    assert 0.45 < swaps / 2000 < 0.55          # p = 1/2; 4.5 standard deviations each side


def test_image_pool_is_seeded_and_size_zero_passes_fakes_through():
    fakes = np.random.default_rng(0).random((30, 1, 2, 2)).astype(np.float32)
    outs = []
    for _ in range(2):
        tg.manual_seed(3)
        pool = cyclegan.ImagePool(5, (1, 2, 2))
        outs.append(np.concatenate([pool.query(f[None]) for f in fakes]))
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], fakes)
    assert cyclegan.ImagePool(0, (1, 2, 2)).query(fakes) is fakes


# ----------------------------------------------------------------------------------------------
# Which networks each step changes.


@pytest.mark.parametrize("build", [build_cyclegan, build_pix2pix])
def test_d_step_leaves_both_gs_and_g_step_leaves_both_ds_bitwise(build):
    model = build()
    x = images(4)[0]
    batch = ((pm1(x), pm1(images(4, 3)[0])) if isinstance(model, cyclegan.CycleGAN)
             else (tg.tensor(model.g_input(model.degrade(x))), pm1(x)))
    g_before, d_before = state(model.G), state(model.D)
    model.d_step(batch)
    assert_bitwise(state(model.G), g_before)
    assert any(not np.array_equal(v, d_before[k]) for k, v in state(model.D).items())
    d_before, g_before = state(model.D), state(model.G)
    model.g_step(batch)
    assert_bitwise(state(model.D), d_before)            # parameters and buffers
    if isinstance(model, cyclegan.CycleGAN):            # both generators moved
        for net in ("G_AB", "G_BA"):
            assert any(not np.array_equal(v, g_before[f"{net}.{k}"])
                       for k, v in state(getattr(model.G, net)).items())
    assert all(p.requires_grad for p in model.parameters())


# ----------------------------------------------------------------------------------------------
# The lr schedule, and resume.


def test_lr_is_constant_for_the_first_half_then_falls_linearly_to_zero():
    model = build_cyclegan(epochs=2, batch_size=4, lr=1e-3, lr_d=5e-4)
    model.setup(*images(20))                              # 5 steps per epoch, 10 in all
    factors = [model.lr_factor(t) for t in range(11)]
    assert factors[:5] == [1.0] * 5
    assert factors[5:] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    x = images(4)[0]
    for _ in range(7):
        model.train_step((tg.tensor(x), tg.tensor(np.zeros(4))))
    # the 7th step ran at step index 6
    assert model.opt_G.param_groups[0]["lr"] == pytest.approx(1e-3 * factors[6])
    assert model.opt_D.param_groups[0]["lr"] == pytest.approx(5e-4 * factors[6])


def test_cyclegan_resume_is_bitwise(tmp_path):
    x, y = images(24)

    def make():
        model = build_cyclegan(epochs=2, batch_size=4)
        model.setup(x, y)
        return model

    straight, resumed = straight_and_resumed(make, x, y, tmp_path, batch_size=4, stop_after=8)
    assert_bitwise(state(resumed), state(straight))      # networks and both pools
    assert int(straight.pool_A.count.data) == 3           # the pools did fill


def test_pix2pix_resume_is_bitwise(tmp_path):
    x, y = images(24)
    straight, resumed = straight_and_resumed(build_pix2pix, x, y, tmp_path, batch_size=4,
                                             stop_after=5)
    assert_bitwise(state(resumed), state(straight))


# ----------------------------------------------------------------------------------------------
# Short runs: each loss falls on a tiny batch.


def _train(model, x, steps):
    """(first step's losses, mean losses of the last 5 of `steps` steps) on one batch."""
    batch = (tg.tensor(x), tg.tensor(np.zeros(len(x))))
    first = model.train_step(batch)
    last = [model.train_step(batch) for _ in range(steps)][-5:]
    return first, {k: np.mean([r[k] for r in last]) for k in last[0]}


def test_cyclegan_losses_fall_on_a_tiny_batch():
    model = build_cyclegan(lr=2e-3, lr_d=2e-3, width=4)
    first, last = _train(model, images(8)[0], 60)
    assert last["loss_cycle"] < 0.9 * first["loss_cycle"]
    assert last["loss_d"] < first["loss_d"]


@pytest.mark.parametrize("lambda_gan", [0.0, 1.0])
def test_pix2pix_l1_falls_on_a_tiny_batch(lambda_gan):
    model = build_pix2pix(lr=2e-3, lr_d=2e-3, width=4, lambda_gan=lambda_gan)
    first, last = _train(model, images(8)[0], 60)
    assert last["loss_l1"] < 0.9 * first["loss_l1"]


def test_pix2pix_test_time_dropout_is_the_switch():
    low = area_downsample(images(4)[0], 4)
    model = build_pix2pix()
    tg.manual_seed(0)
    assert not np.array_equal(model.translate(low), model.translate(low))
    model.cfg.test_dropout = False
    assert np.array_equal(model.translate(low), model.translate(low))
    assert model.translate(low).shape == (4, 1, SIZE, SIZE)


# ----------------------------------------------------------------------------------------------
# Resizing and scores.


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_resize_matches_pytorch(mode):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 1, 7, 7)).astype(np.float32)
    kw = {} if mode == "nearest" else {"align_corners": False}
    ref = torch.nn.functional.interpolate(torch.tensor(x), size=28, mode=mode, **kw).numpy()
    np.testing.assert_allclose(resize(x, 28, mode), ref, atol=1e-6)


def test_bicubic_reproduces_a_quadratic_away_from_the_border():
    """Keys' kernel with a = -0.5 is exact for polynomials up to degree 2."""
    c = np.arange(7, dtype=np.float64)
    x = (0.3 * c ** 2 - c + 2)[None, None, :, None] * np.ones((1, 1, 1, 7))
    out = resize(x, 28, "bicubic")[0, 0, :, 0]
    centre = (np.arange(28) + 0.5) * 7 / 28 - 0.5
    inside = (centre >= 1) & (centre <= 5)                # all four taps inside the image
    np.testing.assert_allclose(out[inside], (0.3 * centre ** 2 - centre + 2)[inside],
                               rtol=1e-5)
    for mode in ("nearest", "bilinear", "bicubic"):
        np.testing.assert_allclose(resize_matrix(7, 28, mode).sum(1), 1)


def test_area_downsample_is_the_block_mean_and_psnr_its_formula():
    x = np.random.default_rng(0).random((2, 1, 8, 8)).astype(np.float32)
    low = area_downsample(x, 4)
    assert low.shape == (2, 1, 2, 2)
    assert low[1, 0, 1, 0] == pytest.approx(x[1, 0, 4:8, 0:4].mean())
    with pytest.raises(ValueError, match="multiple of the factor 3"):
        area_downsample(x, 3)
    assert psnr(np.clip(x, 0, 0.9) + 0.1, np.clip(x, 0, 0.9)) == pytest.approx(20.0, rel=1e-5)


# ----------------------------------------------------------------------------------------------
# Bad options, and the command line.


@pytest.mark.parametrize("build, kw, message", [
    (build_cyclegan, {"gan_loss": "wgan"}, "--gan-loss must be one of lsgan, bce"),
    (build_cyclegan, {"cycle_loss": "l3"}, "--cycle-loss must be one of l1, l2"),
    (build_cyclegan, {"image_size": 10}, "--image-size must be a multiple of 4"),
    (build_cyclegan, {"dataset": "cifar"}, "--dataset must be one of mnist, digits"),
    (build_cyclegan, {"decay_from": 2.0}, "--decay-from must be in [0, 1]"),
    (build_pix2pix, {"gan_loss": "hinge"}, "--gan-loss must be one of bce, lsgan"),
    (build_pix2pix, {"factor": 3}, "--factor must divide --image-size 8"),
    (build_pix2pix, {"lambda_gan": -1.0}, "--lambda-gan and --lambda-l1 must be >= 0"),
])
def test_bad_options_name_the_option(build, kw, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build(**kw)


@pytest.mark.parametrize("build", [build_cyclegan, build_pix2pix])
def test_images_of_the_wrong_size_name_the_option(build):
    model = build()
    wrong = tg.tensor(np.zeros((4, 1, 12, 12), np.float32))
    with pytest.raises(ValueError, match="--image-size 8"):
        model.train_step((wrong, tg.tensor(np.zeros(4))))


@pytest.mark.parametrize("name, metric", [("cyclegan", "agree_ab"), ("pix2pix", "psnr")])
def test_cli_train_eval_and_sample_translate(tmp_path, capsys, name, metric):
    """One whole epoch on the digits (so fit's end-of-epoch evaluation runs, under no_grad,
    and trains the digits classifier there), then eval and the translation figure."""
    pytest.importorskip("sklearn")
    out = tmp_path / name
    assert main(["train", name, "--dataset", "digits", "--epochs", "1", "--batch-size", "128",
                 "--width", "2", "--out", str(out), "--quiet"]) == 0
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert 0 <= logged[-1][f"eval_{metric}"]
    assert main(["eval", str(out)]) == 0
    assert metric in json.loads((out / "metrics.json").read_text())
    assert main(["sample", str(out), "--kind", "translate", "-n", "6"]) == 0
    assert (out / "translate.png").stat().st_size > 0
    assert main(["train", name, "--dataset", "digits", "--gan-loss", "nope", "--out",
                 str(tmp_path / "bad"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("tinygen: error: ") and "--gan-loss must be one of" in err


def test_cli_takes_zero_pool_and_zero_blocks_but_not_zero_width(tmp_path, capsys):
    """--pool-size 0 (no pool) and --blocks 0 (no residual blocks) are real settings, so the
    CLI's "a positive default cannot be 0" rule lets them through; --width 0 stays refused."""
    pytest.importorskip("sklearn")
    out = tmp_path / "zero"
    assert main(["train", "cyclegan", "--dataset", "digits", "--pool-size", "0", "--blocks", "0",
                 "--width", "2", "--max-steps", "2", "--out", str(out), "--quiet"]) == 0
    from tinygen.train import load_config
    cfg = load_config(out / "checkpoint.npz")
    assert (cfg["pool_size"], cfg["blocks"]) == (0, 0)
    assert main(["train", "cyclegan", "--dataset", "digits", "--width", "0", "--out",
                 str(tmp_path / "bad"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "tinygen: error: --width must be positive, got 0"


class _Reader:
    """A stand-in classifier that reads image i as the class stored in its first pixel."""

    def predict(self, images):
        return np.eye(10)[np.asarray(images)[:, 0, 0, 0].astype(int)]


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=40))
@settings(max_examples=30, deadline=None)
def test_confusion_counts_each_label_read_pair(pairs):
    from tinygen.translation import accuracy, confusion
    labels, read = np.array(pairs).T
    images = np.zeros((len(pairs), 1, 2, 2))
    images[:, 0, 0, 0] = read
    counts = confusion(_Reader(), images, labels)
    expected = np.zeros((10, 10), np.int64)
    for t, r in pairs:
        expected[t, r] += 1
    np.testing.assert_array_equal(counts, expected)
    assert np.trace(counts) / len(pairs) == accuracy(_Reader(), images, labels)


def test_confusion_figures_are_written(tmp_path):
    from tinygen.translation import save_confusions
    counts = np.diag(np.arange(1, 11))
    counts[3, 5] = 4
    m = {"confusion_ab": counts, "confusion_ba": counts.T, "agree_ab": 0.9, "agree_ba": 0.8}
    paths = save_confusions(m, tmp_path / "confusion.png")
    assert [p.name for p in paths] == ["confusion_ab.png", "confusion_ba.png"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_made_like_digits_counts_ink_in_4x4_blocks_of_a_32x32_bitmap():
    from tinygen.data.translation import frame_like_mnist, made_like_digits
    x = np.zeros((2, 1, 28, 28), np.float32)
    x[0, 0, 4:24, 4:24] = 1.0                      # the whole digit box inked
    x[1, 0, 4:14, 4:24] = 1.0                      # its top half
    low = made_like_digits(x, size=8)              # size 8: the 8x8 counts themselves
    assert low.shape == (2, 1, 8, 8)
    np.testing.assert_array_equal(low[0], 1.0)
    np.testing.assert_array_equal(low[1, 0, :4], 1.0)
    np.testing.assert_array_equal(low[1, 0, 4:], 0.0)
    assert set(np.unique(made_like_digits(np.random.default_rng(0).random((3, 1, 28, 28)),
                                          size=8) * 16)) <= set(range(17))   # counts / 16
    np.testing.assert_array_equal(made_like_digits(x), frame_like_mnist(low, 28))
    with pytest.raises(ValueError, match=r"made_like_digits: expected MNIST images"):
        made_like_digits(np.zeros((2, 1, 8, 8)))


def test_identity_translation_scores_its_own_baseline(monkeypatch):
    """A CycleGAN whose generators are the identity gets exactly the identity baselines."""
    pytest.importorskip("sklearn")
    from tinygen.translation import cyclegan_metrics, load_domain
    model = build_cyclegan()
    monkeypatch.setattr(model, "translate", lambda x, direction: np.asarray(x, np.float32))
    xa, ya = load_domain("digits", "test", 8)
    m = cyclegan_metrics(model, xa[:60], ya[:60], xa[60:120], ya[60:120], domain_a="digits")
    assert m["agree_ab"] == m["agree_ab_identity"] and m["agree_ba"] == m["agree_ba_identity"]
    assert m["cycle_a"] == m["cycle_b"] == 0.0


def test_input_readability_reads_sharper_inputs_better_and_keeps_the_rng():
    """The LeNet trained on the degraded inputs: deterministic, leaves tinygen's generator
    alone, and reads the 8x8 digits far better from 4x4 inputs than from 2x2 ones."""
    pytest.importorskip("sklearn")
    from tinygen.autograd import default_generator
    from tinygen.translation import input_readability, load_domain
    x, y = load_domain("digits", "train", 8)
    xt, yt = load_domain("digits", "test", 8)
    state = default_generator().bit_generator.state
    two = input_readability(x, y, xt, yt, factor=2, epochs=3)
    assert default_generator().bit_generator.state == state
    assert input_readability(x, y, xt, yt, factor=2, epochs=3) == two
    four = input_readability(x, y, xt, yt, factor=4, epochs=3)
    assert two > four + 0.1                # measured 0.67 against 0.45
