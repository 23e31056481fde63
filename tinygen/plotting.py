"""Figures: image grids and 2-D scatter plots written straight to PNG files.

Matplotlib is used headless (the Agg backend), so demos and training runs write figures on
machines without a display. Every function takes the output path and returns it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)   # no display needed; keeps an interactive backend if set
    import matplotlib.pyplot as plt
    return plt


def image_grid(images, nrow=None, pad=1) -> np.ndarray:
    """Tile (N, H, W), (N, 1, H, W) or (N, 3, H, W) images in [0, 1] into one (H', W'[, 3])."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    if images.ndim not in (3, 4):
        raise ValueError(f"image_grid: expected (N, H, W) or (N, C, H, W), got {images.shape}")
    n, h, w = images.shape[:3]
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    ncol = int(np.ceil(n / nrow))
    grid = np.ones((ncol * (h + pad) + pad, nrow * (w + pad) + pad) + images.shape[3:],
                   dtype=np.float32)
    for k, img in enumerate(images):
        r, c = divmod(k, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return np.clip(grid, 0, 1)


def save_image_grid(images, path, nrow=None, scale=None) -> Path:
    """Write a grid of images as a PNG, each pixel enlarged `scale` times (nearest).

    By default small images are enlarged more, so an 8x8 digit and a 28x28 one both show at
    about 60 pixels.
    """
    grid = image_grid(images, nrow)
    scale = scale or max(2, 64 // np.asarray(images).shape[-1])
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _pyplot().imsave(path, grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1)
    return path


def save_labelled_grid(images, path, nrow, row_labels=None, col_labels=None, title=None,
                       scale=None) -> Path:
    """A grid of images with a title and a label beside every row and above every column."""
    plt = _pyplot()
    images = np.asarray(images)
    grid = image_grid(images, nrow)
    h, w = images.shape[-2:]
    rows = int(np.ceil(len(images) / nrow))
    inches = (scale or max(2, 64 // w)) * (w + 1) / 100
    fig, ax = plt.subplots(figsize=(nrow * inches + 1.6, rows * inches + 0.8))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([1 + c * (w + 1) + w / 2 - 0.5 for c in range(nrow)] if col_labels else [])
    ax.set_xticklabels(col_labels or [], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([1 + r * (h + 1) + h / 2 - 0.5 for r in range(rows)] if row_labels else [])
    ax.set_yticklabels(row_labels or [], fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:                       # wrapped to the grid's width (about 6.5 px a character)
        width = max(40, int(nrow * inches * 100 / 6.5))
        ax.set_title("\n".join(textwrap.fill(line, width) for line in title.split("\n")),
                     fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def save_scatter(points, path, labels=None, title=None, reference=None) -> Path:
    """Scatter 2-D points (optionally coloured by integer labels, over reference points)."""
    plt = _pyplot()
    points = np.asarray(points)
    fig, ax = plt.subplots(figsize=(5, 5))
    if reference is not None:
        ref = np.asarray(reference)
        ax.scatter(ref[:, 0], ref[:, 1], s=4, c="lightgray", label="data")
    sc = ax.scatter(points[:, 0], points[:, 1], s=4, c=labels, cmap="tab10" if labels is not None
                    else None, alpha=0.7)
    if labels is not None:
        fig.colorbar(sc, ax=ax)
    if title:
        ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def save_samples(samples, path, title=None) -> Path:
    """A grid for image samples, a scatter for 2-D points; with a title if given."""
    samples = np.asarray(samples)
    if samples.ndim == 2 and samples.shape[1] == 2:
        return save_scatter(samples, path, title=title)
    if title is None:
        return save_image_grid(samples, path)
    return save_labelled_grid(samples, path, nrow=int(np.ceil(np.sqrt(len(samples)))),
                              title=title)


def save_confusion(counts, path, title, xlabel="predicted class", ylabel="true class") -> Path:
    """A confusion matrix as a heat map: counts[i, j] images of class i read as class j, each
    cell printed, rows normalised for the colour so every class's row is comparable."""
    plt = _pyplot()
    counts = np.asarray(counts)
    k = len(counts)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="share of the row")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
