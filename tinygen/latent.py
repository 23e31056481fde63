"""Latent-space tools: walk, map and do arithmetic in a generative model's code space.

Works with any model that offers `latent(x) -> (N, d)` codes (posterior means for a VAE),
`generate(z) -> images` and `sample(n)`. Each `save_*` function writes one PNG and returns
its path.

- **Interpolation.** Linear interpolation z(t) = (1 - t) z0 + t z1 cuts through the middle of
  the prior, where a d-dimensional Gaussian has little mass (its samples have norm about
  sqrt(d)). Spherical interpolation (slerp) follows the great circle between the two codes,
  keeping norms typical: z(t) = sin((1-t) W) / sin W z0 + sin(t W) / sin W z1, where W is the
  angle between z0 and z1 (White 2016, "Sampling Generative Networks").
- **A 2-D latent manifold.** For a 2-D latent, decode a grid of codes placed at Gaussian
  quantiles, so each cell covers equal prior mass (Kingma & Welling 2014, figure 4).
- **Arithmetic.** The mean code of images with an attribute minus the mean code of images
  without it is an "attribute vector"; adding it to another image's code adds the attribute
  (Radford et al. 2016; for digits, class means play the part of attributes).

A GAN has no encoder, so its tools start from noise instead of from real images:
`save_noise_interpolations` walks between random z, and `save_noise_arithmetic` finds the class
mean vectors by asking the MNIST classifier what G drew for each z (Radford et al. averaged
the z of three samples per attribute for the same reason).
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import numpy as np

from tinygen import plotting


def lerp(z0, z1, t):
    t = np.asarray(t, dtype=np.float64)[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0, z1, t):
    """Spherical interpolation; falls back to lerp when the codes are (anti)parallel."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return lerp(z0, z1, t)
    t = np.asarray(t, dtype=np.float64)[:, None]
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def interpolate(z0, z1, steps=10, method="slerp") -> np.ndarray:
    """`steps` codes from z0 to z1 inclusive, (steps, d)."""
    if method not in ("linear", "slerp"):
        raise ValueError(f"interpolate: method must be 'linear' or 'slerp', got {method!r}")
    t = np.linspace(0.0, 1.0, steps)
    return (lerp if method == "linear" else slerp)(np.asarray(z0), np.asarray(z1), t)


def gaussian_grid(n=15, lo=0.05, hi=0.95) -> np.ndarray:
    """(n*n, 2) codes at Gaussian quantiles from `lo` to `hi`, row-major, top row = high z2."""
    q = np.array([NormalDist().inv_cdf(p) for p in np.linspace(lo, hi, n)])
    z1, z2 = np.meshgrid(q, q[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=1)


def class_means(latents, labels) -> dict:
    """Mean code per label: the simplest attribute vectors."""
    return {int(c): latents[labels == c].mean(axis=0) for c in np.unique(labels)}


def attribute_vector(latents, has_attribute) -> np.ndarray:
    """mean(z | attribute) - mean(z | no attribute)."""
    mask = np.asarray(has_attribute, dtype=bool)
    if mask.all() or not mask.any():
        raise ValueError("attribute_vector: need examples both with and without the attribute")
    return latents[mask].mean(axis=0) - latents[~mask].mean(axis=0)


def project_2d(latents) -> tuple[np.ndarray, str]:
    """The codes themselves if 2-D, else their top-2 principal components (and a label)."""
    if latents.shape[1] == 2:
        return latents, "z1, z2"
    centred = latents - latents.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, "first two principal components of z"


# ----------------------------------------------------------------------------------------------
# Figures.


def _given(model, labels) -> dict:
    """Keyword arguments that pass labels to a conditional model (and nothing otherwise)."""
    return {"y": labels} if getattr(model, "n_conditions", 0) else {}


def save_reconstructions(model, x, path, labels=None, n=16) -> Path:
    """Originals on the top row, reconstructions below."""
    given = _given(model, None if labels is None else labels[:n])
    recon = model.reconstruct(x[:n], **given)
    cols = None if labels is None else [str(int(c)) for c in labels[:n]]
    return plotting.save_labelled_grid(
        np.concatenate([x[:n], recon]), path, nrow=len(x[:n]),
        row_labels=["original", "reconstruction"], col_labels=cols,
        title="test images (top) and their reconstructions (bottom); columns: true class")


def save_latent_scatter(model, x, labels, path) -> Path:
    codes, how = project_2d(model.latent(x, **_given(model, labels)))
    return plotting.save_scatter(codes, path, labels=labels, title=f"latent codes ({how})")


def save_manifold(model, path, n=15) -> Path:
    """Decode a grid over a 2-D latent space (needs a model with latent size 2)."""
    if model.cfg.latent != 2:
        raise ValueError(f"save_manifold: needs a 2-D latent space, this model has "
                         f"{model.cfg.latent} dims (train with --latent 2)")
    if getattr(model, "n_conditions", 0):
        raise ValueError("save_manifold: a conditional model needs a label; use 'styles'")
    # Column c holds z1 = z[c, 0], row r holds z2 = z[r n, 1] (top row = highest z2): normal
    # quantiles, so the labels are in units of the prior's standard deviation.
    z = gaussian_grid(n)
    tick = [f"{round(v, 1) + 0.0:.1f}" for v in z[:n, 0]]   # + 0.0 turns -0.0 into 0.0
    return plotting.save_labelled_grid(
        model.generate(z), path, nrow=n, row_labels=[f"z2={t}" for t in tick[::-1]],
        col_labels=tick,
        title="decoded latent grid: z1 across (columns), z2 down (rows)")


def save_interpolations(model, x, path, labels=None, steps=10, pairs=4) -> Path:
    """Rows of linear then spherical interpolations between pairs of real images' codes.
    A conditional model decodes each row with the label of the pair's first image."""
    ys = None if labels is None else labels[:2 * pairs]
    z = model.latent(x[:2 * pairs], **_given(model, ys))
    rows, names = [], []
    for i in range(pairs):
        given = _given(model, None if ys is None else np.full(steps, ys[2 * i]))
        pair = f"{ys[2 * i]}->{ys[2 * i + 1]}" if ys is not None else f"pair {i + 1}"
        for method in ("linear", "slerp"):
            rows.append(model.generate(interpolate(z[2 * i], z[2 * i + 1], steps, method),
                                       **given))
            names.append(f"{pair}: {'lerp' if method == 'linear' else 'slerp'}")
    return plotting.save_labelled_grid(
        np.concatenate(rows), path, nrow=steps, row_labels=names,
        col_labels=[f"t={v:.2f}" for v in np.linspace(0, 1, steps)],
        title="decoded codes from one test image (left) to another (right): lerp vs slerp")


def save_arithmetic(model, x, labels, path, source=None) -> Path:
    """For each source image of class a and each class b: z(x) - mean_a + mean_b.

    Row i starts with the original image, then shows it moved to every class: the class
    vector changes the digit while the rest of the code keeps the style.
    """
    if getattr(model, "n_conditions", 0):
        raise ValueError("save_arithmetic: a conditional model's code holds no class; "
                         "use 'styles' to change the label directly")
    z = model.latent(x)
    means = class_means(z, labels)
    classes = sorted(means)
    source = source if source is not None else [int(np.flatnonzero(labels == c)[0])
                                                for c in classes[:4]]
    rows = []
    for i in source:
        moved = np.stack([z[i] - means[int(labels[i])] + means[c] for c in classes])
        rows.append(np.concatenate([x[i:i + 1], model.generate(moved)]))
    return plotting.save_labelled_grid(
        np.concatenate(rows), path, nrow=len(classes) + 1,
        row_labels=[f"a test {int(labels[i])}" for i in source],
        col_labels=["original"] + [f"to {c}" for c in classes],
        title="z(x) - mean z(its class) + mean z(class c), class means of test codes")


def save_styles(model, path, n_styles=8) -> Path:
    """Conditional models: one random style per row, decoded as every class."""
    if not hasattr(model, "style_grid"):
        raise ValueError("save_styles: needs a conditional model (e.g. cvae)")
    grid = model.style_grid(n_styles)
    k = len(grid) // n_styles                   # classes (or an AAE's clusters) per row
    return plotting.save_labelled_grid(
        grid, path, nrow=k,
        row_labels=[f"style {i + 1}" for i in range(n_styles)],
        col_labels=[str(c) for c in range(k)],
        title="one random style (z) per row, drawn as every class (column)")


# ----------------------------------------------------------------------------------------------
# Tools for models without an encoder (GANs): everything starts from noise z.


def save_noise_interpolations(model, path, steps=10, pairs=4) -> Path:
    """Rows of linear then spherical interpolations between pairs of random z ~ N(0, I).
    A conditional model draws pair i as class i."""
    z = model.noise(2 * pairs).data
    rows, labels = [], []
    for i in range(pairs):
        given = _given(model, np.full(steps, i % 10))
        for method in ("linear", "slerp"):
            rows.append(model.generate(interpolate(z[2 * i], z[2 * i + 1], steps, method),
                                       **given))
            labels.append(f"pair {i + 1}: {'lerp' if method == 'linear' else 'slerp'}")
    t = np.linspace(0, 1, steps)
    return plotting.save_labelled_grid(
        np.concatenate(rows), path, nrow=steps, row_labels=labels,
        col_labels=[f"t={v:.2f}" for v in t],
        title="G(z(t)) from z0 (left) to z1 (right): linear vs spherical paths")


def save_noise_arithmetic(model, path, classify, n=2000, sources=4) -> Path:
    """z - mean_z(class a) + mean_z(class b) for a few sample z, where class means are taken
    over the z whose samples `classify` (images -> labels) assigns to each class."""
    if getattr(model, "n_conditions", 0):
        raise ValueError("arithmetic: a conditional GAN takes the class as an input; use "
                         "'styles' to change it directly")
    z = model.noise(n).data.astype(np.float64)
    labels = np.asarray(classify(model.generate(z)))
    means = class_means(z, labels)
    classes = sorted(means)
    picks = [int(np.flatnonzero(labels == c)[0]) for c in classes[:sources]]
    rows = []
    for i in picks:
        moved = np.stack([z[i] - means[int(labels[i])] + means[c] for c in classes])
        rows.append(model.generate(np.concatenate([z[i:i + 1], moved])))
    return plotting.save_labelled_grid(
        np.concatenate(rows), path, nrow=len(classes) + 1,
        row_labels=[f"a sample of {labels[i]}" for i in picks],
        col_labels=["z"] + [f"to {c}" for c in classes],
        title="z - mean z(its class) + mean z(class c), class means from G's own samples")
