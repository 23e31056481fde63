"""How good is a generative model? Metrics for samples, from toy mixtures to MNIST digits.

Reading order:
- `modes.py`: the 2-D mixtures, where the true modes are known, so mode collapse is counted.
- `parzen.py`: a kernel density estimate from samples; the GAN paper's log-likelihood.
- `scores.py`: the Inception-style score and the class histogram, from classifier outputs.
- `fid.py`: FID and KID, comparing clouds of classifier features of fake and real images.
- `features.py`: the cached MNIST classifier that feeds `scores.py` and `fid.py`, and
  `classifier_metrics(images)`, which reports all of them at once.

`benchmarks/calibrate_metrics.py` prints what each metric says about real data, so the number
for a model can be read against the best achievable and against simple corruptions.
"""

from tinygen.metrics.features import (
    classifier_metrics,
    metrics_cache_dir,
    mnist_classifier,
    real_test_features,
)
from tinygen.metrics.fid import (
    feature_stats,
    fid_from_features,
    frechet_distance,
    kid_from_features,
    polynomial_kernel,
    sqrtm_psd,
    unbiased_mmd2,
)
from tinygen.metrics.modes import mode_metrics
from tinygen.metrics.parzen import (
    SIGMAS,
    parzen_evaluate,
    parzen_log_likelihood,
    select_sigma,
)
from tinygen.metrics.scores import (
    class_entropy,
    class_histogram,
    confusion_counts,
    inception_score,
)

__all__ = [
    "SIGMAS", "class_entropy", "class_histogram", "classifier_metrics", "confusion_counts",
    "feature_stats", "fid_from_features", "frechet_distance", "inception_score",
    "kid_from_features", "metrics_cache_dir", "mnist_classifier", "mode_metrics",
    "parzen_evaluate", "parzen_log_likelihood", "polynomial_kernel", "real_test_features",
    "select_sigma", "sqrtm_psd", "unbiased_mmd2",
]
