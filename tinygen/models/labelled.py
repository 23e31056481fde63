"""The labelled images of a semi-supervised model: exactly N, chosen by a seed, and no others.

A semi-supervised claim ("1.9% error with 100 labels") is only as good as the guarantee that
training saw 100 labels. Re-implementations break it quietly: a loader that yields (x, y)
pairs makes it easy to read y for every image. tinygen keeps the labelled set apart from the
loader:

- `LabelledSet.choose(x, y)` picks N / K images of each of the K classes with the model's seed
  (`tinygen.data.labelled_subset`) and copies those N images and labels into buffers, so the
  checkpoint holds them and a resumed run trains on the same set;
- `batch(n)` is the only way training reaches a label: a random minibatch of those N;
- the model's `train_step` never reads the loader's labels (`batch[1]`); the tests train two
  models on the same images, one with garbage labels in the loader, and find them bitwise
  equal;
- `save(out_dir)` writes `labelled.json`, so a run's folder says which labels it saw.

Used by `ssgan.py` (Salimans et al.'s K+1 GAN) and `aae_semi.py` (the semi-supervised AAE).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import tinygen as tg
from tinygen import nn
from tinygen.autograd import default_generator
from tinygen.data import labelled_subset


def check_label_count(model: str, labels: int, n_classes: int) -> None:
    if labels < n_classes or labels % n_classes:
        raise ValueError(f"{model}: labels must be a positive multiple of n_classes "
                         f"({n_classes}), got {labels}")


class LabelledSet(nn.Module):
    """N labelled images of `features` pixels each, N / K of each of K classes, as buffers
    (filled in by `choose`)."""

    def __init__(self, labels: int, features: int, n_classes: int):
        super().__init__()
        self.n_classes = n_classes
        self.register_buffer("index", np.zeros(labels, np.int64))     # rows of the train set
        self.register_buffer("x", np.zeros((labels, features), np.float32))
        self.register_buffer("y", np.zeros(labels, np.int64))

    def __len__(self) -> int:
        return len(self.index.data)

    def choose(self, x, y, seed) -> None:
        """Keep N / K images of each class in y, picked with `seed`; or, when N is the size of
        the training set (the papers' "all labels" rows), every image, however unbalanced
        its classes are."""
        y = np.asarray(y, np.int64)
        if len(self) == len(y):
            index = np.arange(len(y), dtype=np.int64)
        else:
            index = labelled_subset(y, len(self) // self.n_classes, seed=seed)
        self.index.data = index
        self.x.data = np.asarray(x, np.float32).reshape(len(y), -1)[index]
        self.y.data = y[index]

    def batch(self, n: int):
        """n of the labelled images (all of them if n >= N) in a fresh random order."""
        pick = default_generator().permutation(len(self))[:n]
        return tg.tensor(self.x.data[pick]), tg.tensor(self.y.data[pick])

    def save(self, out_dir) -> Path:
        path = Path(out_dir) / "labelled.json"
        path.write_text(json.dumps({"indices": self.index.data.tolist(),
                                    "labels": self.y.data.tolist()}) + "\n")
        return path
