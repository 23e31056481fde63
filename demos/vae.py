"""The main demo: train a VAE with a 2-D latent space and look inside it.

    python demos/vae.py                     # 20-25 s on a 2-core VM, no download
    python demos/vae.py --dataset mnist     # real MNIST, about 45 seconds (TINYGEN_DATA or
                                            # --data-dir)

The story, in five figures written to --out (default out/vae):

1. reconstructions.png  test digits (top row) and what the VAE makes of them (bottom row);
2. samples.png          new digits decoded from z ~ N(0, I);
3. latent_scatter.png   where the encoder puts each test digit, coloured by its label: the
                        classes separate although the VAE never saw a label;
4. latent_map.png       the decoder's view: a grid of z values at Gaussian quantiles, so each
                        cell covers equal prior mass; digits morph smoothly into each other;
5. interpolations.png   walks between the codes of two test digits (linear, then spherical).

A 2-D latent space is too small for sharp samples (use --latent 20 for that), but it is the
one latent space we can draw whole.
"""

import time

import tinygen as tg
from tinygen import demo, latent, plotting
from tinygen.data import DataLoader
from tinygen.models.vae import VAE, Config


def main(argv=None):
    parser = demo.parser(__doc__, "vae", "default 150 for digits, 10 for mnist")
    parser.add_argument("--latent", type=int, default=2, help="latent size (default 2)")
    args = parser.parse_args(argv)
    (x, y), (xt, yt) = demo.start("vae", args, argv)
    digits = args.dataset == "digits"
    cfg = Config(dataset=args.dataset, epochs=args.epochs or (150 if digits else 10),
                 seed=args.seed, latent=args.latent, image_size=x.shape[-1],
                 hidden=256 if digits else 400, batch_size=64 if digits else 128,
                 # On the 1,438 8x8 digits one hidden layer of 256 gives reconstructions a
                 # digits classifier reads as the right digit 75% of the time (it reads the
                 # originals 95.5%); two layers and Adam 3e-3 give 85-88%
                 # (benchmarks/vae_digits.py).
                 hidden_layers=2 if digits else 1, lr=3e-3 if digits else 1e-3)
    print(f"training a {x.shape[-1]}x{x.shape[-1]} VAE with a {cfg.latent}-D latent space on "
          f"{len(x)} {args.dataset} images for {cfg.epochs} epochs")

    start = time.perf_counter()
    model = demo.train(VAE(cfg), x, y, args, "run", quiet=False)
    scores = model.evaluate(DataLoader((xt, yt), batch_size=500))
    print(f"trained in {time.perf_counter() - start:.0f}s; test loss (negative ELBO per image) "
          f"{scores['loss']:.2f} = reconstruction {scores['recon']:.2f} + KL {scores['kl']:.2f}")

    figures = [
        # Labels name each column's true class, so a wrong reconstruction is visible as one.
        latent.save_reconstructions(model, xt, args.out / "reconstructions.png", yt),
        save_samples(model, args.out / "samples.png"),
        latent.save_latent_scatter(model, xt, yt, args.out / "latent_scatter.png"),
        latent.save_interpolations(model, xt, args.out / "interpolations.png", yt),
    ]
    if cfg.latent == 2:
        figures.append(latent.save_manifold(model, args.out / "latent_map.png"))
    demo.show(figures)


def save_samples(model, path, n=64):
    tg.manual_seed(1)
    return plotting.save_labelled_grid(model.sample(n), path, nrow=8,
                                       title="new digits: decoded z ~ N(0, I)")


if __name__ == "__main__":
    main()
