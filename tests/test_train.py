"""The shared training loop: bitwise resume, Ctrl-C, logs, and refusing non-finite losses."""

import dataclasses
import json
import signal

import numpy as np
import pytest

import tinygen as tg
from tinygen.data import DataLoader
from tinygen.models.classifier import Classifier, Config
from tinygen.train import CHECKPOINT, fit

CFG = Config(dataset="digits", image_size=8, width=4, hidden=16, dropout=0.3, lr=3e-3)


def data(n=96, seed=0):
    """Noise images with one bright pixel whose position is the label: learnable quickly."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = 0.3 * rng.random((n, 1, 8, 8), dtype=np.float32)
    x[np.arange(n), 0, 2 + y // 5 * 3, y % 5 + 1] = 1.0
    return x, y


def make(seed=0):
    """A fresh model and loader; dropout and shuffling both draw random numbers."""
    tg.manual_seed(seed)
    model = Classifier(CFG)
    loader = DataLoader(data(), batch_size=16, shuffle=True, drop_last=True, generator=seed)
    return model, loader


def params(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("stop_after", [4, 6, 9])   # mid-epoch, epoch boundary, mid-epoch
def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path, stop_after):
    model, loader = make()
    fit(model, loader, epochs=3, out_dir=tmp_path / "full", quiet=True, sample_every=0)
    expected = params(model)

    model, loader = make()
    fit(model, loader, epochs=3, out_dir=tmp_path / "part", quiet=True, sample_every=0,
        max_steps=stop_after, checkpoint_every=1)
    tg.manual_seed(12345)                   # a different process state before resuming
    model, loader = make(seed=99)
    result = fit(model, loader, epochs=3, out_dir=tmp_path / "part", resume=True, quiet=True,
                 sample_every=0)
    assert result.step == 18
    assert_bitwise_equal(params(model), expected)


class InterruptAt(Classifier):
    """Sends itself SIGINT in the middle of step `at`, as a user pressing Ctrl-C would."""

    at = 5

    def train_step(self, batch):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.at:
            signal.raise_signal(signal.SIGINT)
        return super().train_step(batch)


@pytest.fixture
def ctrl_c():
    """SIGINT as in an interactive terminal (CI may start us with SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(tmp_path, ctrl_c):
    model, loader = make()
    fit(model, loader, epochs=2, out_dir=tmp_path / "full", quiet=True, sample_every=0)
    expected = params(model)

    tg.manual_seed(0)
    model = InterruptAt(CFG)
    loader = DataLoader(data(), batch_size=16, shuffle=True, drop_last=True, generator=0)
    result = fit(model, loader, epochs=2, out_dir=tmp_path / "run", quiet=True, sample_every=0)
    assert result.interrupted and result.step == InterruptAt.at   # the step in flight finished
    assert (tmp_path / "run" / CHECKPOINT).exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    model, loader = make(seed=7)
    fit(model, loader, epochs=2, out_dir=tmp_path / "run", resume=True, quiet=True,
        sample_every=0)
    assert_bitwise_equal(params(model), expected)


def test_log_jsonl_has_step_losses_and_eval(tmp_path):
    model, loader = make()
    fit(model, loader, epochs=2, out_dir=tmp_path, quiet=True, log_every=2,
        eval_loader=DataLoader(data(32, seed=1), batch_size=16), sample_every=0)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval_acc" in r]
    assert [r["step"] for r in steps] == [2, 4, 6, 8, 10, 12]
    assert [r["epoch"] for r in evals] == [1, 2]
    assert all(0 <= r["eval_acc"] <= 1 for r in evals)


class Exploding(Classifier):
    def train_step(self, batch):
        return {"loss": float("nan")}


def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    tg.manual_seed(0)
    model = Exploding(CFG)
    loader = DataLoader(data(), batch_size=16)
    with pytest.raises(FloatingPointError, match="step 1: non-finite loss"):
        fit(model, loader, epochs=1, out_dir=tmp_path, quiet=True)


def test_training_reduces_the_loss_on_a_fixed_batch():
    tg.manual_seed(0)
    model = Classifier(dataclasses.replace(CFG, lr=1e-2, dropout=0.0, width=8, hidden=32))
    batch = tuple(tg.tensor(a) for a in data(32))
    first = model.train_step(batch)["loss"]
    for _ in range(40):
        last = model.train_step(batch)["loss"]
    assert last < 0.2 * first


class DoubleInterrupt(Classifier):
    """Presses Ctrl-C twice inside one step: the second press must not save a checkpoint."""

    def train_step(self, batch):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return super().train_step(batch)


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_complete_checkpoint(tmp_path, ctrl_c):
    tg.manual_seed(0)
    model = DoubleInterrupt(CFG)
    loader = DataLoader(data(), batch_size=16, shuffle=True, drop_last=True, generator=0)
    result = fit(model, loader, epochs=2, out_dir=tmp_path, quiet=True, sample_every=0,
                 checkpoint_every=1)
    assert result.interrupted and result.step == 2          # step 3 never finished
    from tinygen.serialization import load
    assert load(tmp_path / CHECKPOINT)["trainer"]["step"] == 2


def test_an_ignored_sigint_stays_ignored(tmp_path):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        model, loader = make()
        fit(model, loader, epochs=1, out_dir=tmp_path, quiet=True, sample_every=0)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_resume_leaves_no_duplicate_log_lines_for_replayed_steps(tmp_path):
    # A run killed at step 7 had logged steps 1..7 but checkpointed only at step 5; the resume
    # replays 6 and 7, so their old lines (and a half-written last line) must go.
    model, loader = make()
    fit(model, loader, epochs=2, out_dir=tmp_path, quiet=True, sample_every=0, log_every=1,
        max_steps=5)
    log = tmp_path / "log.jsonl"
    with open(log, "a") as f:
        f.write(json.dumps({"step": 6, "epoch": 1.0, "loss": 9.0}) + "\n")
        f.write(json.dumps({"step": 7, "epoch": 1.1, "loss": 9.0}) + "\n")
        f.write('{"step": 8, "epo')                       # killed mid-write
    model, loader = make()
    fit(model, loader, epochs=2, out_dir=tmp_path, resume=True, quiet=True, sample_every=0,
        log_every=1)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == list(range(1, 13))                     # 12 steps, each logged once
    assert 9.0 not in [r["loss"] for r in records if "loss" in r]
