"""What every demo in demos/ shares: its command line, its data and a quiet training run.

Each demo tells one story; keeping this plumbing here leaves the story as most of the file.
Every demo takes --dataset (the offline 8x8 digits by default, or MNIST), --epochs, --seed,
--out, --data-dir and --smoke (three training steps, for the tests).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import tinygen as tg
from tinygen import models
from tinygen.data import DataLoader
from tinygen.data.datasets import load_dataset
from tinygen.train import CHECKPOINT, fit

DATASET_HELP = {"digits": "8x8, bundled, no download", "mnist": "28x28",
                "ring8": "8 Gaussians on a circle", "grid25": "5x5 grid of Gaussians"}


def parser(doc: str, name: str, epochs_help: str,
           datasets=("digits", "mnist")) -> argparse.ArgumentParser:
    """The shared options; a demo adds its own and calls parse_args. The first of `datasets`
    is the default."""
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=datasets[0], choices=list(datasets),
                   help="; ".join(f"{d}: {DATASET_HELP[d]}" + (" (default)" if i == 0 else "")
                                  for i, d in enumerate(datasets)))
    p.add_argument("--epochs", type=int, help=epochs_help)
    p.add_argument("--seed", type=int, default=0, help="seed for weights, data order and noise")
    p.add_argument("--out", type=Path, default=Path("out") / name,
                   help=f"figure folder (default out/{name})")
    p.add_argument("--data-dir", type=Path, help="folder holding mnist/ (else TINYGEN_DATA)")
    p.add_argument("--smoke", action="store_true", help="three training steps only (for tests)")
    return p


def start(name: str, args, argv) -> tuple:
    """Print the exact command, seed everything, and return ((x, y), (x_test, y_test))."""
    words = sys.argv[1:] if argv is None else argv
    print(f"command: python demos/{name}.py {' '.join(words)}".rstrip())
    tg.manual_seed(args.seed)
    return (load_dataset(args.dataset, "train", data_dir=args.data_dir),
            load_dataset(args.dataset, "test", data_dir=args.data_dir))


def train(model, x, y, args, name: str, quiet: bool = True, resume: bool = False):
    """Train with the shared loop (checkpoints and log in OUT/name); returns it in eval mode.
    A fresh run (resume=False) first removes the log and checkpoint of an earlier one."""
    out = args.out / name
    if not resume:
        for old in (out / "log.jsonl", out / CHECKPOINT):
            old.unlink(missing_ok=True)
    loader = DataLoader((x, y), batch_size=model.cfg.batch_size, shuffle=True,
                        generator=args.seed)
    registered = models.name_of(model)      # recorded so that `tinygen eval OUT/name` works
    config = (model.cfg if registered is None
              else {"model": registered, **dataclasses.asdict(model.cfg)})
    fit(model, loader, model.cfg.epochs, out, config=config, sample_every=0, resume=resume,
        quiet=quiet, max_steps=3 if args.smoke else None,
        log_every=1 if args.smoke else max(1, len(loader)))
    model.eval()
    return model


def show(figures) -> None:
    print("figures:\n  " + "\n  ".join(str(f) for f in figures))
