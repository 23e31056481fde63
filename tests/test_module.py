"""Module: parameter discovery, PyTorch-style names, state_dict round trips, modes."""

import numpy as np
import pytest

import tinygen as tg
from tinygen import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.extra = [nn.Linear(4, 4), (nn.Linear(4, 2),)]
        self.by_name = {"head": nn.Linear(2, 1)}
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.not_a_param = tg.ones(3)            # a plain tensor is neither param nor buffer

    def forward(self, x):
        x = self.norm(self.lin(x)).relu()
        x = self.extra[1][0](self.extra[0](x))
        return self.by_name["head"](x) * self.scale


def test_parameters_are_found_in_attributes_lists_tuples_and_dicts():
    # As in PyTorch, a module's own parameters come before its submodules'.
    names = [n for n, _ in Block().named_parameters()]
    assert names == ["scale", "lin.weight", "lin.bias", "norm.weight", "norm.bias",
                     "extra.0.weight", "extra.0.bias", "extra.1.0.weight", "extra.1.0.bias",
                     "by_name.head.weight", "by_name.head.bias"]


def test_buffers_are_saved_but_not_trained():
    m = Block()
    assert [n for n, _ in m.named_buffers()] == [
        "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"]
    assert all(not b.requires_grad for b in m.buffers())
    assert "norm.running_var" in m.state_dict()
    assert "not_a_param" not in m.state_dict()


def test_shared_parameter_is_listed_once():
    shared = nn.Linear(2, 2)
    m = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(m.parameters())) == 2
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias"]


def test_sequential_names_children_by_position():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))
    assert list(m.state_dict()) == ["0.weight", "0.bias", "2.0.weight", "2.0.bias"]
    assert isinstance(m[2], nn.Sequential) and len(m) == 3


def test_state_dict_round_trip_gives_identical_outputs():
    tg.manual_seed(0)
    a, b = Block(), Block()
    x = tg.randn(5, 3)
    a.train()
    a(x)                                         # moves the running statistics
    b.load_state_dict(a.state_dict())
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)
    for (n1, t1), (n2, t2) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert n1 == n2
        np.testing.assert_array_equal(t1, t2)


def test_state_dict_is_a_copy():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    sd["weight"][:] = 123
    assert not np.any(m.weight.data == 123)


def test_load_state_dict_lists_every_problem_and_loads_nothing():
    m = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    before = m.state_dict()
    bad = {"0.weight": np.zeros((3, 2)), "0.bias": np.zeros(4), "9.weight": np.zeros(1)}
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(bad)
    text = str(err.value)
    for needle in ["missing keys: 1.weight, 1.bias", "unexpected keys: 9.weight",
                   "0.bias: checkpoint (4,) vs model (3,)"]:
        assert needle in text
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_non_strict_load_reports_missing_and_unexpected():
    m = nn.Linear(2, 3)
    missing, unexpected = m.load_state_dict({"weight": np.ones((3, 2)), "foo": 1}, strict=False)
    assert missing == ["bias"] and unexpected == ["foo"]
    np.testing.assert_array_equal(m.weight.data, np.ones((3, 2)))
    assert m.weight.dtype == np.float32          # loading keeps the parameter's dtype


def test_train_eval_reach_every_submodule():
    m = Block()
    m.eval()
    assert all(not sub.training for sub in m.modules())
    m.train()
    assert all(sub.training for sub in m.modules())


def test_dropout_is_identity_in_eval_mode():
    d = nn.Dropout(0.5)
    x = tg.ones(100)
    d.eval()
    np.testing.assert_array_equal(d(x).data, x.data)
    d.train()
    y = d(x).data
    assert set(np.unique(y)) <= {0.0, 2.0} and 0 < (y == 0).sum() < 100


def test_zero_grad_and_apply():
    m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    m(tg.randn(3, 2)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Linear", "Sequential"]   # children first, then self


def test_subclass_that_skips_super_init_still_works():
    class Lazy(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(2, 2)

    assert len(list(Lazy().parameters())) == 2


def test_init_functions_follow_their_formulas():
    w = nn.Parameter(np.zeros((200, 300), dtype=np.float32))
    nn.init.xavier_uniform_(w, generator=np.random.default_rng(0))
    bound = np.sqrt(6 / (200 + 300))
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.95 * bound
    nn.init.kaiming_normal_(w, nonlinearity="relu", generator=np.random.default_rng(0))
    assert abs(w.data.std() - np.sqrt(2 / 300)) < 0.05 * np.sqrt(2 / 300)
    nn.init.zeros_(w)
    assert not w.data.any()


def test_default_linear_init_is_pytorchs_range():
    tg.manual_seed(0)
    lin = nn.Linear(400, 50)
    bound = 1 / np.sqrt(400)
    assert np.abs(lin.weight.data).max() <= bound
    assert np.abs(lin.bias.data).max() <= bound
    assert abs(lin.weight.data.std() - bound / np.sqrt(3)) < 0.05 * bound
