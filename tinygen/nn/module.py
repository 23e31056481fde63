"""Module: a container that finds its own parameters, so models never list them by hand.

A model is an object whose attributes are parameters, buffers and other modules (directly, or
inside lists, tuples and dicts). `named_parameters()` walks those attributes and names every
parameter by its path, `encoder.layers.0.weight`, exactly as PyTorch does, so a state_dict
exported from the same PyTorch architecture loads by name.

- A `Parameter` is a tensor that requires grad and belongs to a module.
- A *buffer* is state that is saved but not trained (batch norm's running mean): register it
  with `register_buffer`.
- `train()` / `eval()` flip `.training` on every submodule (dropout and batch norm read it).

Read `tinygen/nn/layers.py` next for the layers built on this.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from tinygen.autograd import Tensor


class Parameter(Tensor):
    """A trainable tensor: requires grad by default and is found by `Module.parameters()`."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model. Subclasses set attributes and define `forward`."""

    # Class-level defaults, so a subclass that forgets super().__init__() still works.
    training = True
    _buffer_names = frozenset()
    _forward_pre_hooks = ()

    def __init__(self):
        self.training = True
        self._buffer_names = set()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        for hook in self._forward_pre_hooks:
            hook(self, args)
        return self.forward(*args, **kwargs)

    def register_forward_pre_hook(self, hook):
        """Call `hook(module, args)` before every forward, as PyTorch does. Weight norm uses
        this to rebuild `weight` from `weight_g` and `weight_v` (tinygen/nn/gan_layers.py)."""
        self._forward_pre_hooks = (*self._forward_pre_hooks, hook)
        return hook

    # -- finding things by walking attributes -------------------------------------------------
    def _attributes(self):
        """(name, value) pairs that may hold parameters, buffers or submodules."""
        return ((k, v) for k, v in vars(self).items() if not k.startswith("_"))

    def _walk(self, prefix=""):
        """Yield (dotted name, Parameter | buffer Tensor | Module) for direct members.

        Containers (lists, tuples, dicts) are opened, their positions or keys becoming part of
        the name. Submodules are yielded, not entered: callers recurse.
        """
        stack = [(prefix + name, value, name in self._buffer_names)
                 for name, value in self._attributes()]
        stack.reverse()
        while stack:
            name, value, is_buffer = stack.pop()
            if isinstance(value, Parameter | Module) or (is_buffer and isinstance(value, Tensor)):
                yield name, value
            elif isinstance(value, list | tuple):
                stack.extend(reversed([(f"{name}.{i}", v, False) for i, v in enumerate(value)]))
            elif isinstance(value, dict):
                stack.extend(reversed([(f"{name}.{k}", v, False) for k, v in value.items()]))

    def named_modules(self, prefix=""):
        """This module and every submodule, depth first, each once (PyTorch's order)."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(n, m) for n, m in module._walk(name + "." if name else "")
                        if isinstance(m, Module)]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return (m for _, m in self._walk() if isinstance(m, Module))

    def named_parameters(self, prefix=""):
        """Every parameter with its dotted name; a parameter shared by two layers appears once."""
        return self._named_tensors(prefix, lambda name, t: isinstance(t, Parameter))

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self, prefix=""):
        return self._named_tensors(prefix, lambda name, t: not isinstance(t, Parameter))

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def _named_tensors(self, prefix, keep):
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, value in module._walk(mod_name + "." if mod_name else ""):
                if isinstance(value, Tensor) and keep(name, value) and id(value) not in seen:
                    seen.add(id(value))
                    yield name, value

    def register_buffer(self, name: str, value) -> None:
        """Attach state that `state_dict()` saves but the optimizer never sees."""
        if not isinstance(value, Tensor):
            value = Tensor(np.asarray(value))
        self._buffer_names = set(self._buffer_names) | {name}
        setattr(self, name, value)

    # -- modes and housekeeping ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def apply(self, fn) -> Module:
        """Call fn on every submodule and then on self (for custom initialisation)."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    def to(self, dtype) -> Module:
        """Convert every parameter (and its gradient) and every floating buffer to `dtype`, in
        place, and return the module: `model.to(tg.float64)`, as in PyTorch.

        The Parameter objects stay the same, only their arrays change, so an optimizer built
        earlier still holds them (its moment buffers keep their old dtype until reloaded).
        Integer buffers such as `num_batches_tracked` are left alone. `to("cpu")` is accepted
        and changes nothing, since every tinygen tensor lives on the CPU.
        """
        if isinstance(dtype, str) and dtype == "cpu":
            return self
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.to: expected a floating dtype such as "
                            f"tinygen.float64 (or 'cpu'), got {dtype!r}") from None
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: only floating dtypes are allowed, got "
                            f"{dtype}")
        for _, t in self._named_tensors("", _any):
            if t.dtype.kind == "f":
                t.data = t.data.astype(dtype, copy=False)
                if t.grad is not None:
                    t.grad = t.grad.astype(dtype, copy=False)
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- state_dict ---------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Name -> NumPy array copy, for every parameter and buffer."""
        # Module by module, parameters and buffers in attribute order: PyTorch's key order.
        return OrderedDict((n, t.data.copy()) for n, t in self._named_tensors("", _any))

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy arrays in by name. With strict=True, any missing, unexpected or mis-shaped key
        is an error that lists them all; nothing is loaded unless everything fits."""
        own = dict(self.named_parameters())
        own.update(self.named_buffers())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        wrong = [f"{k}: checkpoint {np.shape(state_dict[k])} vs model {own[k].shape}"
                 for k in own if k in state_dict and np.shape(state_dict[k]) != own[k].shape]
        if wrong or (strict and (missing or unexpected)):
            raise RuntimeError(_mismatch_message(type(self).__name__, missing, unexpected, wrong))
        for k, t in own.items():
            if k in state_dict:
                t.data = np.array(state_dict[k], dtype=t.dtype)
        return missing, unexpected

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        kids = [(n, m) for n, m in self._walk() if isinstance(m, Module)]
        for name, child in kids:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + ("\n)" if kids else ")")

    def extra_repr(self) -> str:
        return ""


def _any(name, tensor) -> bool:
    return True


def _mismatch_message(model, missing, unexpected, wrong) -> str:
    parts = [f"load_state_dict: the checkpoint does not fit {model}."]
    if missing:
        parts.append("  missing keys: " + ", ".join(missing))
    if unexpected:
        parts.append("  unexpected keys: " + ", ".join(unexpected))
    if wrong:
        parts.append("  mis-shaped: " + "; ".join(wrong))
    return "\n".join(parts)


class Sequential(Module):
    """Modules applied in order; children are named 0, 1, 2, ... as in PyTorch."""

    def __init__(self, *modules):
        super().__init__()
        self.layers = list(modules)

    def _attributes(self):
        return ((str(i), m) for i, m in enumerate(self.layers))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i):
        return Sequential(*self.layers[i]) if isinstance(i, slice) else self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def append(self, module) -> Sequential:
        self.layers.append(module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are found (a plain list attribute works too)."""

    def __init__(self, modules=()):
        super().__init__()
        self.items = list(modules)

    def _attributes(self):
        return ((str(i), m) for i, m in enumerate(self.items))

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def append(self, module) -> ModuleList:
        self.items.append(module)
        return self
