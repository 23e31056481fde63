"""A LeNet-style digit classifier: the first model, and later the eyes of the metrics.

LeCun et al. 1998, "Gradient-based learning applied to document recognition": two
convolution + pooling stages extract strokes and their combinations, then a small MLP reads
out the class. Our version uses ReLU, max pooling, dropout and Adam instead of tanh,
subsampling and SGD, and decays the learning rate after each epoch, which gets above 99% test
accuracy on MNIST in a few epochs on a CPU.

Loss: cross-entropy of the softmax over 10 classes, -log p(y | x), averaged over the batch.

The trained network is reused by `tinygen.metrics` as a feature extractor: its penultimate
layer (`features(x)`, 128 numbers per image) plays the part Inception-v3 plays in FID.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinygen as tg
from tinygen import nn, optim
from tinygen.nn import functional as F
from tinygen.train import Model

# MNIST's training-set pixel mean and standard deviation (pixels in [0, 1]).
PIXEL_MEAN, PIXEL_STD = 0.1307, 0.3081


@dataclass
class Config:
    dataset: str = "mnist"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    lr_decay: float = 0.6    # the learning rate is multiplied by this after every epoch
    seed: int = 0
    width: int = 16          # conv1 channels; conv2 has twice as many
    hidden: int = 128        # width of the penultimate layer (the FID features)
    dropout: float = 0.25
    image_size: int = 28     # 28 for MNIST; 8 for the offline digits


class LeNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        # 5x5 valid convs on 28x28 (28 -> 24 -> 12 -> 8 -> 4); 3x3 same convs on 8x8 digits.
        k, p = (5, 0) if cfg.image_size >= 20 else (3, 1)
        c = cfg.width
        self.conv = nn.Sequential(
            nn.Conv2d(1, c, k, padding=p), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, k, padding=p), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        side = _after_convs(cfg.image_size, k, p)
        self.fc = nn.Linear(2 * c * side * side, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden, 10)

    def features(self, x):
        """(N, 1, H, W) in [0, 1] -> (N, hidden): the penultimate activations."""
        x = (x - PIXEL_MEAN) / PIXEL_STD          # zero-mean, unit-variance inputs train faster
        return self.fc(self.conv(x)).relu()

    def forward(self, x):
        return self.out(self.drop(self.features(x)))      # logits (N, 10)


def _after_convs(size, k, p):
    for _ in range(2):
        size = (size + 2 * p - k + 1) // 2
    return size


class Classifier(Model):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.net = LeNet(cfg)
        self.opt = optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.sched = optim.lr_scheduler.ExponentialLR(self.opt, gamma=cfg.lr_decay)

    def train_step(self, batch) -> dict:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        acc = float((logits.data.argmax(1) == y.data).mean())
        return {"loss": loss.item(), "acc": acc}

    def end_epoch(self):
        self.sched.step()

    def predict(self, x, batch_size=1000) -> np.ndarray:
        """Class probabilities (N, 10) for images (N, 1, H, W) in [0, 1]."""
        return self._batched(lambda xb: F.softmax(self.net(xb), dim=1), x, batch_size)

    def features(self, x, batch_size=1000) -> np.ndarray:
        return self._batched(self.net.features, x, batch_size)

    def _batched(self, fn, x, batch_size):
        was_training = self.training
        self.eval()
        with tg.no_grad():
            out = [fn(tg.tensor(x[i:i + batch_size])).data for i in range(0, len(x), batch_size)]
        self.train(was_training)
        return np.concatenate(out)

    def evaluate(self, loader) -> dict:
        correct = total = 0
        for x, y in loader:
            correct += int((self.predict(x).argmax(1) == y).sum())
            total += len(y)
        return {"acc": correct / total}
