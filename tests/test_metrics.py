"""Tests for `tinygen.metrics`: each metric against a brute-force or closed-form answer.

No test trains the real classifier (minutes): the cache tests swap in a tiny config and tiny
random data, so the whole file runs in a few seconds.
"""

import numpy as np
import pytest

from tinygen.data import grid25_mixture, ring8_mixture
from tinygen.metrics import (
    SIGMAS,
    class_entropy,
    class_histogram,
    classifier_metrics,
    fid_from_features,
    frechet_distance,
    inception_score,
    kid_from_features,
    metrics_cache_dir,
    mode_metrics,
    parzen_evaluate,
    parzen_log_likelihood,
    real_test_features,
    select_sigma,
    sqrtm_psd,
    unbiased_mmd2,
)
from tinygen.metrics import features as feat
from tinygen.metrics.fid import trace_sqrt_product
from tinygen.metrics.modes import PERFECT_HIGH_QUALITY
from tinygen.models.classifier import Config


def random_psd(rng, d, rank=None):
    a = rng.standard_normal((d, rank or d))
    return a @ a.T


# ----------------------------------------------------------------------------------------------
# Matrix square root and FID.


@pytest.mark.parametrize("rank", [None, 2])            # full rank, and singular
def test_sqrtm_psd_squares_back_to_the_matrix(rank):
    a = random_psd(np.random.default_rng(0), 6, rank)
    r = sqrtm_psd(a)
    np.testing.assert_allclose(r, r.T, atol=1e-12)
    np.testing.assert_allclose(r @ r, a, atol=1e-9)
    assert np.linalg.eigvalsh(r).min() > -1e-7          # the PSD root, not another one


def test_sqrtm_psd_matches_scipy():
    linalg = pytest.importorskip("scipy.linalg")
    a = random_psd(np.random.default_rng(1), 5) + np.eye(5)
    np.testing.assert_allclose(sqrtm_psd(a), np.real(linalg.sqrtm(a)), atol=1e-9)


def test_symmetric_form_equals_trace_sqrt_of_the_product():
    rng = np.random.default_rng(2)
    c1, c2 = random_psd(rng, 5), random_psd(rng, 5)
    eig = np.linalg.eigvals(c1 @ c2)                     # C1 C2 is not symmetric...
    assert np.abs(eig.imag).max() < 1e-8 and eig.real.min() > -1e-8   # ...but its eigs are >= 0
    direct = np.sqrt(np.clip(eig.real, 0, None)).sum()
    assert trace_sqrt_product(c1, c2) == pytest.approx(direct, rel=1e-9)


def test_frechet_distance_closed_form_for_diagonal_covariances():
    # Diagonal covariances commute, so FID = |dmu|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    want = 5.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want)
    with pytest.raises(ValueError, match="shapes differ"):
        frechet_distance(mu1, np.diag(a), mu2[:2], np.diag(b)[:2, :2])


def test_fid_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(3).standard_normal((500, 16)).astype(np.float32)
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-8)


def test_fid_grows_with_added_noise():
    rng = np.random.default_rng(4)
    f = rng.standard_normal((2000, 8)) @ rng.standard_normal((8, 8))   # correlated features
    noise = rng.standard_normal(f.shape)
    fids = [fid_from_features(f, f + s * noise) for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert fids[0] == pytest.approx(0.0, abs=1e-8)
    assert all(b > a for a, b in zip(fids, fids[1:], strict=False)), fids


# ----------------------------------------------------------------------------------------------
# KID.


def test_unbiased_mmd2_matches_a_double_loop():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)) + 0.5
    k = lambda a, b: (a @ b / 3 + 1) ** 3
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    assert unbiased_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy)


def test_kid_is_unbiased_for_equal_distributions():
    rng = np.random.default_rng(6)
    values = np.array([unbiased_mmd2(rng.standard_normal((40, 4)), rng.standard_normal((40, 4)))
                       for _ in range(400)])
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean()) < 3 * se
    assert (values < 0).mean() > 0.2                    # single draws are often negative


def test_kid_separates_different_distributions_and_reports_se():
    rng = np.random.default_rng(7)
    f1, f2 = rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) * 1.5 + 0.3
    kid = kid_from_features(f1, f2, n_subsets=10, subset_size=100)
    assert kid["mean"] > 10 * kid["se"] > 0
    assert kid["se"] == pytest.approx(kid["values"].std(ddof=1) / np.sqrt(10))
    same = kid_from_features(f1, rng.standard_normal((300, 8)), n_subsets=10, subset_size=100)
    assert same["mean"] < kid["mean"] / 10
    # A subset as large as the sets is the whole set every time: no subsampling noise.
    whole = kid_from_features(f1, f2, n_subsets=3, subset_size=1000)
    assert whole["se"] < 1e-9 * abs(whole["mean"])


# ----------------------------------------------------------------------------------------------
# Inception-style score and class histogram.


def test_inception_score_extremes():
    one_hot = np.tile(np.eye(10), (100, 1))                 # every split holds each class 10x
    assert inception_score(one_hot) == pytest.approx((10.0, 0.0))
    same = np.tile(np.random.default_rng(8).dirichlet(np.ones(10)), (100, 1))
    assert inception_score(same) == pytest.approx((1.0, 0.0))
    mixed = np.random.default_rng(9).dirichlet(np.ones(10) * 0.3, size=1000)
    mean, std = inception_score(mixed)
    assert 1.0 < mean < 10.0 and std > 0


def test_inception_score_rejects_non_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        inception_score(np.ones((100, 10)))


def test_class_histogram_and_entropy():
    probs = np.tile(np.eye(10), (3, 1))
    np.testing.assert_allclose(class_histogram(probs), np.full(10, 0.1))
    assert class_entropy(probs) == pytest.approx((np.log(10), 1.0))
    collapsed = np.tile(np.eye(10)[[3, 3, 7, 7]], (5, 1))  # only digits 3 and 7
    assert class_entropy(collapsed) == pytest.approx((np.log(2), np.log(2) / np.log(10)))


# ----------------------------------------------------------------------------------------------
# Parzen window.


def brute_force_parzen(samples, x, sigma):
    n, d = samples.shape
    out = []
    for xi in x:
        terms = [np.exp(-np.sum((xi - s) ** 2) / (2 * sigma**2)) for s in samples]
        out.append(np.log(np.sum(terms) / n) - d / 2 * np.log(2 * np.pi * sigma**2))
    return np.array(out)


def test_parzen_matches_a_double_loop():
    rng = np.random.default_rng(10)
    samples, x = rng.random((7, 5)), rng.random((9, 5))
    for sigma in (0.2, 0.5, 1.0):
        got = parzen_log_likelihood(samples, x, sigma, batch_size=4)   # blocks of 4, 4, 1
        np.testing.assert_allclose(got, brute_force_parzen(samples, x, sigma), rtol=1e-10)


def test_parzen_is_stable_far_from_every_sample():
    # exp(-|x - s|^2 / 2 sigma^2) underflows to 0 here; the shifted logsumexp must not.
    samples, x = np.zeros((1, 4)), np.full((1, 4), 50.0)
    got = parzen_log_likelihood(samples, x, 0.1)
    want = -4 * 2500 / (2 * 0.01) - 2 * np.log(2 * np.pi * 0.01)
    assert got[0] == pytest.approx(want)


def test_select_sigma_picks_the_maximiser_and_evaluate_reports_se():
    rng = np.random.default_rng(11)
    samples = rng.random((40, 1, 3, 3))                 # image-shaped inputs are flattened
    val, test = rng.random((20, 1, 3, 3)), rng.random((30, 1, 3, 3))
    flat = lambda a: a.reshape(len(a), -1)
    means = [brute_force_parzen(flat(samples), flat(val), s).mean() for s in SIGMAS]
    sigma, got_means = select_sigma(samples, val)
    np.testing.assert_allclose(got_means, means, rtol=1e-10)
    assert sigma == SIGMAS[int(np.argmax(means))]
    result = parzen_evaluate(samples, val, test, batch_size=7)
    ll = brute_force_parzen(flat(samples), flat(test), sigma)
    assert result["sigma"] == sigma
    assert result["mean"] == pytest.approx(ll.mean())
    assert result["se"] == pytest.approx(ll.std(ddof=1) / np.sqrt(30))


# ----------------------------------------------------------------------------------------------
# Toy-mixture modes.


def test_all_samples_at_one_centre():
    mix = ring8_mixture()
    m = mode_metrics(np.repeat(mix.centers[2:3], 100, axis=0), mix)
    assert (m["modes"], m["n_modes"], m["high_quality_pct"]) == (1, 8, 100.0)
    assert m["counts"][2] == 100


@pytest.mark.parametrize("mixture", [ring8_mixture(), grid25_mixture()])
def test_exact_mixture_samples_cover_every_mode(mixture):
    m = mode_metrics(mixture.sample(5000, rng=12), mixture)
    assert m["modes"] == len(mixture.centers)
    # Within 3 std in 2-D is 98.89%, not 99.7%; 5,000 samples give a standard error of 0.15%.
    assert m["high_quality_pct"] == pytest.approx(100 * PERFECT_HIGH_QUALITY, abs=0.6)


def test_far_away_points_are_not_high_quality():
    m = mode_metrics(np.full((50, 2), 100.0), grid25_mixture())
    assert (m["modes"], m["high_quality_pct"]) == (0, 0.0)


def test_min_count_threshold():
    mix = ring8_mixture()
    x = np.concatenate([np.repeat(mix.centers[:1], 5, axis=0), mix.centers[1:3]])
    assert mode_metrics(x, mix)["modes"] == 3
    assert mode_metrics(x, mix, min_count=2)["modes"] == 1


# ----------------------------------------------------------------------------------------------
# The cached classifier, with a tiny config and tiny random data in place of MNIST.


TINY = Config(epochs=1, batch_size=16, width=2, hidden=8)


@pytest.fixture
def tiny_training(monkeypatch):
    """Make `mnist_classifier` train 2 steps on 32 random images; count the trainings."""
    rng = np.random.default_rng(13)
    x, y = rng.random((32, 1, 28, 28), dtype=np.float32), rng.integers(10, size=32)
    calls = []

    def arrays(data_dir, seed):
        calls.append(seed)
        return (x, y), (x[:16], y[:16])

    monkeypatch.setattr(feat, "_train_config", lambda: TINY)
    monkeypatch.setattr(feat, "_mnist_arrays", arrays)
    return calls


def weights(model):
    return list(model.state_dict().values())


def test_classifier_is_trained_once_then_loaded_from_the_cache(tiny_training, tmp_path, capsys):
    first = feat.mnist_classifier(cache_dir=tmp_path)
    assert (tmp_path / feat.CLASSIFIER_FILE).is_file() and len(tiny_training) == 1
    assert "cached at" in capsys.readouterr().err
    second = feat.mnist_classifier(cache_dir=tmp_path, verbose=False)
    assert len(tiny_training) == 1                      # no second training
    assert second.cfg.hidden == TINY.hidden
    for a, b in zip(weights(first), weights(second), strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_is_deterministic(tiny_training, tmp_path):
    a = feat.mnist_classifier(cache_dir=tmp_path / "a", verbose=False)
    b = feat.mnist_classifier(cache_dir=tmp_path / "b", verbose=False)
    for wa, wb in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_damaged_or_unfinished_cache_is_retrained(tiny_training, tmp_path, capsys):
    path = tmp_path / feat.CLASSIFIER_FILE
    path.write_bytes(b"not a checkpoint")
    feat.mnist_classifier(cache_dir=tmp_path, verbose=False)
    assert len(tiny_training) == 1 and "ignoring" in capsys.readouterr().err
    # A cache whose config asks for more epochs than were run is an interrupted training.
    ckpt = feat.serialization.load(path)
    ckpt["config"]["epochs"] = 3
    feat.serialization.save(ckpt, path)
    feat.mnist_classifier(cache_dir=tmp_path, verbose=False)
    assert len(tiny_training) == 2 and "did not finish" in capsys.readouterr().err


def test_cache_dir_honours_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert metrics_cache_dir() == tmp_path / "tinygen" / "metrics"
    assert metrics_cache_dir(tmp_path / "x") == tmp_path / "x"


def test_classifier_metrics_and_cached_real_statistics(tiny_training, tmp_path, monkeypatch):
    clf = feat.mnist_classifier(cache_dir=tmp_path, verbose=False)
    images = np.random.default_rng(14).random((40, 1, 28, 28), dtype=np.float32)
    m = classifier_metrics(images, real_images=images, classifier=clf, kid_subsets=5)
    assert m["fid"] == pytest.approx(0.0, abs=1e-6)
    assert 1.0 <= m["is_mean"] <= 10.0 and 0.0 <= m["class_entropy_frac"] <= 1.0
    assert set(m) >= {"kid_mean", "kid_se", "is_std", "class_entropy", "class_histogram"}
    # Without real_images, the test-set features are computed once and then read back.
    loads = []
    monkeypatch.setattr(feat, "load_dataset",
                        lambda *a, **k: loads.append(a) or (images, np.zeros(40, np.int64)))
    first = real_test_features(clf, cache_dir=tmp_path)
    m2 = classifier_metrics(images, classifier=clf, cache_dir=tmp_path, kid_subsets=5)
    assert len(loads) == 1 and (tmp_path / feat.STATS_FILE).is_file()
    assert m2["fid"] == pytest.approx(0.0, abs=1e-6)
    clf.net.out.bias.data = clf.net.out.bias.data + 1.0  # other weights: stale stats unusable
    real_test_features(clf, cache_dir=tmp_path)
    assert len(loads) == 2
    assert first["features"].shape == (40, TINY.hidden)


def test_confusion_counts_refuses_mismatched_or_out_of_range_labels():
    from tinygen.metrics import confusion_counts
    np.testing.assert_array_equal(confusion_counts([0, 1, 1], [1, 1, 0], 2), [[0, 1], [1, 1]])
    with pytest.raises(ValueError, match=r"confusion_counts: labels and predicted .* \(3,\) "
                                         r"and \(2,\)"):
        confusion_counts([0, 1, 1], [1, 1], 2)
    with pytest.raises(ValueError, match="confusion_counts: predicted must lie in 0..1, got 0..2"):
        confusion_counts([0, 1, 1], [0, 2, 1], 2)
