"""The semi-supervised GAN on MNIST: test error with N labels, over seeds, beside the paper.

    python benchmarks/ssgan_mnist.py                          # 100 labels, seeds 0 1 2, 25 epochs
    python benchmarks/ssgan_mnist.py --labels 20 50 100 200 --epochs 100
    python benchmarks/ssgan_mnist.py --seeds 1 2 --models ssgan   # some seeds, one model
    python benchmarks/ssgan_mnist.py --quick                  # 1 seed, 30 steps: it runs
    python benchmarks/ssgan_mnist.py --epochs 65 --lr-decay-from 35 --g-bn-scale false \
        --adam-eps 1e-4 --fm-mean true --models ssgan    # the README's 3-seed 65-epoch run

For every label count and seed it trains `ssgan` (`tinygen/models/ssgan.py`, the authors'
MNIST set-up) and, as the baseline, the same D on the labelled images alone
(`supervised_only`), each for --epochs passes over the 60,000 training images (600 steps of
100 each), then prints the MNIST test error of the averaged D (the raw D's in brackets),
mean ± std over seeds, with the wall time per run. (The average's decay is the authors'
0.9999, the model's default: it reads worse than the raw D for the first ~40 epochs; the
README's older 25-epoch rows used 0.999.) The labelled images are chosen by the seed,
10% per class, and no other label is read (tests/test_ssgan.py).

Paper (Salimans et al. 2016, Table 1; errors over 10 seeds): 20 labels 16.77 ± 4.52%,
50 labels 2.21 ± 1.36%, 100 labels 0.93 ± 0.065%, 200 labels 0.90 ± 0.042%; the authors train
for 300 epochs. A wall time here is for the 2-core machine; run it on an idle one.
"""

import argparse

import numpy as np
from common import machine, markdown_table, save, train_for

import tinygen as tg
from tinygen.data import DataLoader
from tinygen.data.datasets import load_dataset
from tinygen.models import ssgan

PAPER = {20: "16.77 ± 4.52", 50: "2.21 ± 1.36", 100: "0.93 ± 0.065", 200: "0.90 ± 0.042"}


def build(labels, seed, epochs, supervised_only=False, **options):
    """The model as a run starts it, with its training loader and the test set: its labelled
    images chosen and D's weight norm initialised (`setup`), all by the seed. `options` are
    further ssgan.Config fields (lr_decay_from, ...). `ssgan_torch_twin.py` copies this model."""
    x, y = load_dataset("mnist", "train", seed=seed)
    xt, yt = load_dataset("mnist", "test", seed=seed)
    tg.manual_seed(seed)
    model = ssgan.SSGAN(ssgan.Config(labels=labels, seed=seed, epochs=epochs,
                                     supervised_only=supervised_only, **options))
    model.setup(x, y)
    loader = DataLoader((x, y), batch_size=model.cfg.batch_size, shuffle=True,
                        drop_last=True, generator=seed)
    return model, loader, (xt, yt)


def run(labels, seed, epochs, supervised_only, max_steps=None, **options):
    """One training run; `options` are further ssgan.Config fields (lr_decay_from, ...)."""
    model, loader, (xt, yt) = build(labels, seed, epochs, supervised_only, **options)
    seconds, steps = train_for(model, loader, epochs, max_steps)
    model.eval()
    err = model.evaluate([(xt, yt)])
    return {"labels": labels, "seed": seed, "supervised_only": supervised_only,
            "epochs": epochs, **options, "steps": steps, "seconds": seconds,
            "error": err["error"], "error_raw": err["error_raw"]}


def add_options(p):
    """The ssgan.Config options of the MNIST runs (here and in `ssgan_torch_twin.py`)."""
    p.add_argument("--lr-decay-from", type=int, default=0, metavar="E",
                   help="hold the lr until epoch E, then lower it linearly to 0 at --epochs "
                        "(the model's lr_decay_from; 0: constant, the authors' MNIST script)")
    p.add_argument("--g-bn-scale", choices=["true", "false"], default="true",
                   help="learn G's batch-norm scale (false: none, as the authors' G)")
    p.add_argument("--adam-eps", type=float, default=1e-8,
                   help="both players' Adam eps (1e-4: about the authors' Adam)")
    p.add_argument("--fm-mean", choices=["true", "false"], default="false",
                   help="G's feature-matching loss as a mean over features (the authors')")


def config_options(p, args) -> dict:
    """`add_options`' values as ssgan.Config fields, checked against --epochs."""
    if args.lr_decay_from and not 0 < args.lr_decay_from < args.epochs:
        p.error(f"--lr-decay-from must be between 0 and --epochs ({args.epochs}), "
                f"got {args.lr_decay_from}")
    return {"lr_decay_from": args.lr_decay_from, "g_bn_scale": args.g_bn_scale == "true",
            "adam_eps": args.adam_eps, "fm_mean": args.fm_mean == "true"}


def pm(values):
    return f"{100 * np.mean(values):.2f} ± {100 * np.std(values):.2f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", type=int, nargs="+", default=[100])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="the seeds to run (each picks its own labelled images)")
    p.add_argument("--models", nargs="+", choices=["ssgan", "baseline"],
                   default=["ssgan", "baseline"],
                   help="ssgan, and/or the baseline: the same D on the labels alone")
    p.add_argument("--epochs", type=int, default=25)
    add_options(p)
    p.add_argument("--quick", action="store_true", help="1 seed, 30 steps")
    args = p.parse_args(argv)
    options = config_options(p, args)
    seeds = args.seeds[:1] if args.quick else args.seeds
    rows, records = [], []
    for labels in args.labels:
        for supervised_only in [m == "baseline" for m in args.models]:
            runs = []
            for s in seeds:
                runs.append(run(labels, s, args.epochs, supervised_only,
                                30 if args.quick else None, **options))
                r = runs[-1]
                print(f"  labels {labels} seed {s} {'baseline' if supervised_only else 'ssgan'}:"
                      f" error {100 * r['error']:.2f}% (raw {100 * r['error_raw']:.2f}%),"
                      f" {r['steps']} steps, {r['seconds'] / 60:.1f} min", flush=True)
            records += runs
            raw = pm([r["error_raw"] for r in runs])
            rows.append([str(labels), "D on the labels alone" if supervised_only else "ssgan",
                         pm([r["error"] for r in runs]) + f" ({raw})",
                         PAPER.get(labels, "") if not supervised_only else "",
                         f"{runs[0]['steps'] / 600:g}",             # 600 steps an epoch
                         f"{np.mean([r['seconds'] for r in runs]) / 60:.1f}"])
            print(" | ".join(rows[-1]), flush=True)
    info = machine()
    print(f"\n{info['cpu']}, load average {info['load_average']:.2f};"
          f" seeds {' '.join(map(str, seeds))}\n")
    print(markdown_table(["labels", "model", "test error % (raw D)", "paper %", "epochs",
                          "min / run"], rows))
    tag = "_".join(["labels"] + [str(n) for n in args.labels] + ["seeds"] + [str(s) for s in seeds]
                   + args.models)
    print("saved", save(f"ssgan_mnist_{tag}", {"machine": info, "runs": records}))


if __name__ == "__main__":
    main()
