"""Adversarial autoencoders: one code space, three priors, matched by a GAN on the codes.

    python demos/aae.py                     # the 8x8 digits, no download: a few minutes
    python demos/aae.py --dataset mnist     # real MNIST (TINYGEN_DATA or --data-dir)
    python demos/aae.py --priors gaussian   # one prior only

For each prior (`tinygen/models/aae.py`: N(0, I), a mixture of 10 Gaussians on a circle, a
swiss roll) it trains an adversarial autoencoder with a 2-D code and writes, to --out (default
out/aae):

1. codes_PRIOR.png     the test images' codes, coloured by digit, over samples of the prior
                       (grey): the encoder has learned to put its codes where the prior is;
2. samples_PRIOR.png   images decoded from samples of the prior;
3. manifold_PRIOR.png  images decoded from a grid over the code plane.

The VAE reaches the same goal through KL(q(z|x) || p(z)), which needs p's density; the AAE
only needs samples of p, which is why the swiss roll works here. The digits are unlabelled
throughout: the colours show what the encoder found on its own.
"""

import time

import numpy as np

import tinygen as tg
from tinygen import demo, latent, plotting
from tinygen.models.aae import AAE, PRIORS, Config, sample_prior


def main(argv=None):
    p = demo.parser(__doc__, "aae", "default 100 for digits, 10 for mnist")
    p.add_argument("--priors", nargs="+", default=list(PRIORS), choices=list(PRIORS))
    args = p.parse_args(argv)
    (x, y), (xt, yt) = demo.start("aae", args, argv)
    digits = args.dataset == "digits"
    figures = []
    for prior in args.priors:
        cfg = Config(dataset=args.dataset, epochs=args.epochs or (100 if digits else 10),
                     seed=args.seed, latent=2, prior=prior, image_size=x.shape[-1],
                     hidden=256 if digits else 1000, batch_size=64 if digits else 100,
                     lr=1e-3 if digits else 2e-4, lr_d=1e-3 if digits else 2e-4)
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
    demo.show(figures)


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
