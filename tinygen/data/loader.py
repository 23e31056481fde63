"""Datasets, mini-batches and reproducible splits, with PyTorch's names.

This file teaches two ideas.

1. **Batch by indexing whole arrays.** PyTorch's DataLoader fetches items one by one and stacks
   them. When the data already sits in NumPy arrays that Python loop is pure overhead, so here a
   batch is a single fancy-indexing call, `x[idx]`, per array. Datasets that are not array-backed
   still work through the slower per-item path.
2. **Randomness comes from one seeded `np.random.Generator`.** A DataLoader owns its generator
   and draws a fresh permutation every time you iterate over it, so epoch 2 differs from epoch 1,
   yet two loaders built with the same seed produce the same sequence of epochs, as in PyTorch.
   Every function that takes `seed`/`generator` accepts an int, a Generator or None (fresh OS
   entropy): `np.random.default_rng` already handles all three, and passes a Generator through
   unchanged, so we call it rather than write our own helper.

Read next: `toy.py` for 2-D datasets, or `mnist.py` for images.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

__all__ = [
    "ArrayDataset", "DataLoader", "Subset", "TensorDataset", "labelled_subset", "random_split",
    "train_val_split",
]

SeedLike = int | np.random.Generator | None


class ArrayDataset:
    """Equal-length arrays indexed together, like `torch.utils.data.TensorDataset`.

    `ds[i]` is a tuple with one entry per array; `i` may be an int, a slice or an index array,
    which is what lets DataLoader fetch a whole batch in one call.
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        self.arrays = tuple(np.asarray(a) for a in arrays)
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            shapes = [a.shape for a in self.arrays]
            raise ValueError(f"ArrayDataset arrays must share their first dimension, got {shapes}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)


# PyTorch's name for the same thing. Tensors work as inputs too (np.asarray reads their data),
# but items come back as arrays, as everywhere in this package.
TensorDataset = ArrayDataset


class Subset:
    """The items of `dataset` at `indices`, like `torch.utils.data.Subset`."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        # Indexing `indices` first keeps this a single fancy-index on array-backed datasets.
        return self.dataset[self.indices[index]]


def _is_array_backed(dataset) -> bool:
    """True when `dataset[index_array]` returns a whole batch of arrays in one call."""
    if isinstance(dataset, Subset):
        return _is_array_backed(dataset.dataset)
    return isinstance(dataset, ArrayDataset)


class DataLoader:
    """Iterate over a dataset in mini-batches, each a tuple of NumPy arrays.

    `data` is a dataset (anything with `__len__` and `__getitem__`), a single array, or a
    tuple/list of equal-length arrays. Even one array yields 1-tuples, so loops always unpack:
    `for (x,) in DataLoader(x, 64)` or `for x, y in DataLoader((x, y), 64)`.

    `len(loader)` is the number of batches. With `shuffle=True` each pass draws a new
    permutation from `generator` (an int seed, a Generator, or None for fresh entropy).
    """

    def __init__(self, data, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, generator: SeedLike = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.dataset = _as_dataset(data)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        # Created once, so each epoch continues the same random stream instead of repeating it.
        self.generator = np.random.default_rng(generator)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, ...]]:
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        fetch = self.dataset.__getitem__ if _is_array_backed(self.dataset) else self._collate
        for b in range(len(self)):
            yield fetch(order[b * self.batch_size:(b + 1) * self.batch_size])

    def _collate(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """Slow path for datasets that only index one item at a time: fetch, then stack."""
        items = [self.dataset[int(i)] for i in indices]
        if not isinstance(items[0], tuple | list):
            items = [(item,) for item in items]
        return tuple(np.stack(field) for field in zip(*items, strict=True))


def _as_dataset(data):
    """Wrap bare arrays in an ArrayDataset; pass datasets through."""
    if isinstance(data, np.ndarray):
        return ArrayDataset(data)
    if isinstance(data, tuple | list):
        return ArrayDataset(*data)
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise TypeError(f"DataLoader needs a dataset or arrays, got {type(data).__name__}")
    return data


def train_val_split(n: int, val_fraction: float | None = None, val_size: int | None = None,
                    seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle `range(n)` and cut it into (train_indices, val_indices).

    Give exactly one of `val_fraction` (rounded to the nearest whole item) or `val_size`.
    Both index arrays come back sorted, so the subsets keep the original order of the data.
    """
    if (val_fraction is None) == (val_size is None):
        raise ValueError("give exactly one of val_fraction or val_size")
    if val_size is None:
        if not 0.0 <= val_fraction <= 1.0:
            raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
        val_size = round(n * val_fraction)
    if not 0 <= val_size <= n:
        raise ValueError(f"val_size must be in [0, {n}], got {val_size}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def random_split(dataset, lengths: Sequence[int | float], seed: SeedLike = 0) -> list[Subset]:
    """Split `dataset` into non-overlapping random Subsets, like `torch.utils.data.random_split`.

    `lengths` are item counts summing to `len(dataset)`, or fractions summing to 1 (any items
    left by rounding down go to the first subsets, one each, as PyTorch does).
    """
    n = len(dataset)
    counts = _split_counts(n, lengths)
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, perm[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def _split_counts(n: int, lengths: Sequence[int | float]) -> list[int]:
    """Turn the `lengths` argument of random_split into integer counts that sum to n."""
    if all(isinstance(x, int | np.integer) for x in lengths):
        if sum(lengths) != n:
            raise ValueError(f"lengths {list(lengths)} sum to {sum(lengths)}, dataset has {n}")
        return [int(x) for x in lengths]
    if not math.isclose(sum(lengths), 1.0) or min(lengths) < 0:
        raise ValueError(f"fractional lengths must be >= 0 and sum to 1, got {list(lengths)}")
    counts = [math.floor(n * f) for f in lengths]
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    return counts


def labelled_subset(labels, k_per_class: int, seed: SeedLike = 0) -> np.ndarray:
    """Indices of exactly `k_per_class` randomly chosen examples of every class in `labels`.

    Semi-supervised models (e.g. M2 with 100 labels on MNIST) train on such a subset. Classes are
    the distinct values present in `labels`; the indices come back sorted.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or k_per_class < 0:
        raise ValueError(f"need 1-D labels and k_per_class >= 0, got shape {labels.shape} "
                         f"and k_per_class={k_per_class}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    short = {c.item(): n.item() for c, n in zip(classes, counts, strict=True) if n < k_per_class}
    if short:
        raise ValueError(f"labelled_subset needs {k_per_class} examples per class, but these "
                         f"classes have fewer (class: count): {short}")
    # Each class is drawn with the same generator in sorted class order, so a seed fixes the
    # whole subset.
    chosen = [rng.choice(np.flatnonzero(labels == c), k_per_class, replace=False)
              for c in classes]
    if not chosen:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)
