"""Conditional VAE: write any digit in any handwriting.

    python demos/cvae.py                     # about 5 seconds on a laptop CPU, no download
    python demos/cvae.py --dataset mnist     # real MNIST, about 45 seconds (TINYGEN_DATA or
                                             # --data-dir)

A conditional VAE is told the label, so its latent code only has to hold what the label does
not: the style. The code is kept small (8 numbers) so that it cannot also hold the digit.
Writes to --out (default out/cvae):

1. styles.png     each row is one random style z, decoded as 0, 1, ..., 9;
2. samples.png    random z with labels cycling 0..9 (so each column is one digit);
3. transfer.png   the style of real test digits (first column) written as every digit: encode
                  the image with its own label, decode the code with each of the ten labels.

The 8x8 digits hold little style beyond the class, so there the code stays almost unused (the
KL term is about 1 nat) and rows look alike. On MNIST, slant and stroke width carry over
clearly: run it with --dataset mnist to see style transfer.
"""

import time

import numpy as np

import tinygen as tg
from tinygen import demo, plotting
from tinygen.data import DataLoader
from tinygen.models.cvae import CVAE, Config


def main(argv=None):
    args = demo.parser(__doc__, "cvae", "default 40 for digits, 10 for mnist").parse_args(argv)
    (x, y), (xt, yt) = demo.start("cvae", args, argv)
    digits = args.dataset == "digits"
    cfg = Config(dataset=args.dataset, epochs=args.epochs or (40 if digits else 10),
                 seed=args.seed, image_size=x.shape[-1], hidden=256 if digits else 400,
                 latent=8, batch_size=64 if digits else 128)
    start = time.perf_counter()
    model = demo.train(CVAE(cfg), x, y, args, "run", quiet=False)
    loss = model.evaluate(DataLoader((xt, yt), batch_size=500))["loss"]
    print(f"trained in {time.perf_counter() - start:.0f}s; test negative ELBO {loss:.2f}")

    tg.manual_seed(1)
    digits = [str(c) for c in range(10)]
    demo.show([plotting.save_labelled_grid(
                   model.style_grid(8), args.out / "styles.png", nrow=10, col_labels=digits,
                   row_labels=[f"style {i + 1}" for i in range(8)],
                   title="one random style z per row, decoded with every label"),
               plotting.save_labelled_grid(
                   model.sample(60), args.out / "samples.png", nrow=10, col_labels=digits,
                   title="samples, one label per column"),
               save_transfer(model, xt, yt, args.out / "transfer.png")])


def save_transfer(model, x, y, path, rows=6):
    """Each row: a real digit, then its style decoded with every label."""
    z = model.latent(x[:rows], y[:rows])                          # style codes
    labels = np.tile(np.arange(10), rows)
    written = model.generate(np.repeat(z, 10, axis=0), labels).reshape(rows, 10, *x.shape[1:])
    grid = np.concatenate([x[:rows, None], written], axis=1).reshape(-1, *x.shape[1:])
    return plotting.save_labelled_grid(
        grid, path, nrow=11, row_labels=[f"a test {int(c)}" for c in y[:rows]],
        col_labels=["original"] + [f"as {c}" for c in range(10)],
        title="style transfer: each real digit's style decoded with every label")


if __name__ == "__main__":
    main()
