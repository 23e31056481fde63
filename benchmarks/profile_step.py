"""Where a training step's time goes: every primitive's forward and VJP, timed inside the step.

    python benchmarks/profile_step.py                  # the DCGAN step, 10 steps
    python benchmarks/profile_step.py --model vae --steps 50
    python benchmarks/profile_step.py --torch          # also torch.profiler on the same step
    python benchmarks/profile_step.py --model vae --floor   # the step's GEMMs alone
    python benchmarks/profile_step.py --startup        # a fresh process's first step, by part

Each registered primitive's forward and VJP functions are wrapped in a timer for the run, and
so is each of the model's optimizers' `step`. The table lists milliseconds per training step,
by primitive, with calls per step; what is left over ("outside the primitives") is everything
else: the engine (the tape, the backward walk, gradient sums), zero_grad, parameter walks,
the model's own Python and the timers themselves (`python -m cProfile` splits it further).
With --torch the same step written in PyTorch (`bench_models.TORCH_STEPS`, same layers and
weights) runs under `torch.profiler`, whose self-CPU table is printed below ours; it adds its
own overhead to every op.

--floor asks what a speed target leaves room for. It records every matrix product the step
computes (its `linear` layers' forward, dL/dx and dL/dW, and the wide conv kernels' GEMMs,
with their shapes and layouts), then times those products alone -- NumPy's BLAS and torch.mm
on the same matrices -- interleaved with the two whole steps. Nothing in a step can take less
than its GEMMs, so "tinygen step <= r x PyTorch step" leaves r x PyTorch - GEMMs for
everything else (im2col, activations, losses, Adam, the engine), to compare with what
everything else takes now. (PyTorch convolves without these GEMMs, so for a conv model its
own step minus torch.mm is not its overhead.)

--startup times, in a fresh process with the usual (warm) Numba cache, what the first step
of a model costs part by part: importing NumPy and Numba, importing tinygen and building
the model, Numba's own set-up on its first cached function (it imports its typing
registries, and SciPy if installed), loading the step's kernels from the cache, and the
step itself (the second step's time).

Run it on an idle machine (see `bench_models.py`); the load average is printed.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from bench_models import MODELS, TORCH_STEPS, batch_for, build  # noqa: E402
from common import cpu_name, interleaved_medians, markdown_table, try_torch  # noqa: E402

import tinygen as tg  # noqa: E402
from tinygen import ops  # noqa: E402
from tinygen.kernels import numba_kernels  # noqa: E402
from tinygen.nn import functional as F  # noqa: E402


class Timers:
    """Seconds and calls per (name, part), filled by the wrapped functions."""

    def __init__(self):
        self.seconds, self.calls = collections.defaultdict(float), collections.Counter()

    def wrap(self, name, part, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name, part] += time.perf_counter() - start
                self.calls[name, part] += 1
        return timed

    def clear(self):
        self.seconds.clear()
        self.calls.clear()


def instrument(model, timers):
    """Wrap every primitive and the model's optimizers; returns a function that unwraps the
    primitives (they are shared by the whole process; the optimizers die with the model)."""
    saved = [(p, p.forward, p.vjps, p.variadic_vjp, p.joint_vjp) for p in ops.PRIMITIVES.values()]
    for name, p in ops.PRIMITIVES.items():
        p.forward = timers.wrap(name, "forward", p.forward)
        p.vjps = tuple(timers.wrap(name, "vjp", v) for v in p.vjps)
        if p.variadic_vjp is not None:
            p.variadic_vjp = timers.wrap(name, "vjp", p.variadic_vjp)
        if p.joint_vjp is not None:
            p.joint_vjp = timers.wrap(name, "vjp", p.joint_vjp)
    for attr, opt in vars(model).items():
        if isinstance(opt, tg.optim.Optimizer):
            opt.step = timers.wrap(f"{attr} ({type(opt).__name__})", "step", opt.step)

    def undo():
        for p, forward, vjps, variadic, joint in saved:
            p.forward, p.vjps, p.variadic_vjp, p.joint_vjp = forward, vjps, variadic, joint
    return undo


def profile(name, steps, warmup=3):
    model, cfg = build(name)
    x, y = batch_for(cfg, np.random.default_rng(0))
    batch = (tg.tensor(x), tg.tensor(y))
    timers = Timers()
    undo = instrument(model, timers)
    try:
        for _ in range(warmup):
            model.train_step(batch)
        timers.clear()
        start = time.perf_counter()
        for _ in range(steps):
            model.train_step(batch)
        total = (time.perf_counter() - start) / steps
    finally:
        undo()
    return total, timers


# ----------------------------------------------------------------------------------------------
# --floor: the step's GEMMs alone.


def _like(a, rng):
    """Random float32 values in an array of a's shape and layout (a transposed view stays one)."""
    if not a.flags.c_contiguous and a.T.flags.c_contiguous:
        return rng.standard_normal(a.shape[::-1], dtype=np.float32).T
    return rng.standard_normal(a.shape, dtype=np.float32)


class _RecordingNumPy:
    """What `numba_kernels` sees as `np` while recording: NumPy, except that `matmul` also
    records its operands (every GEMM of the conv kernels' wide path is an np.matmul)."""

    def __init__(self, record):
        self.record = record

    def __getattr__(self, name):
        return getattr(np, name)

    def matmul(self, a, b, out=None):
        self.record(a, b)
        return np.matmul(a, b, out=out)


def record_gemms(model, batch):
    """The matrix products one `train_step` computes, as (a, b, source) with a and b arrays of
    the same shapes and layouts and source "linear" (its `linear` layers' forward, dL/dx and
    dL/dW products) or "conv" (the wide conv kernels' GEMMs). Run a step first: kernels
    compiled while recording would see the stand-in `np`."""
    rng, pairs = np.random.default_rng(0), []
    fwd, vjp = F.linear_p.forward, F.linear_p.joint_vjp

    def forward(x, w, b=None):                          # y = x @ W^T
        pairs.append((_like(x.reshape(-1, x.shape[-1]), rng), _like(w, rng).T, "linear"))
        return fwd(x, w, b)

    def joint_vjp(needs, g, out, x, w, b=None):
        g2 = g.reshape(-1, g.shape[-1])
        if needs[0]:                                    # dL/dx = G W
            pairs.append((_like(g2, rng), _like(w, rng), "linear"))
        if needs[1]:                                    # dL/dW = G^T X
            pairs.append((_like(g2, rng).T, _like(x.reshape(-1, x.shape[-1]), rng), "linear"))
        return vjp(needs, g, out, x, w, b)

    F.linear_p.forward, F.linear_p.joint_vjp = forward, joint_vjp
    numba_kernels.np = _RecordingNumPy(
        lambda a, b: pairs.append((_like(a, rng), _like(b, rng), "conv")))
    try:
        model.train_step(batch)
    finally:
        F.linear_p.forward, F.linear_p.joint_vjp = fwd, vjp
        numba_kernels.np = np
    return pairs


def floor(name, repeats, target):
    """Both whole steps and the step's GEMMs alone, interleaved; what `target` leaves over."""
    torch = try_torch(os.cpu_count() or 1)
    if torch is None:
        sys.exit("profile_step: --floor needs PyTorch (pip install torch==2.13.0)")
    model, cfg = build(name)
    x, y = batch_for(cfg, np.random.default_rng(0))
    batch = (tg.tensor(x), tg.tensor(y))
    model.train_step(batch)                             # compiles the kernels first
    recorded = record_gemms(model, batch)
    pairs, convs = [(a, b) for a, b, _ in recorded], sum(s == "conv" for *_, s in recorded)
    if not pairs:
        sys.exit(f"profile_step: {name}'s step computes no GEMMs")
    torch_pairs = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in pairs]
    torch_step = TORCH_STEPS[name](torch, *build(name), x, y)
    fns = {"tinygen step": lambda: model.train_step(batch),
           "PyTorch step": torch_step,
           "its GEMMs alone, NumPy": lambda: [np.matmul(a, b) for a, b in pairs],
           "its GEMMs alone, torch.mm": lambda: [torch.mm(a, b) for a, b in torch_pairs]}
    med, samples = interleaved_medians(fns, repeats, warmup=3, block=max(1, repeats // 5),
                                       settle=0.3, warmup_s=0.3)
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs)
    print(f"{name}: {len(pairs)} GEMMs a step ({convs} in wide convs), {flops / 1e9:.2f} "
          f"GFLOP; {cpu_name()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}; PyTorch {torch.__version__} with "
          f"{torch.get_num_threads()} threads\n")
    rows = [[k, f"{v:.2f}", f"{min(samples[k]):.2f}-{max(samples[k]):.2f}"]
            for k, v in med.items()]
    print(markdown_table(["contender", "median ms", "range ms"], rows))
    gemm, allowed = med["its GEMMs alone, NumPy"], target * med["PyTorch step"]
    print(f"\nThe target, tinygen <= {target:g} x PyTorch, is {allowed:.2f} ms a step. The "
          f"step's GEMMs alone take {gemm:.2f} ms, which leaves {allowed - gemm:.2f} ms for "
          f"everything else;\ntinygen's everything else takes "
          f"{med['tinygen step'] - gemm:.2f} ms now", end="")
    if convs:
        print(" (PyTorch convolves directly, with no GEMM on these matrices, so its step "
              "minus torch.mm is not its overhead).")
    else:
        print(f", PyTorch's {med['PyTorch step'] - med['its GEMMs alone, torch.mm']:.2f} ms.")


# ----------------------------------------------------------------------------------------------
# --startup: a fresh process's first step, part by part.

STARTUP = """
import json, sys, time
t = [time.perf_counter()]
import numpy as np
t.append(time.perf_counter())
import numba
t.append(time.perf_counter())
sys.path.insert(0, {bench!r})
from bench_models import batch_for, build
import tinygen as tg
model, cfg = build({name!r})
x, y = batch_for(cfg, np.random.default_rng(0))
batch = (tg.tensor(x), tg.tensor(y))
t.append(time.perf_counter())
from tinygen.kernels.numba_kernels import _valid_range
_valid_range(0, 1, 1, 1)        # Numba's first cached function: its own set-up happens here
t.append(time.perf_counter())
model.train_step(batch)
t.append(time.perf_counter())
model.train_step(batch)
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])] + ["scipy" in sys.modules]))
"""


def startup(name, runs):
    parts = ["import numpy", "import numba", "import tinygen, build the model",
             "Numba's set-up (first cached function)", "first step (kernels from the cache)",
             "second step"]
    code = STARTUP.format(bench=str(Path(__file__).resolve().parent), name=name)
    times = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=600)
        if done.returncode:
            sys.exit(f"profile_step: the fresh process failed:\n{done.stderr}")
        *seconds, scipy = json.loads(done.stdout.strip().splitlines()[-1])
        times.append(seconds)
    med = np.median(np.array(times), axis=0)
    print(f"{name}: a fresh process with a warm Numba cache, median of {runs}; {cpu_name()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; SciPy imported by "
          f"Numba: {scipy}\n")
    rows = [[part, f"{1e3 * s:.0f}"] for part, s in zip(parts, med, strict=True)]
    rows.append(["**import + first step**", f"**{1e3 * med[:5].sum():.0f}**"])
    rows.append(["of which the cache loads (first step - second step)",
                 f"{1e3 * (med[4] - med[5]):.0f}"])
    print(markdown_table(["part", "ms"], rows))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="dcgan", choices=MODELS)
    p.add_argument("--steps", type=int, default=10, help="timed steps, after 3 warm-up steps")
    p.add_argument("--rows", type=int, default=25, help="rows of each table")
    p.add_argument("--torch", action="store_true", help="also profile the PyTorch step")
    p.add_argument("--floor", action="store_true",
                   help="instead: the step's GEMMs alone against both whole steps (MLP models)")
    p.add_argument("--target", type=float, default=1.0,
                   help="with --floor: the speed target, as a multiple of PyTorch's step")
    p.add_argument("--startup", action="store_true",
                   help="instead: a fresh process's import and first step, part by part")
    args = p.parse_args(argv)
    if args.steps < 1 or args.rows < 1 or not args.target > 0:
        p.error("--steps, --rows and --target must be positive")
    if args.floor:
        return floor(args.model, max(args.steps, 50), args.target)
    if args.startup:
        return startup(args.model, max(3, min(args.steps, 10)))

    total, timers = profile(args.model, args.steps)
    ms = {k: 1e3 * v / args.steps for k, v in timers.seconds.items()}
    print(f"{args.model}: {1e3 * total:.1f} ms per step, mean of {args.steps}; {cpu_name()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}\n")
    print("| primitive | part | ms / step | calls / step |\n|---|---|---|---|")
    for (name, part), v in sorted(ms.items(), key=lambda kv: -kv[1])[:args.rows]:
        print(f"| {name} | {part} | {v:.2f} | {timers.calls[name, part] / args.steps:g} |")
    inside = sum(ms.values())
    print(f"\nall primitives and optimizer steps {inside:.1f} ms; outside the primitives "
          f"{1e3 * total - inside:.1f} ms")

    if args.torch:
        torch = try_torch(os.cpu_count() or 1)
        if torch is None:
            sys.exit("profile_step: --torch needs PyTorch (pip install torch==2.13.0)")
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        model, cfg = build(args.model)
        x, y = batch_for(cfg, np.random.default_rng(0))
        step = TORCH_STEPS[args.model](torch, model, cfg, x, y)
        for _ in range(3):
            step()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                step()
        print(f"\nPyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"{args.steps} steps (self CPU time is the total over all of them):")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
