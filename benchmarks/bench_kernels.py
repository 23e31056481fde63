"""Benchmark tinygen's conv kernels (reference and Numba) against PyTorch CPU.

What this script teaches: how to time numerical kernels honestly. Inputs are seeded, every
timed function is warmed up first (so Numba compilation and first-touch page faults are not
counted), each number is the median of repeated runs, and Numba's compile time is measured
apart, in fresh subprocesses: "cold" with an empty NUMBA_CACHE_DIR, "cached" reusing it.

fwd+bwd = forward + input gradient + weight gradient, for every layer, including the first
layer on the image where a real model would skip the input gradient: PyTorch is timed the same
way (its input has requires_grad=True), so the comparison is like for like.

Run:   python benchmarks/bench_kernels.py            (batch 128, 7 repeats; a few minutes)
       python benchmarks/bench_kernels.py --quick    (batch 16, 3 repeats; seconds)
       python benchmarks/bench_kernels.py --layer ConvTranspose2d(128   (one layer only)
       python benchmarks/bench_kernels.py --pointwise  (activations, norms, minibatch, Adam)
       python benchmarks/bench_kernels.py --wide-parts (the wide conv forward, pass by pass)
       python benchmarks/bench_kernels.py --cyclegan   (CycleGAN's small convs, batch 32)
The machine must be otherwise idle: with other jobs on the cores every number above moves
(PyTorch's spinning OpenMP threads suffer most), so the load average is printed and saved.
Writes a Markdown table to stdout and JSON to benchmarks/results/bench_kernels.json.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from common import cpu_name, interleaved_medians, time_ms  # noqa: E402

from tinygen.kernels import numba_kernels, reference  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is an optional extra: its columns are simply left out
    torch = None

# (name, kind, C_in, C_out, k, stride, padding, H): the four layers of a small MNIST DCGAN.
LAYERS = [
    ("Conv2d(1,64,4,2,1) 28x28", "conv", 1, 64, 4, 2, 1, 28),
    ("Conv2d(64,128,4,2,1) 14x14", "conv", 64, 128, 4, 2, 1, 14),
    ("ConvTranspose2d(128,64,4,2,1) 7x7", "convT", 128, 64, 4, 2, 1, 7),
    ("ConvTranspose2d(64,1,4,2,1) 14x14", "convT", 64, 1, 4, 2, 1, 14),
]

# The convs of CycleGAN's default networks (width 8, 28x28; `--cyclegan`, batch 32): G's
# edges, halvings, residual-block conv and doublings, and the PatchGAN D's three convs.
CYCLEGAN_LAYERS = [
    ("G Conv2d(1,8,3,1,1) 28x28", "conv", 1, 8, 3, 1, 1, 28),
    ("G Conv2d(8,16,3,2,1) 28x28", "conv", 8, 16, 3, 2, 1, 28),
    ("G Conv2d(16,32,3,2,1) 14x14", "conv", 16, 32, 3, 2, 1, 14),
    ("G block Conv2d(32,32,3,1,1) 7x7", "conv", 32, 32, 3, 1, 1, 7),
    ("G ConvTranspose2d(32,16,4,2,1) 7x7", "convT", 32, 16, 4, 2, 1, 7),
    ("G ConvTranspose2d(16,8,4,2,1) 14x14", "convT", 16, 8, 4, 2, 1, 14),
    ("G Conv2d(8,1,3,1,1) 28x28", "conv", 8, 1, 3, 1, 1, 28),
    ("D Conv2d(1,8,4,2,1) 28x28", "conv", 1, 8, 4, 2, 1, 28),
    ("D Conv2d(8,16,4,2,1) 14x14", "conv", 8, 16, 4, 2, 1, 14),
    ("D Conv2d(16,1,3,1,1) 7x7", "conv", 16, 1, 3, 1, 1, 7),
]


def make_layer(kind, c_in, c_out, k, s, p, h, batch, rng):
    """Seeded float32 input, weight (PyTorch layout) and output gradient for one layer."""
    x = rng.standard_normal((batch, c_in, h, h), dtype=np.float32)
    if kind == "conv":
        w = rng.standard_normal((c_out, c_in, k, k), dtype=np.float32) * 0.05
        y = reference.conv2d_forward(x, w, s, p, 1)
    else:
        w = rng.standard_normal((c_in, c_out, k, k), dtype=np.float32) * 0.05
        y = reference.conv_transpose2d_forward(x, w, s, p, 0, 1)
    gy = rng.standard_normal(y.shape, dtype=np.float32)
    # Multiply-adds of the forward, counted on the conv side; fwd+bwd is three such GEMMs.
    big, small = (x, y) if kind == "conv" else (y, x)
    macs = small.size * big.shape[1] * k * k
    return x, w, gy, macs


def kernel_fns(K, kind, x, w, gy, s, p):
    """(forward, forward+backward) closures for one tinygen backend module K.

    The backward is the joint kernel the layers call (`conv2d_backward` gives the input,
    weight and bias gradients of a conv in one call), so the bias is timed as in a model.
    """
    if kind == "conv":
        b = np.zeros(w.shape[0], w.dtype)
        fwd = lambda: K.conv2d_forward(x, w, s, p, 1, bias=b)
        bwd = lambda: K.conv2d_backward(gy, x, w, s, p, 1)
    else:
        fwd = lambda: K.conv_transpose2d_forward(x, w, s, p, 0, 1)
        bwd = lambda: K.conv_transpose2d_backward(gy, x, w, s, p, 1, 0)
    return fwd, lambda: (fwd(), bwd())


def torch_fns(kind, x, w, gy, s, p):
    """The same two closures for torch.nn.functional, autograd doing the backward."""
    tx = torch.from_numpy(x).requires_grad_(True)
    tw = torch.from_numpy(w).requires_grad_(True)
    tgy = torch.from_numpy(gy)
    # The conv has a bias, as tinygen's is timed with one; the transposed conv has none.
    tb = torch.zeros(w.shape[0], requires_grad=True) if kind == "conv" else None
    op = F.conv2d if kind == "conv" else F.conv_transpose2d

    def fwd():
        with torch.no_grad():
            return op(tx, tw, tb, stride=s, padding=p)

    def fwd_bwd():
        tx.grad = tw.grad = None
        if tb is not None:
            tb.grad = None
        op(tx, tw, tb, stride=s, padding=p).backward(tgy)

    return fwd, fwd_bwd


def bench_layer(layer, batch, repeats, rng):
    name, kind, c_in, c_out, k, s, p, h = layer
    x, w, gy, macs = make_layer(kind, c_in, c_out, k, s, p, h, batch, rng)
    impls = {
        "reference": kernel_fns(reference, kind, x, w, gy, s, p),
        "numba": kernel_fns(numba_kernels, kind, x, w, gy, s, p),
    }
    if torch is not None:
        impls["torch"] = torch_fns(kind, x, w, gy, s, p)
    row = {"layer": name, "batch": batch, "gflop_fwd_bwd": 6 * macs / 1e9}
    fns = {}
    for impl, (fwd, fwd_bwd) in impls.items():
        fns[f"{impl}_fwd_ms"], fns[f"{impl}_fwd_bwd_ms"] = fwd, fwd_bwd
    medians, samples = interleaved_medians(fns, repeats, settle=0.3, warmup_s=0.1)
    row.update(medians)
    row["samples_ms"] = samples
    if torch is not None:
        row["numba_over_torch"] = row["numba_fwd_bwd_ms"] / row["torch_fwd_bwd_ms"]
    row["numba_gflops"] = row["gflop_fwd_bwd"] / (row["numba_fwd_bwd_ms"] / 1e3)
    return row


# The compile-time probe runs in a child process so that the cache directory is its own.
PROBE = """
import time, json
t0 = time.perf_counter()
import numpy as np
from tinygen.kernels import numba_kernels as K
t1 = time.perf_counter()
for c in (3, 16):  # C*kh*kw = 48 takes the direct kernels, 256 the GEMM path
    x = np.ones((2, c, 8, 8), np.float32); w = np.ones((4, c, 4, 4), np.float32)
    y = K.conv2d_forward(x, w, 2, 1, 1, bias=np.ones(4, np.float32))
    K.conv2d_backward(y, x, w, 2, 1, 1)
    K.conv_transpose2d_forward(y, w, 2, 1, 0, 1); K.conv_transpose2d_backward(x, y, w, 2, 1, 1, 0)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_calls_s": t2 - t1}))
"""


def compile_times():
    """Numba import + first-call time, cold (empty cache) and cached, float32 kernels."""
    root = str(Path(__file__).resolve().parents[1])
    out = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": root}
        for label in ("cold", "cached"):
            res = subprocess.run(
                [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
            )
            out[label] = json.loads(res.stdout)
    return out


def crossover(batch, repeats, out_channels=64, size=14):
    """Conv2d(C, 64, 4, 2, 1) fwd+bwd with each strategy forced, over K = C*4*4.

    This is the measurement behind numba_kernels._DIRECT_MAX_K: the direct kernels win while
    the layer is memory-bound, one big BLAS GEMM once it is compute-bound; `size` sets the
    input's height and width (output rows are half as long).
    """
    rows = []
    try:
        for c in (1, 2, 3, 4, 6, 8, 16):
            layer = ("", "conv", c, out_channels, 4, 2, 1, size)
            x, w, gy, _ = make_layer(*layer[1:], batch, np.random.default_rng(c))
            fwd_bwd = kernel_fns(numba_kernels, "conv", x, w, gy, 2, 1)[1]
            row = {"C": c, "K": c * 16}
            # One strategy after the other, each after a pause: after a GEMM, OpenBLAS's
            # threads spin (about 2**28 cycles by default) and slowed the direct kernels timed
            # right after them up to 2x.
            for strategy in ("direct", "gemm"):
                numba_kernels._FORCE_STRATEGY = strategy
                t, _ = interleaved_medians({strategy: fwd_bwd}, repeats, settle=0.5,
                                           warmup_s=0.1)
                row.update(t)
            rows.append({**row, "direct/gemm": row["direct"] / row["gemm"]})
    finally:
        numba_kernels._FORCE_STRATEGY = None
    return rows


def wide_forward_passes(batch):
    """conv2d_forward's GEMM path for Conv2d(64, 128, 4, 2, 1) on 14x14, as separate calls:
    ({pass: fn}, x, w, cols, w_rows, y); running the passes in order leaves the layer's
    output in y (N, 128, 49)."""
    K, team = numba_kernels, numba_kernels.team
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 64, 14, 14), dtype=np.float32)
    w = rng.standard_normal((128, 64, 4, 4), dtype=np.float32)
    g = K.conv_geometry("conv2d", x.shape, (4, 4), 2, 1, 1)
    xh = np.empty((batch, g.h, g.w, g.c), np.float32)
    cols = np.empty((batch * g.out_pixels, g.patch_size), np.float32)
    w_rows, bias = K._taps_last(w).T, np.zeros(128, np.float32)
    y_rows = np.empty((cols.shape[0], 128), np.float32)
    y = np.empty((batch, 128, g.out_pixels), np.float32)
    passes = {  # conv2d_forward's GEMM path, in its order
        "x to channels-last": lambda: team.run(K._nchw_to_nhwc, (x, xh), batch),
        "im2col": lambda: team.run(K._im2col_nhwc_into, (xh, *g.loop_args, cols), batch),
        "GEMM (OpenBLAS)": lambda: np.matmul(cols, w_rows, out=y_rows),
        "rows to NCHW + bias": lambda: team.run(K._rows_to_nchw, (y_rows, bias, y), batch),
    }
    return passes, x, w, cols, w_rows, y


def _blocked_forward(x, w, chunk):
    """conv2d_forward's GEMM path with im2col and the GEMM done `chunk` images at a time, so
    each chunk's columns are still in cache when the GEMM reads them (an experiment: the
    kernels build the whole batch's columns at once)."""
    K, team = numba_kernels, numba_kernels.team
    n, o = x.shape[0], w.shape[0]
    g = K.conv_geometry("conv2d", x.shape, w.shape[2:], 2, 1, 1)
    p = g.out_pixels
    xh = np.empty((n, g.h, g.w, g.c), x.dtype)
    cols = np.empty((chunk * p, g.patch_size), x.dtype)
    w_rows, bias = np.ascontiguousarray(K._taps_last(w).T), np.zeros(o, x.dtype)
    y_rows = np.empty((n * p, o), x.dtype)

    def forward():
        team.run(K._nchw_to_nhwc, (x, xh), n)
        for c0 in range(0, n, chunk):
            m = min(chunk, n - c0)                       # the last chunk may be short
            team.run(K._im2col_nhwc_into, (xh[c0:c0 + m], *g.loop_args, cols[:m * p]), m)
            np.matmul(cols[:m * p], w_rows, out=y_rows[c0 * p:(c0 + m) * p])
        y = np.empty((n, o, p), x.dtype)
        team.run(K._rows_to_nchw, (y_rows, bias, y), n)
        return y.reshape(n, o, g.ho, g.wo)
    return forward


def wide_parts(batch, repeats):
    """Conv2d(64, 128, 4, 2, 1) forward on the GEMM path, pass by pass, timed two ways.

    "alone": each pass repeated by itself, its data hot in the caches. "in sequence": the
    passes run in conv2d_forward's order and each is timed inside the sequence, as in a
    training step: its input comes cold from memory after the GEMM has filled the caches,
    and it shares the cores with OpenBLAS's threads, which spin for about 2**28 cycles after
    each GEMM (OPENBLAS_THREAD_TIMEOUT=4 makes them sleep at once; run it both ways to see
    how much of the difference is theirs). Beside them: PyTorch's matmul of the same
    matrices and its whole conv, the floor the GEMM path is measured against.
    Returns {row: {column: ms}}.
    """
    passes, x, w, cols, w_rows, _ = wide_forward_passes(batch)
    alone, _ = interleaved_medians(passes, repeats, settle=0.3, warmup_s=0.1)
    in_sequence = {name: [] for name in passes}
    for _ in range(3):
        for fn in passes.values():
            fn()
    for _ in range(repeats):
        for name, fn in passes.items():
            in_sequence[name].append(time_ms(fn))
    whole = {"conv2d_forward": lambda: numba_kernels.conv2d_forward(x, w, 2, 1)}
    for chunk in (4, 16):   # the cache-blocked variant: build and multiply a few images' columns
        whole[f"the same, im2col + GEMM {chunk} images at a time"] = _blocked_forward(x, w, chunk)
    if torch is not None:
        arrays = (cols, np.ascontiguousarray(w_rows), x, w)
        tc, tw_rows, tx, tw = (torch.from_numpy(a) for a in arrays)
        whole["torch matmul, same matrices"] = lambda: tc @ tw_rows
        whole["torch conv2d"] = lambda: F.conv2d(tx, tw, stride=2, padding=1)
    totals, _ = interleaved_medians(whole, repeats, settle=0.3, warmup_s=0.1)
    rows = {name: {"alone": alone[name], "in sequence": statistics.median(in_sequence[name])}
            for name in passes}
    rows.update({name: {"alone": t} for name, t in totals.items()})
    return rows


COLUMNS = [
    ("layer", "layer", "{}"),
    ("reference_fwd_ms", "ref fwd ms", "{:.1f}"),
    ("numba_fwd_ms", "numba fwd ms", "{:.1f}"),
    ("torch_fwd_ms", "torch fwd ms", "{:.1f}"),
    ("reference_fwd_bwd_ms", "ref fwd+bwd", "{:.1f}"),
    ("numba_fwd_bwd_ms", "numba fwd+bwd", "{:.1f}"),
    ("torch_fwd_bwd_ms", "torch fwd+bwd", "{:.1f}"),
    ("numba_over_torch", "numba/torch", "{:.2f}x"),
    ("numba_gflops", "numba GFLOP/s", "{:.1f}"),
]


# The activations and batch norms of the DCGAN step, at batch 128 (`numba_pointwise.py`), and
# a feature map of the translation models (CycleGAN's G, batch 32), below _NUMPY_BELOW but
# above _NUMPY_BELOW_MAPS.
POINTWISE_SHAPES = {"D conv1 out (128, 64, 14, 14)": (128, 64, 14, 14),
                    "G linear out (128, 6272)": (128, 6272),
                    "CycleGAN G map (32, 8, 28, 28)": (32, 8, 28, 28)}


# Minibatch discrimination's M (N, kernels, dims): the toy GAN's batch 256 with the ablation's
# 5 kernels of 3 (`collapse.TECHNIQUES`), and a DCGAN batch of 64.
CLOSENESS_SHAPES = {"M (256, 5, 3)": (256, 5, 3), "M (64, 5, 3)": (64, 5, 3)}


# Adam's update (`numba_optim.py`) on a hidden layer of the AAEs' MLPs and on DCGAN's G input
# layer, the largest weights of those steps.
ADAM_SHAPES = {"weight (1000, 1000)": (1000, 1000), "weight (6272, 100)": (6272, 100)}


def pointwise(repeats):
    """Median ms of each activation/batch-norm kernel, of minibatch discrimination's
    closeness and of Adam's update: reference, Numba and PyTorch's op."""
    rng = np.random.default_rng(0)
    return [row for label, shape in POINTWISE_SHAPES.items()
            for row in _pointwise_shape(label, shape, repeats, rng)] + [
            row for label, shape in CLOSENESS_SHAPES.items()
            for row in _closeness_shape(label, shape, repeats, rng)] + [
            row for label, shape in ADAM_SHAPES.items()
            for row in _adam_shape(label, shape, repeats, rng)]


# Instance norm (`nn.functional.instance_norm`) at CycleGAN's shapes, batch 32: G's first
# layer (width 8 at 28x28) and its residual blocks (4 x 8 channels at 7x7).
INSTANCE_NORM_SHAPES = {"G edge (32, 8, 28, 28)": (32, 8, 28, 28),
                        "G blocks (32, 32, 7, 7)": (32, 32, 7, 7)}


def instance_norm_rows(repeats):
    """Median ms of instance norm forward + backward with an affine part, through the engine:
    the chain of engine ops (`instance_norm_composed`), the batch-norm primitive on the
    (1, N*C, ...) view on each kernel backend, and PyTorch's F.instance_norm."""
    rng = np.random.default_rng(0)
    return [_instance_norm_shape(label, shape, repeats, rng)
            for label, shape in INSTANCE_NORM_SHAPES.items()]


def _instance_norm_shape(label, shape, repeats, rng):
    import tinygen as tg
    from tinygen import kernels
    from tinygen.nn import functional as tF
    x = tg.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    w, b = (tg.tensor(rng.standard_normal(shape[1]).astype(np.float32), requires_grad=True)
            for _ in range(2))
    g = rng.standard_normal(shape).astype(np.float32)

    def ours(fn, backend):
        with kernels.use_backend(backend):
            fn(x, w, b).backward(g)
    fns = {"composed": lambda: ours(tF.instance_norm_composed, "numba"),
           "reference": lambda: ours(tF.instance_norm, "reference"),
           "numba": lambda: ours(tF.instance_norm, "numba")}
    if torch is not None:
        tx = torch.from_numpy(x.data).requires_grad_()
        tw, tb = (torch.from_numpy(t.data).requires_grad_() for t in (w, b))
        tgrad = torch.from_numpy(g)
        fns["torch"] = lambda: F.instance_norm(tx, weight=tw, bias=tb).backward(tgrad)
    med, _ = interleaved_medians(fns, repeats, block=10, settle=0.3, warmup_s=0.1)
    return {"shape": label, **med}


def _adam_shape(label, shape, repeats, rng):
    """One Adam step on one weight (its own m, v per backend); torch: torch.optim.Adam's step
    on a parameter of the same shape (the for-loop implementation, PyTorch's CPU default)."""
    g = rng.standard_normal(shape).astype(np.float32)
    start = rng.standard_normal(shape).astype(np.float32)
    state = {K.__name__: (start.copy(), np.zeros(shape, np.float32), np.zeros(shape, np.float32))
             for K in (reference, numba_kernels)}

    def update(K):
        p, m, v = state[K.__name__]
        K.adam_update(p, g, m, v, None, 0.9, 0.999, 1e-3 / (1 - 0.9), (1 - 0.999) ** 0.5, 1e-8)
    theirs = {}
    if torch is not None:
        tp = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(shape).astype(np.float32)))
        tp.grad = torch.from_numpy(g)
        opt = torch.optim.Adam([tp], lr=1e-3)
        theirs = {"adam update": opt.step}
    return _time_cases(label, {"adam update": update}, theirs, repeats)


def _time_cases(label, cases, theirs, repeats):
    """One row per case: {kernel backend: median ms}, PyTorch's op too where `theirs` has one."""
    rows = []
    for name, fn in cases.items():
        fns = {"reference": lambda fn=fn: fn(reference), "numba": lambda fn=fn: fn(numba_kernels)}
        if name in theirs:
            fns["torch"] = theirs[name]
        med, _ = interleaved_medians(fns, repeats, block=10, settle=0.3, warmup_s=0.1)
        rows.append({"shape": label, "kernel": name, **med})
    return rows


def _closeness_shape(label, shape, repeats, rng):
    M = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape[:2]).astype(np.float32)
    cases = {"minibatch closeness forward": lambda K: K.minibatch_closeness_forward(M),
             "minibatch closeness backward": lambda K: K.minibatch_closeness_backward(g, M)}
    theirs = {}
    if torch is not None:  # the same sums from torch.cdist's L1 distances, (B, N, N)
        tM = torch.from_numpy(M).transpose(0, 1).contiguous()
        theirs = {"minibatch closeness forward":
                  lambda: torch.exp(-torch.cdist(tM, tM, p=1)).sum(-1)}
    return _time_cases(label, cases, theirs, repeats)


def _pointwise_shape(label, shape, repeats, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    mean, var = reference.batch_norm_stats(x)
    inv, w = 1 / np.sqrt(var + 1e-5), np.ones(shape[1], np.float32)
    cases = {
        "leaky_relu forward": lambda K: K.leaky_relu_forward(x, 0.2),
        "leaky_relu backward": lambda K: K.leaky_relu_backward(g, x, 0.2),
        "relu backward": lambda K: K.relu_backward(g, x),
        "batch norm stats": lambda K: K.batch_norm_stats(x),
        "batch norm forward": lambda K: K.batch_norm_forward(x, inv, -mean * inv),
        "batch norm backward": lambda K: K.batch_norm_backward(g, x, mean, inv, w),
    }
    theirs = {}
    if torch is not None:  # PyTorch's own op for the same work (aten's backward kernels)
        tx, tgy = torch.from_numpy(x), torch.from_numpy(g)
        tw, tb = torch.ones(shape[1]), torch.zeros(shape[1])
        axes = [d for d in range(tx.ndim) if d != 1]
        theirs = {
            "leaky_relu forward": lambda: F.leaky_relu(tx, 0.2),
            "leaky_relu backward": lambda: torch.ops.aten.leaky_relu_backward(tgy, tx, 0.2, False),
            "relu backward": lambda: torch.ops.aten.threshold_backward(tgy, tx, 0.0),
            "batch norm stats": lambda: torch.var_mean(tx, dim=axes, correction=0),
            "batch norm forward": lambda: F.batch_norm(tx, None, None, tw, tb, True),
        }
    return _time_cases(label, cases, theirs, repeats)


def markdown_table(rows):
    cols = [c for c in COLUMNS if c[0] in rows[0]]  # torch columns vanish without torch
    lines = [
        "| " + " | ".join(c[1] for c in cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(fmt.format(r[key]) for key, _, fmt in cols) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 16, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--layer", default="", help="only layers whose name contains this")
    parser.add_argument("--cyclegan", action="store_true",
                        help="CycleGAN's convs (width 8, 28x28) at its batch of 32, instead of "
                             "the DCGAN's at 128")
    parser.add_argument("--crossover", action="store_true",
                        help="instead: time the direct and GEMM strategies of Conv2d(C, 64, 4, "
                             "2, 1) for C = 1..16, the data behind _DIRECT_MAX_K")
    parser.add_argument("--size", type=int, default=14,
                        help="input height and width for --crossover (default 14)")
    parser.add_argument("--pointwise", action="store_true",
                        help="instead: time the activation and batch-norm kernels "
                             "(numba_pointwise.py) against their NumPy twins and PyTorch")
    parser.add_argument("--wide-parts", action="store_true",
                        help="instead: the wide conv's forward pass by pass, alone and in "
                             "sequence (OpenBLAS's spinning threads), beside PyTorch")
    args = parser.parse_args()
    batch, repeats = (16, 3) if args.quick else (32 if args.cyclegan else 128, 7)
    repeats = args.repeats or repeats
    if torch is not None:
        torch.set_num_threads(2)
    if args.pointwise:
        rows = pointwise(max(repeats, 30))
        print(f"float32, ms, medians of interleaved blocks; kernel threads "
              f"{numba.get_num_threads()}; load average {os.getloadavg()[0]:.2f}\n")
        print("| input | kernel | reference | numba | torch | reference / numba |\n"
              "|---|---|---|---|---|---|")
        for r in rows:
            t = f"{r['torch']:.3f}" if "torch" in r else "-"
            print(f"| {r['shape']} | {r['kernel']} | {r['reference']:.3f} | {r['numba']:.3f} | "
                  f"{t} | {r['reference'] / r['numba']:.2f} |")
        norm_rows = instance_norm_rows(max(repeats, 30))
        print("\nInstance norm with weight and bias, forward + backward through the engine, ms:\n"
              "\n| input | composed engine ops | primitive, NumPy twins | primitive, Numba | "
              "torch | composed / Numba |\n|---|---|---|---|---|---|")
        for r in norm_rows:
            t = f"{r['torch']:.3f}" if "torch" in r else "-"
            print(f"| {r['shape']} | {r['composed']:.3f} | {r['reference']:.3f} | "
                  f"{r['numba']:.3f} | {t} | {r['composed'] / r['numba']:.2f} |")
        out = Path(__file__).resolve().parent / "results" / "bench_kernels_pointwise.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"rows": rows, "instance_norm": norm_rows,
                                   "load_average_1min_at_end": os.getloadavg()[0]}, indent=2))
        print(f"wrote {out}")
        return
    if args.wide_parts:
        rows = wide_parts(batch, max(repeats, 40))
        print(f"Conv2d(64, 128, 4, 2, 1) 14x14 forward, batch {batch}, float32, ms (medians); "
              f"{cpu_name()}, kernel threads "
              f"{numba.get_num_threads()}, load average {os.getloadavg()[0]:.2f}\n")
        print("| pass | alone | in sequence |\n|---|---|---|")
        for name, t in rows.items():
            seq = f"{t['in sequence']:.2f}" if "in sequence" in t else "-"
            print(f"| {name} | {t['alone']:.2f} | {seq} |")
        return
    if args.crossover:
        rows = crossover(batch, max(repeats, 20), size=args.size)
        print(f"Conv2d(C, 64, 4, 2, 1) {args.size}x{args.size}, batch {batch}, fwd+bwd ms, "
              f"kernel threads {numba.get_num_threads()}\n")
        print("| C | K = C*4*4 | direct | one big GEMM | direct/GEMM |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['C']} | {r['K']} | {r['direct']:.2f} | {r['gemm']:.2f} | "
                  f"{r['direct/gemm']:.2f} |")
        out = Path(__file__).resolve().parent / "results" / "bench_kernels_crossover.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"batch": batch, "rows": rows,
                                   "load_average_1min_at_end": os.getloadavg()[0]}, indent=2))
        print(f"wrote {out}")
        return
    # One seed per layer, so filtering with --layer leaves each layer's inputs unchanged.
    rows = [
        bench_layer(layer, batch, repeats, np.random.default_rng(seed))
        for seed, layer in enumerate(CYCLEGAN_LAYERS if args.cyclegan else LAYERS)
        if args.layer in layer[0]
    ]
    compile_s = compile_times()
    load = os.getloadavg()[0]
    print(
        f"batch {batch}, float32, median of {repeats} interleaved runs, each block after a "
        f"0.3 s pause and 0.1 s of warm-up calls; "
        f"fwd+bwd = forward + input grad + weight grad (torch: x.requires_grad=True); "
        f"1-min load average at the end: {load:.2f}\n"
    )
    print(markdown_table(rows))
    for label, t in compile_s.items():
        print(
            f"\nNumba {label}: import {t['import_s']:.2f} s, first conv fwd+bwd calls "
            f"{t['first_calls_s']:.2f} s",
            end="",
        )
    print()
    result = {
        "rows": rows,
        "numba_compile": compile_s,
        "batch": batch,
        "repeats": repeats,
        "numpy": np.__version__,
        "torch": torch.__version__ if torch else None,
        "kernel_threads": numba.get_num_threads(),
        "machine": platform.processor(),
        "cpus": os.cpu_count(),
        "load_average_1min_at_end": load,
    }
    out = Path(__file__).resolve().parent / "results" / "bench_kernels.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
