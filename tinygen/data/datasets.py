"""One name per dataset, ready for training: `load_dataset("mnist", "train")`.

Images come back as float32 (N, 1, H, W) in [0, 1] and labels as int64 (N,), whatever the
source format, so every model and command sees the same layout. The toy 2-D sets come back as
(N, 2) points with the index of the nearest mode as a label (ring8, grid25) or zeros.
"""

from __future__ import annotations

import numpy as np

from tinygen.data import toy
from tinygen.data.digits import load_digits
from tinygen.data.mnist import load_mnist

IMAGE_SETS = ("digits", "mnist", "fashion_mnist")
TOY_SETS = ("ring8", "grid25", "spiral", "two_moons", "swiss_roll")
DATASETS = IMAGE_SETS + TOY_SETS

# How many points a toy "split" holds; the test split uses a different seed.
TOY_SIZE = {"train": 20000, "test": 5000}


def load_dataset(name: str, split: str = "train", data_dir=None, seed: int = 0):
    """(x, y) for a dataset name from `DATASETS` and split "train" or "test"."""
    if split not in ("train", "test"):
        raise ValueError(f"load_dataset: split must be 'train' or 'test', got {split!r}")
    if name == "digits":
        x, y = load_digits(split, normalize=True)
    elif name in ("mnist", "fashion_mnist"):
        x, y = load_mnist(split, data_dir=data_dir, name=name, normalize=True)
    elif name in TOY_SETS:
        return _toy(name, split, seed)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return np.ascontiguousarray(x[:, None], dtype=np.float32), y.astype(np.int64)


def _toy(name, split, seed):
    rng = np.random.default_rng(seed + (0 if split == "train" else 1))
    x = getattr(toy, name)(TOY_SIZE[split], rng=rng)
    mixture = {"ring8": toy.ring8_mixture, "grid25": toy.grid25_mixture}.get(name)
    y = mixture().nearest(x)[0].astype(np.int64) if mixture else np.zeros(len(x), np.int64)
    return x.astype(np.float32), y
