"""The optimizer base class: what every optimizer shares, and none of the update math.

Read this file first in `tinygen/optim/`. It teaches the bookkeeping that PyTorch's optimizers
share, so that `sgd.py`, `adam.py` and `rmsprop.py` can each be just an update rule:

- **Parameter groups.** An optimizer holds a list of dicts, `param_groups`. Each holds its own
  `params` and its own options (`lr`, `momentum`, ...). Options that a group does not set come
  from the optimizer's `defaults`. This is how one model trains its body at one learning rate
  and its head at another, and it is what a learning-rate scheduler edits (`group["lr"]`).
- **State.** `state[p]` is a dict per parameter (momentum buffers, moment estimates, a step
  count). It is created lazily, on the first step in which `p` has a gradient.
- **Checkpoints.** `state_dict()` names each parameter by its position across the groups (0, 1,
  2, ...) instead of by the object, because objects do not survive a restart. It holds only
  NumPy arrays and plain numbers, so it can be written as `.npz` plus JSON without pickle.

The updates write into `p.data` in place: a step allocates no new parameter arrays, and any
view of a parameter's array (a weight shared as a slice, a buffer an exporter kept) sees the
new values. Layers hold the Parameter object itself, so they would see a rebound `p.data` too;
in place is about memory and views, not about reaching the layers.

Read `sgd.py` next, then `adam.py`, `rmsprop.py`, `lr_scheduler.py` and `clip.py`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from tinygen.autograd import ShapeError, enable_grad


class Optimizer:
    """Base class. A subclass sets `defaults`, validates options and defines `_update`.

    `params` is an iterable of parameters, or an iterable of dicts (parameter groups), e.g.
    `SGD([{"params": body}, {"params": head, "lr": 1e-2}], lr=1e-3)`.
    """

    def __init__(self, params, defaults: dict):
        self._check_options(defaults)
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}  # parameter -> dict; tensors hash by identity
        if _is_param(params):
            raise TypeError("params must be an iterable of parameters or of dicts, got a single "
                            "tensor: pass [p] instead of p")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- what a subclass provides ----------------------------------------------------------------
    def _check_options(self, options: dict) -> None:
        """Raise ValueError for a bad hyper-parameter. Called on defaults and on every group."""

    def _update(self, p, grad: np.ndarray, state: dict, group: dict) -> None:
        """Apply one step to `p.data` in place, given its gradient, its state and its group."""
        raise NotImplementedError

    # -- groups ------------------------------------------------------------------------------------
    def add_param_group(self, group: dict) -> None:
        """Add a group; options it leaves out are taken from `defaults`."""
        if not isinstance(group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(group).__name__}")
        if "params" not in group:
            raise ValueError("a parameter group needs a 'params' entry")
        params = group["params"]
        params = [params] if _is_param(params) else list(params)
        for p in params:
            _check_param(p)
        _check_no_duplicates(params, self.param_groups)
        group = {**self.defaults, **group, "params": params}
        self._check_options(group)
        self.param_groups.append(group)

    # -- the training-loop API -------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients. `None` (the default) frees memory and lets `step` skip `p`."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0  # in place: someone may hold the array

    def step(self, closure: Callable[[], object] | None = None):
        """Update every parameter that has a gradient. `closure` re-evaluates the loss (PyTorch's
        signature, for optimizers such as L-BFGS that need it); its value is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._check_grads()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:  # unused in this forward pass: leave p and its state alone
                    continue
                self._update(p, p.grad, self.state.setdefault(p, {}), group)
        return loss

    def _check_grads(self) -> None:
        """Every gradient has its parameter's shape. NumPy would broadcast a (1, 3) gradient
        over a (4, 3) parameter without a word. All are checked before any is applied, so a
        bad one leaves every parameter as it was."""
        for index, p in enumerate(self._all_params()):
            shape = getattr(p.grad, "shape", None)
            if p.grad is not None and shape != p.shape:
                raise ShapeError(f"{type(self).__name__}.step: parameter {index} has shape "
                                 f"{p.shape} but its .grad has shape {shape} (was .grad set "
                                 f"by hand?)")

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """A snapshot: `{"state": {index: {name: ndarray | number}}, "param_groups": [...]}`.

        Arrays are copied (unlike PyTorch, which returns references), so later steps cannot
        change a snapshot that has not been written to disk yet.
        """
        index = {id(p): i for i, p in enumerate(self._all_params())}
        groups = [{**_plain(_options(g)), "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        state = {index[id(p)]: {k: _copy_value(v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        # The class name lets load_state_dict refuse an Adam checkpoint given to SGD at once,
        # rather than with a KeyError at the next step (PyTorch's state_dict has no such key).
        return {"state": state, "param_groups": groups, "optimizer": type(self).__name__}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and state saved by `state_dict`, onto this optimizer's parameters.

        Parameters are matched by position, so build the optimizer over the same parameters in
        the same order. Everything is checked before anything changes; a mismatch raises a
        ValueError that names the group, parameter or state entry that differs.
        """
        self._check_same_kind(state_dict)
        saved_groups = state_dict["param_groups"]
        _check_group_layout(saved_groups, self.param_groups)
        by_index = {}
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            by_index.update(zip(saved["params"], group["params"], strict=True))
        # JSON turns dict keys into strings, so accept "3" as well as 3.
        state = {}
        for key, entries in state_dict["state"].items():
            p = by_index.get(int(key))
            if p is None:
                raise ValueError(f"load_state_dict: state for parameter {key}, which no "
                                 f"parameter group lists")
            state[p] = {name: _restore_value(v, p, key, name) for name, v in entries.items()}
        self.state = state
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            group.update({k: _untuple(v) for k, v in _options(saved).items()})

    def _check_same_kind(self, state_dict) -> None:
        """Refuse a state dict made by another optimizer class, naming both, before anything
        changes. Files without the class name (older checkpoints) are judged by their options:
        SGD's groups have `momentum`, Adam's have `betas`. Extra options are fine: LR
        schedulers add `initial_lr` to every group."""
        me = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{me}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups' (from optimizer.state_dict()), got {got}")
        saved = state_dict.get("optimizer")
        if saved is not None and saved != me:
            raise ValueError(f"{me}.load_state_dict: the state dict was saved by {saved}; "
                             f"build a {saved} to load it")
        mine = set(self.defaults)
        for i, group in enumerate(state_dict["param_groups"]):
            theirs = set(_options(group)) if isinstance(group, dict) else set()
            if mine - theirs or "params" not in group:
                raise ValueError(f"{me}.load_state_dict: parameter group {i} lacks "
                                 f"{sorted(mine - theirs) or ['params']}, which {me} needs "
                                 f"(it has {sorted(theirs)}); was it saved by another "
                                 f"optimizer class?")

    def _all_params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={v}" for k, v in _options(group).items())
            lines.append(f"  group {i}: {len(group['params'])} params, {options}")
        return "\n".join(lines + [")"])


# ------------------------------------------------------------------------------------------------
# Helpers: validation of parameters and checkpoints.


def _is_param(x) -> bool:
    return isinstance(getattr(x, "data", None), np.ndarray)


def _check_param(p) -> None:
    if not _is_param(p):
        raise TypeError(f"optimizer can only optimize tensors, got {type(p).__name__}")
    if not np.issubdtype(p.dtype, np.floating):
        raise TypeError(f"optimizer can only optimize floating-point tensors, got {p.dtype}")


def _check_no_duplicates(params: list, groups: list[dict]) -> None:
    # A parameter listed twice would be updated twice per step (PyTorch raises across groups
    # and only warns within one; we raise for both).
    seen = {id(p) for group in groups for p in group["params"]}
    for p in params:
        if id(p) in seen:
            raise ValueError("some parameters appear more than once in the parameter groups")
        seen.add(id(p))


def _options(group: dict) -> dict:
    return {k: v for k, v in group.items() if k != "params"}


def _plain(options: dict) -> dict:
    """NumPy scalars (say lr=np.float32(0.1)) as Python numbers, so JSON can write them."""
    def plain(v):
        if isinstance(v, tuple | list):
            return type(v)(plain(x) for x in v)
        return v.item() if isinstance(v, np.generic) else v
    return {k: plain(v) for k, v in options.items()}


def _untuple(v):
    return tuple(v) if isinstance(v, list) else v  # JSON has no tuples: betas come back lists


def _copy_value(v):
    return v.copy() if isinstance(v, np.ndarray) else v


def _check_group_layout(saved_groups: list, groups: list) -> None:
    if len(saved_groups) != len(groups):
        raise ValueError(f"load_state_dict: number of parameter groups differs: "
                         f"{len(saved_groups)} in the state dict, {len(groups)} in the optimizer")
    for i, (saved, group) in enumerate(zip(saved_groups, groups, strict=True)):
        if len(saved["params"]) != len(group["params"]):
            raise ValueError(f"load_state_dict: parameter group {i} has {len(saved['params'])} "
                             f"parameters in the state dict, {len(group['params'])} in the "
                             f"optimizer")


def _restore_value(v, p, index, name: str):
    """Copy a saved state entry; arrays must match the parameter's shape and take its dtype."""
    if isinstance(v, np.ndarray):
        if v.shape != p.shape:
            raise ValueError(f"load_state_dict: state '{name}' of parameter {index} has shape "
                             f"{v.shape} in the state dict, but the parameter has {p.shape}")
        return np.array(v, dtype=p.dtype, copy=True)
    if isinstance(v, numbers.Number):
        return v.item() if isinstance(v, np.generic) else v
    raise TypeError(f"load_state_dict: state '{name}' of parameter {index} is a "
                    f"{type(v).__name__}; expected an ndarray or a number")


def check_nonnegative(options: dict, *names: str, owner: str = "optimizer") -> None:
    """The check every optimizer makes: rates, decays and epsilons are finite numbers >= 0.
    A string, None, NaN, inf or a pair where one number belongs is refused here, at
    construction, instead of failing (or training on NaN) at the first step."""
    for name in names:
        check_number(options[name], name, owner)
        if not options[name] >= 0:
            raise ValueError(f"{owner}: invalid {name}: {options[name]} (must be >= 0)")


def check_number(value, name: str, owner: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: invalid {name}: {value!r} (must be a number, got "
                         f"{type(value).__name__})")
    if not np.isfinite(value):
        raise ValueError(f"{owner}: invalid {name}: {value} (must be finite)")
