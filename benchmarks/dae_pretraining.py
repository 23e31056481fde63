"""Does denoising pre-training help a classifier? The stacked-DAE experiment, one layer deep.

    OMP_NUM_THREADS=1 python benchmarks/dae_pretraining.py             # about 2 minutes
    OMP_NUM_THREADS=1 python benchmarks/dae_pretraining.py --seeds 3   # about 6 minutes
    OMP_NUM_THREADS=1 python benchmarks/dae_pretraining.py --quick     # about 20 seconds

(times on 2 cores shared with other jobs. OMP_NUM_THREADS=1 matters on a busy machine: there,
OpenBLAS's threads wait for each other and the same run was about 10 times slower.)

Vincent et al. (2010, "Stacked denoising autoencoders", JMLR) pre-train each layer of a deep
network as a DAE on unlabelled images, then fine-tune the whole stack with labels. We run the
smallest version of that experiment on MNIST (TINYGEN_DATA or --data-dir):

1. pre-train a 784-500 DAE: 25% masking noise, sigmoid hidden units, logistic output, BCE;
2. fine-tune its encoder plus a new 500 -> 10 softmax layer on all 60,000 labels;
3. train the identical 784-500-10 network from its random initialisation, with the same
   fine-tuning budget: same epochs, optimizer, learning rate, batches and seed.

Why sigmoid units: they are the paper's choice, and they make the encoder's 500 features
bounded detectors like the ones the paper shows, so pre-training is tested where it was
claimed to help. (With ReLU units and Adam, training from scratch is already easy.)

Differences from the paper, so the numbers are not directly comparable: the paper's best
MNIST network (SDAE-3) stacks three hidden layers of 1000+ units and reaches 1.28% test error
after long SGD runs with hyper-parameters chosen on a validation set; we use one layer of 500,
untied encoder and decoder weights, Adam, and a few epochs chosen in advance, and report the
test error after the last epoch (no early stopping on the test set). Each seed repeats the
whole experiment; with 3 seeds, the errors of one network spread over about 0.2 percentage
points, and pre-training won on every seed (2.00% against 2.34% on average).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from common import markdown_table, save  # benchmarks/ is on sys.path when run as a script

import tinygen as tg
from tinygen import nn, optim
from tinygen.data import DataLoader
from tinygen.data.datasets import load_dataset
from tinygen.models.dae import DAE, Config
from tinygen.nn import functional as F

PAPER_SDAE3_ERROR = 1.28   # % test error, Vincent et al. 2010, SDAE-3 with 25% masking noise


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.quick:
        args.pretrain_epochs, args.finetune_epochs, args.seeds = 1, 2, 1
    x, y = load_dataset("mnist", "train", data_dir=args.data_dir)
    xt, yt = load_dataset("mnist", "test", data_dir=args.data_dir)
    data = (x, y, xt, yt)
    runs = [one_seed(args.seed + i, data, args) for i in range(args.seeds)]
    report(runs, args)


def one_seed(seed, data, args) -> dict:
    """Pre-train, then fine-tune both networks; everything seeded by `seed`."""
    x, y, xt, yt = data
    cfg = Config(dataset="mnist", latent=500, code_act="sigmoid", noise="masking",
                 noise_level=0.25, lr=args.lr, batch_size=args.batch_size, seed=seed)
    tg.manual_seed(seed)
    dae = DAE(cfg)
    t0 = time.perf_counter()
    result = {"seed": seed, "pretrain_test_denoising_bce": pretrain(dae, data, args, seed),
              "pretrain_seconds": time.perf_counter() - t0}
    log(f"seed {seed}: pre-trained the 784-500 DAE in {result['pretrain_seconds']:.0f}s; test "
        f"denoising BCE per pixel {result['pretrain_test_denoising_bce']:.4f}")
    tg.manual_seed(seed)
    scratch_encoder = DAE(cfg).encoder       # the same random draw the DAE started from
    for name, encoder in [("pretrained", dae.encoder), ("scratch", scratch_encoder)]:
        t0 = time.perf_counter()
        result[f"{name}_test_error_pct"] = finetune(encoder, data, args, seed)
        result[f"{name}_seconds"] = time.perf_counter() - t0
        log(f"seed {seed}: {name}: test error {result[f'{name}_test_error_pct']:.2f}% "
            f"({result[f'{name}_seconds']:.0f}s)")
    return result


def pretrain(dae, data, args, seed) -> float:
    """Plain DAE training (no labels); returns the test denoising loss."""
    x, y, xt, yt = data
    loader = DataLoader((x, y), batch_size=dae.cfg.batch_size, shuffle=True, drop_last=True,
                        generator=seed)
    for _ in range(args.pretrain_epochs):
        for xb, _ in loader:
            dae.train_step((tg.tensor(xb),))
    return dae.evaluate(DataLoader((xt, yt), batch_size=1000))["loss"]


def finetune(encoder, data, args, seed) -> float:
    """Train encoder + a fresh 500 -> 10 layer with cross-entropy; returns test error in %."""
    x, y, xt, yt = data
    tg.manual_seed(seed + 1000)              # the same new output layer in both runs
    net = nn.Sequential(nn.Flatten(), encoder, nn.Linear(500, 10))
    opt = optim.Adam(net.parameters(), lr=args.lr)
    loader = DataLoader((x, y), batch_size=args.batch_size, shuffle=True, drop_last=True,
                        generator=seed)
    for _ in range(args.finetune_epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(net(tg.tensor(xb)), yb)   # softmax inside the loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    with tg.no_grad():
        wrong = sum(int((net(tg.tensor(xb)).data.argmax(1) != yb).sum())
                    for xb, yb in DataLoader((xt, yt), batch_size=1000))
    return 100.0 * wrong / len(yt)


def report(runs, args):
    def cell(key):
        values = [r[key] for r in runs]
        each = f" ({', '.join(f'{v:.2f}' for v in values)})" if len(values) > 1 else ""
        return f"{np.mean(values):.2f}{each}"

    rows = [["784-500-10, DAE pre-trained", cell("pretrained_test_error_pct"),
             f"{np.mean([r['pretrained_seconds'] for r in runs]):.0f}"],
            ["784-500-10, random init", cell("scratch_test_error_pct"),
             f"{np.mean([r['scratch_seconds'] for r in runs]):.0f}"],
            ["SDAE-3, Vincent et al. 2010 (deeper; not comparable)",
             f"{PAPER_SDAE3_ERROR:.2f}", "-"]]
    pre_s = np.mean([r["pretrain_seconds"] for r in runs])
    print(f"\nMNIST test error, {args.finetune_epochs} fine-tuning epochs for both networks "
          f"(Adam lr {args.lr}, batch {args.batch_size}); DAE pre-training {args.pretrain_epochs} "
          f"epochs with 25% masking ({pre_s:.0f}s); seeds {args.seed}..{args.seed + len(runs) - 1}"
          f"\n")
    print(markdown_table(["network", "test error % (mean (each seed))", "fine-tune s"], rows))
    path = save("dae_pretraining", {
        "quick": args.quick, "lr": args.lr, "batch_size": args.batch_size,
        "pretrain_epochs": args.pretrain_epochs, "finetune_epochs": args.finetune_epochs,
        "hidden_units": "sigmoid", "noise": "masking 0.25", "runs": runs,
        "paper_sdae3_test_error_pct": PAPER_SDAE3_ERROR,
        "load_average": os.getloadavg(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")})
    print(f"\nwrote {path}")


def log(message):
    print(message, file=sys.stderr, flush=True)


def _parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1 pre-training and 2 fine-tuning epochs, one seed")
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam, both phases (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, default=1,
                   help="repeat the whole experiment with this many seeds (default 1)")
    p.add_argument("--data-dir", type=Path, help="folder holding mnist/")
    return p


if __name__ == "__main__":
    main()
