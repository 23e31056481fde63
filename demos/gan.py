"""A GAN learns the ring of 8 Gaussians, then (optionally) handwritten digits.

    python demos/gan.py                      # ring8: under a minute (11,700 steps at 3.9 ms)
    python demos/gan.py --dataset mnist      # MNIST, 25 epochs: about 13 minutes at 33 ms a
                                             # step (TINYGEN_DATA or --data-dir)

G turns noise into points, D tells them from real ones, and each improves against the other
(`tinygen/models/gan.py`; the shared loop is `tinygen/models/adversarial.py`). On the ring we
can count what G learned: a mode is covered when at least 20 of 2,500 samples land within
3 std of its centre. Writes to --out (default out/gan):

1. samples.png   2,500 samples over the 8 true centres (ring8), or a grid of digits (mnist);
2. health.png    D(x) and D(G(z)), both losses, both gradient norms and the modes (or digit
                 classes) a fixed batch of noise covers, over training;
3. run/          the run folder: log.jsonl, checkpoint.npz (`tinygen sample out/gan/run`).
"""

import time

from tinygen import demo, plotting
from tinygen.data import toy
from tinygen.metrics import mode_metrics
from tinygen.models.gan import GAN, Config
from tinygen.models.health import plot_health


def main(argv=None):
    args = demo.parser(__doc__, "gan", "default 150 for ring8, 25 for mnist",
                       datasets=("ring8", "mnist")).parse_args(argv)
    (x, y), _ = demo.start("gan", args, argv)
    ring = args.dataset == "ring8"
    if ring:                          # the model's ring settings, for a quarter of its epochs
        cfg = Config(dataset="ring8", seed=args.seed, epochs=args.epochs or 150)  # model: 600
    else:                             # the README's MNIST command
        cfg = Config(dataset="mnist", seed=args.seed, epochs=args.epochs or 25, batch_size=64,
                     latent=100)
    print(f"training a GAN on {len(x)} {args.dataset} examples for {cfg.epochs} epochs")
    start = time.perf_counter()
    model = demo.train(GAN(cfg), x, y, args, "run", quiet=False)
    print(f"trained in {time.perf_counter() - start:.0f}s")
    samples = model.sample(2500 if ring else 100)
    if ring:
        m = mode_metrics(samples, toy.ring8_mixture(), min_count=20)
        title = (f"ring8: {m['modes']}/8 modes covered (>= 20 samples each), "
                 f"{m['high_quality_pct']:.0f}% within 3 std")
        print(title)
        figure = plotting.save_scatter(samples, args.out / "samples.png", title=title,
                                       reference=toy.ring8_mixture().centers)
    else:
        figure = plotting.save_labelled_grid(samples, args.out / "samples.png", nrow=10,
                                             title=f"GAN samples after {cfg.epochs} epochs")
    demo.show([figure, plot_health(args.out / "run")])


if __name__ == "__main__":
    main()
