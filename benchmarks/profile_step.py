"""Where a training step's time goes: every primitive's forward and VJP, timed inside the step.

    python benchmarks/profile_step.py                  # the DCGAN step, 10 steps
    python benchmarks/profile_step.py --model vae --steps 50
    python benchmarks/profile_step.py --torch          # also torch.profiler on the same step

Each registered primitive's forward and VJP functions are wrapped in a timer for the run, and
so is each of the model's optimizers' `step`. The table lists milliseconds per training step,
by primitive, with calls per step; what is left over ("outside the primitives") is everything
else: the engine (the tape, the backward walk, gradient sums), zero_grad, parameter walks,
the model's own Python and the timers themselves (`python -m cProfile` splits it further).
With --torch the same step written in PyTorch (`bench_models.TORCH_STEPS`, same layers and
weights) runs under `torch.profiler`, whose self-CPU table is printed below ours; it adds its
own overhead to every op.

Run it on an idle machine (see `bench_models.py`); the load average is printed.
"""

import argparse
import collections
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from bench_models import MODELS, TORCH_STEPS, batch_for, build  # noqa: E402
from common import cpu_name, try_torch  # noqa: E402

import tinygen as tg  # noqa: E402
from tinygen import ops  # noqa: E402


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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="dcgan", choices=MODELS)
    p.add_argument("--steps", type=int, default=10, help="timed steps, after 3 warm-up steps")
    p.add_argument("--rows", type=int, default=25, help="rows of each table")
    p.add_argument("--torch", action="store_true", help="also profile the PyTorch step")
    args = p.parse_args(argv)
    if args.steps < 1 or args.rows < 1:
        p.error("--steps and --rows must be positive")

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
