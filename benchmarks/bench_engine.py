"""How much does the autodiff engine itself cost?

    python benchmarks/bench_engine.py            # about a minute
    python benchmarks/bench_engine.py --quick    # a few seconds

Two measurements, each for tinygen, plain NumPy (the same math with no graph, hand-derived
gradients) and PyTorch when it is installed, all with the same number of threads:

1. Overhead per op: a chain of small elementwise ops on a (16,) vector, where the arithmetic
   is negligible and what remains is bookkeeping (creating tensors, recording, VJP calls).
2. One training step of the pytorch/examples MLP VAE (784-400-20-400-784, batch 128), written
   with raw tensors and a hand-written SGD update, so no layer or optimizer code is involved.
"""

import argparse
import os

import numpy as np
from common import interleaved_medians, markdown_table, save, try_torch

import tinygen as tg

B, D, H, Z = 128, 784, 400, 20
CHAIN = 60


# ----------------------------------------------------------------------------------------------
# 1. Per-op overhead.


def chain_tinygen(x0):
    x = tg.tensor(x0, requires_grad=True)
    y = x
    for _ in range(CHAIN // 3):
        y = (y * 0.9 + 0.1).tanh()
    y.sum().backward()


def chain_torch(torch, x0):
    x = torch.tensor(x0, requires_grad=True)   # x0 is a NumPy array
    y = x
    for _ in range(CHAIN // 3):
        y = torch.tanh(y * 0.9 + 0.1)
    y.sum().backward()


def chain_numpy(x0):
    # Forward keeps each tanh output for the backward pass, as an engine would.
    ys, y = [], x0
    for _ in range(CHAIN // 3):
        y = np.tanh(y * 0.9 + 0.1)
        ys.append(y)
    g = np.ones_like(y)
    for y in reversed(ys):
        g = g * (1 - y * y) * 0.9
    return g


# ----------------------------------------------------------------------------------------------
# 2. One VAE step. The loss is the ELBO with a Bernoulli decoder, written with logits:
#    BCE(sigmoid(l), x) = softplus(l) - x l, summed over pixels, plus the Gaussian KL.


def vae_params(rng):
    def layer(n_in, n_out):  # PyTorch's default Linear init range, stored as (in, out)
        bound = 1 / np.sqrt(n_in)
        return (rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32),
                rng.uniform(-bound, bound, n_out).astype(np.float32))
    return [a for shape in [(D, H), (H, Z), (H, Z), (Z, H), (H, D)] for a in layer(*shape)]


def vae_step_tinygen(params, x, eps, lr=1e-3):
    w1, b1, wm, bm, wv, bv, w3, b3, w4, b4 = params
    h = (x @ w1 + b1).relu()
    mu, logvar = h @ wm + bm, h @ wv + bv
    z = mu + (0.5 * logvar).exp() * eps                    # reparameterisation
    logits = (z @ w3 + b3).relu() @ w4 + b4
    bce = (logits.softplus() - x * logits).sum()
    kl = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum()
    loss = (bce + kl) / x.shape[0]
    for p in params:
        p.grad = None
    loss.backward()
    with tg.no_grad():
        for p in params:
            p.data -= lr * p.grad
    return loss


def vae_step_torch(torch, params, x, eps, lr=1e-3):
    w1, b1, wm, bm, wv, bv, w3, b3, w4, b4 = params
    h = torch.relu(x @ w1 + b1)
    mu, logvar = h @ wm + bm, h @ wv + bv
    z = mu + torch.exp(0.5 * logvar) * eps
    logits = torch.relu(z @ w3 + b3) @ w4 + b4
    bce = (torch.nn.functional.softplus(logits) - x * logits).sum()
    kl = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum()
    loss = (bce + kl) / x.shape[0]
    for p in params:
        p.grad = None
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
    return loss


def vae_step_numpy(params, x, eps, lr=1e-3):
    """The same step with hand-derived gradients: what the engine's overhead is measured from."""
    w1, b1, wm, bm, wv, bv, w3, b3, w4, b4 = params
    a1 = x @ w1 + b1
    h = np.maximum(a1, 0)
    mu, logvar = h @ wm + bm, h @ wv + bv
    std = np.exp(0.5 * logvar)
    z = mu + std * eps
    a3 = z @ w3 + b3
    h3 = np.maximum(a3, 0)
    logits = h3 @ w4 + b4
    n = x.shape[0]
    e = np.exp(-np.abs(logits))
    bce = np.sum(np.maximum(logits, 0) + np.log(1 + e) - x * logits)
    kl = -0.5 * np.sum(1 + logvar - mu * mu - std * std)
    loss = (bce + kl) / n
    sig = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    g_logits = (sig - x) / n
    g_h3 = (g_logits @ w4.T) * (a3 > 0)
    g_z = g_h3 @ w3.T
    g_mu = g_z + mu / n
    g_logvar = g_z * eps * 0.5 * std + 0.5 * (np.exp(logvar) - 1) / n
    g_h = (g_mu @ wm.T + g_logvar @ wv.T) * (a1 > 0)
    grads = [x.T @ g_h, g_h.sum(0), h.T @ g_mu, g_mu.sum(0), h.T @ g_logvar, g_logvar.sum(0),
             z.T @ g_h3, g_h3.sum(0), h3.T @ g_logits, g_logits.sum(0)]
    for p, g in zip(params, grads, strict=True):
        p -= lr * g
    return loss


# ----------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier numbers)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="PyTorch threads (NumPy's BLAS uses OPENBLAS_NUM_THREADS)")
    args = parser.parse_args(argv)
    repeat = 10 if args.quick else 60
    torch = try_torch(args.threads)
    rng = np.random.default_rng(0)

    x16 = rng.standard_normal(16).astype(np.float32)
    chain_fns = {"tinygen": lambda: chain_tinygen(x16), "numpy": lambda: chain_numpy(x16)}
    if torch is not None:
        chain_fns["torch"] = lambda: chain_torch(torch, x16)
    chain, _ = interleaved_medians(chain_fns, repeat * 4)

    arrays = vae_params(rng)
    xb = (rng.random((B, D)) < 0.3).astype(np.float32)   # binary pixels, like binarised MNIST
    eps = rng.standard_normal((B, Z)).astype(np.float32)
    tg_params = [tg.tensor(a.copy(), requires_grad=True) for a in arrays]
    np_params = [a.copy() for a in arrays]
    vae_fns = {"tinygen": lambda: vae_step_tinygen(tg_params, tg.tensor(xb), tg.tensor(eps)),
               "numpy": lambda: vae_step_numpy(np_params, xb, eps)}
    if torch is not None:
        t_params = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
        xt, et = torch.tensor(xb), torch.tensor(eps)
        vae_fns["torch"] = lambda: vae_step_torch(torch, t_params, xt, et)
    vae, _ = interleaved_medians(vae_fns, repeat)

    # The chain has CHAIN forward ops plus one sum; report microseconds per forward op,
    # backward included, so the number is what one op costs a training step.
    per_op = {k: 1e3 * v / CHAIN for k, v in chain.items()}
    rows = [["elementwise op, fwd+bwd (us/op)"] + [per_op.get(k) for k in NAMES]
            + [_ratio(per_op)],
            ["MLP-VAE step, batch 128 (ms)"] + [vae.get(k) for k in NAMES] + [_ratio(vae)]]
    print(f"threads: {args.threads}, repeats: {repeat}, median times\n")
    print(markdown_table(["benchmark", *NAMES, "tinygen / torch"], rows))
    path = save("bench_engine", {"per_op_us": per_op, "vae_step_ms": vae,
                                 "threads": args.threads, "repeat": repeat})
    print(f"\nwrote {path}")


NAMES = ["tinygen", "numpy", "torch"]


def _ratio(times):
    return times["tinygen"] / times["torch"] if "torch" in times else None


if __name__ == "__main__":
    main()
