"""What do the metrics say about *real* data? Reference numbers for reading a model's scores.

    TINYGEN_DATA=/work/shared/data python benchmarks/calibrate_metrics.py
    python benchmarks/calibrate_metrics.py --no-classifier    # Parzen and toy mixtures only

A FID of 12 means nothing until you know that two halves of the real data score about 1 and
that a little pixel noise scores about 30. This script measures, on real MNIST:

- FID and KID between 10,000 training images and the 10,000 test images (the best a model can
  hope for at this sample size), then between the same 10,000 training images and the test set
  after Gaussian pixel noise of a few sizes (clipped back to [0, 1]) and after a 3x3 box blur
  and a Gaussian blur; plus one row between two random halves of the test set (the one row
  whose reference is not the training images);
- the Inception-style score and class-histogram entropy of the real test set;
- the Parzen-window log-likelihood of 10,000 real training digits used *as the samples*,
  evaluated on the test set, with sigma chosen on 1,000 other held-out training images;
- mode coverage and high-quality percentage of 2,500 exact samples of ring8 and grid25.

The classifier parts need the metrics classifier; the first run trains and caches it (a few
minutes on a laptop CPU, see `tinygen/metrics/features.py`). The Parzen part takes about a
minute. Results go to `benchmarks/results/calibrate_metrics.json` and a Markdown table.
"""

import argparse
import time

import numpy as np
from common import markdown_table, save

from tinygen.data import grid25_mixture, ring8_mixture
from tinygen.data.datasets import load_dataset
from tinygen.metrics import (
    class_entropy,
    fid_from_features,
    inception_score,
    kid_from_features,
    mnist_classifier,
    mode_metrics,
    parzen_evaluate,
    real_test_features,
)

N_REAL = 10_000          # training images used as "samples" (FID, KID, Parzen)
N_VAL = 1_000            # held-out training images for choosing the Parzen sigma
NOISE_SIGMAS = (0.05, 0.1, 0.2, 0.4)


# ----------------------------------------------------------------------------------------------
# Corruptions, in NumPy, on (N, 1, H, W) images in [0, 1].


def add_noise(x, sigma, rng):
    return np.clip(x + sigma * rng.standard_normal(x.shape), 0, 1).astype(np.float32)


def _blur_1d(x, weights, axis):
    """Convolve along `axis` with a symmetric odd-length kernel, zero padding ('same' size)."""
    r = len(weights) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    xp = np.pad(x, pad)
    n = x.shape[axis]
    return sum(w * np.take(xp, np.arange(i, i + n), axis=axis) for i, w in enumerate(weights))


def blur(x, weights):
    """Separable blur: the same 1-D kernel along rows, then along columns."""
    return _blur_1d(_blur_1d(x, weights, axis=-1), weights, axis=-2).astype(np.float32)


def gaussian_weights(sigma, radius=2):
    w = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return w / w.sum()


# ----------------------------------------------------------------------------------------------
# The measurements.


def classifier_part(train, test, test_labels, data_dir, rng) -> tuple:
    clf = mnist_classifier(data_dir=data_dir)
    t0 = time.perf_counter()
    f_train = clf.features(train[:N_REAL])
    f_test = real_test_features(clf, data_dir=data_dir)["features"]
    rows = [_compare("real test set", f_train, f_test)]
    # The classifier was trained on the training images, so train vs test is not a perfect
    # null. Two random halves of the test set are (at 5,000 each, so more FID bias).
    half = rng.permutation(len(f_test))            # the test set's first half is the easier
    rows.append(_compare("half of test set (5k vs 5k)", f_test[half[:5000]],
                         f_test[half[5000:]]))
    for s in NOISE_SIGMAS:
        rows.append(_compare(f"noise sigma={s}", f_train, clf.features(add_noise(test, s, rng))))
    rows.append(_compare("box blur 3x3", f_train, clf.features(blur(test, np.ones(3) / 3))))
    rows.append(_compare("gaussian blur sigma=1px", f_train,
                         clf.features(blur(test, gaussian_weights(1.0)))))
    probs = clf.predict(test)
    is_mean, is_std = inception_score(probs)
    nats, frac = class_entropy(probs)
    print(f"classifier metrics: {time.perf_counter() - t0:.1f}s", flush=True)
    accuracy = float((probs.argmax(axis=1) == test_labels).mean())
    return rows, {"is_mean": is_mean, "is_std": is_std, "class_entropy": nats,
                  "class_entropy_frac": frac, "test_accuracy": accuracy}


def _compare(name, f_ref, f):
    kid = kid_from_features(f_ref, f)
    row = {"set": name, "fid": fid_from_features(f_ref, f), "kid_mean": kid["mean"],
           "kid_se": kid["se"]}
    print(f"  {name}: FID {row['fid']:.3f}, KID {kid['mean']:.2e} +- {kid['se']:.1e}", flush=True)
    return row


def parzen_part(train, test) -> dict:
    t0 = time.perf_counter()
    samples, val = train[:N_REAL], train[-N_VAL:]          # disjoint: 60,000 > 11,000
    result = parzen_evaluate(samples, val, test)
    result["seconds"] = time.perf_counter() - t0
    result["val_means"] = [float(v) for v in result["val_means"]]
    print(f"parzen: sigma {result['sigma']:.4f}, {result['mean']:.1f} +- {result['se']:.1f} "
          f"nats ({result['seconds']:.0f}s)", flush=True)
    return result


def toy_part(rng) -> dict:
    out = {}
    for name, mixture in (("ring8", ring8_mixture()), ("grid25", grid25_mixture())):
        m = mode_metrics(mixture.sample(2500, rng), mixture)
        out[name] = {"modes": m["modes"], "n_modes": m["n_modes"],
                     "high_quality_pct": m["high_quality_pct"]}
    return out


# ----------------------------------------------------------------------------------------------
# Report.


def report(results) -> str:
    lines = []
    if "fid" in results:
        rows = [(r["set"], r["fid"], r["kid_mean"], r["kid_se"]) for r in results["fid"]]
        lines += ["FID / KID against 10,000 MNIST training images (classifier features; the "
                  "'half' row compares two halves of the test set instead):", "",
                  markdown_table(["compared set", "FID", "KID", "KID se"], rows), ""]
        s = results["scores"]
        lines += [markdown_table(["real test set", "value"], [
            ("Inception-style score (10 splits)", f"{s['is_mean']:.3f} +- {s['is_std']:.3f}"),
            ("class entropy (nats)", s["class_entropy"]),
            ("class entropy / log 10", s["class_entropy_frac"]),
            ("classifier test accuracy", s["test_accuracy"])]), ""]
    if "parzen" in results:
        p = results["parzen"]
        lines += [markdown_table(["Parzen: 10k train digits -> 10k test", "value"], [
            ("sigma (chosen on 1k held-out train)", p["sigma"]),
            ("mean log-likelihood (nats)", f"{p['mean']:.1f} +- {p['se']:.1f}")]), ""]
    toy = results["toy"]
    lines += [markdown_table(["2,500 exact samples", "modes covered", "high quality %"],
                             [(k, f"{v['modes']}/{v['n_modes']}", v["high_quality_pct"])
                              for k, v in toy.items()])]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="MNIST root (default: TINYGEN_DATA)")
    parser.add_argument("--no-classifier", action="store_true",
                        help="skip FID, KID and the scores (no classifier needed)")
    parser.add_argument("--no-parzen", action="store_true", help="skip the Parzen estimate")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    train, _ = load_dataset("mnist", "train", data_dir=args.data_dir)
    test, test_labels = load_dataset("mnist", "test", data_dir=args.data_dir)
    results = {"toy": toy_part(rng)}
    if not args.no_parzen:
        results["parzen"] = parzen_part(train, test)
    if not args.no_classifier:
        results["fid"], results["scores"] = classifier_part(train, test, test_labels,
                                                               args.data_dir, rng)
    path = save("calibrate_metrics", results)
    print("\n" + report(results) + f"\n\nwrote {path}")


if __name__ == "__main__":
    main()
