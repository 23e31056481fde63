"""The main demo: train a VAE with a 2-D latent space and look inside it.

    python demos/vae.py                     # about a minute on a laptop CPU, no download
    python demos/vae.py --dataset mnist     # real MNIST (set TINYGEN_DATA or --data-dir)

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

import argparse
import sys
import time
from pathlib import Path

import tinygen as tg
from tinygen import latent
from tinygen.data import DataLoader
from tinygen.data.datasets import load_dataset
from tinygen.models.vae import VAE, Config
from tinygen.train import fit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist"],
                        help="digits: 8x8, bundled, no download (default); mnist: 28x28")
    parser.add_argument("--epochs", type=int, help="default 60 for digits, 10 for mnist")
    parser.add_argument("--latent", type=int, default=2, help="latent size (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/vae"), help="figure folder")
    parser.add_argument("--data-dir", type=Path, help="folder holding mnist/")
    parser.add_argument("--smoke", action="store_true", help="one short epoch (for tests)")
    args = parser.parse_args(argv)

    print(f"command: python demos/vae.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    x, y = load_dataset(args.dataset, "train", data_dir=args.data_dir)
    xt, yt = load_dataset(args.dataset, "test", data_dir=args.data_dir)
    epochs = 1 if args.smoke else args.epochs or (60 if args.dataset == "digits" else 10)
    cfg = Config(dataset=args.dataset, epochs=epochs, seed=args.seed, latent=args.latent,
                 image_size=x.shape[-1], hidden=256 if args.dataset == "digits" else 400,
                 batch_size=64 if args.dataset == "digits" else 128)
    print(f"training a {x.shape[-1]}x{x.shape[-1]} VAE with a {cfg.latent}-D latent space on "
          f"{len(x)} {args.dataset} images for {epochs} epochs")

    tg.manual_seed(cfg.seed)
    model = VAE(cfg)
    loader = DataLoader((x, y), batch_size=cfg.batch_size, shuffle=True, generator=cfg.seed)
    start = time.perf_counter()
    fit(model, loader, epochs, args.out / "run", config=cfg, sample_every=0,
        max_steps=3 if args.smoke else None, log_every=max(1, len(loader)))
    model.eval()
    scores = model.evaluate(DataLoader((xt, yt), batch_size=500))
    print(f"trained in {time.perf_counter() - start:.0f}s; test loss (negative ELBO per image) "
          f"{scores['loss']:.2f} = reconstruction {scores['recon']:.2f} + KL {scores['kl']:.2f}")

    figures = [
        latent.save_reconstructions(model, xt, args.out / "reconstructions.png"),
        save_samples(model, args.out / "samples.png"),
        latent.save_latent_scatter(model, xt, yt, args.out / "latent_scatter.png"),
        latent.save_interpolations(model, xt, args.out / "interpolations.png"),
    ]
    if cfg.latent == 2:
        figures.append(latent.save_manifold(model, args.out / "latent_map.png"))
    print("figures:\n  " + "\n  ".join(str(f) for f in figures))


def save_samples(model, path, n=64):
    from tinygen import plotting

    tg.manual_seed(1)
    return plotting.save_image_grid(model.sample(n), path)


if __name__ == "__main__":
    main()
