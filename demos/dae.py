"""Denoising autoencoders: learn to undo three kinds of damage.

    python demos/dae.py                     # about 10 seconds on a laptop CPU, no download
    python demos/dae.py --dataset mnist     # real MNIST, about 40 seconds (TINYGEN_DATA or
                                            # --data-dir)

The story:

1. Train a plain autoencoder on clean images: the baseline.
2. For each corruption of the DAE papers (masking, salt-and-pepper, Gaussian) train a DAE that
   sees corrupted images and must rebuild the clean ones.
3. Corrupt the test images and ask both models to clean them up. The table compares the loss
   against the *clean* images; the DAE has learned what digits look like, the plain AE only
   learned to copy, holes and speckles included.

Figures in --out (default out/dae): denoise_<noise>.png for each noise, with rows
clean test digits / corrupted / the DAE's reconstruction / the plain AE's reconstruction.
"""

import time
from dataclasses import replace

import numpy as np

import tinygen as tg
from tinygen import demo, plotting
from tinygen.models.ae import AE
from tinygen.models.dae import DAE, NOISES, Config


def main(argv=None):
    parser = demo.parser(__doc__, "dae", "default 100 for digits, 5 for mnist")
    parser.add_argument("--latent", type=int, default=32, help="code size (default 32)")
    parser.add_argument("--hidden", type=int, default=0, help="hidden width (default none)")
    parser.add_argument("--noise-level", type=float, default=0.25,
                        help="masking / salt-and-pepper probability, or Gaussian std "
                        "(default 0.25)")
    args = parser.parse_args(argv)
    (x, y), (xt, yt) = demo.start("dae", args, argv)
    epochs = args.epochs or (100 if args.dataset == "digits" else 5)
    cfg = Config(dataset=args.dataset, epochs=epochs, seed=args.seed, latent=args.latent,
                 hidden=args.hidden, noise_level=args.noise_level, image_size=x.shape[-1])
    sizes = "-".join(str(n) for n in [x[0].size, cfg.hidden, cfg.latent] if n)
    print(f"{len(x)} {args.dataset} images; encoders {sizes}; {epochs} epochs each; noise "
          f"level {cfg.noise_level}")

    start = time.perf_counter()
    plain = demo.train(AE(cfg), x, y, args, "ae")        # AE ignores the noise fields of cfg
    print("\n| noise | corrupted input | plain AE | DAE |\n|---|---|---|---|")
    figures = []
    for noise in NOISES:
        dae = demo.train(DAE(replace(cfg, noise=noise)), x, y, args, f"dae_{noise}")
        # The same corrupted test images for both models, from a generator of their own.
        noisy = dae.corrupt(tg.tensor(xt), np.random.default_rng(0)).data
        losses = [bce(noisy, xt), denoising_loss(plain, noisy, xt),
                  denoising_loss(dae, noisy, xt)]
        print(f"| {noise} | " + " | ".join(f"{v:.4f}" for v in losses) + " |")
        n = 12
        rows = [xt[:n], noisy[:n], dae.reconstruct(noisy[:n]), plain.reconstruct(noisy[:n])]
        figures.append(plotting.save_labelled_grid(
            np.concatenate(rows), args.out / f"denoise_{noise}.png", nrow=n,
            row_labels=["clean", f"corrupted ({noise})", "denoised by DAE", "plain AE"],
            col_labels=[str(int(c)) for c in yt[:n]],
            title=f"{noise} noise at level {cfg.noise_level}; columns: true class"))
    print(f"\n(test BCE per pixel against the clean images; 'corrupted input' scores the noisy "
          f"image itself; {time.perf_counter() - start:.0f}s)")
    print("figures (rows: clean, corrupted, DAE, plain AE):\n  "
          + "\n  ".join(str(f) for f in figures))


def denoising_loss(model, noisy, clean) -> float:
    """Per-pixel BCE between the model's reconstruction of `noisy` and the clean images."""
    with tg.no_grad():
        out = model.decode(model.encode(tg.tensor(noisy)))
        return model.reconstruction_loss(out, tg.tensor(clean)).item()


def bce(p, x) -> float:
    """Per-pixel BCE of using the corrupted pixels p themselves as the prediction."""
    p = np.clip(p, 1e-6, 1 - 1e-6)             # a masked pixel is exactly 0: avoid log(0)
    return float(-np.mean(x * np.log(p) + (1 - x) * np.log(1 - p)))


if __name__ == "__main__":
    main()
