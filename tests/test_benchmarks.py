"""The benchmark scripts' own logic (never their timings): they must measure what they say."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import profile_step  # noqa: E402

from tinygen import ops  # noqa: E402


def test_profile_step_times_the_primitives_the_step_calls_and_unwraps_them():
    before = {name: (p.forward, p.vjps, p.joint_vjp) for name, p in ops.PRIMITIVES.items()}
    total, timers = profile_step.profile("classifier", steps=2, warmup=1)
    # The classifier's step runs its two convs forward and backward, and one Adam step.
    assert timers.calls["conv2d", "forward"] == 2 * 2
    assert timers.calls["conv2d", "vjp"] == 2 * 2
    assert [k for k in timers.calls if k[1] == "step"] == [("opt (Adam)", "step")]
    assert 0 < sum(timers.seconds.values()) < 2 * total
    after = {name: (p.forward, p.vjps, p.joint_vjp) for name, p in ops.PRIMITIVES.items()}
    assert after == before


def test_profile_step_cli_prints_the_table(capsys):
    profile_step.main(["--model", "ae", "--steps", "1", "--rows", "50"])
    out = capsys.readouterr().out
    assert out.startswith("ae: ") and "| linear | forward |" in out and "outside the" in out


class _TwoLinears:
    """A model-shaped stub whose step is Linear(3, 4) -> ReLU -> Linear(4, 2), backward."""

    def __init__(self):
        import tinygen as tg
        from tinygen import nn
        tg.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))

    def train_step(self, batch):
        self.net(batch[0]).sum().backward()


def test_floor_records_every_product_the_linear_layers_compute_and_unwraps():
    import numpy as np

    import tinygen as tg
    from tinygen.nn import functional as F
    before = (F.linear_p.forward, F.linear_p.joint_vjp)
    pairs = profile_step.record_gemms(_TwoLinears(), (tg.tensor(np.ones((5, 3), np.float32)),))
    # forward x W1^T, h W2^T; backward dh = G W2, dW2 = G^T h, dW1 = G^T x; no dx: x is data
    assert {source for *_, source in pairs} == {"linear"}
    assert [(a.shape, b.shape) for a, b, _ in pairs] == [
        ((5, 3), (3, 4)), ((5, 4), (4, 2)),
        ((5, 2), (2, 4)), ((2, 5), (5, 4)),
        ((4, 5), (5, 3))]
    assert pairs[0][1].flags.f_contiguous and not pairs[0][1].flags.c_contiguous   # W^T, a view
    assert all(a.dtype == b.dtype == np.float32 for a, b, _ in pairs)
    assert (F.linear_p.forward, F.linear_p.joint_vjp) == before


def test_floor_records_the_wide_conv_kernels_gemms():
    import numpy as np

    import tinygen as tg
    from tinygen import nn
    from tinygen.kernels import numba_kernels

    class OneConv(_TwoLinears):         # C*kh*kw = 144: the GEMM path, not the direct one
        def __init__(self):
            self.net = nn.Conv2d(16, 8, 3, padding=1)

    model, batch = OneConv(), (tg.tensor(np.ones((2, 16, 6, 6), np.float32)),)
    model.train_step(batch)                                     # compile with the real np
    pairs = profile_step.record_gemms(model, batch)
    # forward: cols (N*Ho*Wo, kh*kw*C) @ W^T; dL/dW = cols^T @ G; no dL/dx: x is data
    assert [(a.shape, b.shape, s) for a, b, s in pairs] == [
        ((72, 144), (144, 8), "conv"), ((144, 72), (72, 8), "conv")]
    assert pairs[1][0].flags.f_contiguous                       # cols^T stays a view
    assert numba_kernels.np is np


def test_startup_times_each_part_of_a_fresh_process(capsys):
    profile_step.startup("ae", runs=1)
    out = capsys.readouterr().out
    for part in ("import numba", "Numba's set-up", "first step", "**import + first step**"):
        assert f"| {part}" in out
    total = [line for line in out.splitlines() if "**import + first step**" in line][0]
    assert float(total.split("|")[2].strip(" *")) > 0


def test_ablation_step_cost_runs_each_backend_and_restores_numba(monkeypatch):
    import improved_gan_ablation

    from tinygen import kernels
    from tinygen.kernels import numba_kernels, reference
    calls = {"reference": 0, "numba": 0}
    for name, module in [("reference", reference), ("numba", numba_kernels)]:
        real = module.minibatch_closeness_forward

        def counted(M, real=real, name=name):
            calls[name] += 1
            return real(M)
        monkeypatch.setattr(module, "minibatch_closeness_forward", counted)
    kernels.set_backend("numba")             # rebinds the names to the counted functions
    try:
        rows = improved_gan_ablation.step_cost(["+ minibatch discrimination"], repeats=10)
        assert kernels.get_backend().__name__ == "tinygen.kernels.numba_kernels"
    finally:
        monkeypatch.undo()
        kernels.set_backend("numba")
    assert calls["reference"] > 0 and calls["numba"] > 0
    assert rows[0][0] == "+ minibatch discrimination" and len(rows[0]) == 4


def test_wide_parts_times_the_passes_that_make_the_conv():
    import bench_kernels
    import numpy as np

    from tinygen.kernels import numba_kernels
    passes, x, w, _, _, y = bench_kernels.wide_forward_passes(batch=3)
    assert not numba_kernels._takes_direct_path(
        numba_kernels.conv_geometry("conv2d", x.shape, (4, 4), 2, 1, 1), 128)   # the GEMM path
    for fn in passes.values():
        fn()
    np.testing.assert_array_equal(y.reshape(3, 128, 7, 7), numba_kernels.conv2d_forward(x, w, 2, 1))
    for chunk in (1, 2):        # the cache-blocked experiment computes the same conv
        np.testing.assert_allclose(bench_kernels._blocked_forward(x, w, chunk)(),
                                   numba_kernels.conv2d_forward(x, w, 2, 1), rtol=1e-5,
                                   atol=1e-4)
    rows = bench_kernels.wide_parts(batch=3, repeats=2)
    assert set(passes) <= set(rows) and all(t["alone"] > 0 for t in rows.values())


def test_ssgan_torch_twin_computes_what_the_model_does():
    """bench_models' PyTorch copy of ssgan's networks (weight norm, Gaussian noise, the
    frozen scales) gives the model's outputs, and its step runs."""
    torch = pytest.importorskip("torch")
    import bench_models
    import numpy as np

    import tinygen as tg
    model, cfg = bench_models.build("ssgan")
    x, y = bench_models.batch_for(cfg, np.random.default_rng(0))
    D, G = bench_models.to_torch(torch, model.D), bench_models.to_torch(torch, model.G)
    model.D.eval(), model.G.eval(), D.eval(), G.eval()
    flat = x.reshape(len(x), -1)
    with tg.no_grad():
        ours_d = model.D(tg.tensor(flat)).data
        ours_g = model.G(tg.tensor(flat[:, :cfg.latent])).data
    with torch.no_grad():
        np.testing.assert_allclose(D(torch.from_numpy(flat)).numpy(), ours_d, rtol=1e-4,
                                   atol=1e-4)
        np.testing.assert_allclose(G(torch.from_numpy(flat[:, :cfg.latent])).numpy(), ours_g,
                                   rtol=1e-4, atol=1e-5)
    frozen = [p for p in D.parameters() if not p.requires_grad]
    assert len(frozen) == 5                        # the hidden layers' weight-norm scales
    model.D.train(), model.G.train()
    bench_models.TORCH_STEPS["ssgan"](torch, model, cfg, x, y)()


def _ssgan_arrays(ours, twin):
    """(tinygen array, PyTorch array) for each parameter and running statistic, layer by layer."""
    pairs = []
    for m, t in zip(ours, twin, strict=True):
        if hasattr(m, "weight_v"):                                  # weight norm: g and v
            w = t.parametrizations.weight
            pairs += [(m.weight_g, w.original0), (m.weight_v, w.original1)]
        elif getattr(m, "weight", None) is not None:
            pairs.append((m.weight, t.weight))
        if getattr(m, "bias", None) is not None:
            pairs.append((m.bias, t.bias))
        if getattr(m, "running_mean", None) is not None:
            pairs += [(m.running_mean, t.running_mean), (m.running_var, t.running_var)]
    return [(a.data.copy(), b.detach().numpy().copy()) for a, b in pairs]


def test_ssgan_twin_takes_the_models_step_when_it_draws_what_tinygen_draws():
    """`SSGANTwin` (what ssgan_torch_twin.py trains) is `SSGAN.train_step` in PyTorch: with the
    Gaussian noise off and tinygen's draws of z and of the labelled minibatch replayed, its
    losses at the init, and D, G (running statistics included) and the average of D after
    one step, are the model's; its G step leaves D bitwise unchanged; its lr schedule is the
    model's. Its labelled images are exactly the model's N."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    import copy

    import bench_models
    import numpy as np

    import tinygen as tg
    from tinygen.autograd import default_generator
    from tinygen.models import ssgan
    from tinygen.models.adversarial import frozen
    # Adam's first step is lr g / (|g| + eps). With the README's eps = 1e-4, float32 rounding
    # in a gradient near 0 moves a weight by up to lr * 1e-3, and after a step a ReLU within
    # that of 0 can flip, changing G's gradient by 2%: eps = 1e-2 keeps the steps comparable.
    cfg = ssgan.Config(image_size=8, batch_size=10, labels=20, g_hidden=32, noise_input=0.0,
                       noise_hidden=0.0, g_bn_scale=False, adam_eps=1e-2, fm_mean=True, ema=0.9,
                       epochs=4, lr_decay_from=2)
    rng = np.random.default_rng(0)
    x = rng.random((200, 1, 8, 8), dtype=np.float32)
    tg.manual_seed(0)
    model = ssgan.SSGAN(cfg)
    model.setup(x, np.arange(200) % 10)
    twin = bench_models.SSGANTwin(torch, model)
    np.testing.assert_array_equal(twin.lab_x.numpy(), x.reshape(200, -1)[model.labelled.index.data])
    np.testing.assert_array_equal(twin.lab_y.numpy(), model.labelled.index.data % 10)
    assert len(twin.lab_x) == 20
    batch = (tg.tensor(x[:10]), tg.tensor(np.full(10, -1)))     # the loader's labels: unused
    unl = torch.from_numpy(x[:10]).flatten(1)

    def replay():               # the twin's next draws are tinygen's next: z, order, z
        draws = copy.deepcopy(default_generator())
        twin.rand = lambda n, k: torch.from_numpy(draws.random((n, k), dtype=np.float32))
        twin.randperm = lambda n: torch.from_numpy(draws.permutation(n))

    replay()                    # the losses at the init, phase by phase
    with tg.no_grad(), frozen(model.G):
        fake = model.fake(batch)
    ours_d, ours_g = model.d_loss(batch, fake)[0].item(), model.g_loss(batch)[0].item()
    with torch.no_grad(), bench_models._held(twin.G):
        fake_t = twin.fake(10)
    np.testing.assert_allclose(fake_t.numpy(), fake.data, rtol=1e-5, atol=1e-6)
    pick = twin.randperm(20)[:10]
    assert twin.d_loss(unl, fake_t, pick)[0].item() == pytest.approx(ours_d, rel=1e-5)
    assert twin.g_loss(unl).item() == pytest.approx(ours_g, rel=1e-5)

    replay()                    # one whole step each
    before = _ssgan_arrays(model.D, twin.D)
    ours, theirs = model.train_step(batch), twin.step(unl)
    for key in ("loss_d", "sup", "unsup", "d_real", "d_fake", "loss_g"):
        assert theirs[key] == pytest.approx(ours[key], rel=1e-5, abs=1e-7), key
    after = _ssgan_arrays(model.D, twin.D)
    for a, b in after + _ssgan_arrays(model.G, twin.G):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    moved = [np.abs(a - a0).max() for (a, _), (a0, _) in zip(after, before, strict=True)]
    assert max(moved) > 1e-3                                    # the step did move D
    xs = tg.tensor(x[100:150].reshape(50, -1))
    with tg.no_grad(), model.ema_D.swapped_in():
        model.D.eval()
        averaged = model.D(xs).data
        model.D.train()
    np.testing.assert_allclose(twin.logits(torch.from_numpy(xs.data)).numpy(), averaged,
                               rtol=1e-4, atol=1e-5)
    assert twin.D.training

    twin.d_step(unl)            # the G step: D is a fixed function
    d_params = [p.detach().clone() for p in twin.D.parameters()]
    g_params = [p.detach().clone() for p in twin.G.parameters()]
    twin.g_step(unl)
    assert all(torch.equal(p, q) for p, q in zip(twin.D.parameters(), d_params, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(twin.G.parameters(), g_params, strict=True))

    for _ in range(3):          # lr 0.003, 0.003, then half at epoch 3 of 4 (decay from 2)
        model.end_epoch()
        twin.end_epoch()
        lrs = [opt.param_groups[0]["lr"] for opt in (twin.opt_D, twin.opt_G)]
        assert lrs == pytest.approx([model.opt_D.param_groups[0]["lr"],
                                     model.opt_G.param_groups[0]["lr"]], rel=1e-12)
    assert lrs == pytest.approx([1.5e-3, 1.5e-3])


@pytest.mark.parametrize("name", ["aae", "aae_semi", "aae_cluster"])
def test_aae_torch_twins_compute_what_the_models_do(name):
    """bench_models' PyTorch copies of the AAE networks give the model's reconstruction loss
    from the same weights, and the twin's step (every phase) changes every network."""
    torch = pytest.importorskip("torch")
    import bench_models
    import numpy as np

    import tinygen as tg
    model, cfg = bench_models.build(name)
    x, y = bench_models.batch_for(cfg, np.random.default_rng(0))
    flat = x.reshape(len(x), -1)
    enc, dec = bench_models.to_torch(torch, model.G), bench_models.to_torch(torch, model.decoder)
    with tg.no_grad():
        ours = model.reconstruction_loss((tg.tensor(x), tg.tensor(y)))[0].item()
    with torch.no_grad():
        h = enc(torch.from_numpy(flat))
        if name != "aae":
            h = torch.cat([h[:, :cfg.clusters].softmax(1), h[:, cfg.clusters:]], 1)
        theirs = torch.nn.functional.binary_cross_entropy_with_logits(
            dec(h), torch.from_numpy(flat)).item()
    assert theirs == pytest.approx(ours, rel=1e-5)
    step = bench_models.TORCH_STEPS[name](torch, model, cfg, x, y)
    closure = step.__closure__ or ()
    nets = [c.cell_contents for c in closure if isinstance(c.cell_contents, torch.nn.Module)]
    before = [[p.detach().clone() for p in n.parameters()] for n in nets]
    step()
    assert len(nets) >= 3
    for net, old in zip(nets, before, strict=True):
        assert any(not torch.equal(p, q) for p, q in zip(net.parameters(), old, strict=True))


@pytest.mark.parametrize("name", ["cyclegan", "pix2pix"])
def test_translation_torch_twins_compute_what_the_models_do(name):
    """bench_models' PyTorch copies of the translation networks (residual blocks, the U-Net's
    skips, instance norm, the PatchGAN) give the model's outputs from the same weights; the
    pix2pix twin builds G's input as the model does; the twin's step changes every network."""
    torch = pytest.importorskip("torch")
    import bench_models
    import numpy as np

    import tinygen as tg
    model, cfg = bench_models.build(name)
    x, y = bench_models.batch_for(cfg, np.random.default_rng(0))
    if name == "cyclegan":
        nets = {"G_AB": model.G.G_AB, "G_BA": model.G.G_BA, "D_A": model.D.D_A,
                "D_B": model.D.D_B}
        inputs = {k: 2 * x - 1 for k in nets}
    else:
        nets = {"G": model.G, "D": model.D}
        inp = model.g_input(model.degrade(x))
        F = torch.nn.functional
        low = F.avg_pool2d(torch.from_numpy(x), cfg.factor)
        theirs = 2 * F.interpolate(low, scale_factor=cfg.factor, mode="nearest") - 1
        np.testing.assert_allclose(theirs.numpy(), inp, atol=1e-6)
        inputs = {"G": inp, "D": np.concatenate([inp, 2 * x - 1], axis=1)}
    model.eval()                                       # dropout off; instance norm unchanged
    for key, net in nets.items():
        twin = bench_models.to_torch(torch, net).eval()
        with tg.no_grad():
            ours = net(tg.tensor(inputs[key])).data
        with torch.no_grad():
            np.testing.assert_allclose(twin(torch.from_numpy(inputs[key])).numpy(), ours,
                                       rtol=1e-4, atol=1e-5, err_msg=key)
    model.train()
    step = bench_models.TORCH_STEPS[name](torch, model, cfg, x, y)
    twins = [c.cell_contents for c in step.__closure__ or ()
             if isinstance(c.cell_contents, torch.nn.Module)]
    before = [[p.detach().clone() for p in n.parameters()] for n in twins]
    step()
    assert len(twins) == len(nets)
    for net, old in zip(twins, before, strict=True):
        assert any(not torch.equal(p, q) for p, q in zip(net.parameters(), old, strict=True))


def test_the_instance_norm_rows_time_every_contender(monkeypatch):
    import bench_kernels
    monkeypatch.setattr(bench_kernels, "INSTANCE_NORM_SHAPES", {"small": (2, 3, 4, 4)})
    [row] = bench_kernels.instance_norm_rows(repeats=2)
    assert row["shape"] == "small"
    assert all(row[k] > 0 for k in ("composed", "reference", "numba"))


def test_the_adam_rows_time_each_backend_on_its_own_state():
    import bench_kernels
    import numpy as np
    rows = bench_kernels._adam_shape("w", (300, 300), 2, np.random.default_rng(0))
    assert [r["kernel"] for r in rows] == ["adam update"]
    assert rows[0]["reference"] > 0 and rows[0]["numba"] > 0


def test_backends_mode_runs_the_step_on_the_reference_kernels_then_restores_numba():
    import bench_models

    from tinygen import kernels
    seen = []

    class Model:
        def train_step(self, batch):
            seen.append(kernels.get_backend().__name__)
    bench_models._on_reference(Model(), None)
    assert seen == ["tinygen.kernels.reference"]
    assert kernels.get_backend().__name__ == "tinygen.kernels.numba_kernels"


def test_ssgan_errors_lists_the_largest_off_diagonal_cells_and_draws_the_pair_rows():
    import numpy as np
    import ssgan_errors
    counts = np.diag([50, 40, 30])
    counts[2, 1], counts[0, 2], counts[1, 0] = 7, 7, 3
    assert ssgan_errors.worst_pairs(counts, 2) == [(7, 0, 2), (7, 2, 1)]   # ties by true class
    assert ssgan_errors.worst_pairs(counts) == [(7, 0, 2), (7, 2, 1), (3, 1, 0)]
    # Each image's pixels hold its own index, so the rows can be read back.
    index = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2))
    xt, yt, pred = index, np.array([1, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 1])
    x, y = 10 + index, np.array([0, 1, 1, 0, 1])
    images, names = ssgan_errors.pair_rows((xt, yt), pred, (x, y), [0, 1, 4], a=1, b=0,
                                           per_row=3)
    assert names == ["test 1s read as 0", "more test 1s read as 0", "test 1s read as 1",
                     "labelled 1s", "labelled 0s"]
    firsts = images[:, 0, 0, 0].reshape(5, 3)
    np.testing.assert_array_equal(firsts, [[0, 2, 0], [0, 0, 0], [1, 4, 0], [11, 14, 0],
                                           [10, 0, 0]])


def test_ssgan_errors_reads_a_runs_confusion_and_draws_its_worst_pair(tmp_path, monkeypatch,
                                                                       capsys):
    import dataclasses

    import numpy as np
    import ssgan_errors

    import tinygen as tg
    from tinygen.data import DataLoader
    from tinygen.data.datasets import load_dataset
    from tinygen.models import ssgan
    from tinygen.train import fit
    monkeypatch.setattr(ssgan, "D_HIDDEN", (12, 8))         # a tiny D, rebuilt alike on load
    x, y = load_dataset("digits", "train")
    tg.manual_seed(0)
    cfg = ssgan.Config(dataset="digits", image_size=8, latent=4, g_hidden=6, labels=20,
                       batch_size=10)
    model = ssgan.SSGAN(cfg)
    model.setup(x, y)
    loader = DataLoader((x, y), batch_size=10, shuffle=True, drop_last=True, generator=0)
    fit(model, loader, 1, tmp_path, config={"model": "ssgan", **dataclasses.asdict(cfg)},
        max_steps=3, quiet=True, sample_every=0)
    r = ssgan_errors.analyse(tmp_path)
    xt, yt = load_dataset("digits", "test")
    np.testing.assert_array_equal(r["predicted"], model.classify(xt))     # the run's own D
    np.testing.assert_array_equal(r["counts"].sum(1), np.bincount(yt, minlength=10))
    assert r["error"] == pytest.approx(1 - np.trace(r["counts"]) / len(yt))
    assert r["labelled"] == model.labelled.index.data.tolist()
    ssgan_errors.main([str(tmp_path), "--figure", str(tmp_path / "pair.png"),
                       "--labelled-only", "1"])
    out = capsys.readouterr().out
    assert "most confused (true -> read as: count)" in out
    assert (tmp_path / "pair.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        ssgan_errors.main([str(tmp_path), "--labelled-only", "1"])
    assert "give --figure too" in capsys.readouterr().err
    perfect = dict(r, counts=np.diag(r["counts"].sum(1)), error=0.0)
    monkeypatch.setattr(ssgan_errors, "analyse", lambda run, data_dir=None: perfect)
    with pytest.raises(SystemExit, match="makes no test error: no pair to draw"):
        ssgan_errors.main([str(tmp_path), "--figure", str(tmp_path / "none.png")])
    assert not (tmp_path / "none.png").exists()


def test_aae_twin_takes_the_models_steps_when_it_draws_what_tinygen_draws():
    """`AAESemiTwin` (what aae_torch_twin.py trains) is `CategoricalAAE.train_step` in
    PyTorch: with tinygen's draws replayed (input noise, prior samples, labelled minibatch),
    its losses in each of two steps and every network after them are the model's, its lr
    steps are the model's, and its labelled images are exactly the model's N."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    import copy

    import bench_models
    import numpy as np

    import tinygen as tg
    from tinygen.autograd import default_generator
    from tinygen.models import aae_semi
    cfg = aae_semi.Config(image_size=8, hidden=16, latent=2, labels=20, batch_size=10,
                          input_noise=0.3, lr_step=1, lr_gamma=0.5)
    rng = np.random.default_rng(0)
    x = rng.random((200, 1, 8, 8), dtype=np.float32)
    tg.manual_seed(0)
    model = aae_semi.CategoricalAAE(cfg)
    model.setup(x, np.arange(200) % 10)
    twin = bench_models.AAESemiTwin(torch, model)
    np.testing.assert_array_equal(twin.lab_x.numpy(), model.labelled.x.data)
    np.testing.assert_array_equal(twin.lab_y.numpy(), model.labelled.index.data % 10)
    assert len(twin.lab_x) == 20

    def replay():               # the twin's next draws are tinygen's next, in the same order
        draws = copy.deepcopy(default_generator())
        twin.randn = lambda shape: torch.from_numpy(draws.standard_normal(tuple(shape),
                                                                          dtype=np.float32))
        twin.randint = lambda low, high, size: torch.from_numpy(draws.integers(low, high,
                                                                               size[0]))
        twin.randperm = lambda n: torch.from_numpy(draws.permutation(n))

    nets = [(model.G, twin.enc), (model.decoder, twin.dec), (model.D.D_y, twin.D_y),
            (model.D.D_z, twin.D_z)]
    before = [p.data.copy() for net, _ in nets for p in net.parameters()]
    for start in (0, 10):
        replay()
        batch = (tg.tensor(x[start:start + 10]), tg.tensor(np.full(10, -1)))  # labels unread
        ours, theirs = model.train_step(batch), twin.step(torch.from_numpy(x[start:start + 10])
                                                          .flatten(1))
        for key in ("loss_rec", "loss_d", "d_y", "d_z", "loss_g", "loss_cls"):
            assert theirs[key] == pytest.approx(ours[key], rel=1e-5, abs=1e-7), (start, key)
        for net, copy_ in nets:
            for a, b in zip(net.parameters(), copy_.parameters(), strict=True):
                np.testing.assert_allclose(b.detach().numpy(), a.data, rtol=1e-4, atol=1e-6)
    after = [p.data for net, _ in nets for p in net.parameters()]
    assert min(np.abs(a - b).max() for a, b in zip(after, before, strict=True)) > 1e-4
    for _ in range(2):          # lr halves after every epoch, in all four optimizers
        model.end_epoch()
        twin.end_epoch()
    ours_lr = [o.param_groups[0]["lr"] for o in (model.opt_AE, model.opt_D, model.opt_G,
                                                   model.opt_C)]
    assert [o.param_groups[0]["lr"] for o in twin.opts] == pytest.approx(ours_lr)
    assert ours_lr == pytest.approx([cfg.lr_ae / 4, cfg.lr_d / 4, cfg.lr / 4, cfg.lr_cls / 4])
    xt = torch.from_numpy(x[100:150]).flatten(1)
    np.testing.assert_allclose(twin.q_y(xt).numpy(), model.q_y(x[100:150]), rtol=1e-4,
                               atol=1e-6)


def test_aae_torch_twin_quick_runs_on_mnist(tmp_path):
    """The script end to end (2 epochs of 25 steps on MNIST, 100 labels): the log's epochs,
    its 100 distinct labelled images and finite test errors."""
    pytest.importorskip("torch")
    import json

    import aae_torch_twin

    from tinygen.data import load_mnist
    try:
        load_mnist("test", download=False)
    except (FileNotFoundError, ValueError) as err:
        pytest.skip(f"real MNIST not available: {err}")
    out = tmp_path / "twin.json"
    aae_torch_twin.main(["--quick", "--labels", "100", "--hidden", "32", "--out", str(out)])
    log = json.loads(out.read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert all(e["steps"] == 25 and 0 <= e["error"] <= 1 for e in log["epochs"])
    assert len(log["labelled"]) == 100 == len(set(log["labelled"]))


def test_aae_clusters_profile_counts_empty_and_mixed_clusters_by_hand():
    """Three clusters, six naming images, four test images, q(k|x) written by hand: cluster 0
    holds two 0s and a 1 (head: a 0), cluster 1 two 1s and a 2 (head: the 2), cluster 2 none."""
    import aae_clusters
    import numpy as np

    from tinygen.models import aae_semi
    q = np.array([[.9, .1, 0], [.8, .2, 0], [.7, .3, 0], [.1, .6, .3], [.2, .7, .1],
                  [0, .65, .35],                                           # naming pool
                  [1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]], np.float32)  # test
    model = aae_semi.CategoricalAAE(aae_semi.Config(image_size=2, hidden=4, latent=2,
                                                    labels=0, clusters=3))
    model.q_y = lambda x: q[np.asarray(x)[:, 0]]           # image i is its row of q
    x, y = np.arange(6)[:, None], np.array([0, 0, 1, 1, 2, 1])
    xt, yt = np.arange(6, 10)[:, None], np.array([0, 1, 1, 0])
    r = aae_clusters.profile(model, x, y, xt, yt)
    assert (r["clusters"], r["used"], r["largest"]) == (3, 2, 3)
    assert r["mean_max_q"] == pytest.approx((.9 + .8 + .7 + .6 + .7 + .65) / 6)
    assert r["purity"] == pytest.approx(4 / 6)
    assert r["head_error"] == pytest.approx(2 / 4)        # cluster 1 is named 2: both 1s wrong
    assert r["majority_error"] == 0.0                     # named 1 by its majority: all right
    assert r["unnamed"] == [1]                            # no used cluster has a 1 for head


def test_aae_clusters_reads_a_run_folder_and_refuses_one_without_a_checkpoint(tmp_path, capsys):
    import dataclasses

    import aae_clusters

    import tinygen as tg
    from tinygen.data import DataLoader
    from tinygen.data.datasets import load_dataset
    from tinygen.models import aae_cluster
    from tinygen.train import fit
    x, y = load_dataset("digits", "train")
    tg.manual_seed(0)
    cfg = aae_cluster.Config(dataset="digits", image_size=8, hidden=8, batch_size=10)
    model = aae_cluster.CategoricalAAE(cfg)
    model.setup(x, y)
    loader = DataLoader((x, y), batch_size=10, shuffle=True, drop_last=True, generator=0)
    fit(model, loader, 1, tmp_path / "run", config={"model": "aae_cluster",
                                                    **dataclasses.asdict(cfg)},
        max_steps=3, quiet=True, sample_every=0)
    aae_clusters.main([str(tmp_path / "run")])
    row = [line for line in capsys.readouterr().out.splitlines() if "run" in line][-1]
    xt, yt = load_dataset("digits", "test")
    model.eval()
    error = model.cluster_error(x[:10_000], y[:10_000], xt, yt)
    assert "of 16 |" in row and f"{100 * error:.2f}%" in row         # the paper's scoring
    with pytest.raises(SystemExit, match="no checkpoint.npz in"):
        aae_clusters.main([str(tmp_path / "nothing")])
