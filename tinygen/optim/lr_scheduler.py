"""Learning-rate schedules: how `group["lr"]` changes over training, PyTorch's way.

A scheduler owns a step counter, `last_epoch`, and after each `scheduler.step()` writes a new
learning rate into every parameter group of its optimizer. The training loop reads:

    for batch in data:
        loss = ...; loss.backward()
        optimizer.step()          # uses the current lr
        scheduler.step()          # then moves to the next one (PyTorch >= 1.1 order)

Constructing a scheduler already applies step 0: it records each group's starting lr as
`group["initial_lr"]` (the "base lr") and sets `group["lr"]` to the schedule's value at 0,
e.g. `start_factor * base_lr` for LinearLR.

Each schedule here is written in closed form, lr(t) as a function of the base lr and t, because
a formula can be read and checked against the paper. PyTorch computes most of them
*recursively* from the current `group["lr"]` (lr_t = lr_{t-1} * gamma); the two agree to
rounding when nothing else touches the lr, and the tests check that against PyTorch. They
differ if you edit `group["lr"]` by hand or stack two schedulers on one optimizer: here the
scheduler overwrites your edit, in PyTorch the edit carries forward.

Read `clip.py` next.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tinygen.optim.optimizer import Optimizer


class LRScheduler:
    """Base class. A subclass defines `get_lr()`: the lr of every group at `last_epoch`."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:  # resuming: the optimizer's state dict must have brought initial_lr back
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param_groups[{i}] has no 'initial_lr'; resuming with "
                                   f"last_epoch={last_epoch} needs the optimizer's state loaded")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()  # step 0 (or last_epoch + 1 when resuming), as PyTorch does

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one step and write the new lrs into the optimizer. PyTorch's deprecated
        `step(epoch)` is not supported: set `last_epoch` and call `step()` instead."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        """The lrs written by the last `step()`, one per group."""
        return list(self._last_lr)

    # -- checkpoints: plain numbers and lists only, so JSON can hold them ------------------------
    _hyper: tuple[str, ...] = ()  # the subclass's own options, saved with the counters

    def state_dict(self) -> dict:
        state = {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs),
                 "last_lr": list(self._last_lr)}
        return state | {name: getattr(self, name) for name in self._hyper}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the counters and options. The optimizer's lrs are restored by loading the
        optimizer's own state dict (its groups hold `lr` and `initial_lr`)."""
        self.last_epoch = state_dict["last_epoch"]
        self.base_lrs = list(state_dict["base_lrs"])
        self._last_lr = list(state_dict["last_lr"])
        for name in self._hyper:
            setattr(self, name, state_dict[name])


def _check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class StepLR(LRScheduler):
    """Multiply the lr by `gamma` every `step_size` steps: lr_t = base * gamma^floor(t / size)."""

    _hyper = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        _check_positive_int("step_size", step_size)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        k = self.last_epoch // self.step_size
        return [base * self.gamma**k for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by `gamma` every step: lr_t = base * gamma^t."""

    _hyper = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from base down to `eta_min` over `T_max` steps (SGDR, Loshchilov & Hutter
    2017, without restarts):

        lr_t = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2

    Past T_max the cosine keeps going, so the lr climbs back to base at 2 T_max, as in PyTorch.
    """

    _hyper = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        _check_positive_int("T_max", T_max)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor moving linearly from `start_factor` to `end_factor` over
    `total_iters` steps, then hold it: a warm-up when start < end.

        lr_t = base * (start + (end - start) * min(t, total_iters) / total_iters)
    """

    _hyper = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must be in [0, 1], got {end_factor}")
        _check_positive_int("total_iters", total_iters)
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        progress = min(self.last_epoch, self.total_iters) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base * factor for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr_t = base * lr_lambda(t), with one function for all groups or a list, one per group.

    `state_dict()` saves the counters but not the functions: a Python function cannot be
    written to JSON. Build the scheduler with the same lambdas again, then load the state.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list,
                 last_epoch: int = -1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, list | tuple):
            if len(lr_lambda) != n:
                raise ValueError(f"expected {n} lr_lambdas (one per group), got "
                                 f"{len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * f(self.last_epoch)
                for base, f in zip(self.base_lrs, self.lr_lambdas, strict=True)]
