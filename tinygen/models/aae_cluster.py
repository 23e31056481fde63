"""Unsupervised clustering with an adversarial autoencoder: Makhzani et al. 2015, Section 6.

The semi-supervised AAE of `aae_semi.py` with no labels at all and more categories than
classes: K = 16 clusters by default (the paper also reports 30). D_y makes q(y|x) one-hot
and uniform over the K clusters, so the encoder has to spread the training images over K
groups that the decoder can tell apart; with the style code z held to N(0, I), the cheapest
way to do that is to group by what the style cannot carry, the digit's identity.

Scoring (the paper's): each cluster takes the label of its head, the training image with the
largest q(k | x); `evaluate` then gives the test error of those names (`cluster_error`).
Only the K heads' labels are ever read, and only after training.

The style size matters: with 5 dims the decoder can draw the digit from z and y need not carry
it; `--latent 2` leaves the digit to y (MNIST, 8 epochs: 44.7% error against 56.1% after 5
with 5 dims; still far from the paper: `benchmarks/aae_clusters.py` shows where, README).

    tinygen train aae_cluster --clusters 16       (paper: 9.55% test error; 30: 4.10%)
    tinygen train aae_cluster --heads --latent 2 --clusters 20     (Section 7, 2-D codes)

Read next: `aae_semi.py`, which holds the model.
"""

from dataclasses import dataclass

from tinygen.models import aae_semi
from tinygen.models.aae_semi import CategoricalAAE


@dataclass
class Config(aae_semi.Config):
    clusters: int = 16
    labels: int = 0                # no labels: unsupervised
    latent: int = 5                # style dims


__all__ = ["CategoricalAAE", "Config"]
