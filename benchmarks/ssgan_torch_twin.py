"""The semi-supervised GAN's PyTorch twin on MNIST: is the gap to the paper engine or budget?

    python benchmarks/ssgan_torch_twin.py --seed 0 --epochs 300 --g-bn-scale false \\
        --adam-eps 1e-4 --fm-mean true --out runs/ssgan_twin_s0.json
    python benchmarks/ssgan_torch_twin.py --quick          # 2 epochs of 25 steps: it runs

tinygen's `ssgan` (100 labels) ends its 65-epoch runs at 1.32% test error, against the paper's
0.93% after 300 epochs (README). Either tinygen computes something different from what PyTorch
would, or 65 epochs are too few. This script tells the two apart. It builds the model exactly
as `ssgan_mnist.py` does (same data, seed, labelled images and data-dependent weight-norm
init: `ssgan_mnist.build`), copies its networks into PyTorch (`bench_models.SSGANTwin`, which
also times the step in `bench_models.py`), and trains the copy with tinygen's algorithm, step
for step: the same loader order of unlabelled images (600 steps an epoch), the model's 100
labelled images and nothing else that has a label, the same losses, Adam settings, moving
average of D and lr schedule. Only the random draws (z, the Gaussian noise, the labelled
minibatch's order) come from PyTorch's generator instead of tinygen's, and the float32
rounding is PyTorch's (tests/test_benchmarks.py checks one step against the model's).

After every epoch (or every --eval-every) it prints the test error on the 10,000 MNIST test
images with the averaged D and the raw D (eval mode: no noise), and writes all epochs so far
to --out (JSON, replaced atomically, so a run stopped at any time leaves a readable log; there
is no resume). Compare its curve at equal epochs with `tinygen train ssgan --seed S` and the
same options (its `eval_error` per epoch): that run starts from the same weights, labelled
images and data order. If the curves agree, a longer tinygen run would reach what the twin
reaches; if they part, look at the engine.

MNIST must be where `load_dataset` finds it (TINYGEN_DATA=/folder/containing/mnist, or the
cache). A step took 50 ms on one thread of the 2-core Xeon VM (load average 0.7) and 30.6 ms
on both (`--threads 2`, 18.4 s an epoch), the test errors 0.5 s an epoch: 300 epochs (180,000
steps) take about 2.6 hours on one thread, 1.5 on two. The README has the run's curve.
"""

import argparse
import time
from pathlib import Path

import ssgan_mnist
from bench_models import SSGANTwin
from common import start_twin, twin_epoch, twin_log, write_atomically

QUICK_EPOCHS, QUICK_STEPS = 2, 25


def error_rate(twin, torch, xt, yt, averaged: bool) -> float:
    """The fraction of test images whose argmax_k l_k(x) is not their label."""
    wrong = 0
    for i in range(0, len(xt), 1000):
        x = torch.from_numpy(xt[i:i + 1000]).flatten(1)
        wrong += int((twin.logits(x, averaged).argmax(1).numpy() != yt[i:i + 1000]).sum())
    return wrong / len(xt)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0,
                   help="picks the labelled images, the init and the data order (as tinygen's)")
    p.add_argument("--epochs", type=int, default=300, help="the paper's 300 by default")
    p.add_argument("--labels", type=int, default=100)
    ssgan_mnist.add_options(p)
    p.add_argument("--ema", type=float, default=0.9999,
                   help="decay of the moving average of D used for the test error")
    p.add_argument("--eval-every", type=int, default=1, metavar="E",
                   help="test error every E epochs (and after the last)")
    p.add_argument("--threads", type=int, default=1, help="PyTorch's threads")
    p.add_argument("--out", type=Path, help="JSON log, rewritten after every epoch")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_EPOCHS} epochs of {QUICK_STEPS} steps, to show it runs")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.eval_every < 1 or args.threads < 1:
        p.error("--epochs, --eval-every and --threads must be >= 1")
    return args, ssgan_mnist.config_options(p, args)


def main(argv=None):
    args, options = parse(argv)
    info, torch = start_twin("ssgan_torch_twin.py", args.threads)
    model, loader, (xt, yt) = ssgan_mnist.build(args.labels, args.seed, args.epochs,
                                                ema=args.ema, **options)
    torch.manual_seed(args.seed)
    twin = SSGANTwin(torch, model)
    epochs = QUICK_EPOCHS if args.quick else args.epochs
    log = twin_log(info, args, model)
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch, "lr": twin.opt_D.param_groups[0]["lr"],
                  **twin_epoch(twin, torch, loader, QUICK_STEPS if args.quick else None)}
        twin.end_epoch()                        # as fit: the lr schedule steps after the epoch
        if epoch % args.eval_every == 0 or epoch == epochs:
            start = time.perf_counter()
            record["error"] = error_rate(twin, torch, xt, yt, averaged=True)
            record["error_raw"] = error_rate(twin, torch, xt, yt, averaged=False)
            record["eval_seconds"] = time.perf_counter() - start
        log["epochs"].append(record)
        print(_line(record), flush=True)
        if args.out:
            write_atomically(args.out, log)
    if args.out:
        print("saved", args.out)


def _line(r) -> str:
    error = (f"test error {100 * r['error']:.2f}% (raw {100 * r['error_raw']:.2f}%)"
             if "error" in r else "test error -")
    return (f"epoch {r['epoch']}: {error}, D(x) {r['d_real']:.3f}, D(G(z)) {r['d_fake']:.3f},"
            f" {r['seconds']:.1f} s ({r['ms_per_step']:.1f} ms/step)")


if __name__ == "__main__":
    main()
