"""Shared benchmark plumbing: warm-up, median of repeats, a Markdown table and a JSON record.

Benchmarks are scripts, never tests: timings vary from machine to machine, so nothing here
asserts a speed. Each script prints a table and writes `benchmarks/results/<name>.json`.
Run them on an otherwise idle machine; each saves the load average next to its numbers.
"""

import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def time_ms(fn) -> float:
    """Wall time of one call of fn(), in milliseconds."""
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0)


def interleaved_medians(fns: dict, repeats: int, warmup: int = 3, block: int = 20,
                        settle: float = 0.0, warmup_s: float = 0.0):
    """Median ms of each function in `fns`, timed round-robin in blocks of `block` calls.

    Each round gives every function untimed warm-up calls (at least `warmup` of them, and for
    at least `warmup_s` seconds) and then `block` timed ones. The rounds spread a burst of
    load from another process over all contenders instead of one. The blocks matter because
    thread pools behave differently when interrupted: OpenBLAS's threads keep spinning for a
    while after a call and steal the cores PyTorch's OpenMP threads want, and idle pools fall
    asleep. Alternating single calls measured PyTorch's VAE step at 8-11 ms instead of the
    4 ms it takes in a real training loop.

    `settle` seconds of sleep before each block let the previous contender's threads stop
    spinning (OpenBLAS's spin for about 2**28 cycles, ~0.1 s, after their last GEMM): without
    it, a 2.4 ms conv timed right after the reference backend's GEMMs measured 4-5.7 ms. After
    such a pause the cores are in deep idle (a VM halts idle virtual CPUs), and the same conv
    needed about 30 calls to get back to speed: hence `warmup_s`.
    Returns (medians, all samples).
    """
    samples = {name: [] for name in fns}
    block = min(block, repeats)
    for _ in range(max(1, repeats // block)):
        for name, fn in fns.items():
            time.sleep(settle)
            start, calls = time.perf_counter(), 0
            while calls < warmup or time.perf_counter() - start < warmup_s:
                fn()
                calls += 1
            samples[name].extend(time_ms(fn) for _ in range(block))
    return {name: statistics.median(t) for name, t in samples.items()}, samples


def try_torch(threads: int):
    """PyTorch if it is installed (set to `threads` threads), else None."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def cpu_name() -> str:
    """The processor's model name (ratios against PyTorch differ between processors)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import numpy as np

    info = {"python": platform.python_version(), "numpy": np.__version__,
            "cpu": cpu_name(), "cores": os.cpu_count(),
            "load_average": os.getloadavg()[0]}
    torch = try_torch(os.cpu_count() or 1)
    if torch is not None:
        info["torch"] = torch.__version__
    try:
        import numba
        info["numba"] = numba.__version__
    except ImportError:
        pass
    return info


def fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def markdown_table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    return path


def train_for(model, loader, epochs: int, max_steps=None) -> tuple[float, int]:
    """Run `model.train_step` over `loader` for `epochs` (or `max_steps` steps), calling
    `model.end_epoch()` after each epoch as `fit` does (its lr schedules); return
    (seconds, steps). The training benchmarks' loop, without fit's logs and checkpoints."""
    import tinygen as tg

    start, steps = time.perf_counter(), 0
    for _ in range(epochs):
        for batch in loader:
            model.train_step(tuple(tg.tensor(b) for b in batch))
            steps += 1
            if max_steps and steps >= max_steps:
                return time.perf_counter() - start, steps
        model.end_epoch()
    return time.perf_counter() - start, steps


# ----------------------------------------------------------------------------------------------
# PyTorch twins trained step for step (ssgan_torch_twin.py, aae_torch_twin.py).


def start_twin(script: str, threads: int):
    """(machine info, torch on `threads` threads) for a twin script, with the header printed;
    exits in one line without PyTorch."""
    info = machine()                    # before try_torch: machine() sets all the cores
    torch = try_torch(threads)
    if torch is None:
        raise SystemExit(f"{script} needs PyTorch")
    print(f"{info['cpu']}, torch {torch.__version__} on {threads} thread(s), "
          f"load average {info['load_average']:.2f}", flush=True)
    return info, torch


def twin_log(info: dict, args, model) -> dict:
    """A twin run's JSON log before its first epoch: machine, options, the model's config and
    its labelled images (indices into the training set)."""
    from dataclasses import asdict
    return {"machine": {**info, "threads": args.threads},
            "args": {**vars(args), "out": str(args.out)}, "config": asdict(model.cfg),
            "labelled": model.labelled.index.data.tolist(), "epochs": []}


def twin_epoch(twin, torch, loader, max_steps=None) -> dict:
    """One pass of `twin.step` over the loader's images (their labels unread: a twin's labels
    are the model's N); the mean of each number it returns, steps and time."""
    sums, steps, start = {}, 0, time.perf_counter()
    for x, _ in loader:
        stats = twin.step(torch.from_numpy(x).flatten(1))
        if not all(math.isfinite(v) for v in stats.values()):        # as fit: stop, not drift
            raise FloatingPointError(f"training diverged at step {steps + 1}: {stats}")
        sums = {k: sums.get(k, 0.0) + v for k, v in stats.items()}
        steps += 1
        if max_steps and steps >= max_steps:
            break
    seconds = time.perf_counter() - start
    return {"steps": steps, "seconds": seconds, "ms_per_step": 1e3 * seconds / steps,
            **{k: v / steps for k, v in sums.items()}}


def write_atomically(path: Path, payload: dict) -> None:
    """Write a temporary file beside `path`, then rename it over `path` (one atomic step)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
