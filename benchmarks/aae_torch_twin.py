"""The semi-supervised AAE's PyTorch twin on MNIST: is the gap to the paper engine or recipe?

    python benchmarks/aae_torch_twin.py --labels 1000 --seed 2 --epochs 16 --input-noise 0.3 \\
        --lr-step 8 --lr-gamma 0.1 --out runs/aae_twin_l1000_s2.json
    python benchmarks/aae_torch_twin.py --quick          # 2 epochs of 25 steps: it runs

`tinygen train aae_semi` ends its 16-epoch runs at 3.58 +- 0.21% test error with 1,000
labels, against the paper's 1.60 +- 0.08% (README). Either tinygen computes something other
than what PyTorch would, or the recipe (budget, optimizer, schedule) is not the paper's. This
script tells the two apart. It builds the model exactly as `tinygen train aae_semi --seed S`
does (the same seed, weights, labelled images and loader order), copies its networks into
PyTorch (`bench_models.AAESemiTwin`) and trains the copy with tinygen's algorithm, step for
step: the same images in the same order (600 steps an epoch), the model's N labelled images
and no other label, the same phases, losses, input noise, Adam settings and lr steps. Only
the random draws (the prior samples, the input noise, the labelled minibatch's order) come
from PyTorch's generator instead of tinygen's, and the float32 rounding is PyTorch's
(tests/test_benchmarks.py checks two steps against the model's with tinygen's draws).

After every epoch it prints the test error of argmax q(y|x) on the 10,000 MNIST test images
and writes all epochs so far to --out (JSON, replaced atomically, so a run stopped at any
time leaves a readable log; there is no resume). Compare the curve with the same run's
`eval_error` per epoch (runs/<run>/log.jsonl): if the two agree within the spread between
seeds, the engine is not where the gap lies.

MNIST must be where `load_dataset` finds it (TINYGEN_DATA=/folder/containing/mnist, or the
cache).
"""

import argparse
from pathlib import Path

import numpy as np
from bench_models import AAESemiTwin
from common import start_twin, twin_epoch, twin_log, write_atomically

import tinygen as tg
from tinygen.data import DataLoader
from tinygen.data.datasets import load_dataset
from tinygen.models import aae_semi

QUICK_EPOCHS, QUICK_STEPS = 2, 25


def build(labels, seed, **options):
    """The model as `tinygen train aae_semi --labels N --seed S [options]` starts it, with its
    training loader and the test set. `options` are further aae_semi.Config fields."""
    tg.manual_seed(seed)
    x, y = load_dataset("mnist", "train", seed=seed)
    xt, yt = load_dataset("mnist", "test", seed=seed)
    model = aae_semi.CategoricalAAE(aae_semi.Config(labels=labels, seed=seed, **options))
    model.setup(x, y)
    loader = DataLoader((x, y), batch_size=model.cfg.batch_size, shuffle=True, drop_last=True,
                        generator=seed)
    return model, loader, (xt, yt)


def error_rate(twin, torch, xt, yt) -> float:
    """The fraction of test images whose argmax q(y|x) is not their label."""
    wrong = 0
    for i in range(0, len(xt), 1000):
        q = twin.q_y(torch.from_numpy(np.asarray(xt[i:i + 1000], np.float32)).flatten(1))
        wrong += int((q.argmax(1).numpy() != yt[i:i + 1000]).sum())
    return wrong / len(xt)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", type=int, default=1000, help="labelled training images")
    p.add_argument("--seed", type=int, default=0,
                   help="picks the labelled images, the init and the data order (as tinygen's)")
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--hidden", type=int, default=1000,
                   help="units in each hidden layer of every network (the paper's 1000)")
    p.add_argument("--input-noise", type=float, default=0.0,
                   help="std of the noise on the encoder's input (the model's input_noise)")
    p.add_argument("--lr-step", type=int, default=0,
                   help="every this many epochs, every lr *= --lr-gamma (0: off)")
    p.add_argument("--lr-gamma", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1, help="PyTorch's threads")
    p.add_argument("--out", type=Path, help="JSON log, rewritten after every epoch")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_EPOCHS} epochs of {QUICK_STEPS} steps, to show it runs")
    args = p.parse_args(argv)
    if min(args.epochs, args.threads, args.labels, args.hidden) < 1:
        p.error("--epochs, --threads, --labels and --hidden must be >= 1")
    return args


def main(argv=None):
    args = parse(argv)
    info, torch = start_twin("aae_torch_twin.py", args.threads)
    try:
        model, loader, (xt, yt) = build(args.labels, args.seed, epochs=args.epochs,
                                        hidden=args.hidden, input_noise=args.input_noise,
                                        lr_step=args.lr_step, lr_gamma=args.lr_gamma)
    except ValueError as err:           # an option the model refuses, in one line
        raise SystemExit(f"aae_torch_twin.py: {err}") from None
    torch.manual_seed(args.seed)
    twin = AAESemiTwin(torch, model)
    epochs = QUICK_EPOCHS if args.quick else args.epochs
    log = twin_log(info, args, model)
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch, "lr_cls": twin.opt_C.param_groups[0]["lr"],
                  **twin_epoch(twin, torch, loader, QUICK_STEPS if args.quick else None)}
        twin.end_epoch()                        # as fit: the lr steps after the epoch
        record["error"] = error_rate(twin, torch, xt, yt)
        log["epochs"].append(record)
        print(f"epoch {epoch}: test error {100 * record['error']:.2f}%, loss_rec "
              f"{record['loss_rec']:.4f}, d_y {record['d_y']:.3f}, d_z {record['d_z']:.3f}, "
              f"loss_cls {record['loss_cls']:.2g}, {record['seconds']:.1f} s "
              f"({record['ms_per_step']:.1f} ms/step)", flush=True)
        if args.out:
            write_atomically(args.out, log)
    if args.out:
        print("saved", args.out)


if __name__ == "__main__":
    main()
