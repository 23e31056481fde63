"""Conditional VAE: write any digit in any handwriting.

    python demos/cvae.py                     # about a minute on a laptop CPU, no download
    python demos/cvae.py --dataset mnist     # real MNIST (set TINYGEN_DATA or --data-dir)

A conditional VAE is told the label, so its latent code only has to hold what the label does
not: the style. Writes to --out (default out/cvae):

1. styles.png     each row is one random style z, decoded as 0, 1, ..., 9;
2. samples.png    random z with labels cycling 0..9 (so each column is one digit);
3. transfer.png   the style of real test digits (first column) written as every digit: encode
                  the image with its own label, decode the code with each of the ten labels.

The 8x8 digits hold little style beyond the class, so there the code stays almost unused (the
KL term is about 1 nat) and rows look alike. On MNIST, slant and stroke width carry over
clearly: run it with --dataset mnist to see style transfer.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import tinygen as tg
from tinygen import plotting
from tinygen.data import DataLoader
from tinygen.data.datasets import load_dataset
from tinygen.models.cvae import CVAE, Config
from tinygen.train import fit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist"],
                        help="digits: 8x8, bundled, no download (default); mnist: 28x28")
    parser.add_argument("--epochs", type=int, help="default 40 for digits, 10 for mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/cvae"), help="figure folder")
    parser.add_argument("--data-dir", type=Path, help="folder holding mnist/")
    parser.add_argument("--smoke", action="store_true", help="a few steps (for tests)")
    args = parser.parse_args(argv)

    print(f"command: python demos/cvae.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    x, y = load_dataset(args.dataset, "train", data_dir=args.data_dir)
    xt, yt = load_dataset(args.dataset, "test", data_dir=args.data_dir)
    epochs = 1 if args.smoke else args.epochs or (40 if args.dataset == "digits" else 10)
    small = args.dataset == "digits"
    cfg = Config(dataset=args.dataset, epochs=epochs, seed=args.seed, image_size=x.shape[-1],
                 hidden=256 if small else 400, latent=8 if small else 20,
                 batch_size=64 if small else 128)
    tg.manual_seed(cfg.seed)
    model = CVAE(cfg)
    loader = DataLoader((x, y), batch_size=cfg.batch_size, shuffle=True, generator=cfg.seed)
    start = time.perf_counter()
    fit(model, loader, epochs, args.out / "run", config=cfg, sample_every=0,
        max_steps=3 if args.smoke else None, log_every=max(1, len(loader)))
    model.eval()
    loss = model.evaluate(DataLoader((xt, yt), batch_size=500))["loss"]
    print(f"trained in {time.perf_counter() - start:.0f}s; test negative ELBO {loss:.2f}")

    tg.manual_seed(1)
    figures = [plotting.save_image_grid(model.style_grid(8), args.out / "styles.png", nrow=10),
               plotting.save_image_grid(model.sample(60), args.out / "samples.png", nrow=10),
               save_transfer(model, xt, yt, args.out / "transfer.png")]
    print("figures:\n  " + "\n  ".join(str(f) for f in figures))


def save_transfer(model, x, y, path, rows=6):
    """Each row: a real digit, then its style decoded with every label."""
    z = model.latent(x[:rows], y[:rows])                          # style codes
    labels = np.tile(np.arange(10), rows)
    written = model.generate(np.repeat(z, 10, axis=0), labels).reshape(rows, 10, *x.shape[1:])
    grid = np.concatenate([x[:rows, None], written], axis=1).reshape(-1, *x.shape[1:])
    return plotting.save_image_grid(grid, path, nrow=11)


if __name__ == "__main__":
    main()
