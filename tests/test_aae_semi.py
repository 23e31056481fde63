"""The AAE with a categorical code (semi-supervised, clustering, 2-D heads): each phase's
gradient, which networks each phase may change, exactly N labels and no other, the heads'
hinge cost, the cluster-head scoring, resume, and short runs that learn."""

import json

import numpy as np
import pytest
from test_gan import assert_bitwise, state, straight_and_resumed
from test_ssgan import assert_exactly_n_labels, assert_ignores_loader_labels

import tinygen as tg
from tinygen.data import DataLoader
from tinygen.models import aae_cluster, aae_semi
from tinygen.train import fit


def data(n=200, seed=0, dtype=np.float32):
    """8x8 'images': a fixed random binary pattern per class plus noise; balanced labels."""
    patterns = np.random.default_rng(99).random((10, 1, 8, 8)) < 0.5
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    rng.shuffle(y)
    x = 0.8 * patterns[y] + 0.2 * rng.random((n, 1, 8, 8))
    return x.astype(dtype), y.astype(np.int64)


def build(labels=20, **kw):
    tg.manual_seed(0)
    cfg = {"image_size": 8, "hidden": 6, "latent": 2, "labels": labels, "batch_size": 10, **kw}
    model = aae_semi.CategoricalAAE(aae_semi.Config(**cfg))
    model.setup(*data())
    return model


def tensors(x, y):
    return tg.tensor(x), tg.tensor(y)


def as_float64(model):
    for t in list(model.parameters()) + list(model.buffers()):
        if t.dtype.kind == "f":
            t.data = t.data.astype(np.float64)
    return model


# ----------------------------------------------------------------------------------------------
# Gradients of every phase's loss.


@pytest.mark.parametrize("kw", [{}, {"heads": True, "labels": 0, "clusters": 4},
                                {"minibatch_kernels": 3}, {"input_noise": 0.3},
                                {"d_noise": 0.3, "labels": 0, "clusters": 4}])
def test_each_phases_loss_gradient(kw):
    model = as_float64(build(**kw))
    if model.labelled is not None:
        model.labelled.x.data = model.labelled.x.data.astype(np.float64)
    real = tensors(*data(n=10, dtype=np.float64))

    def seeded(f):
        def objective():
            tg.manual_seed(1)             # the same prior samples and labelled batch each call
            return f()[0]
        return objective

    with tg.no_grad():
        codes = model.fake(real)
    assert tg.gradcheck_module(model.autoencoder, seeded(lambda: model.reconstruction_loss(real)),
                               projections=2)
    assert tg.gradcheck_module(model.D, seeded(lambda: model.d_loss(real, codes)), projections=2)
    assert tg.gradcheck_module(model.G, seeded(lambda: model.g_loss(real)), projections=2)
    if model.labelled is not None:
        assert tg.gradcheck_module(model.G, seeded(model.classification_loss), projections=2)


def test_the_losses_are_their_definitions():
    model = build()
    x, y = data(n=10)
    real = tensors(x, y)
    logits, z = (t.data.astype(np.float64) for t in model.encode(real[0]))
    q = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p = 1 / (1 + np.exp(-model.decode(tg.tensor(q.astype(np.float32)),
                                      tg.tensor(z.astype(np.float32))).data.astype(np.float64)))
    t = x.reshape(10, -1)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    assert model.reconstruction_loss(real)[0].item() == pytest.approx(bce, rel=1e-4)
    tg.manual_seed(3)
    ce = model.classification_loss()[0].item()
    tg.manual_seed(3)
    x_lab, y_lab = model.labelled.batch(model.cfg.batch_size)
    l_lab = model.encode(x_lab)[0].data.astype(np.float64)
    log_q = l_lab - np.log(np.exp(l_lab).sum(1, keepdims=True))
    assert ce == pytest.approx(-log_q[np.arange(len(y_lab.data)), y_lab.data].mean(), rel=1e-5)


# ----------------------------------------------------------------------------------------------
# Which networks each phase changes.


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_each_phase_changes_only_its_own_networks(optimizer):
    model = build(heads=True, optimizer=optimizer)
    kind = {"adam": tg.optim.Adam, "sgd": tg.optim.SGD}[optimizer]
    assert all(type(o) is kind for o in (model.opt_AE, model.opt_D, model.opt_G, model.opt_C))
    real = tensors(*data(n=10))
    nets = {"encoder": model.G, "heads": model.heads, "decoder": model.decoder, "D": model.D}

    def changed(before):
        return {k for k, v in nets.items()
                if any(not np.array_equal(a, before[k][n]) for n, a in state(v).items())}

    def snapshot():
        return {k: state(v) for k, v in nets.items()}

    model.heads.weight.data[1] = model.heads.weight.data[0] + 0.1   # so the hinge is active
    before = snapshot()
    model._step(model.autoencoder, model.opt_AE, lambda: model.reconstruction_loss(real), "rec")
    assert changed(before) == {"encoder", "heads", "decoder"}
    before = snapshot()
    model.d_step(real)                         # D_y and D_z learn; the autoencoder is untouched
    assert changed(before) == {"D"}
    assert_bitwise(state(model.G), before["encoder"])
    assert_bitwise(state(model.decoder), before["decoder"])
    before = snapshot()
    model.g_step(real)                         # the encoder fools both; D is untouched
    assert changed(before) == {"encoder"}
    assert_bitwise(state(model.D), before["D"])
    before = snapshot()
    model._step(model.G, model.opt_C, model.classification_loss, "cls")
    assert changed(before) == {"encoder"}


# ----------------------------------------------------------------------------------------------
# Exactly N labels.


def test_the_labelled_set_is_exactly_n_distinct_images_balanced_over_classes():
    x, y = data()
    assert_exactly_n_labels(build(labels=30), x, y, 30)
    assert build(labels=0).labelled is None               # clustering: no labelled set at all


def test_all_labels_means_every_training_image_even_with_unbalanced_classes():
    """The papers' "all labels" row (60,000 on MNIST, whose classes hold 5,421 to 6,742
    images): labels equal to the training set's size keep every image, in order."""
    x, y = data(200)
    y = np.where(y == 3, 4, y)                                   # class 3 empty, class 4 doubled
    tg.manual_seed(0)
    model = aae_semi.CategoricalAAE(aae_semi.Config(image_size=8, hidden=6, latent=2,
                                                    labels=200, batch_size=10))
    model.setup(x, y)
    np.testing.assert_array_equal(model.labelled.index.data, np.arange(200))
    np.testing.assert_array_equal(model.labelled.y.data, y)
    np.testing.assert_array_equal(model.labelled.x.data, x.reshape(200, -1))


def test_training_never_reads_the_batchs_labels():
    assert_ignores_loader_labels(build, *data())


def test_the_classification_phase_sees_only_the_labelled_images(monkeypatch):
    model = build(labels=20)
    seen = []
    real_batch = model.labelled.batch
    monkeypatch.setattr(model.labelled, "batch", lambda n: seen.append(n) or real_batch(n))
    x, y = data()
    for i in range(4):
        model.train_step(tensors(x[10 * i:10 * i + 10], y[10 * i:10 * i + 10]))
    assert seen == [10] * 4                                 # once a step, from the 20 only
    allowed = {r.tobytes() for r in model.labelled.x.data}
    tg.manual_seed(0)
    assert all(r.tobytes() in allowed for r in model.labelled.batch(10)[0].data)


def test_the_run_folder_records_which_labels_were_used(tmp_path):
    model = build()
    x, y = data()
    loader = DataLoader((x, y), batch_size=10, shuffle=True, drop_last=True, generator=0)
    fit(model, loader, 1, tmp_path, max_steps=2, quiet=True, sample_every=0)
    saved = json.loads((tmp_path / "labelled.json").read_text())
    assert saved["indices"] == model.labelled.index.data.tolist()
    assert saved["labels"] == y[model.labelled.index.data].tolist()
    for figure in ("styles.png", "clusters.png", "codes.png"):
        assert (tmp_path / figure).stat().st_size > 1000


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="labels must be a positive multiple"):
        build(labels=25)
    with pytest.raises(ValueError, match="clusters must equal n_classes"):
        build(labels=20, clusters=16)
    with pytest.raises(ValueError, match="--heads needs --latent >= 2"):
        build(labels=0, heads=True, latent=1)
    with pytest.raises(ValueError, match="clusters must be >= 2"):
        build(labels=0, clusters=1)
    with pytest.raises(ValueError, match="CategoricalAAE: input_noise must be >= 0"):
        build(input_noise=-0.1)
    with pytest.raises(ValueError, match="CategoricalAAE: d_noise must be >= 0, got nan"):
        build(d_noise=float("nan"))
    with pytest.raises(ValueError, match="lr_step must be >= 0 and lr_gamma > 0"):
        build(lr_step=2, lr_gamma=0)
    with pytest.raises(ValueError, match="CategoricalAAE: optimizer must be adam or sgd"):
        build(optimizer="rmsprop")


def test_input_noise_reaches_the_encoder_in_every_training_phase_and_never_in_evaluation():
    model = build(input_noise=0.5)
    x, y = data(n=10)
    seen = []
    encode = model.encode
    model.encode = lambda t: seen.append(t.data.reshape(len(t.data), -1).copy()) or encode(t)
    model.reconstruction_loss(tensors(x, y))
    model.fake(tensors(x, y))                                # the regularization phase's codes
    tg.manual_seed(4)
    model.classification_loss()
    tg.manual_seed(4)
    x_lab = model.labelled.batch(model.cfg.batch_size)[0].data    # the same labelled batch
    for inp, c in zip(seen, [x.reshape(10, -1), x.reshape(10, -1), x_lab], strict=True):
        noise = inp - c
        assert 0.4 < noise.std() < 0.6 and abs(noise.mean()) < 0.1
    seen.clear()
    model.q_y(x)
    model.representation(x)
    np.testing.assert_array_equal(seen[0], x.reshape(10, -1))
    np.testing.assert_array_equal(seen[1], x.reshape(10, -1))


def test_d_noise_reaches_both_code_discriminators_while_training_and_never_otherwise():
    plain, noisy = build(labels=0, clusters=4), build(labels=0, clusters=4, d_noise=0.5)
    # Besides the noise layers in front, the discriminators are the plain model's, weight
    # for weight, and in eval() they compute what the plain ones do.
    assert list(plain.D.state_dict()) == [k.replace("D_y.1.", "D_y.").replace("D_z.1.", "D_z.")
                                          for k in noisy.D.state_dict()]
    for a, b in zip(plain.D.state_dict().values(), noisy.D.state_dict().values(), strict=True):
        np.testing.assert_array_equal(a, b)
    y = tg.tensor(np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]])
    z = tg.tensor(np.zeros((5, 2), np.float32))
    seen = []
    for name, code in (("D_y", y), ("D_z", z)):
        first = getattr(noisy.D, name)[1][0]                 # the first Linear after the noise
        forward = first.forward
        first.forward = lambda t, f=forward: seen.append(t.data.copy()) or f(t)
        getattr(noisy.D, name)(code)
        noise = seen[-1] - code.data
        assert 0.3 < noise.std() < 0.7, name
        noisy.eval()
        getattr(noisy.D, name)(code)
        np.testing.assert_array_equal(seen[-1], code.data)
        plain.eval()
        with tg.no_grad():
            np.testing.assert_array_equal(getattr(noisy.D, name)(code).data,
                                          getattr(plain.D, name)(code).data)
        noisy.train()


# ----------------------------------------------------------------------------------------------
# The cluster heads (Section 7's hinge, Section 6's scoring).


def test_the_heads_hinge_is_zero_when_heads_are_eta_apart_and_linear_below():
    model = build(labels=0, heads=True, clusters=3, eta=2.0)
    assert model.heads.spread_cost().item() == 0.0          # the init is 1.5 eta apart
    model.heads.weight.data = np.array([[0, 0], [1.5, 0], [0, 5]], np.float32)
    # Pairs: 1.5 (costs 0.5), 5 (0), sqrt(1.5^2 + 25) > 2 (0).
    assert model.heads.spread_cost().item() == pytest.approx(0.5, rel=1e-5)
    r = model.heads(tg.tensor(np.array([[0, 1, 0]], np.float32)),
                    tg.tensor(np.array([[0.25, -1]], np.float32))).data
    np.testing.assert_allclose(r, [[1.75, -1]])             # r = W_c y + z


def test_each_cluster_is_named_after_its_most_confident_image(monkeypatch):
    model = build(labels=0, clusters=3)
    q_train = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1],
                        [0.2, 0.2, 0.6], [0.1, 0.1, 0.8]])
    y_train = np.array([4, 7, 1, 2, 9])
    q_test = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1]])
    monkeypatch.setattr(model, "q_y", lambda x: q_train if len(x) == 5 else q_test)
    # Heads: cluster 0 -> image 0 (label 4), 1 -> image 2 (1), 2 -> image 4 (9).
    np.testing.assert_array_equal(model.cluster_labels(np.zeros(5), y_train), [4, 1, 9])
    assert model.cluster_error(np.zeros(5), y_train, np.zeros(3), [4, 9, 3]) == pytest.approx(1 / 3)


def test_each_figure_row_is_the_decoded_cluster_then_its_head_then_its_members(monkeypatch):
    model = build(labels=0, clusters=3)
    x = np.arange(1, 6, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 8, 8), np.float32)
    q = np.array([[0.9, 0.05, 0.05], [0.5, 0.45, 0.05], [0.1, 0.4, 0.5],
                  [0.2, 0.2, 0.6], [0.7, 0.1, 0.2], [0.3, 0.38, 0.32]])
    x = np.arange(1, 7, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 8, 8), np.float32)
    monkeypatch.setattr(model, "q_y", lambda images: q)
    rows = model.cluster_rows(x, per_row=4).reshape(3, 4, 1, 8, 8)
    decoded = model.generate(np.zeros((3, model.cfg.latent), np.float32), np.arange(3))
    np.testing.assert_array_equal(rows[:, 0], decoded)              # g(y = e_k, z = 0)
    # Cluster 0: head image 0, members 0, 4, 1 (most sure first). Cluster 1: head image 1
    # (q = 0.45, though it sits in cluster 0), its only member image 5. Cluster 2: head image
    # 3, members 3, 2.
    for k, shown in enumerate([[0, 4, 1], [1, 5], [3, 2]]):
        np.testing.assert_array_equal(rows[k, 1:1 + len(shown)], x[shown])
        assert not rows[k, 1 + len(shown):].any()                   # the rest left blank
    empty = build(labels=0, clusters=3)                              # no member at all:
    monkeypatch.setattr(empty, "q_y", lambda images: q * [1, 0.1, 1])   # cluster 1 empty
    np.testing.assert_array_equal(empty.cluster_rows(x, per_row=4).reshape(3, 4, 1, 8, 8)[1, 1:],
                                  [x[1], np.zeros_like(x[0]), np.zeros_like(x[0])])  # head alone


# ----------------------------------------------------------------------------------------------
# Resume, and short runs.


@pytest.mark.parametrize("kw", [{"heads": True}, {"lr_step": 1, "lr_gamma": 0.5},
                                {"labels": 0, "clusters": 4, "d_noise": 0.4, "d_noise_decay": 4}])
def test_resume_is_bitwise(tmp_path, kw):
    x, y = data(n=48)          # 6 steps an epoch: step 7 is after the first lr or noise step
    straight, resumed = straight_and_resumed(lambda: build(**kw), x, y, tmp_path,
                                             batch_size=8, stop_after=7)
    assert_bitwise(state(resumed), state(straight))
    if kw.get("d_noise_decay"):                              # 2 epochs of 4: half the noise
        assert [m.sigma for m in (resumed.D.D_y[0], resumed.D.D_z[0])] == pytest.approx([0.2] * 2)
    for opt in ("opt_AE", "opt_D", "opt_G", "opt_C"):
        assert getattr(resumed, opt).param_groups[0]["lr"] == \
            getattr(straight, opt).param_groups[0]["lr"]


def test_lr_step_multiplies_every_phases_lr_every_e_epochs():
    model = build(lr_step=2, lr_gamma=0.5)
    opts = [model.opt_AE, model.opt_D, model.opt_G, model.opt_C]
    base = [o.param_groups[0]["lr"] for o in opts]
    for epoch, factor in [(1, 1.0), (2, 0.5), (3, 0.5), (4, 0.25)]:
        model.end_epoch()
        assert [o.param_groups[0]["lr"] for o in opts] == pytest.approx(
            [b * factor for b in base]), epoch
    assert not hasattr(build(), "sched_AE")                  # off by default


def test_d_noise_decay_lowers_both_noises_linearly_to_zero_and_keeps_them_there():
    model = build(labels=0, clusters=4, d_noise=0.3, d_noise_decay=3)
    noises = [model.D.D_y[0], model.D.D_z[0]]
    seen = [[m.sigma for m in noises]]
    for _ in range(5):
        model.end_epoch()
        seen.append([m.sigma for m in noises])
    np.testing.assert_allclose(seen, [[0.3, 0.3], [0.2, 0.2], [0.1, 0.1]] + [[0.0, 0.0]] * 3,
                               atol=1e-12)
    assert not hasattr(build(labels=0, clusters=4, d_noise=0.3), "sched_noise")
    with pytest.raises(ValueError, match="d_noise_decay must be >= 0 and needs d_noise > 0, "
                                         "got 3 with d_noise 0.0"):
        build(labels=0, clusters=4, d_noise_decay=3)


def test_a_short_semi_supervised_run_classifies_the_digits():
    """scikit-learn's 8x8 digits, 100 labels (10 a class) of the 1,438 training images,
    15 epochs: measured 11.7% test error (chance 90%) in about 3 s."""
    pytest.importorskip("sklearn")
    from tinygen.data.datasets import load_dataset
    x, y = load_dataset("digits", "train")
    xt, yt = load_dataset("digits", "test")
    tg.manual_seed(0)
    model = aae_semi.CategoricalAAE(aae_semi.Config(dataset="digits", image_size=8, hidden=64,
                                                    batch_size=64, labels=100))
    model.setup(x, y)
    loader = DataLoader((x, y), batch_size=64, shuffle=True, drop_last=True, generator=0)
    for _ in range(15):
        for b in loader:
            model.train_step(tensors(*b))
    assert model.evaluate([(xt, yt)])["error"] < 0.3


def test_the_cluster_model_defaults_to_no_labels_and_16_clusters():
    cfg = aae_cluster.Config()
    assert (cfg.labels, cfg.clusters) == (0, 16)
    model = build(labels=0, clusters=16)
    x, y = data()
    assert set(model.evaluate([(x, y)])) == {"cluster_error"}
