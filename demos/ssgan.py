"""The semi-supervised GAN: a digit classifier from 100 labels and 60,000 unlabelled images.

    python demos/ssgan.py                  # MNIST, 5 epochs: about 5.5 minutes on 2 idle
                                           # cores (62-64 s an epoch)
    python demos/ssgan.py --labels 1000    # more labels
    python demos/ssgan.py --smoke          # three steps (the tests)

Salimans et al. 2016's K+1-class discriminator (`tinygen/models/ssgan.py`): D learns to name
the 10 digits from `--labels` labelled images (as many of each class, chosen by the seed)
while it also learns to tell the unlabelled training images from G's samples. After each epoch
the demo prints the test error of D, from the moving average of its weights and from the raw
weights. The paper reaches 0.93% with 100 labels after 300 epochs; this implementation
measured 8.4% after 6 epochs and 1.83% after 25 (README). Figures in --out (default
out/ssgan): the labelled images the model saw, one row per class, and samples of G.
"""

import numpy as np

from tinygen import demo, plotting
from tinygen.models import ssgan


def main(argv=None):
    p = demo.parser(__doc__, "ssgan", "default 5", datasets=("mnist",))
    p.add_argument("--labels", type=int, default=100, help="labelled images (default 100)")
    args = p.parse_args(argv)
    (x, y), test = demo.start("ssgan", args, argv)
    # ema 0.999: a few epochs are too short for the default (the authors' 0.9999, an average
    # over ~10,000 steps, which lags a D that is still improving fast).
    cfg = ssgan.Config(epochs=1 if args.smoke else (args.epochs or 5), labels=args.labels,
                       seed=args.seed, ema=0.999)
    model = ssgan.SSGAN(cfg)
    model.setup(x, y)
    print(f"labelled: {cfg.labels} images ({np.bincount(model.labelled.y.data).tolist()} per "
          f"class); unlabelled: all {len(x):,} training images, without their labels")
    for epoch in range(1, cfg.epochs + 1):
        model.cfg.epochs = epoch                         # one more epoch, resuming
        demo.train(model, x, y, args, "run", resume=epoch > 1)
        err = model.evaluate([test])
        print(f"epoch {epoch}: test error {100 * err['error']:.2f}% (averaged D), "
              f"{100 * err['error_raw']:.2f}% (raw D)", flush=True)
        model.train()
    order = np.argsort(model.labelled.y.data, kind="stable")
    labelled = model.labelled.x.data[order].reshape(-1, *model.image_shape)
    figures = [plotting.save_labelled_grid(
        labelled, args.out / "labelled.png", nrow=cfg.labels // 10,
        row_labels=[str(k) for k in range(10)],
        title=f"the {cfg.labels} labelled images D saw, one row per class"),
        plotting.save_labelled_grid(model.sample(64), args.out / "samples.png", nrow=8,
                                    title=f"G's samples after {cfg.epochs} epoch(s)")]
    demo.show(figures)


if __name__ == "__main__":
    main()
