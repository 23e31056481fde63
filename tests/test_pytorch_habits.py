"""What a PyTorch user types in the first hour works, with PyTorch's names and meaning.

`import tinygen as tg` reaches `tg.nn`, `tg.optim`, `tg.data`; modules convert dtype; loss
modules take `reduction`; `from_numpy` shares memory; clipping lives in `tg.nn.utils`;
`TensorDataset` exists; checkpoints give back Tensors and refuse whole models.
"""

import subprocess
import sys

import numpy as np
import pytest

import tinygen as tg

# ----------------------------------------------------------------------------------------------
# Subpackages as attributes, imported lazily.


def test_subpackages_are_attributes_of_tinygen():
    assert tg.nn.Linear(2, 3).weight.shape == (3, 2)
    assert tg.nn.functional.relu(tg.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]
    assert callable(tg.nn.init.kaiming_uniform_)
    assert tg.optim.SGD is not None and tg.data.DataLoader is not None
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        tg.nonexistent  # noqa: B018


def test_import_tinygen_does_not_import_the_kernels():
    # tg.nn pulls in Numba; a bare `import tinygen` must not pay for it.
    code = "import sys, tinygen; print('tinygen.nn' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


# ----------------------------------------------------------------------------------------------
# Module.to / double / float.


def test_module_double_and_float_convert_parameters_and_float_buffers():
    model = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.BatchNorm1d(4))
    weight = model[0].weight
    model(tg.randn(5, 3)).sum().backward()
    assert model.double() is model
    assert model[0].weight is weight                     # same Parameter, new array
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert weight.grad.dtype == np.float64
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64   # integer buffers untouched
    assert model(tg.randn(5, 3, dtype=np.float64)).dtype == np.float64
    assert model.float()[0].weight.dtype == np.float32
    assert model.to(tg.float64) is model and model[0].bias.dtype == np.float64
    assert model.to("cpu") is model


def test_module_to_refuses_non_float_dtypes():
    with pytest.raises(TypeError, match="Linear.to: only floating dtypes.*int64"):
        tg.nn.Linear(2, 2).to(tg.int64)
    with pytest.raises(TypeError, match="Linear.to: expected a floating dtype"):
        tg.nn.Linear(2, 2).to("cuda")


# ----------------------------------------------------------------------------------------------
# softmax / log_softmax take axis= like the reductions.


def test_softmax_and_log_softmax_accept_axis():
    x = tg.randn(3, 4, dtype=np.float64)
    np.testing.assert_allclose(tg.softmax(x, axis=0).data, tg.softmax(x, dim=0).data)
    np.testing.assert_allclose(x.log_softmax(axis=0).data, x.log_softmax(0).data)
    np.testing.assert_allclose(tg.nn.functional.softmax(x, axis=0).data.sum(axis=0), 1.0)
    assert not np.allclose(tg.softmax(x, axis=0).data, tg.softmax(x).data)
    with pytest.raises(TypeError, match="softmax: give dim= or axis=, not both"):
        tg.softmax(x, dim=0, axis=1)
    with pytest.raises(IndexError, match="log_softmax: dim 2 out of range"):
        tg.log_softmax(x, axis=2)


def test_softmax_axis_gradient():
    x = tg.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    w = tg.tensor(np.random.default_rng(1).standard_normal((3, 4)))
    assert tg.gradcheck(lambda a: (tg.softmax(a, axis=0) * w).sum(), x)
    assert tg.gradcheck(lambda a: (tg.log_softmax(a, axis=0) * w).sum(), x)


# ----------------------------------------------------------------------------------------------
# Loss modules.

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((5, 3))
LABELS = np.array([0, 2, 1, 1, 0])
PROBS = 1 / (1 + np.exp(-LOGITS))
TARGETS = RNG.random((5, 3))

# name -> (module builder, input, target)
LOSSES = {
    "MSELoss": (lambda **kw: tg.nn.MSELoss(**kw), LOGITS, TARGETS),
    "L1Loss": (lambda **kw: tg.nn.L1Loss(**kw), LOGITS + 0.1, TARGETS),
    "BCELoss": (lambda **kw: tg.nn.BCELoss(**kw), PROBS, TARGETS),
    "BCEWithLogitsLoss": (lambda **kw: tg.nn.BCEWithLogitsLoss(**kw), LOGITS, TARGETS),
    "CrossEntropyLoss": (lambda **kw: tg.nn.CrossEntropyLoss(**kw), LOGITS, LABELS),
    "NLLLoss": (lambda **kw: tg.nn.NLLLoss(**kw), np.log(PROBS / PROBS.sum(1, keepdims=True)),
                LABELS),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_modules_gradcheck(name, reduction):
    build, x, target = LOSSES[name]
    loss = build(reduction=reduction)
    assert isinstance(loss, tg.nn.Module) and f"reduction={reduction!r}" in repr(loss)
    per_example = (5,) if name in ("CrossEntropyLoss", "NLLLoss") else (5, 3)
    assert loss(tg.tensor(x), target).shape == (per_example if reduction == "none" else ())
    assert tg.gradcheck(lambda a: loss(a, target), tg.tensor(x, requires_grad=True))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_modules_match_pytorch(name, reduction):
    torch = pytest.importorskip("torch")
    build, x, target = LOSSES[name]
    ours = build(reduction=reduction)(tg.tensor(x), target).data
    t_target = torch.tensor(target)
    theirs = getattr(torch.nn, name)(reduction=reduction)(torch.tensor(x), t_target)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_loss_module_options():
    torch = pytest.importorskip("torch")
    ours = tg.nn.CrossEntropyLoss(label_smoothing=0.2)(tg.tensor(LOGITS), LABELS).item()
    theirs = torch.nn.CrossEntropyLoss(label_smoothing=0.2)(torch.tensor(LOGITS),
                                                            torch.tensor(LABELS)).item()
    assert ours == pytest.approx(theirs, rel=1e-10)
    w = np.array([2.0, 0.5, 1.0])
    ours = tg.nn.BCEWithLogitsLoss(pos_weight=tg.tensor(w))(tg.tensor(LOGITS), TARGETS).item()
    theirs = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w))(
        torch.tensor(LOGITS), torch.tensor(TARGETS)).item()
    assert ours == pytest.approx(theirs, rel=1e-10)


def test_loss_modules_refuse_a_bad_reduction_when_built():
    with pytest.raises(ValueError, match="MSELoss: reduction must be 'mean', 'sum' or 'none'"):
        tg.nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="CrossEntropyLoss: label_smoothing must be in"):
        tg.nn.CrossEntropyLoss(label_smoothing=1.5)


# ----------------------------------------------------------------------------------------------
# from_numpy, clipping, TensorDataset.


def test_from_numpy_shares_memory_both_ways():
    a = np.zeros(3, dtype=np.float64)
    t = tg.from_numpy(a)
    assert t.dtype == np.float64
    a[0] = 5.0
    assert t.data[0] == 5.0
    t.data[1] = 7.0
    assert a[1] == 7.0
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        tg.from_numpy([1.0, 2.0])


def test_clipping_lives_in_nn_utils():
    assert tg.nn.utils.clip_grad_norm_ is tg.optim.clip_grad_norm_
    p = tg.nn.Parameter(np.zeros(4, dtype=np.float32))
    p.grad = np.full(4, 3.0, dtype=np.float32)
    total = tg.nn.utils.clip_grad_norm_([p], max_norm=1.0)
    assert total == pytest.approx(6.0)
    assert np.linalg.norm(p.grad) == pytest.approx(1.0, rel=1e-5)
    tg.nn.utils.clip_grad_value_([p], 0.1)
    assert np.abs(p.grad).max() <= 0.1


def test_tensor_dataset_batches_tensors():
    x, y = tg.randn(10, 2), tg.arange(10)
    ds = tg.data.TensorDataset(x, y)
    assert len(ds) == 10
    xb, yb = ds[3]
    np.testing.assert_array_equal(xb, x.data[3])
    batches = list(tg.data.DataLoader(ds, batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]


# ----------------------------------------------------------------------------------------------
# save / load.


def test_load_gives_back_a_tensor_where_a_tensor_was_saved(tmp_path):
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    back = tg.load(tg.save({"t": t, "a": np.ones(2), "plain": [t.detach()]}, tmp_path / "c.npz"))
    assert isinstance(back["t"], tg.Tensor) and back["t"].requires_grad
    assert back["t"].dtype == np.float32 and back["t"].tolist() == [1.0, 2.0]
    assert isinstance(back["a"], np.ndarray) and not isinstance(back["a"], tg.Tensor)
    assert isinstance(back["plain"][0], tg.Tensor) and not back["plain"][0].requires_grad
    single = tg.load(tg.save(tg.arange(3), tmp_path / "one.npz"))
    assert isinstance(single, tg.Tensor) and single.dtype == np.int64


def test_saving_a_model_or_optimizer_is_refused_with_the_fix(tmp_path):
    model = tg.nn.Linear(2, 3)
    with pytest.raises(TypeError, match=r"never pickles.*model\.state_dict\(\)"):
        tg.save(model, tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"optimizer\.state_dict\(\)"):
        tg.save({"opt": tg.optim.SGD(model.parameters(), lr=0.1)}, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
