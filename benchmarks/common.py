"""Shared benchmark plumbing: warm-up, median of repeats, a Markdown table and a JSON record.

Benchmarks are scripts, never tests: timings vary from machine to machine, so nothing here
asserts a speed. Each script prints a table and writes `benchmarks/results/<name>.json`.
"""

import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def median_ms(fn, repeat=15, warmup=3) -> float:
    """Median wall time of `fn()` in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def try_torch(threads: int):
    """PyTorch if it is installed (set to `threads` threads), else None."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def machine() -> dict:
    import numpy as np

    info = {"python": platform.python_version(), "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
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
