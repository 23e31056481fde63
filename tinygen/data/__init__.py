"""Datasets and mini-batching for tinygen: everything between files on disk and a training loop.

Start with `loader.py` (ArrayDataset, DataLoader, splits), then `toy.py` (2-D densities whose modes
we can count), `digits.py` (real digits, no download) and `mnist.py` with its file format in
`idx.py`; `translation.py` resizes images and builds the two digit domains of the
image-to-image models. Everything here returns plain NumPy arrays; the training loop turns
batches into tensors, so this package never depends on the autodiff engine (or on torch).
"""

from tinygen.data.digits import load_digits
from tinygen.data.idx import DatasetError, read_idx, write_idx
from tinygen.data.loader import (
    ArrayDataset,
    DataLoader,
    Subset,
    TensorDataset,
    labelled_subset,
    random_split,
    train_val_split,
)
from tinygen.data.mnist import MNIST, FashionMNIST, cache_dir, load_mnist
from tinygen.data.toy import (
    GaussianMixture2D,
    grid25,
    grid25_mixture,
    ring8,
    ring8_mixture,
    spiral,
    swiss_roll,
    two_moons,
)

__all__ = [
    "ArrayDataset", "DataLoader", "DatasetError", "FashionMNIST", "GaussianMixture2D", "MNIST",
    "Subset", "TensorDataset", "cache_dir", "grid25", "grid25_mixture", "labelled_subset",
    "load_digits", "load_mnist", "random_split", "read_idx", "ring8", "ring8_mixture", "spiral",
    "swiss_roll", "train_val_split", "two_moons", "write_idx",
]
