"""The Tensor and reverse-mode autodiff: how a graph is recorded and walked backwards.

Read this file first. It teaches three ideas:

1. A `Tensor` wraps a NumPy array. When an op runs on tensors that require grad, the output
   remembers the op and its inputs: that record *is* the graph, so no separate tape is kept.
2. `backward()` sorts the graph without recursion (so a 10,000-deep chain works), then visits
   nodes from output to inputs, asking each op for the vector-Jacobian product (VJP) of its
   inputs. Gradients arriving at one node from several consumers are summed.
3. Broadcasting is undone in exactly one place, `unbroadcast`, so no VJP has to think about it.

The ops themselves (forward on ndarrays, VJP beside it, one-line registration) live in
`tinygen/ops.py`: read that next. `tinygen/gradcheck.py` shows how we know the VJPs are right.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

import numpy as np

DEFAULT_DTYPE = np.float32


# ----------------------------------------------------------------------------------------------
# Global switches: grad mode, anomaly mode and the default random generator.


class _State(threading.local):
    """Per-thread switches, so `no_grad()` in one thread cannot affect another."""

    grad_enabled = True
    anomaly = False


_state = _State()
_rng = np.random.default_rng()


@contextlib.contextmanager
def no_grad():
    """Run ops without recording a graph (inference, optimizer updates, metrics)."""
    previous = _state.grad_enabled
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Turn recording back on inside a `no_grad()` block."""
    previous = _state.grad_enabled
    _state.grad_enabled = True
    try:
        yield
    finally:
        _state.grad_enabled = previous


def is_grad_enabled() -> bool:
    return _state.grad_enabled


def manual_seed(seed: int) -> np.random.Generator:
    """Seed tinygen's default generator (used by randn/rand/dropout when none is passed)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def default_generator() -> np.random.Generator:
    return _rng


# ----------------------------------------------------------------------------------------------
# The Tensor.


class Tensor:
    """An n-dimensional array that can remember how it was computed.

    Leaves are made by the user (`tinygen.tensor`, `randn`, a layer's weight). Every other tensor
    is an op's output and carries `_op` (what made it), `_inputs` (the tensors it was made from)
    and `_kwargs` (non-tensor arguments such as `axis`). Only outputs that need a gradient keep
    these, so inference builds no graph at all.

    The math methods (`x.exp()`, `x @ w`, `x.sum(dim=1)`) are attached at the bottom of
    `tinygen/ops.py`, one line each, right after the ops they call.
    """

    __slots__ = ("data", "grad", "requires_grad", "_op", "_inputs", "_kwargs", "_retain",
                 "_origin", "__weakref__")
    __array_priority__ = 100  # make `ndarray + Tensor` call Tensor.__radd__, not NumPy's loop

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = False
        self._op = None
        self._inputs = ()
        self._kwargs = None
        self._retain = False
        self._origin = None
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, data, op, inputs, kwargs, origin):
        """Fast constructor used by `apply`: no validation, the op made `data` itself."""
        t = cls.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = op is not None
        t._op = op
        t._inputs = inputs
        t._kwargs = kwargs
        t._retain = False
        t._origin = origin
        return t

    # -- plain attributes ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._op is None

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors convert to a scalar, "
                             f"got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != DEFAULT_DTYPE:
            extra += f", dtype={self.data.dtype}"
        if self._op is not None:
            extra += f", grad_fn={self._op.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __hash__(self):  # tensors are used as dict keys (optimizer state), by identity
        return id(self)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    # -- grad bookkeeping ---------------------------------------------------------------------
    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"requires_grad: only floating-point tensors can require grad, "
                            f"got dtype {self.data.dtype}")
        if not flag and self._op is not None:
            raise RuntimeError("requires_grad_(False): call .detach() on a non-leaf tensor")
        self.requires_grad = flag
        return self

    def detach(self) -> Tensor:
        """The same data, cut from the graph: gradients will not flow through it."""
        return Tensor._from_op(self.data, None, (), None, None)

    def retain_grad(self) -> Tensor:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retain = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf), weighted by `grad`, into every leaf's `.grad`."""
        backward(self, grad)


def _as_array(data, dtype=None) -> np.ndarray:
    """Turn user data into an ndarray with tinygen's dtype rules.

    Python floats become float32 (like PyTorch); ndarrays keep their dtype unless `dtype` says
    otherwise; a Tensor passes its array through.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray | np.generic) and dtype is None:
        return _checked_dtype(np.asarray(data), data)
    try:
        arr = np.asarray(data) if dtype is None else np.asarray(data, dtype=dtype)
    except (ValueError, OverflowError, TypeError) as err:
        raise _conversion_error(data, dtype, err) from None
    arr = _checked_dtype(arr, data)
    # NumPy stores Python ints beyond int64 as uint64, or mixed with others as float64
    # (rounding them); PyTorch refuses both, and so do we.
    if dtype is None and arr.dtype in (np.uint64, np.float64) and _has_big_int(data):
        raise TypeError(f"tensor: cannot make a tensor from {_what(data)}: an integer does "
                        f"not fit in int64 (-2**63 .. 2**63 - 1)")
    if dtype is None and arr.dtype == np.float64 and not isinstance(data, np.ndarray):
        arr = arr.astype(DEFAULT_DTYPE)  # came from Python floats: use the default dtype
    return arr


# Booleans, integers and floats. Complex numbers would lose their imaginary part in the first
# real op, and object/string arrays have no arithmetic at all, so they are refused up front.
_TENSOR_KINDS = "biuf"


def _checked_dtype(arr: np.ndarray, data) -> np.ndarray:
    if arr.dtype.kind in _TENSOR_KINDS:
        return arr
    if arr.dtype.kind == "c":
        why = "complex numbers are not supported (take .real or .imag first)"
    elif arr.dtype.kind == "O" and _has_big_int(data):
        why = "an integer does not fit in int64 (-2**63 .. 2**63 - 1)"
    elif arr.dtype.kind == "O":
        why = "it holds Python objects (None, or tensors inside a list? use tinygen.stack)"
    elif arr.dtype.kind in "US":
        why = "strings are not numbers"
    else:
        why = f"dtype {arr.dtype} is not a number type"
    raise TypeError(f"tensor: cannot make a tensor from {_what(data)}: {why}")


def _conversion_error(data, dtype, err) -> Exception:
    if "inhomogeneous" in str(err) or "sequence" in str(err):
        return ValueError(f"tensor: {_what(data)} is ragged: its rows have different "
                          f"lengths, so it has no rectangular shape")
    if isinstance(err, OverflowError) or _has_big_int(data):
        return TypeError(f"tensor: {_what(data)} holds an integer too big for "
                         f"{np.dtype(dtype) if dtype is not None else 'int64'}")
    return TypeError(f"tensor: cannot convert {_what(data)}"
                     f"{f' to {dtype}' if dtype is not None else ''}: {err}")


def _has_big_int(data, limit=2**63) -> bool:
    """True if a (nested) Python int in `data` is outside -limit .. limit - 1."""
    stack = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, int) and not -limit <= v < limit:
            return True
    return False


def _what(data) -> str:
    if isinstance(data, np.ndarray):
        return f"an array of dtype {data.dtype} and shape {data.shape}"
    if isinstance(data, list | tuple):
        return f"a {type(data).__name__}"
    return f"{type(data).__name__} {repr(data)[:40]}"


# ----------------------------------------------------------------------------------------------
# Recording: `apply` runs one primitive and, if anything needs a gradient, links the output.


class ShapeError(ValueError):
    """An op received shapes it cannot combine; the message names the op and every shape."""


class AnomalyError(FloatingPointError):
    """Raised inside `detect_anomaly()` by the first op that produces a NaN or Inf."""


def apply(op, *inputs: Tensor, **kwargs) -> Tensor:
    """Run primitive `op` forward on the inputs' arrays and record it if a gradient is needed.

    An op made with `saves=True` is told whether its graph will be recorded (`save=`) and
    returns `(out, saved)`: something its forward computed anyway that its VJP would otherwise
    compute again (conv2d keeps its im2col matrix). The VJP receives it as `saved=`.
    """
    arrays = [t.data for t in inputs]
    wanted = _state.grad_enabled and any(t.requires_grad for t in inputs)
    saved = None
    try:
        if op.saves:
            out, saved = op.forward(*arrays, save=wanted, **kwargs)
        else:
            out = op.forward(*arrays, **kwargs)
    except (ValueError, IndexError) as err:
        raise ShapeError(_describe(op, inputs, kwargs, err)) from None
    if type(out) is not np.ndarray:  # full reductions return NumPy scalars
        out = np.asarray(out)
    record = wanted and out.dtype.kind == "f"
    origin = None
    if _state.anomaly:
        origin = _user_frame()
        _check_finite(op, "forward", out, inputs, origin)
    if not record:
        return Tensor._from_op(out, None, (), None, None)
    if saved is not None:
        kwargs = {**kwargs, "saved": saved}
    return Tensor._from_op(out, op, inputs, kwargs, origin)


def _describe(op, inputs, kwargs, err) -> str:
    shapes = ", ".join(str(t.shape) for t in inputs)
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items() if not isinstance(v, np.ndarray))
    reason = str(err).removeprefix(f"{op.name}: ")
    return f"{op.name}: {reason} (input shapes: {shapes}{args})"


# ----------------------------------------------------------------------------------------------
# Backward: topological order, then VJPs from the output back to the leaves.


def toposort(root: Tensor) -> list[Tensor]:
    """Every tensor `root` depends on, each after all of its inputs. No recursion.

    An explicit stack of (tensor, inputs-done?) pairs replaces the call stack: a tensor is
    appended only when it is popped the second time, after its inputs were all appended.
    """
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        t, inputs_done = stack.pop()
        if inputs_done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        for parent in t._inputs:
            if parent.requires_grad and id(parent) not in seen:
                stack.append((parent, False))
    return order


def backward(root: Tensor, grad=None) -> None:
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad, so there is no graph "
                           "to differentiate (did you forget requires_grad=True, or run it "
                           "under no_grad()?)")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"backward: output has shape {root.shape}; pass grad= of that "
                               f"shape (or call .sum() first), since only scalar outputs have "
                               f"an implicit gradient of 1")
        grad = np.ones_like(root.data)
    else:
        # No copy: VJPs never write into the gradient they are given (a 6.4 MB copy here
        # was a tenth of a conv layer's backward). The caller's array is marked as handed
        # out, so `_own` copies it before it could become some leaf's `.grad`.
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.dtype)
        if grad.shape != root.shape:
            raise ShapeError(f"backward: grad has shape {grad.shape} but the output has shape "
                             f"{root.shape}")
    # Gradients of intermediate nodes live only in this dict, so nothing leaks between calls.
    grads = {id(root): grad}
    handed_out = {id(grad)}
    with no_grad():
        for t in reversed(toposort(root)):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._op is None or t._retain:
                t.grad = _own(g, handed_out) if t.grad is None else t.grad + g
            if t._op is not None:
                _propagate(t, g, grads)


def _own(g, handed_out) -> np.ndarray:
    """g itself if no one else can see it, else a copy.

    `.grad` arrays may be changed in place later (gradient clipping), so two leaves must not
    share one array, and none may be a read-only broadcast view or a view into a larger
    array. Most VJPs return fresh arrays, and handing those over saves a copy per parameter.
    """
    if id(g) in handed_out or not (g.flags.writeable and g.flags.owndata):
        return g.copy()
    handed_out.add(id(g))
    return g


def _propagate(t: Tensor, g: np.ndarray, grads: dict) -> None:
    """Ask t's op for the VJP of each input that needs one, and add it to that input's total."""
    op, arrays = t._op, [p.data for p in t._inputs]
    joint = None  # a joint VJP (convolutions) gives every needed gradient from one call
    if op.joint_vjp is not None:
        joint = op.joint_vjp(tuple(p.requires_grad for p in t._inputs), g, t.data, *arrays,
                             **t._kwargs)
    for i, parent in enumerate(t._inputs):
        if not parent.requires_grad:
            continue
        gi = joint[i] if joint is not None else op.vjp(i, g, t.data, arrays, t._kwargs)
        if gi is None:
            continue
        gi = unbroadcast(gi, parent.shape)
        if gi.dtype != parent.data.dtype:      # float32 leaf used in a float64 expression
            gi = gi.astype(parent.data.dtype)
        if _state.anomaly:
            _check_finite(t._op, f"backward (input {i})", gi, t._inputs, t._origin)
        key = id(parent)
        # Never `+=`: the stored array may be shared with another input's VJP.
        grads[key] = gi if key not in grads else grads[key] + gi


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `g` down to `shape`: the adjoint of NumPy broadcasting, done once for every op.

    Broadcasting copies an input along new leading axes and along axes of size 1, so its VJP
    adds those copies back up.
    """
    if g.shape == shape:
        return g
    if len(shape) == 0:
        return np.asarray(g.sum(), dtype=g.dtype)
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead > 0 else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


# ----------------------------------------------------------------------------------------------
# Anomaly detection: find the first op that produced a NaN or an Inf, and where it was written.


@contextlib.contextmanager
def detect_anomaly():
    """Inside this block, the first op whose forward or backward makes a NaN/Inf raises.

    The error names the op, its input shapes and the line of user code that created the op.
    It costs a finiteness check per op and a stack inspection per recorded op, so it is off
    by default.
    """
    previous = _state.anomaly
    _state.anomaly = True
    try:
        yield
    finally:
        _state.anomaly = previous


def _check_finite(op, phase, out, inputs, origin) -> None:
    if not np.issubdtype(np.asarray(out).dtype, np.floating) or np.isfinite(out).all():
        return
    bad = "NaN" if np.isnan(out).any() else "Inf"
    shapes = ", ".join(str(t.shape) for t in inputs)
    inputs_ok = all(
        not np.issubdtype(t.dtype, np.floating) or np.isfinite(t.data).all() for t in inputs)
    cause = "" if inputs_ok else " (its inputs already contained NaN/Inf)"
    where = f"\n  created at {origin}" if origin else ""
    raise AnomalyError(f"{op.name} {phase} produced {bad}{cause}; input shapes: {shapes}{where}")


_ENGINE_FILES = ("autograd.py", "ops.py", "creation.py")


def _user_frame() -> str:
    """`file:line in function` of the innermost frame outside the engine and `tinygen/nn`.

    Model files count as user code: "loss.py line 12" is what a person debugging wants to see,
    not the line inside `ops.py` where every op is applied.
    """
    package_dir = os.path.dirname(os.path.abspath(__file__))
    internal = {os.path.join(package_dir, f) for f in _ENGINE_FILES}
    nn_dir = os.path.join(package_dir, "nn") + os.sep
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename not in internal and not filename.startswith(nn_dir):
            return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "<unknown>"
