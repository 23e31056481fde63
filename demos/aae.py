"""Adversarial autoencoders: a GAN on the codes shapes them into any prior you can sample.

    python demos/aae.py                     # the 8x8 digits, no download: ~9 minutes
    python demos/aae.py --dataset mnist     # real MNIST (TINYGEN_DATA or --data-dir)
    python demos/aae.py --parts priors --priors gaussian   # one part, one prior

Four parts (`--parts`), each one of Makhzani et al.'s uses, writing to --out (default
out/aae). Measured on the 2-core machine while two trainings ran beside it: priors 37-42 s
each, supervised 109 s, semi 166 s, clusters 142 s (276 s with `d_noise`, 2026-12-07).

priors      `tinygen/models/aae.py` with a 2-D code under each prior (N(0, I), a mixture of
            10 Gaussians on a circle, a swiss roll):
            codes_PRIOR.png     the test images' codes, coloured by digit, over samples of
                                the prior (grey): the codes sit where the prior is;
            samples_PRIOR.png   images decoded from samples of the prior;
            manifold_PRIOR.png  images decoded from a grid over the code plane.
            The VAE reaches the same goal through KL(q(z|x) || p(z)), which needs p's density;
            the AAE only needs samples of p, which is why the swiss roll works here. The
            digits are unlabelled: the colours show what the encoder found on its own.
supervised  `aae --supervised`: the label goes to the decoder, so the code keeps only the
            style. supervised_styles.png: one code per row, decoded as every digit.
semi        `aae_semi.py` with 100 labels (10 a digit; every other image unlabelled): q(y|x)
            classifies; semi_styles.png decodes one style per row with every category.
clusters    `aae_cluster.py`, no labels, 16 clusters: clusters.png shows one row per cluster,
            its head first, and the test error after naming each cluster by its head. Here
            D_y and D_z read their inputs through Gaussian noise (`d_noise` 0.3): without it
            the codes collapse into one cluster within 3 epochs and stay there (README).
"""

import time

import numpy as np

import tinygen as tg
from tinygen import demo, latent, plotting
from tinygen.models import aae_cluster, aae_semi
from tinygen.models.aae import AAE, PRIORS, Config, sample_prior

PARTS = ("priors", "supervised", "semi", "clusters")


def main(argv=None):
    p = demo.parser(__doc__, "aae", "default 100 for digits, 10 for mnist")
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    p.add_argument("--priors", nargs="+", default=list(PRIORS), choices=list(PRIORS))
    args = p.parse_args(argv)
    data = demo.start("aae", args, argv)
    figures = []
    for part in args.parts:
        figures += {"priors": priors, "supervised": supervised, "semi": semi,
                    "clusters": clusters}[part](args, *data)
    demo.show(figures)


def sizes(args, x) -> dict:
    """Options for the data: small, fast nets on the 8x8 digits; the paper's on MNIST."""
    digits = args.dataset == "digits"
    return dict(dataset=args.dataset, epochs=args.epochs or (100 if digits else 10),
                seed=args.seed, image_size=x.shape[-1], hidden=256 if digits else 1000,
                batch_size=64 if digits else 100, lr=1e-3 if digits else 2e-4,
                lr_d=1e-3 if digits else 2e-4)


def priors(args, train, test):
    (x, y), (xt, yt) = train, test
    figures = []
    for prior in args.priors:
        cfg = Config(**sizes(args, x), latent=2, prior=prior)
        start = time.perf_counter()
        model = demo.train(AAE(cfg), x, y, args, f"run_{prior}")
        bce = model.evaluate([(xt, yt)])["recon_bce"]
        print(f"{prior:>10}: trained in {time.perf_counter() - start:.0f}s, test "
              f"reconstruction BCE {bce:.4f} per pixel", flush=True)
        tg.manual_seed(1)
        figures += [
            plotting.save_scatter(model.latent(xt), args.out / f"codes_{prior}.png",
                                  labels=yt, reference=sample_prior(prior, 2000, 2),
                                  title=f"test codes by digit (colour) over the {prior} "
                                        f"prior (grey)"),
            plotting.save_labelled_grid(model.sample(64), args.out / f"samples_{prior}.png",
                                        nrow=8, title=f"decoded samples of the {prior} prior"),
            save_code_manifold(model, prior, args.out / f"manifold_{prior}.png")]
    return figures


def supervised(args, train, test):
    (x, y), (xt, yt) = train, test
    start = time.perf_counter()
    model = demo.train(AAE(Config(**sizes(args, x), latent=8, supervised=True)), x, y, args,
                       "run_supervised")
    bce = model.evaluate([(xt, yt)])["recon_bce"]
    print(f"supervised: trained in {time.perf_counter() - start:.0f}s, test reconstruction "
          f"BCE {bce:.4f} per pixel", flush=True)
    tg.manual_seed(1)
    return [latent.save_styles(model, args.out / "supervised_styles.png")]


def semi(args, train, test):
    (x, y), (xt, yt) = train, test
    model = aae_semi.CategoricalAAE(aae_semi.Config(**sizes(args, x), labels=100))
    model.setup(x, y)                               # picks the 100 labelled images
    start = time.perf_counter()
    model = demo.train(model, x, y, args, "run_semi")
    err = model.evaluate([(xt, yt)])["error"]
    print(f"semi-supervised, 100 labels of {len(x)}: trained in "
          f"{time.perf_counter() - start:.0f}s, test error {100 * err:.2f}%", flush=True)
    tg.manual_seed(1)
    return [latent.save_styles(model, args.out / "semi_styles.png")]


def clusters(args, train, test):
    (x, y), (xt, yt) = train, test
    model = aae_semi.CategoricalAAE(aae_cluster.Config(**sizes(args, x), d_noise=0.3))
    model.setup(x, y)                               # keeps images (and labels) for the heads
    start = time.perf_counter()
    model = demo.train(model, x, y, args, "run_clusters")
    err = model.evaluate([(xt, yt)])["cluster_error"]
    print(f"clustering, {model.cfg.clusters} clusters, no labels: trained in "
          f"{time.perf_counter() - start:.0f}s, test error {100 * err:.2f}% after naming each "
          f"cluster by its head", flush=True)
    return [model.save_clusters(x, y, args.out / "clusters.png")]


def save_code_manifold(model, prior, path, n=15):
    """Decode a grid over the code plane; the Gaussian's grid is at its quantiles."""
    if prior == "gaussian":
        return latent.save_manifold(model, path, n)
    span = np.linspace(-5, 5, n)                     # the 2-D priors reach radius ~4.5
    z = np.stack(np.meshgrid(span, span[::-1]), axis=-1).reshape(-1, 2)
    return plotting.save_labelled_grid(
        model.generate(z), path, nrow=n, row_labels=[f"z2={v:.1f}" for v in span[::-1]],
        col_labels=[f"{v:.1f}" for v in span],
        title=f"decoded code plane ({prior} prior): z1 across, z2 down")


if __name__ == "__main__":
    main()
