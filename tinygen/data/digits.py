"""Real handwritten digits with no download: scikit-learn's bundled 8x8 digits.

This file teaches how to make a fair, repeatable train/test split of a small dataset. The UCI
"optical recognition of handwritten digits" set has 1797 images of 8x8 pixels, each pixel a count
from 0 to 16 (the original 32x32 bitmaps were pooled over 4x4 blocks). It ships inside
scikit-learn, so every tinygen demo can train on real data on a machine with no internet.

With only ~180 images per class, a purely random split can leave one class noticeably short in
the test set, so we split *stratified*: each class is shuffled with the same seeded generator
and loses the same fraction (default 20%) to the test set. The same seed always gives the same
split.

Pixel convention, shared with `mnist.py`: the raw integer pixels as uint8 (0..16 here), or
float32 in [0, 1] with `normalize=True` (divided by 16, the dataset's maximum). Labels are int64.

Read next: `loader.py`, to batch these arrays.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["load_digits"]

# The largest pixel value in this dataset: each pixel counts ink in a 4x4 block of 16 bits.
DIGITS_MAX = 16


def load_digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0,
                normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return (images (N, 8, 8), labels (N,) int64) for split "train", "test" or "all".

    The split is stratified by class: 1438 train and 359 test images at the defaults.
    Images are uint8 in 0..16, or float32 in [0, 1] when `normalize` is True. Unlike the
    read-only MNIST arrays these are fresh copies you may edit: the whole set is only 115 kB.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    images, labels = _all_digits()
    if split != "all":
        train, test = _stratified_split(labels, test_fraction, seed)
        keep = train if split == "train" else test
        images, labels = images[keep], labels[keep]
    if normalize:
        return images.astype(np.float32) / DIGITS_MAX, labels.copy()
    return images.copy(), labels.copy()


@functools.cache
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits from scikit-learn, converted once per process."""
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as err:
        raise ImportError("load_digits needs scikit-learn, an optional extra of tinygen: "
                          "pip install 'tinygen[digits]'") from err
    bunch = sklearn_load_digits()
    # scikit-learn stores the integer counts 0..16 as float64; uint8 holds them exactly.
    return bunch.images.astype(np.uint8), bunch.target.astype(np.int64)


def _stratified_split(labels: np.ndarray, test_fraction: float,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices with round(test_fraction * n_c) of each class in test."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):  # sorted order, so the seed fixes every class's draw
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[:round(test_fraction * len(members))])
    test = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test), test
