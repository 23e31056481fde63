"""Autoencoders, and why the linear one is just PCA.

    python demos/ae.py                      # about 10 seconds on a laptop CPU, no download
    python demos/ae.py --dataset mnist      # real MNIST, about 40 seconds (TINYGEN_DATA or
                                            # --data-dir)

The story:

1. Train an autoencoder (a k-unit code, logistic output, per-pixel BCE) and report its test
   loss.
2. Train a *linear* autoencoder with the same k (no nonlinearity, squared error). Baldi &
   Hornik (1989) say its optimum spans the same subspace as PCA's top k components, so its
   test error should equal PCA's, and the angles between the two subspaces should be about 0.
   We compute PCA with an SVD and check both.
3. Figures in --out (default out/ae):
   reconstructions.png  rows: test digits, the AE, the linear AE, PCA with k components;
   samples.png          the AE decoding codes drawn from a Gaussian fitted to its training
                        codes: poor digits, because nothing made the codes fill that Gaussian
                        (the VAE in demos/vae.py fixes exactly this);
   latent_scatter.png   the AE's test codes (top two principal components), coloured by label.
"""

import time
from dataclasses import replace

import numpy as np

import tinygen as tg
from tinygen import demo, latent, plotting
from tinygen.data import DataLoader
from tinygen.models.ae import AE, Config, LinearAE, principal_angles


def main(argv=None):
    parser = demo.parser(__doc__, "ae", "default 100 for digits, 5 for mnist")
    parser.add_argument("--latent", type=int,
                        help="code size k (default 8 for digits, 32 for mnist)")
    args = parser.parse_args(argv)
    (x, y), (xt, yt) = demo.start("ae", args, argv)
    k = args.latent or (8 if args.dataset == "digits" else 32)
    epochs = args.epochs or (100 if args.dataset == "digits" else 5)
    cfg = Config(dataset=args.dataset, epochs=epochs, seed=args.seed, latent=k,
                 image_size=x.shape[-1])
    d = x[0].size
    print(f"{len(x)} {args.dataset} images of {d} pixels, squeezed through a {k}-number code, "
          f"{epochs} epochs")

    # 1. The autoencoder.
    start = time.perf_counter()
    ae = demo.train(AE(cfg), x, y, args, "ae")
    bce = ae.evaluate(DataLoader((xt, yt), batch_size=500))["loss"]
    print(f"AE {d}-{k}-{d}: test BCE per pixel {bce:.4f} ({time.perf_counter() - start:.0f}s)")

    # 2. The linear autoencoder against PCA. Its slowest direction to settle is the k-th axis
    # when the k-th and (k+1)-th variances are close: tilting the subspace between those two
    # axes barely changes the loss. So it gets a larger step and more epochs than the AE.
    lin_cfg = replace(cfg, lr=1e-2, epochs=4 * epochs)
    lin = demo.train(LinearAE(lin_cfg), x, y, args, "linear_ae")
    mse = lin.evaluate(DataLoader((xt, yt), batch_size=500))["loss"]
    mean, axes, variances = pca(x, k)
    pca_xt = pca_reconstruct(xt, mean, axes)
    pca_mse = float(np.mean((pca_xt - xt) ** 2))
    print(f"linear AE ({lin_cfg.epochs} epochs): test squared error per pixel {mse:.5f}; PCA "
          f"with {k} components {pca_mse:.5f}")
    angles = principal_angles(lin.decoder[0].weight.data, axes)    # decoder W2 is (d, k)
    print(f"principal angles between the decoder's columns and PCA's top-{k} subspace: "
          f"smallest {angles[0]:.1f}, median {np.median(angles):.1f}, largest {angles[-1]:.1f} "
          f"degrees (PCA variances {k} and {k + 1}: {variances[k - 1]:.3f}, "
          f"{variances[k]:.3f}; the closer they are, the slower the last angle closes)")

    # 3. Figures.
    n = 12
    rows = [xt[:n], ae.reconstruct(xt[:n]), lin.reconstruct(xt[:n]),
            np.clip(pca_xt[:n], 0, 1)]
    tg.manual_seed(1)
    figures = [
        plotting.save_labelled_grid(
            np.concatenate(rows), args.out / "reconstructions.png", nrow=n,
            row_labels=["original", "AE", "linear AE", f"PCA (k={k})"],
            col_labels=[str(int(c)) for c in yt[:n]],
            title="test images and three reconstructions; columns: true class"),
        plotting.save_labelled_grid(ae.sample(64), args.out / "samples.png", nrow=8,
                                    title="AE: decoded codes drawn from a Gaussian fitted to "
                                          "the training codes"),
        latent.save_latent_scatter(ae, xt, yt, args.out / "latent_scatter.png"),
    ]
    demo.show(figures)


def pca(x, k):
    """Mean, top-k principal axes (d, k) and all variances of images x, from an SVD of the
    centred data: the right singular vectors are the axes, s^2 / N the variances along them."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return mean, vt[:k].T, s ** 2 / len(flat)


def pca_reconstruct(x, mean, axes):
    flat = x.reshape(len(x), -1) - mean
    return (flat @ axes @ axes.T + mean).reshape(x.shape)


if __name__ == "__main__":
    main()
