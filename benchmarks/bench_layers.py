"""Layers as a model sees them: through the autodiff engine, against PyTorch.

    python benchmarks/bench_layers.py            # a few minutes on 2 cores
    python benchmarks/bench_layers.py --quick    # seconds (batch 16, fewer repeats)

For each layer of a small MNIST DCGAN and the MLP-VAE, at batch 128 in float32, we time the
forward pass and forward + backward (an output gradient of ones; the weight, bias and input all
receive gradients, and PyTorch's input has requires_grad=True too) for the reference kernels,
the Numba kernels and PyTorch (when installed, same thread count). Every contender runs a block
of calls per round, round after round, and we report medians, so a burst of load from another
process hits all of them alike. A 0.3 s pause before each block lets the previous contender's
threads stop spinning first, and 0.1 s of warm-up calls wake the cores again (see
`common.interleaved_medians`). Numba's compile time is measured apart, in fresh subprocesses
(`bench_kernels.compile_times`). Writes a Markdown table and benchmarks/results/bench_layers.json.
"""

import argparse
import os

import numpy as np
from bench_kernels import compile_times
from common import interleaved_medians, markdown_table, save, try_torch

import tinygen as tg
from tinygen import kernels
from tinygen.nn import functional as F

# (name, kind, in, out, kernel, stride, padding, spatial size); kernel None for Linear.
LAYERS = [
    ("Conv2d(1,64,4,2,1) 28x28", "conv", 1, 64, 4, 2, 1, 28),
    ("Conv2d(64,128,4,2,1) 14x14", "conv", 64, 128, 4, 2, 1, 14),
    ("ConvTranspose2d(128,64,4,2,1) 7x7", "convT", 128, 64, 4, 2, 1, 7),
    ("ConvTranspose2d(64,1,4,2,1) 14x14", "convT", 64, 1, 4, 2, 1, 14),
    ("Linear(784,400)", "linear", 784, 400, None, None, None, None),
    ("Linear(400,20)", "linear", 400, 20, None, None, None, None),
]


def arrays(kind, c_in, c_out, k, s, p, h, batch, rng):
    """Seeded input and weights in PyTorch's layouts."""
    if kind == "linear":
        return (rng.standard_normal((batch, c_in), dtype=np.float32),
                rng.standard_normal((c_out, c_in), dtype=np.float32) * 0.05,
                np.zeros(c_out, np.float32))
    shape = (c_out, c_in, k, k) if kind == "conv" else (c_in, c_out, k, k)
    return (rng.standard_normal((batch, c_in, h, h), dtype=np.float32),
            rng.standard_normal(shape, dtype=np.float32) * 0.05, np.zeros(c_out, np.float32))


def flops(kind, c_in, c_out, k, s, p, h, batch):
    """Multiply-adds x 2 of the forward pass; backward costs about twice that."""
    if kind == "linear":
        return 2 * batch * c_in * c_out
    if kind == "conv":
        out = (h + 2 * p - k) // s + 1
        return 2 * batch * c_out * out * out * c_in * k * k
    return 2 * batch * c_in * h * h * c_out * k * k          # each input pixel scatters k*k


def tinygen_fns(layer, x, w, b, backend):
    kind, s, p = layer[1], layer[5], layer[6]
    call = {"linear": lambda xt, wt, bt: F.linear(xt, wt, bt),
            "conv": lambda xt, wt, bt: F.conv2d(xt, wt, bt, s, p),
            "convT": lambda xt, wt, bt: F.conv_transpose2d(xt, wt, bt, s, p)}[kind]
    xt, wt, bt = (tg.tensor(a, requires_grad=True) for a in (x, w, b))
    gy = None

    def forward():
        kernels.set_backend(backend)
        with tg.no_grad():
            return call(xt, wt, bt)

    def forward_backward():
        nonlocal gy
        kernels.set_backend(backend)
        y = call(xt, wt, bt)
        gy = gy if gy is not None else np.ones(y.shape, np.float32)
        y.backward(gy)
        xt.grad = wt.grad = bt.grad = None

    return forward, forward_backward


def torch_fns(torch, layer, x, w, b):
    kind, s, p = layer[1], layer[5], layer[6]
    tf = torch.nn.functional
    call = {"linear": lambda xt, wt, bt: tf.linear(xt, wt, bt),
            "conv": lambda xt, wt, bt: tf.conv2d(xt, wt, bt, s, p),
            "convT": lambda xt, wt, bt: tf.conv_transpose2d(xt, wt, bt, s, p)}[kind]
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))

    def forward():
        with torch.no_grad():
            return call(xt, wt, bt)

    def forward_backward():
        y = call(xt, wt, bt)
        y.backward(torch.ones_like(y))
        xt.grad = wt.grad = bt.grad = None

    return forward, forward_backward


def bench(layer, batch, repeats, torch, rng):
    x, w, b = arrays(*layer[1:], batch, rng)
    fns = {}
    for backend in ("reference", "numba"):
        fwd, fb = tinygen_fns(layer, x, w, b, backend)
        fns[f"{backend} fwd"], fns[f"{backend} fwd+bwd"] = fwd, fb
    if torch is not None:
        fns["torch fwd"], fns["torch fwd+bwd"] = torch_fns(torch, layer, x, w, b)
    t, _ = interleaved_medians(fns, repeats, block=repeats // 2, settle=0.3,
                               warmup_s=0.1)
    gflop = 3 * flops(*layer[1:], batch) / 1e9
    ratio = t["numba fwd+bwd"] / t["torch fwd+bwd"] if torch is not None else None
    return {"layer": layer[0], **t, "numba/torch fwd+bwd": ratio,
            "numba GFLOP/s fwd+bwd": gflop / (t["numba fwd+bwd"] / 1e3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 16, 4 repeats")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="PyTorch threads (default: all cores)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the Numba compile-time subprocesses")
    args = parser.parse_args(argv)
    batch, repeats = (16, 4) if args.quick else (128, 18)
    torch = try_torch(args.threads)
    rng = np.random.default_rng(0)
    rows = [bench(layer, batch, repeats, torch, rng) for layer in LAYERS]
    kernels.set_backend("numba")
    headers = list(rows[0])
    print(f"batch {batch}, float32, median of {repeats}, torch threads {args.threads}, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print(markdown_table(headers, [[r[h] for h in headers] for r in rows]))
    compile_s = None if args.no_compile else compile_times()
    if compile_s:
        print(f"\nNumba compile time: {compile_s}")
    path = save("bench_layers", {"batch": batch, "repeats": repeats, "rows": rows,
                                 "compile_seconds": compile_s,
                                 "load_average": os.getloadavg()[0]})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
