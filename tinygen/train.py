"""The one training loop every tinygen model uses, and what a model must offer it.

A model (see `Model` below) knows how to take one optimisation step on a batch and return its
losses as floats; it may also `sample(n)` and `evaluate(loader)`. `fit` owns everything else:

- a progress bar with running losses and images/s (one line per log interval when the output
  is not a terminal, e.g. in CI);
- an output folder with `log.jsonl` (one JSON object per line), sample grids, and
  `checkpoint.npz`;
- checkpoints that resume **bitwise**: the file holds the model, its optimizers, tinygen's
  global RNG, the data loader's RNG as it was at the start of the epoch and how many batches of
  that epoch were done. Resuming replays the same permutation and skips those batches, so the
  resumed run sees exactly the batches and noise an uninterrupted run would have seen;
- Ctrl-C: finish nothing half-way, save a checkpoint, and return.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import sys
import time
from pathlib import Path

import numpy as np

from tinygen import nn, serialization
from tinygen.autograd import Tensor, default_generator, no_grad
from tinygen.optim import Optimizer

CHECKPOINT = "checkpoint.npz"


class Model(nn.Module):
    """Base class of trainable models: networks and their optimizers in one object."""

    takes_points = False   # True for models that can train on the 2-D toy sets (gan)

    def setup(self, x, y) -> None:
        """Called by `tinygen train` with the whole training set (arrays) before the first
        step; a model that keeps part of it (the semi-supervised GAN's few labelled images)
        takes it here. On --resume the checkpoint then restores the state."""

    def train_step(self, batch) -> dict:
        """One optimisation step on `batch` (a tuple of tensors); returns losses as floats."""
        raise NotImplementedError

    def sample(self, n: int) -> np.ndarray:
        """n samples as an array: images (n, C, H, W) in [0, 1], or points (n, 2)."""
        raise NotImplementedError

    def evaluate(self, loader) -> dict:
        """Metrics on held-out data (optional)."""
        return {}

    def progress_samples(self, n: int) -> np.ndarray:
        """The samples drawn after each epoch; GANs use the same noise every time, so the
        grids show how one z's image changes as G learns."""
        return self.sample(n)

    def end_epoch(self) -> None:
        """Called after every epoch (step per-epoch LR schedulers here)."""

    def on_log(self, record: dict) -> None:
        """Called at every log interval with the record about to be written; a model may add
        numbers to it (the GAN health monitor adds its probe and prints its warnings)."""

    def write_figures(self, out_dir) -> None:
        """Called with each sample grid (every `sample_every` epochs) and at the end of
        training: figures of the run so far."""

    def optimizers(self) -> dict:
        """Every optimizer (and LR scheduler) held as an attribute, by attribute name."""
        return {k: v for k, v in vars(self).items() if hasattr(v, "state_dict")
                and (isinstance(v, Optimizer) or hasattr(v, "last_epoch"))}

    def checkpoint_state(self) -> dict:
        return {"model": self.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()}}

    def load_checkpoint_state(self, state: dict) -> None:
        self.load_state_dict(state["model"])
        for name, opt in self.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])


# ----------------------------------------------------------------------------------------------
# Progress bar: small, dependency-free, and quiet when nobody is watching.


class Progress:
    def __init__(self, total: int, desc: str, every: int, stream=None):
        self.total, self.desc, self.every = total, desc, max(every, 1)
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.start = time.perf_counter()
        self.images = 0

    def update(self, done: int, images: int, losses: dict) -> None:
        self.images += images
        if not self.tty and done % self.every and done != self.total:
            return
        elapsed = time.perf_counter() - self.start
        rate = self.images / max(elapsed, 1e-9)
        eta = (self.total - done) * elapsed / max(done, 1)
        bar = "#" * int(20 * done / self.total)
        stats = " ".join(f"{k} {v:.4g}" for k, v in losses.items())
        line = (f"{self.desc} [{bar:<20}] {done}/{self.total} {stats} "
                f"{rate:,.0f} img/s eta {eta:.0f}s")
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


# ----------------------------------------------------------------------------------------------
# The loop.


@dataclasses.dataclass
class FitResult:
    step: int
    epoch: int
    interrupted: bool
    history: list
    seconds: float


def fit(model: Model, loader, epochs: int, out_dir, *, config=None, resume=False,
        log_every: int = 50, sample_every: int = 1, sample_n: int = 64, eval_loader=None,
        checkpoint_every: int = 0, max_steps: int | None = None, to_tensors=None,
        quiet: bool = False) -> FitResult:
    """Train `model` on `loader` for `epochs`, writing logs, samples and checkpoints to
    `out_dir`. `resume=True` continues from `out_dir/checkpoint.npz` if it exists.

    checkpoint_every: also save every N steps (0: only at epoch ends and on Ctrl-C).
    max_steps: stop after this many steps in total (smoke tests and benchmarks).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = _State(step=0, epoch=0, batch=0, loader_rng=loader.generator.bit_generator.state)
    if resume and (out / CHECKPOINT).exists():
        state = _restore(model, loader, out / CHECKPOINT)
        _truncate_log(out / "log.jsonl", state.step)
        print(f"resumed from {out / CHECKPOINT} at epoch {state.epoch + 1}, "
              f"step {state.step}", file=sys.stderr)
    to_tensors = to_tensors or _default_to_tensors
    history, started = [], time.perf_counter()
    interrupted = False
    log = open(out / "log.jsonl", "a")  # noqa: SIM115 (closed in finally)
    try:
        with _interrupt_between_steps():
            while state.epoch < epochs and not _done(state, max_steps):
                epoch_start = time.perf_counter()
                state = _run_epoch(model, loader, state, epochs, out, log, history, config,
                                   log_every, checkpoint_every, max_steps, to_tensors, quiet)
                if state.batch == 0:               # the epoch completed
                    _end_of_epoch(model, state, out, log, history, eval_loader,
                                  sample_every, sample_n, config, quiet,
                                  seconds=time.perf_counter() - epoch_start)
            if state.batch:                        # stopped mid-epoch by max_steps
                _save(model, state, out, config)
            model.write_figures(out)               # the figures of the whole run, once more
    except _ForcedStop:
        interrupted = True                      # mid-step: the weights may be half-updated
        print(f"\nstopped at once: nothing saved; {out / CHECKPOINT} holds the last complete "
              f"checkpoint", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        _save(model, state, out, config)
        print(f"\ninterrupted: saved {out / CHECKPOINT} at step {state.step}; "
              f"continue with --resume", file=sys.stderr)
    finally:
        log.close()
    return FitResult(state.step, state.epoch, interrupted, history,
                     time.perf_counter() - started)


@dataclasses.dataclass
class _State:
    step: int        # optimisation steps taken in total
    epoch: int       # completed epochs
    batch: int       # batches done in the current epoch
    loader_rng: dict  # the loader's RNG state at the start of the current epoch


class _ForcedStop(KeyboardInterrupt):
    """A second Ctrl-C: stop immediately, possibly mid-step, and save nothing."""


class _Interrupt:
    """Ctrl-C in the middle of an optimizer update would leave half the weights updated.
    So while training, SIGINT only raises a flag, and the loop raises KeyboardInterrupt at
    the next boundary between two steps, where the checkpoint is consistent."""

    requested = False

    def handler(self, signum, frame):
        if self.requested:                      # a second Ctrl-C means "stop right now"
            raise _ForcedStop
        self.requested = True

    def raise_if_requested(self):
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt


_INTERRUPT = _Interrupt()


@contextlib.contextmanager
def _interrupt_between_steps():
    # Leave SIGINT alone where it is ignored (a background job started with `&` or nohup)
    # and outside the main thread, where Python cannot install handlers.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    try:
        previous = signal.signal(signal.SIGINT, _INTERRUPT.handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _INTERRUPT.requested = False


def _done(state, max_steps):
    return max_steps is not None and state.step >= max_steps


def _default_to_tensors(batch):
    return tuple(Tensor(b) for b in batch)


def _run_epoch(model, loader, state, epochs, out, log, history, config, log_every,
               checkpoint_every, max_steps, to_tensors, quiet):
    model.train()
    loader.generator.bit_generator.state = state.loader_rng
    bar = None if quiet else Progress(len(loader), f"epoch {state.epoch + 1}/{epochs}",
                                      log_every)
    running: dict = {}
    for i, batch in enumerate(loader):
        if i < state.batch:                    # resuming mid-epoch: replay the permutation
            continue
        losses = model.train_step(to_tensors(batch))
        _check_losses(losses, state.step)
        state.step += 1
        state.batch = i + 1
        _INTERRUPT.raise_if_requested()         # only here, between two whole steps
        running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in losses.items()}
        if bar:
            bar.update(i + 1, len(batch[0]), running)
        if state.step % log_every == 0:
            record = {"step": state.step, "epoch": state.epoch + state.batch / len(loader),
                      **losses}
            model.on_log(record)
            _log(log, history, record)
        if checkpoint_every and state.step % checkpoint_every == 0:
            _save(model, state, out, config)
        if _done(state, max_steps):
            break
    if bar:
        bar.close()
    if state.batch >= len(loader):             # next epoch starts from the current loader RNG
        state.epoch, state.batch = state.epoch + 1, 0
        state.loader_rng = loader.generator.bit_generator.state
        model.end_epoch()
    return state


def _check_losses(losses, step):
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        raise FloatingPointError(f"step {step + 1}: non-finite loss {bad}; lower the learning "
                                 f"rate, or run under tinygen.detect_anomaly() to find the op")


def _end_of_epoch(model, state, out, log, history, eval_loader, sample_every, sample_n,
                  config, quiet, seconds):
    record = {"step": state.step, "epoch": state.epoch, "seconds": seconds}
    if eval_loader is not None:
        model.eval()
        with no_grad():
            record.update({f"eval_{k}": v for k, v in model.evaluate(eval_loader).items()})
        model.train()
    _log(log, history, record)
    if not quiet and len(record) > 3:
        print("  " + " ".join(f"{k} {v:.4g}" for k, v in record.items() if k.startswith("eval")),
              file=sys.stderr)
    # Figures take 0.1-0.3 s each, so not after every one of the toy GAN's 600 short epochs.
    if sample_every and state.epoch % sample_every == 0:
        save_samples(model, out / f"samples_epoch{state.epoch:03d}.png", sample_n,
                     title=f"after epoch {state.epoch}")
        model.write_figures(out)
    _save(model, state, out, config)


def save_samples(model, path, n=64, title=None):
    """Write a grid of `model.progress_samples(n)` (or a scatter for 2-D points), titled by
    the model's name (and `title`, e.g. the epoch); skip if unsupported."""
    from tinygen import plotting

    model.eval()
    try:
        with no_grad():
            samples = model.progress_samples(n)
    except NotImplementedError:
        return None
    finally:
        model.train()
    name = f"{type(model).__name__}: {n} samples"
    return plotting.save_samples(samples, path, f"{name}, {title}" if title else name)


def _truncate_log(path: Path, step: int) -> None:
    """Drop the log lines written after the checkpoint's step: the resumed run replays those
    steps and logs them again, and a learner plotting log.jsonl should see each step once.
    A half-written last line (the process was killed mid-write) is dropped too."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line + "\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept))
    tmp.replace(path)                       # atomic: a crash here keeps the old log


def _log(log, history, record):
    history.append(record)
    log.write(json.dumps(record) + "\n")
    log.flush()


# ----------------------------------------------------------------------------------------------
# Checkpoints.


def _save(model, state, out, config):
    serialization.save({
        "trainer": dataclasses.asdict(state),
        "global_rng": default_generator().bit_generator.state,
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config,
        **model.checkpoint_state(),
    }, out / CHECKPOINT)


def _restore(model, loader, path) -> _State:
    ckpt = serialization.load(path)
    model.load_checkpoint_state(ckpt)
    default_generator().bit_generator.state = ckpt["global_rng"]
    state = _State(**ckpt["trainer"])
    loader.generator.bit_generator.state = state.loader_rng
    return state


def load_config(path) -> dict:
    """The config stored in a run's checkpoint (for `sample` and `eval` commands)."""
    return serialization.load(Path(path))["config"]
