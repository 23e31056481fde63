"""How we know a gradient is right: compare it with central differences in float64.

For a function f with output y and a random cotangent v, backward gives the analytic
g = d<v, f(x)>/dx. The numerical estimate of one entry is

    (<v, f(x + eps e_i)> - <v, f(x - eps e_i)>) / (2 eps),

accurate to O(eps^2). One forward pass pair per element is fine for small inputs. For large
inputs we instead pick a random direction u and compare <g, u> with the directional difference
(<v, f(x + eps u)> - <v, f(x - eps u)>) / (2 eps): one scalar per check, whatever the size,
and a wrong entry anywhere in g still shows up because u touches every entry.

Everything runs in float64: in float32, eps would have to be so large that the O(eps^2) error
hides real mistakes.
"""

from __future__ import annotations

import numpy as np

from tinygen.autograd import Tensor, no_grad


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree; the message shows the worst entry."""


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, max_elements=64, projections=4,
              seed=0, raise_exception=True) -> bool:
    """Check backward() of `fn(*inputs)` against central differences.

    The inputs checked are the floating tensors with `requires_grad=True` (or, if none is
    marked, every floating tensor). They are copied to float64 first; other arguments pass
    through unchanged. `fn` must be deterministic: seed any randomness inside it.

    Inputs with at most `max_elements` entries are checked entry by entry; larger ones along
    `projections` random directions. Returns True, or raises GradcheckError naming the input,
    the entry (or direction) and both values.
    """
    rng = np.random.default_rng(seed)
    args, checked = _float64_inputs(inputs)
    if not checked:
        raise ValueError("gradcheck: no floating-point tensor input to check")
    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    v = rng.standard_normal(out.shape)
    if not out.requires_grad:
        raise ValueError("gradcheck: fn's output does not depend on any checked input")
    out.backward(v)
    worst = None
    for i in checked:
        x = args[i]
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        f = _objective(fn, args, i, v)
        if x.data.size <= max_elements:
            found = _check_entries(f, x.data, analytic, eps)
        else:
            found = _check_directions(f, x.data, analytic, eps, projections, rng)
        for where, a, n in found:
            excess = abs(a - n) - (atol + rtol * abs(n))
            if excess > 0 and (worst is None or excess > worst[0]):
                worst = (excess, i, x.shape, where, a, n)
    if worst is None:
        return True
    if not raise_exception:
        return False
    _, i, shape, where, a, n = worst
    raise GradcheckError(f"gradcheck failed for input {i} of shape {shape} at {where}: "
                         f"analytic {a:.8g}, numerical {n:.8g}, "
                         f"difference {abs(a - n):.3g} > atol {atol} + rtol {rtol} * |numerical|")


def _float64_inputs(inputs):
    flagged = [isinstance(x, Tensor) and x.requires_grad for x in inputs]
    any_flagged = any(flagged)
    args, checked = [], []
    for i, x in enumerate(inputs):
        is_float = isinstance(x, Tensor) and x.dtype.kind == "f"
        if is_float and (flagged[i] or not any_flagged):
            args.append(Tensor(x.data.astype(np.float64), requires_grad=True))
            checked.append(i)
        elif is_float:
            args.append(Tensor(x.data.astype(np.float64)))
        else:
            args.append(x)
    return args, checked


def _objective(fn, args, i, v):
    """<v, fn(args with input i replaced by an array)>, computed without building a graph."""
    def f(xi):
        call = list(args)
        call[i] = Tensor(xi)
        with no_grad():
            return float(np.sum(fn(*call).data * v))
    return f


def _check_entries(f, x, analytic, eps):
    found = []
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        numerical = (f(xp) - f(xm)) / (2 * eps)
        found.append((f"entry {idx}", float(analytic[idx]), numerical))
    return found


def _check_directions(f, x, analytic, eps, projections, rng):
    found = []
    for k in range(projections):
        u = rng.standard_normal(x.shape)
        numerical = (f(x + eps * u) - f(x - eps * u)) / (2 * eps)
        found.append((f"random direction #{k}", float(np.sum(analytic * u)), numerical))
    return found


def gradcheck_module(module, fn, **kwargs) -> bool:
    """Check the gradient of `fn()` (a scalar built from `module`) w.r.t. every parameter.

    Each parameter attribute is swapped, for the duration of one call, for the float64 copy
    that `gradcheck` differentiates, so `fn` needs no changes: it just calls the module.
    This is how a whole model's objective is checked, end to end. Seed any randomness inside
    `fn`; build the module's inputs in float64.
    """
    from tinygen.nn.module import Parameter

    owners = [(m, name) for m in module.modules() for name, value in vars(m).items()
              if isinstance(value, Parameter)]
    if not owners:
        raise ValueError("gradcheck_module: the module has no parameter attributes")

    def call(*params):
        saved = [getattr(m, name) for m, name in owners]
        for (m, name), p in zip(owners, params, strict=True):
            setattr(m, name, p)
        try:
            return fn()
        finally:
            for (m, name), p in zip(owners, saved, strict=True):
                setattr(m, name, p)

    params = [getattr(m, name).detach().requires_grad_(True) for m, name in owners]
    return gradcheck(call, *params, **kwargs)
