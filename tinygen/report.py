"""Evidence: evaluate a trained run with every metric that applies, and report all runs at once.

`evaluate_run(run_dir)` rebuilds the model from its checkpoint and computes:
- the model's own held-out numbers (`model.evaluate`: test accuracy, test negative ELBO, ...);
- for models that sample 28x28 MNIST digits: FID, KID, the Inception-style score and the
  class entropy through the MNIST classifier (`tinygen.metrics.features`), and the Parzen
  log-likelihood with the protocol of Goodfellow et al. 2014;
- for models of the ring8 / grid25 toy mixtures: modes covered (by at least 20 of 2,500
  samples, and by at least one) and % high-quality samples.
It writes them to RUN_DIR/metrics.json.

`write_report(runs)` gathers every run's metrics into one Markdown table (with the paper value
where one exists) and one figure of samples side by side.

Parzen note: the protocol picks sigma on 1,000 validation images held out from training. Our
models train on all 60,000 MNIST training images (so that test losses compare with the
published ones), so we use the last 1,000 training images; selecting on test images would be
wrong, and sigma is chosen from a coarse grid of 10 values, which such overlap barely moves.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import tinygen as tg
from tinygen import plotting, serialization
from tinygen.data import DataLoader
from tinygen.data.datasets import load_dataset

# Published numbers to read ours against: (value, source, the training epochs behind the
# number when the source states them). Higher/lower is per metric.
PAPER = {
    ("classifier", "acc"): (0.9905, "LeNet-5, LeCun et al. 1998 (0.95% error)", None),
    ("vae", "loss"): (105.6, "pytorch/examples VAE, public re-run", 10),
    ("gan", "parzen"): (225.0, "Goodfellow et al. 2014, Table 1", None),
    ("cgan", "parzen"): (132.0, "Mirza & Osindero 2014, Table 1", None),
}
N_SAMPLES = 10_000


def load_run(run_dir: Path):
    """(model, config, checkpoint) of a run folder written by `tinygen train`."""
    from tinygen import models
    from tinygen.train import CHECKPOINT

    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no {CHECKPOINT} in {run_dir}; train first with "
                                f"`tinygen train`")
    ckpt = serialization.load(path)
    config = dict(ckpt["config"])
    if config.get("model") not in models.REGISTRY:
        raise serialization.CheckpointError(
            f"{path}: the checkpoint does not name a registered model (model="
            f"{config.get('model')!r}), so it cannot be rebuilt; `tinygen eval` and `sample` "
            f"read run folders written by `tinygen train` or a demo")
    name = config.pop("model")
    module = models.REGISTRY[name][0]
    cfg = module.Config(**config)
    model = models.build(name, cfg)
    model.load_checkpoint_state(ckpt)
    model.eval()
    return model, cfg, name


def evaluate_run(run_dir, data_dir=None, n_samples: int = N_SAMPLES, log=print) -> dict:
    """Every applicable metric of a run; also written to RUN_DIR/metrics.json."""
    run_dir = Path(run_dir)
    model, cfg, name = load_run(run_dir)
    xt, yt = load_dataset(cfg.dataset, "test", data_dir=data_dir, seed=cfg.seed)
    results = {"model": name, "dataset": cfg.dataset, "epochs": cfg.epochs}
    with tg.no_grad():
        results.update(_floats(model.evaluate(DataLoader((xt, yt), batch_size=500))))
    log(f"{name}: held-out metrics {_short(results)}")
    samples = _samples(model, n_samples, cfg.seed)
    if samples is not None and cfg.dataset == "mnist":
        results.update(_image_metrics(samples, data_dir, log,
                                      parzen=getattr(model, "parzen_meaningful", True)))
        if getattr(model, "n_conditions", 0):
            results.update(_conditional_metrics(samples, data_dir, log))
    elif samples is not None and cfg.dataset in ("ring8", "grid25"):
        results.update(_mode_metrics(samples, cfg.dataset))
    results["train_seconds"] = training_seconds(run_dir)
    (run_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    return results


def _floats(d: dict) -> dict:
    return {k: float(v) for k, v in d.items()}


def _short(d: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in d.items() if isinstance(v, float))


def _samples(model, n, seed):
    tg.manual_seed(seed)
    try:
        with tg.no_grad():
            return np.concatenate([model.sample(min(1000, n - i)) for i in range(0, n, 1000)])
    except NotImplementedError:
        return None


def _image_metrics(samples, data_dir, log, parzen: bool = True) -> dict:
    from tinygen.metrics import classifier_metrics, parzen_evaluate

    start = time.perf_counter()
    m = classifier_metrics(samples, data_dir=data_dir)
    out = {k: float(v) for k, v in m.items() if k != "class_histogram"}
    log(f"  classifier metrics in {time.perf_counter() - start:.0f}s: {_short(out)}")
    if not parzen:
        return out
    x, _ = load_dataset("mnist", "train", data_dir=data_dir)
    xt, _ = load_dataset("mnist", "test", data_dir=data_dir)
    start = time.perf_counter()
    p = parzen_evaluate(samples.reshape(len(samples), -1), x[-1000:].reshape(1000, -1),
                        xt.reshape(len(xt), -1))
    out.update(parzen=float(p["mean"]), parzen_se=float(p["se"]),
               parzen_sigma=float(p["sigma"]))
    log(f"  Parzen in {time.perf_counter() - start:.0f}s: {p['mean']:.1f} +- {p['se']:.1f} "
        f"(sigma {p['sigma']:.3f})")
    return out


def _conditional_metrics(samples, data_dir, log) -> dict:
    """For class-conditional samples (labels cycling 0..9, as `sample(n)` draws them): how often
    the MNIST classifier agrees with the requested label, and each class's FID against the
    real test images of that class (is every class diverse, or one image drawn many times?)."""
    from tinygen.metrics import (
        feature_stats,
        frechet_distance,
        mnist_classifier,
        real_test_features,
    )

    classifier = mnist_classifier(data_dir=data_dir)
    requested = np.arange(len(samples)) % 10
    agree = classifier.predict(samples).argmax(axis=1) == requested
    _, yt = load_dataset("mnist", "test", data_dir=data_dir)
    real = real_test_features(classifier, data_dir=data_dir)["features"]
    fake = classifier.features(samples)
    out = {"label_agreement": float(agree.mean())}
    for c in range(10):
        out[f"label_agreement_{c}"] = float(agree[requested == c].mean())
        out[f"fid_class_{c}"] = frechet_distance(*feature_stats(fake[requested == c]),
                                                 *feature_stats(real[yt == c]))
    fids = [out[f"fid_class_{c}"] for c in range(10)]
    out.update(fid_class_mean=float(np.mean(fids)), fid_class_max=float(np.max(fids)))
    log(f"  classifier agrees with the requested label on {100 * agree.mean():.2f}%; "
        f"per-class FID {', '.join(f'{f:.1f}' for f in fids)}")
    return out


# The toy protocol: 2,500 samples; a mode counts as covered with at least 20 high-quality
# samples (a fifth of a fair share on ring8), and `modes_any` with at least one, the looser
# count that PacGAN's re-run of VEEGAN uses. Both are reported, so a stray sample cannot pass
# for coverage unnoticed.
TOY_SAMPLES, TOY_MIN_COUNT = 2500, 20


def _mode_metrics(samples, dataset) -> dict:
    from tinygen.data import toy
    from tinygen.metrics import mode_metrics

    mixture = toy.ring8_mixture() if dataset == "ring8" else toy.grid25_mixture()
    points = samples[:TOY_SAMPLES]
    m = mode_metrics(points, mixture, min_count=TOY_MIN_COUNT)
    return {"modes": float(m["modes"]),
            "modes_any": float(mode_metrics(points, mixture, min_count=1)["modes"]),
            "n_modes": float(m["n_modes"]), "high_quality_pct": float(m["high_quality_pct"])}


def training_seconds(run_dir: Path) -> float | None:
    """Wall-clock training time: the sum of the per-epoch times logged by `fit`."""
    log = Path(run_dir) / "log.jsonl"
    if not log.exists():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    times = [r["seconds"] for r in records if "seconds" in r]
    return float(sum(times)) if times else None


# ----------------------------------------------------------------------------------------------
# The report.


def write_report(run_dirs, out_dir, n_show: int = 16) -> tuple[Path, Path]:
    """runs' metrics.json -> out_dir/report.md (one table) and out_dir/report.png (samples)."""
    rows, panels = [], []
    for run in sorted(Path(r) for r in run_dirs):
        path = run / "metrics.json"
        if not path.exists():
            continue
        m = json.loads(path.read_text())
        for key, value in m.items():
            if isinstance(value, float) and key not in SECONDARY:
                paper, source, paper_epochs = PAPER.get((m["model"], key), (None, "", None))
                rows.append((run.name, m["model"], m["dataset"], key, _with_error(m, key),
                             _paper_cell(paper, paper_epochs, m.get("epochs")), source,
                             m.get("epochs"), m.get("train_seconds")))
        panels.append(run)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text(_markdown(rows))
    png = _figure(panels, out_dir / "report.png", n_show)
    return md, png


# Numbers shown next to their main metric rather than on rows of their own.
COMPANIONS = {"kid_mean": ("kid_se", "±"), "is_mean": ("is_std", "±"),
              "parzen": ("parzen_se", "±")}
SECONDARY = {"train_seconds", "kid_se", "is_std", "parzen_se", "parzen_sigma", "n_modes",
             *(f"label_agreement_{c}" for c in range(10)), *(f"fid_class_{c}" for c in range(10)),
             "class_entropy"}


def _with_error(m, key) -> str:
    text = f"{m[key]:.4g}"
    if key in COMPANIONS and COMPANIONS[key][0] in m:
        text += f" ± {m[COMPANIONS[key][0]]:.2g}"
    if key == "parzen" and "parzen_sigma" in m:
        text += f" (σ {m['parzen_sigma']:.3g})"
    return text


HEADER = """# tinygen runs

Written by `tinygen report` from each run's `metrics.json` (`tinygen eval`). Image metrics use
10,000 samples and our MNIST classifier's features, so FID/KID compare only with numbers from
the same classifier (see the README's calibration table). loss: held-out negative ELBO per
image (VAEs) or per-pixel BCE (AEs); acc: test accuracy; parzen: mean test log-likelihood
(nats) under a Parzen window on the samples, Goodfellow et al. 2014 protocol.

"""


def _paper_cell(paper, paper_epochs, run_epochs) -> str:
    """The published value, with its training budget when that differs from this run's, so a
    1-epoch run is not read against a 10-epoch number without saying so."""
    if paper is None:
        return ""
    if paper_epochs is None:
        return f"{paper:g}"
    if run_epochs == paper_epochs:
        return f"{paper:g} ({paper_epochs} epochs, as this run)"
    return f"{paper:g} (after {paper_epochs} epochs; this run: {run_epochs})"


def _markdown(rows) -> str:
    lines = [HEADER + "| run | model | dataset | metric | value | paper | paper source | "
             "epochs | train time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run, model, data, key, value, paper, source, epochs, secs in rows:
        secs_s = "" if secs is None else f"{secs:.0f}s"
        epochs_s = "" if epochs is None else f"{epochs}"
        lines.append(f"| {run} | {model} | {data} | {key} | {value} | {paper} | "
                     f"{source} | {epochs_s} | {secs_s} |")
    return "\n".join(lines) + "\n"


def _figure(panels, path, n_show):
    plt = plotting._pyplot()
    shown = []
    for run in panels:
        try:
            model, cfg, _ = load_run(run)
        except (FileNotFoundError, KeyError):
            continue
        samples = _samples(model, n_show, cfg.seed)
        if samples is not None and samples.ndim == 4:
            shown.append((run.name, plotting.image_grid(samples, nrow=int(np.sqrt(n_show)))))
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(3 * len(shown), 3.4), squeeze=False)
    for ax, (title, grid) in zip(axes[0], shown, strict=True):
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
