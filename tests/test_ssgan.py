"""The semi-supervised GAN: exactly N labels and no other, the K+1 loss against its
definition, gradients of both players' objectives, step separation, the averaged D, resume."""

import json

import numpy as np
import pytest
from test_gan import assert_bitwise, state, straight_and_resumed

import tinygen as tg
from tinygen.data import DataLoader
from tinygen.models import ssgan
from tinygen.train import fit


@pytest.fixture(autouse=True)
def small_d(monkeypatch):
    monkeypatch.setattr(ssgan, "D_HIDDEN", (12, 8))         # the paper's shape, kept tiny


def data(n=200, seed=0):
    """8x8 'images': a fixed random pattern per class plus noise, and balanced labels."""
    patterns = np.random.default_rng(99).random((10, 1, 8, 8)) < 0.5
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    rng.shuffle(y)
    x = 0.8 * patterns[y] + 0.2 * rng.random((n, 1, 8, 8))
    return x.astype(np.float32), y.astype(np.int64)


def build(labels=20, **kw):
    tg.manual_seed(0)
    model = ssgan.SSGAN(ssgan.Config(image_size=8, latent=4, g_hidden=6, labels=labels,
                                     batch_size=10, **kw))
    model.setup(*data())
    return model


def tensors(x, y):
    return tg.tensor(x), tg.tensor(y)


# ----------------------------------------------------------------------------------------------
# Exactly N labels.


def assert_exactly_n_labels(model, x, y, n):
    """The model's labelled set is n distinct training images, n/10 a class, with their true
    labels, and nothing else in its state is as long as the training set (no other label)."""
    index = model.labelled.index.data
    assert len(index) == n and len(set(index.tolist())) == n
    assert np.bincount(y[index], minlength=10).tolist() == [n // 10] * 10
    np.testing.assert_array_equal(model.labelled.y.data, y[index])
    np.testing.assert_array_equal(model.labelled.x.data, x[index].reshape(n, -1))
    for name, t in model.state_dict().items():
        assert len(np.atleast_1d(t)) != len(y) or t.ndim == 0, name


def test_the_labelled_set_is_exactly_n_distinct_images_balanced_over_classes():
    x, y = data()
    model = build(labels=20)
    assert_exactly_n_labels(model, x, y, 20)
    index = model.labelled.index.data
    # The same seed picks the same images; another seed other ones.
    assert np.array_equal(build(labels=20).labelled.index.data, index)
    tg.manual_seed(0)
    other = ssgan.SSGAN(ssgan.Config(image_size=8, latent=4, g_hidden=6, labels=20, seed=1))
    other.setup(x, y)
    assert not np.array_equal(other.labelled.index.data, index)


def assert_ignores_loader_labels(build, x, y):
    """Two models trained on the same images, one given the true labels of the loader's
    batches and one given garbage, end bitwise equal: batch[1] is never used, so labels reach
    training only through the labelled set."""
    a, b = build(), build()
    for i in range(3):
        rows = slice(10 * i, 10 * i + 10)
        tg.manual_seed(i)
        a.train_step(tensors(x[rows], y[rows]))
        tg.manual_seed(i)
        b.train_step(tensors(x[rows], np.full(10, -7)))     # not even a valid class
    assert_bitwise(state(a), state(b))


def test_training_never_reads_the_batchs_labels():
    assert_ignores_loader_labels(build, *data())


def test_labels_must_split_evenly_over_classes():
    for bad in (0, 5, 25):
        with pytest.raises(ValueError, match="labels must be a positive multiple"):
            ssgan.SSGAN(ssgan.Config(image_size=8, labels=bad))


def test_the_run_folder_records_which_labels_were_used(tmp_path):
    model = build()
    x, y = data()
    loader = DataLoader((x, y), batch_size=10, shuffle=True, drop_last=True, generator=0)
    fit(model, loader, 1, tmp_path, max_steps=2, quiet=True, sample_every=0)
    saved = json.loads((tmp_path / "labelled.json").read_text())
    assert saved["indices"] == model.labelled.index.data.tolist()
    assert saved["labels"] == y[model.labelled.index.data].tolist()


# ----------------------------------------------------------------------------------------------
# The K+1 loss.


def test_d_loss_is_the_k_plus_one_objective_with_the_logits_trick():
    model = build()
    model.eval()                                           # no Gaussian noise: deterministic
    x, y = data()
    real = tensors(x[:10], y[:10])
    tg.manual_seed(4)
    with tg.no_grad():
        fake = model.fake(real)
    tg.manual_seed(5)
    loss, stats = model.d_loss(real, fake)
    tg.manual_seed(5)
    x_lab, y_lab = model.labelled.batch(model.cfg.batch_size)
    logit = lambda v: model.D(v).data.astype(np.float64)   # noqa: E731
    l_lab, l_unl, l_fake = logit(x_lab), logit(real[0].flatten(1)), logit(fake)
    z_unl, z_fake = np.exp(l_unl).sum(1), np.exp(l_fake).sum(1)      # Z(x) = sum_k e^l_k
    d_unl, d_fake = z_unl / (z_unl + 1), z_fake / (z_fake + 1)       # D(x) = Z / (Z + 1)
    p_lab = np.exp(l_lab) / np.exp(l_lab).sum(1, keepdims=True)
    supervised = -np.log(p_lab[np.arange(len(y_lab.data)), y_lab.data]).mean()
    unsupervised = 0.5 * -np.log(d_unl).mean() + 0.5 * -np.log(1 - d_fake).mean()
    assert stats["sup"] == pytest.approx(supervised, rel=1e-5)
    assert stats["unsup"] == pytest.approx(unsupervised, rel=1e-5)
    assert loss.item() == pytest.approx(supervised + unsupervised, rel=1e-5)


def test_both_objectives_gradients():
    model = build()
    for t in list(model.parameters()) + list(model.buffers()):
        if t.dtype.kind == "f":
            t.data = t.data.astype(np.float64)
    x, y = data()
    real = tensors(x[:10].astype(np.float64), y[:10])
    tg.manual_seed(3)
    with tg.no_grad():
        fake = model.fake(real)

    def d_objective():
        tg.manual_seed(1)                                  # the same noise on every call
        return model.d_loss(real, fake)[0]

    def g_objective():
        tg.manual_seed(1)
        return model.g_loss(real)[0]

    assert tg.gradcheck_module(model.D, d_objective, projections=2)
    assert tg.gradcheck_module(model.G, g_objective, projections=2)


# ----------------------------------------------------------------------------------------------
# The loop: separation, the averaged D, resume.


def test_each_players_step_leaves_the_other_bitwise_unchanged():
    model = build()
    x, y = data()
    real = tensors(x[:10], y[:10])
    g_before = state(model.G)
    model.d_step(real)
    assert_bitwise(state(model.G), g_before)
    d_before, ema_before = state(model.D), state(model.ema_D)
    model.g_step(real)
    assert_bitwise(state(model.D), d_before)
    assert_bitwise(state(model.ema_D), ema_before)         # only D's steps move the average


def test_the_averaged_d_is_an_exponential_moving_average_and_is_swapped_back():
    model = build(ema=0.5)
    x, y = data()
    start = [p.data.copy() for p in model.D.parameters()]
    model.d_step(tensors(x[:10], y[:10]))
    after = [p.data.copy() for p in model.D.parameters()]
    for m, a, b in zip(model.ema_D.means(), start, after, strict=True):
        np.testing.assert_allclose(m.data, 0.5 * a + 0.5 * b, rtol=1e-6, atol=1e-7)
    model.classify(x[:5])
    for p, b in zip(model.D.parameters(), after, strict=True):            # evaluation put D back
        assert np.array_equal(p.data, b)
    errors = model.evaluate([(x, y)])
    assert 0 <= errors["error"] <= 1 and 0 <= errors["error_raw"] <= 1


@pytest.mark.parametrize("kw, stop_after", [({}, 13),          # 20 steps an epoch
                                            ({"lr_decay_from": 1, "epochs": 2}, 25)])
def test_resume_is_bitwise(tmp_path, kw, stop_after):
    x, y = data()
    straight, resumed = straight_and_resumed(lambda: build(**kw), x, y, tmp_path,
                                             batch_size=10, stop_after=stop_after)
    assert_bitwise(state(resumed), state(straight))
    for opt in ("opt_D", "opt_G"):
        assert getattr(resumed, opt).param_groups[0]["lr"] == \
            getattr(straight, opt).param_groups[0]["lr"]


def test_lr_decay_from_holds_the_lr_then_lowers_it_linearly_to_zero_at_the_last_epoch():
    model = build(lr_decay_from=3, epochs=7, lr=2e-3, lr_d=4e-3)
    seen = []
    for _ in range(7):                  # the lr each epoch trains with, then end_epoch
        seen.append((model.opt_D.param_groups[0]["lr"], model.opt_G.param_groups[0]["lr"]))
        model.end_epoch()
    factors = [1, 1, 1, 1, 3 / 4, 2 / 4, 1 / 4]       # (7 - t) / (7 - 3) from epoch 3 on
    assert seen == pytest.approx([(4e-3 * f, 2e-3 * f) for f in factors])
    assert model.opt_D.param_groups[0]["lr"] == 0      # where a longer run would go on
    plain = build()
    plain.end_epoch()
    assert plain.opt_D.param_groups[0]["lr"] == 3e-3 and not hasattr(plain, "sched_D")


def test_fm_mean_is_the_feature_matching_sum_over_the_feature_count_and_adam_eps_reaches_both():
    x, y = data()
    batch = tensors(x[:10], y[:10])
    losses = []
    for fm_mean in (False, True):
        model = build(fm_mean=fm_mean, adam_eps=1e-4)
        tg.manual_seed(5)                                  # the same fakes both times
        losses.append(model.g_loss(batch)[0].item())
        assert [g["eps"] for opt in (model.opt_D, model.opt_G) for g in opt.param_groups] \
            == [1e-4, 1e-4]
    assert losses[1] == pytest.approx(losses[0] / ssgan.D_HIDDEN[-1], rel=1e-6)
    assert build().opt_D.param_groups[0]["eps"] == 1e-8       # PyTorch's, by default
    with pytest.raises(ValueError, match="ssgan: adam_eps must be >= 0"):
        build(adam_eps=-1.0)


@pytest.mark.parametrize("start", [-1, 7, 9])
def test_lr_decay_from_must_fall_inside_the_run(start):
    with pytest.raises(ValueError, match=r"ssgan: lr_decay_from must be between 0 and epochs"):
        build(lr_decay_from=start, epochs=7)


def test_a_short_run_learns_to_classify_from_the_labels():
    """A smoke-sized check that the supervised part works at all: on this easy synthetic set
    the error of D on images it saw without labels falls well below chance (90%)."""
    x, y = data(n=400)
    model = build(labels=20, lr=1e-2, lr_d=1e-2)
    loader = DataLoader((x, y), batch_size=10, shuffle=True, drop_last=True, generator=0)
    for _ in range(2):
        for b in loader:
            model.train_step(tensors(*b))
    model.eval()
    assert model.evaluate([(x, y)])["error_raw"] < 0.6


def test_only_the_output_layer_learns_its_weight_norm_scale():
    """As in the authors' code: the hidden layers keep the g of the data-dependent init, so
    D cannot outgrow its Gaussian noise (see ssgan.py)."""
    model = build()
    linears = [m for m in model.D.modules() if isinstance(m, tg.nn.Linear)]
    before = [m.weight_g.data.copy() for m in linears]
    x, y = data()
    model.d_step(tensors(x[:10], y[:10]))
    for m, g in zip(linears[:-1], before[:-1], strict=True):
        assert np.array_equal(m.weight_g.data, g)
    assert not np.array_equal(linears[-1].weight_g.data, before[-1])
    learned = build(train_scale=True)
    g0 = [m.weight_g.data.copy() for m in learned.D.modules() if isinstance(m, tg.nn.Linear)]
    learned.d_step(tensors(x[:10], y[:10]))
    g1 = [m.weight_g.data for m in learned.D.modules() if isinstance(m, tg.nn.Linear)]
    assert not np.array_equal(g0[0], g1[0])


def test_gs_batch_norm_learns_its_shift_but_not_its_scale():
    """g_bn_scale=False is the authors' G (batch_norm with g=None): the scale stays 1 and the
    bias learns; the default learns both."""
    x, y = data()
    for learn_scale in (False, True):
        model = build(g_bn_scale=learn_scale)
        norms = [m for m in model.G.modules() if isinstance(m, tg.nn.BatchNorm1d)]
        assert len(norms) == 2
        before = [(m.weight.data.copy(), m.bias.data.copy()) for m in norms]
        model.g_step(tensors(x[:10], y[:10]))
        for m, (w, b) in zip(norms, before, strict=True):
            assert np.array_equal(m.weight.data, w) != learn_scale
            assert not np.array_equal(m.bias.data, b)
        if not learn_scale:
            assert all(np.all(m.weight.data == 1) for m in norms)


def test_the_supervised_only_baseline_trains_d_on_the_labels_and_nothing_else():
    model = build(supervised_only=True)
    x, y = data()
    g_before = state(model.G)
    out = model.train_step(tensors(x[:10], y[:10]))
    assert set(out) == {"loss_d", "sup", "gnorm_d"}
    assert out["loss_d"] == out["sup"]
    assert_bitwise(state(model.G), g_before)          # no game: G never moves
    # The unlabelled batch plays no part: any images give the same step.
    a, b = build(supervised_only=True), build(supervised_only=True)
    tg.manual_seed(0)
    a.train_step(tensors(x[:10], y[:10]))
    tg.manual_seed(0)
    b.train_step(tensors(np.zeros_like(x[:10]), y[:10]))
    assert_bitwise(state(a.D), state(b.D))
