"""DCGAN: convolutional G and D draw digits, and walking through z morphs one into another.

    python demos/dcgan.py                    # 8x8 digits: about 3 minutes, no download
    python demos/dcgan.py --dataset mnist    # MNIST, 3 epochs: about 5 minutes (TINYGEN_DATA
                                             # or --data-dir)

The networks follow Radford et al.'s guidelines: strided convolutions instead of pooling,
batch norm, ReLU in G and LeakyReLU in D (`tinygen/models/dcgan.py`). Writes to --out
(default out/dcgan):

1. progress.png       the same 10 noise vectors after each quarter of training (one row each);
2. samples.png        100 samples from fresh noise;
3. interpolations.png walks between random z0 and z1, linear and spherical (slerp);
4. health.png         the GAN health monitor's curves.
"""

import time

import numpy as np

import tinygen as tg
from tinygen import demo, latent, plotting
from tinygen.models.dcgan import DCGAN, Config
from tinygen.models.health import plot_health


def main(argv=None):
    args = demo.parser(__doc__, "dcgan", "default 100 for digits, 3 for mnist").parse_args(argv)
    (x, y), _ = demo.start("dcgan", args, argv)
    digits = args.dataset == "digits"
    epochs = args.epochs or (100 if digits else 3)
    cfg = Config(dataset=args.dataset, seed=args.seed, image_size=x.shape[-1],
                 batch_size=64 if digits else 128, width=32 if digits else 64, epochs=epochs)
    model = DCGAN(cfg)
    z = np.random.default_rng(args.seed + 1).standard_normal((10, cfg.latent))
    rows, labels = [], []
    start = time.perf_counter()
    quarters = [max(1, round(epochs * q / 4)) for q in range(1, 5)]
    done = 0
    for target in quarters:                  # train in quarters, drawing the same z each time
        if target > done:
            model.cfg.epochs = target
            demo.train(model, x, y, args, "run", resume=done > 0)
            model.train()
            done = target
        rows.append(model.generate(z))
        labels.append(f"epoch {done}")
    model.eval()
    print(f"trained {epochs} epochs in {time.perf_counter() - start:.0f}s")
    tg.manual_seed(args.seed + 2)
    demo.show([
        plotting.save_labelled_grid(np.concatenate(rows), args.out / "progress.png", nrow=10,
                                    row_labels=labels, title="G(z) for 10 fixed z as G learns"),
        plotting.save_labelled_grid(model.sample(100), args.out / "samples.png", nrow=10,
                                    title=f"DCGAN samples after {epochs} epochs"),
        latent.save_noise_interpolations(model, args.out / "interpolations.png"),
        plot_health(args.out / "run"),
    ])


if __name__ == "__main__":
    main()
