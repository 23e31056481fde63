"""The eyes of the image metrics: a cached MNIST classifier, and every score computed with it.

This file teaches how FID-style metrics stay *comparable*. A metric computed through a
feature extractor is only meaningful against numbers computed through the very same extractor:
Inception-v3 FIDs are comparable across papers because everyone downloads the same weights.
We cannot download weights, so we make them reproducible instead. `mnist_classifier()` trains
the LeNet of `tinygen.models.classifier` exactly as `tinygen train classifier` does with its
defaults (Config(), seed 0, the same data order), which takes a few minutes on a CPU, and then
keeps the checkpoint in a cache:

    $XDG_CACHE_HOME/tinygen/metrics/classifier-mnist.npz   (else ~/.cache/tinygen/metrics/)

Later calls load it in well under a second. The features of the 10,000 real MNIST test images
(with their mean and covariance) are cached next to it, tagged with a fingerprint of the
classifier's weights, so a retrained classifier never meets stale statistics.

`classifier_metrics(images)` then reports, for generated digits (N, 1, 28, 28) in [0, 1]:
FID and KID against the real test set (`fid.py`), the Inception-style score and the class
histogram's entropy (`scores.py`).

Read next: `benchmarks/calibrate_metrics.py`, which shows what these numbers look like for real
data, noisy data and blurred data, so a model's score has something to be compared with.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tinygen as tg
from tinygen import serialization
from tinygen.data import DataLoader
from tinygen.data import cache_dir as data_cache_dir
from tinygen.data.datasets import load_dataset
from tinygen.metrics.fid import feature_stats, frechet_distance, kid_from_features
from tinygen.metrics.scores import class_entropy, class_histogram, inception_score
from tinygen.models.classifier import Classifier, Config
from tinygen.train import CHECKPOINT, fit

__all__ = ["classifier_metrics", "metrics_cache_dir", "mnist_classifier", "real_test_features"]

CLASSIFIER_FILE = "classifier-mnist.npz"
STATS_FILE = "test-stats-mnist.npz"


def metrics_cache_dir(cache_dir=None) -> Path:
    """`cache_dir` if given, else tinygen's user cache (which honours XDG_CACHE_HOME) / metrics."""
    return Path(cache_dir) if cache_dir is not None else data_cache_dir() / "metrics"


# ----------------------------------------------------------------------------------------------
# Training the classifier, the same way `tinygen train classifier` does.


def _train_config() -> Config:
    return Config()                    # the CLI's defaults: 5 epochs, seed 0


def _mnist_arrays(data_dir, seed):
    """((x, y), (x_test, y_test)) as float32 (N, 1, 28, 28) images and int64 labels."""
    return (load_dataset("mnist", "train", data_dir=data_dir, seed=seed),
            load_dataset("mnist", "test", data_dir=data_dir, seed=seed))


def train_classifier(out_dir, data_dir=None, verbose: bool = True) -> Classifier:
    """Train the default classifier into `out_dir/checkpoint.npz`, deterministically."""
    cfg = _train_config()
    tg.manual_seed(cfg.seed)           # first, as the CLI does: it seeds the weight init
    (x, y), (xt, yt) = _mnist_arrays(data_dir, cfg.seed)
    cfg = dataclasses.replace(cfg, image_size=x.shape[-1])
    model = Classifier(cfg)
    loader = DataLoader((x, y), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        generator=cfg.seed)
    fit(model, loader, cfg.epochs, out_dir, config={"model": "classifier",
        **dataclasses.asdict(cfg)}, eval_loader=DataLoader((xt, yt), batch_size=1000),
        sample_every=0, quiet=not verbose)
    return model


# ----------------------------------------------------------------------------------------------
# The cache.


def _load_cached(path: Path) -> Classifier | None:
    """The classifier stored at `path`, or None if it is missing, damaged or unfinished."""
    if not path.is_file():
        return None
    try:
        ckpt = serialization.load(path)
        config = ckpt["config"]
        if config.get("model") != "classifier":
            raise ValueError(f"it holds a {config.get('model')!r} model")
        if ckpt["trainer"]["epoch"] < config["epochs"]:
            raise ValueError("its training did not finish")
        names = {f.name for f in dataclasses.fields(Config)}
        model = Classifier(Config(**{k: v for k, v in config.items() if k in names}))
        model.load_state_dict(ckpt["model"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        print(f"ignoring the cached classifier {path}: {err}", file=sys.stderr)
        return None
    return model


def _copy_atomically(src: Path, dest: Path) -> None:
    """Copy to a temporary file beside `dest`, then rename: readers never see half a file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def mnist_classifier(data_dir=None, cache_dir=None, verbose: bool = True) -> Classifier:
    """The trained MNIST classifier: from the cache if valid, else trained now and cached."""
    path = metrics_cache_dir(cache_dir) / CLASSIFIER_FILE
    model = _load_cached(path)
    if model is not None:
        return model
    if verbose:
        print(f"training the metrics classifier (once; a few minutes) -> {path}",
              file=sys.stderr)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tinygen-classifier-") as tmp:
        train_classifier(tmp, data_dir=data_dir, verbose=verbose)
        _copy_atomically(Path(tmp) / CHECKPOINT, path)
    if verbose:
        print(f"trained the metrics classifier in {time.perf_counter() - start:.0f}s; "
              f"cached at {path}", file=sys.stderr)
    return _load_cached(path)


def fingerprint(classifier: Classifier) -> str:
    """SHA-256 of the classifier's weights: ties cached statistics to one set of weights."""
    h = hashlib.sha256()
    for name, array in classifier.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def real_test_features(classifier: Classifier, data_dir=None, cache_dir=None) -> dict:
    """{"features" (10000, 128), "mu", "cov"} of the real MNIST test images, cached."""
    path = metrics_cache_dir(cache_dir) / STATS_FILE
    key = fingerprint(classifier)
    if path.is_file():
        try:
            cached = serialization.load(path)
            if cached["fingerprint"] == key:
                return cached
        except (OSError, ValueError, KeyError):
            pass                        # damaged: recompute and overwrite below
    x, _ = load_dataset("mnist", "test", data_dir=data_dir)
    features = classifier.features(x)
    mu, cov = feature_stats(features)
    stats = {"fingerprint": key, "features": features, "mu": mu, "cov": cov}
    serialization.save(stats, path)
    return stats


# ----------------------------------------------------------------------------------------------
# Every classifier-based metric at once.


def classifier_metrics(images, real_images=None, classifier=None, *, data_dir=None,
                       cache_dir=None, n_splits: int = 10, kid_subsets: int = 100,
                       kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """FID, KID, Inception-style score and class entropy of `images` (N, 1, 28, 28) in [0, 1].

    FID and KID compare with `real_images` if given, else with the cached features of the
    10,000 MNIST test images. `classifier` defaults to `mnist_classifier()`.
    """
    images = np.asarray(images, dtype=np.float32)
    if classifier is None:
        classifier = mnist_classifier(data_dir=data_dir, cache_dir=cache_dir)
    if real_images is None:
        real = real_test_features(classifier, data_dir=data_dir, cache_dir=cache_dir)
    else:
        f = classifier.features(np.asarray(real_images, dtype=np.float32))
        mu, cov = feature_stats(f)
        real = {"features": f, "mu": mu, "cov": cov}
    fake = classifier.features(images)
    probs = classifier.predict(images)
    kid = kid_from_features(fake, real["features"], kid_subsets, kid_subset_size, rng=seed)
    is_mean, is_std = inception_score(probs, n_splits)
    nats, frac = class_entropy(probs)
    return {"fid": frechet_distance(*feature_stats(fake), real["mu"], real["cov"]),
            "kid_mean": kid["mean"], "kid_se": kid["se"], "is_mean": is_mean,
            "is_std": is_std, "class_entropy": nats, "class_entropy_frac": frac,
            "class_histogram": class_histogram(probs)}
