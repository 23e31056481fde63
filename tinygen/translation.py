"""Measuring image-to-image translation: does the content survive, and how sharp is it?

A translation figure can always be cherry-picked, so each model here has numbers instead:

**CycleGAN (unpaired).** Each domain has a digit classifier: for MNIST the cached metrics
classifier (`tinygen.metrics`), for the upsampled 8x8 digits a LeNet of the same design
trained here on the digits' training split (a few seconds; `domain_classifier`). A held-out
image a of digit k is translated to G_AB(a); the *agreement* A->B is the fraction of such
images that B's classifier calls k (and B->A the same the other way). It measures whether the
digit survives translation, which the adversarial loss alone does not ask for. Next to it:
the cycle reconstruction error mean |G_BA(G_AB(a)) - a| per pixel in [0, 1] (each way), and,
in the MNIST direction, FID of G_BA(b) against the MNIST test set, with the FID of the
untranslated b as the "before" number.

What the agreement can reach depends on the judges, so two translations that learn nothing
are scored the same way: the *identity* (each classifier reads the other domain's images as
they are) and, A->B from MNIST, `made_like_digits` (MNIST put through the 8x8 digits' own
acquisition: a 32x32 bitmap counted in 4x4 blocks). A learned G_AB should beat both; where it
does not, the other domain's classifier, not G, may be what fails to read the digits.

**pix2pix (paired, 7x7 -> 28x28).** Against the ground truth x: PSNR = 10 log10(1 / MSE) per
image (pixels in [0, 1]) and mean L1, the distortion side; FID against the MNIST test set,
the perception side; and the MNIST classifier's accuracy on the outputs. The same columns for
nearest, bilinear and bicubic upsampling give the baselines (`sr_rows`), and
`input_readability` says how readable the 7x7 inputs are to a classifier trained on them.

Loading or training a classifier must not move tinygen's global generator: a training run
that evaluates after each epoch must draw the same random numbers as one that does not
(bitwise resume depends on it). `keep_rng` puts the generator back.

Read next: `benchmarks/translation.py`, which trains the models and prints both tables.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np

import tinygen as tg
from tinygen import plotting
from tinygen.autograd import default_generator, enable_grad
from tinygen.data import DataLoader
from tinygen.data.translation import (
    RESIZES,
    area_downsample,
    load_domain,
    made_like_digits,
    resize,
)

DIGITS_CLASSIFIER_EPOCHS = 20     # 1,438 images: 440 steps, a few seconds at 28x28


@contextlib.contextmanager
def keep_rng():
    """Run a block without moving tinygen's global generator. Gradients are switched back on
    inside it: `fit` evaluates under no_grad(), and a classifier may need training there."""
    state = default_generator().bit_generator.state
    try:
        with enable_grad():
            yield
    finally:
        default_generator().bit_generator.state = state


# ----------------------------------------------------------------------------------------------
# The classifiers, one per domain.


def train_classifier(x, y, cfg, seed: int = 0):
    """A `Classifier(cfg)` trained on the arrays (x, y) for cfg.epochs, seeded, in eval mode
    at the end; tinygen's global generator is left where it was (`keep_rng`)."""
    from tinygen.models.classifier import Classifier

    with keep_rng():
        tg.manual_seed(seed)
        model = Classifier(cfg)
        loader = DataLoader((x, y), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                            generator=seed)
        for _ in range(cfg.epochs):
            for batch in loader:
                model.train_step(tuple(tg.tensor(b) for b in batch))
            model.end_epoch()
    model.eval()
    return model


@functools.cache
def digits_classifier(image_size: int = 28):
    """A LeNet trained on the 8x8 digits' training split, resized to `image_size`, with the
    metrics classifier's recipe (Adam 1e-3, decay 0.6 per epoch is too fast for 20 epochs, so
    0.9). Deterministic (seed 0); kept for the rest of the process."""
    from tinygen.models.classifier import Config

    x, y = load_domain("digits", "train", image_size)
    return train_classifier(x, y, Config(dataset="digits", image_size=image_size, lr_decay=0.9,
                                         epochs=DIGITS_CLASSIFIER_EPOCHS))


def domain_classifier(domain: str, image_size: int = 28, data_dir=None):
    """The classifier that reads digits of `domain` ("mnist" or "digits")."""
    if domain == "digits":
        return digits_classifier(image_size)
    from tinygen.metrics import mnist_classifier
    with keep_rng():
        return mnist_classifier(data_dir=data_dir, verbose=False)


def accuracy(classifier, images, labels) -> float:
    return float((classifier.predict(images).argmax(1) == np.asarray(labels)).mean())


def confusion(classifier, images, labels, k: int = 10) -> np.ndarray:
    """(k, k) counts: row i = images whose label is i, column j = the classifier read j."""
    from tinygen.metrics import confusion_counts
    return confusion_counts(labels, classifier.predict(images).argmax(1), k)


def first_images(loader, n: int):
    """The first n (images, labels) of a loader of batches, as arrays."""
    xs, ys = [], []
    for x, y in loader:
        xs.append(np.asarray(getattr(x, "data", x), np.float32))
        ys.append(np.asarray(getattr(y, "data", y)))
        if sum(len(b) for b in xs) >= n:
            break
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def fid_to_mnist(images, data_dir=None) -> float:
    """FID of images (N, 1, 28, 28) against the 10,000 MNIST test images (metrics classifier)."""
    from tinygen.metrics import feature_stats, frechet_distance, real_test_features

    clf = domain_classifier("mnist", data_dir=data_dir)
    real = real_test_features(clf, data_dir=data_dir)
    return frechet_distance(*feature_stats(clf.features(np.asarray(images, np.float32))),
                            real["mu"], real["cov"])


# ----------------------------------------------------------------------------------------------
# CycleGAN.


def cyclegan_metrics(model, xa, ya, xb, yb, domain_a: str = "mnist", data_dir=None,
                     confusions: bool = False) -> dict:
    """Agreement both ways, cycle error both ways, FID in the MNIST direction; with
    `confusions`, also each direction's (10, 10) confusion counts (source label x class read
    by the target domain's classifier)."""
    size = model.cfg.image_size
    clf_a, clf_b = domain_classifier(domain_a, size, data_dir), digits_classifier(size)
    fake_b, fake_a = model.translate(xa, "ab"), model.translate(xb, "ba")
    out = {"agree_ab": accuracy(clf_b, fake_b, ya),       # B's classifier on G_AB(a)
           "agree_ba": accuracy(clf_a, fake_a, yb),       # A's classifier on G_BA(b)
           "cycle_a": float(np.abs(model.translate(fake_b, "ba") - xa).mean()),
           "cycle_b": float(np.abs(model.translate(fake_a, "ab") - xb).mean()),
           "real_acc_a": accuracy(clf_a, xa, ya), "real_acc_b": accuracy(clf_b, xb, yb),
           # the baselines that learn nothing (see the module docstring)
           "agree_ab_identity": accuracy(clf_b, xa, ya),
           "agree_ba_identity": accuracy(clf_a, xb, yb)}
    if confusions:
        # Which digit each source digit turns into: a near-permutation off the diagonal
        # would mean the Gs learned a consistent relabelling the cycle loss cannot see.
        out["confusion_ab"] = confusion(clf_b, fake_b, ya)
        out["confusion_ba"] = confusion(clf_a, fake_a, yb)
    if domain_a == "mnist":
        out["agree_ab_made_like_b"] = accuracy(clf_b, made_like_digits(xa, size), ya)
        out["fid_ba"] = fid_to_mnist(fake_a, data_dir)    # G_BA(b) against MNIST
        out["fid_b_untranslated"] = fid_to_mnist(xb, data_dir)
    return out


def save_confusions(metrics: dict, path, domain_a: str = "mnist") -> list:
    """The two confusion matrices of `cyclegan_metrics(..., confusions=True)` as figures,
    written to path with _ab and _ba before the suffix."""
    path = Path(path)
    names = {"ab": f"{domain_a} digits through G_AB, read as 8x8 digits",
             "ba": f"8x8 digits through G_BA, read as {domain_a}"}
    return [plotting.save_confusion(
        metrics[f"confusion_{d}"], path.with_name(f"{path.stem}_{d}{path.suffix}"),
        title=f"CycleGAN {d[0].upper()}->{d[1].upper()}: {names[d]}\n"
              f"(agreement {100 * metrics[f'agree_{d}']:.1f}%, the diagonal)",
        xlabel="class the target domain's classifier reads", ylabel="source digit's label")
        for d in ("ab", "ba")]


def save_cycle_grid(model, xa, xb, path):
    """Rows: real A, fake B, reconstructed A, then real B, fake A, reconstructed B."""
    fake_b, fake_a = model.translate(xa, "ab"), model.translate(xb, "ba")
    rows = [xa, fake_b, model.translate(fake_b, "ba"), xb, fake_a, model.translate(fake_a, "ab")]
    labels = ["real A", "fake B = G_AB(a)", "rec. A = G_BA(G_AB(a))",
              "real B", "fake A = G_BA(b)", "rec. B = G_AB(G_BA(b))"]
    n = min(len(xa), len(xb))
    return plotting.save_labelled_grid(
        np.concatenate([r[:n] for r in rows]), path, nrow=n, row_labels=labels,
        title=f"CycleGAN: A = {model.cfg.dataset}, B = 8x8 digits upsampled (held-out images)")


# ----------------------------------------------------------------------------------------------
# Super-resolution (pix2pix).


def psnr(pred, target) -> float:
    """Mean over images of 10 log10(1 / MSE), pixels in [0, 1] (MSE floored at 1e-10)."""
    mse = np.square(np.asarray(pred) - target).reshape(len(target), -1).mean(1)
    return float(np.mean(10 * np.log10(1 / np.maximum(mse, 1e-10))))


def upsample(low, size: int, mode: str) -> np.ndarray:
    return np.clip(resize(low, size, mode), 0, 1)


def sr_scores(pred, target, labels, with_fid: bool = True, data_dir=None) -> dict:
    """PSNR, L1, FID (to the MNIST test set) and MNIST-classifier accuracy of outputs."""
    out = {"psnr": psnr(pred, target), "l1": float(np.abs(pred - target).mean())}
    if with_fid:
        out["fid"] = fid_to_mnist(pred, data_dir)
        out["acc"] = accuracy(domain_classifier("mnist", data_dir=data_dir), pred, labels)
    return out


def sr_rows(x, y, factor: int, models: dict, with_fid: bool = True, data_dir=None) -> list:
    """[(name, scores)] for the three resizes of the area-downsampled x and for each model
    in `models` ({name: model with .translate(low)})."""
    low = area_downsample(x, factor)
    rows = [(mode, sr_scores(upsample(low, x.shape[-1], mode), x, y, with_fid, data_dir))
            for mode in RESIZES]
    for name, model in models.items():
        rows.append((name, sr_scores(model.translate(low), x, y, with_fid, data_dir)))
    return rows


def input_readability(x, y, xt, yt, factor: int, epochs: int = 5, seed: int = 0) -> float:
    """How much of the digit the low-resolution input itself keeps: the test accuracy of a
    LeNet (the metrics classifier's design and recipe) trained on the inputs, not on the
    images.

    Every training image x is averaged down by `factor` and enlarged back by nearest
    neighbour, the picture pix2pix's G is given; the classifier learns to read those and is
    scored on the held-out ones (xt, yt) made the same way. A super-resolved image read by the
    MNIST classifier can beat this only by what the classifier trained on clean digits reads
    better than one trained on the inputs, so it puts the accuracy column in scale.
    Deterministic for a seed, and tinygen's global generator is left where it was.
    """
    from tinygen.models.classifier import Config

    def inputs(images):
        return upsample(area_downsample(images, factor), images.shape[-1], "nearest")

    cfg = Config(dataset="mnist", image_size=x.shape[-1], epochs=epochs, seed=seed)
    return accuracy(train_classifier(inputs(x), y, cfg, seed), inputs(xt), yt)


def save_sr_grid(models: dict, x, factor: int, path, title: str):
    """Columns of examples; rows: input (shown by nearest), bilinear, each model, truth."""
    low = area_downsample(x, factor)
    rows = [("input 7x7" if factor == 4 and x.shape[-1] == 28 else "input",
             upsample(low, x.shape[-1], "nearest")),
            ("bilinear", upsample(low, x.shape[-1], "bilinear"))]
    rows += [(name, m.translate(low)) for name, m in models.items()]
    rows.append(("ground truth", x))
    return plotting.save_labelled_grid(np.concatenate([r for _, r in rows]), path, nrow=len(x),
                                       row_labels=[n for n, _ in rows], title=title)
