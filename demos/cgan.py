"""Conditional GAN: ask for a digit, get that digit, in many styles.

    python demos/cgan.py                     # 8x8 digits: about 3 minutes, no download
    python demos/cgan.py --dataset mnist     # MNIST, 3 epochs: about 5 minutes (207 ms a step)

G and D are both given the label (`tinygen/models/cgan.py`): G must draw the class it is asked
for, because D judges (image, label) pairs. Writes to --out (default out/cgan):

1. classes.png   one row per noise vector z, one column per requested class: within a row
                 the style stays, across columns the digit changes;
2. health.png    the GAN health monitor's curves.
"""

import time

import tinygen as tg
from tinygen import demo, latent
from tinygen.models.cgan import CGAN, Config
from tinygen.models.health import plot_health


def main(argv=None):
    args = demo.parser(__doc__, "cgan", "default 100 for digits, 3 for mnist").parse_args(argv)
    (x, y), _ = demo.start("cgan", args, argv)
    digits = args.dataset == "digits"
    cfg = Config(dataset=args.dataset, seed=args.seed, image_size=x.shape[-1],
                 batch_size=64 if digits else 128, width=32 if digits else 64,
                 epochs=args.epochs or (100 if digits else 3))
    start = time.perf_counter()
    model = demo.train(CGAN(cfg), x, y, args, "run", quiet=False)
    print(f"trained {cfg.epochs} epochs in {time.perf_counter() - start:.0f}s")
    tg.manual_seed(args.seed + 1)
    demo.show([latent.save_styles(model, args.out / "classes.png", n_styles=8),
               plot_health(args.out / "run")])


if __name__ == "__main__":
    main()
