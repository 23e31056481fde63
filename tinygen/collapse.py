"""The mode-collapse lab: train GAN settings on the 2-D mixtures and watch which modes survive.

On `ring8` and `grid25` the true modes are known, so mode collapse is counted rather than
guessed (Metz et al. 2017, unrolled GANs; Srivastava et al. 2017, VEEGAN). A setting is a set
of `gan.Config` overrides (`SETTINGS`: the two generator objectives here; the improved-GAN
switches join them as they land). `run_setting` trains one setting from one seed, with fixed
noise for snapshots of G's samples along the way, and scores the final samples with the lab's
protocol:

- 2,500 samples; a sample is high quality within 3 std of its nearest centre;
- a mode is covered by at least 20 high-quality samples (`modes`), a fifth of a fair share on
  ring8; `modes_any` also counts a single stray sample, the looser rule some papers use.

`benchmarks/mode_collapse.py` prints the table over seeds; `demos/mode_collapse.py` draws
the figure: one row per setting, samples over the true centres at several points in training.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import tinygen as tg
from tinygen import plotting
from tinygen.data import DataLoader, toy
from tinygen.data.datasets import load_dataset
from tinygen.metrics import mode_metrics
from tinygen.models import gan

N_SAMPLES, MIN_COUNT = 2500, 20

# name -> gan.Config overrides. On these mixtures the non-saturating loss is the one that
# collapses: it hops from mode to mode (see the README's lab table and figure).
SETTINGS = {
    "non-saturating": {"objective": "nonsaturating"},
    "minimax": {"objective": "minimax"},
}

# The improved-GAN techniques (Salimans et al. 2016, `tinygen/models/improved.py`), each on
# the non-saturating GAN they were designed for, then all together: the ablation's settings
# (`benchmarks/improved_gan_ablation.py`). Virtual batch norm is missing here because the G
# for 2-D points has no batch norm to replace; the DCGAN part of the ablation has it.
TECHNIQUES = {
    "feature matching": {"feature_matching": True},
    "minibatch discrimination": {"minibatch_kernels": 5, "minibatch_dims": 3},
    "historical averaging": {"historical_averaging": 1e-3},
    "one-sided label smoothing": {"label_smoothing": True},
}
ABLATION = {"non-saturating (base)": {"objective": "nonsaturating"},
            **{f"+ {k}": {"objective": "nonsaturating", **v} for k, v in TECHNIQUES.items()},
            "+ all four": {"objective": "nonsaturating",
                           **{k: v for t in TECHNIQUES.values() for k, v in t.items()}}}


def mixture(dataset: str):
    return {"ring8": toy.ring8_mixture, "grid25": toy.grid25_mixture}[dataset]()


def run_setting(dataset: str, overrides: dict, seed: int = 0, epochs: int | None = None,
                snapshots: int = 4, max_steps: int | None = None) -> dict:
    """Train `gan` with `overrides` on `dataset`; return its scores and sample snapshots.
    `max_steps` cuts the run short (smoke tests)."""
    cfg = gan.Config(dataset=dataset, seed=seed, **overrides)
    if epochs is not None:
        cfg.epochs = epochs
    tg.manual_seed(seed)
    x, y = load_dataset(dataset, "train", seed=seed)
    model = gan.GAN(cfg)
    loader = DataLoader((x, y), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        generator=seed)
    total = min(cfg.epochs * len(loader), max_steps or np.inf)
    marks = set(np.linspace(0, total, snapshots + 1).astype(int)[1:])
    z = np.random.default_rng(seed + 7).standard_normal((N_SAMPLES, cfg.latent))
    shots, step, start = [], 0, time.perf_counter()
    for _ in range(cfg.epochs):
        for batch in loader:
            model.train_step(tuple(tg.tensor(b) for b in batch))
            step += 1
            if step in marks:
                shots.append((step, model.generate(z)))
            if step >= total:
                break
        if step >= total:
            break
    seconds = time.perf_counter() - start
    final = shots[-1][1]
    strict = mode_metrics(final, mixture(dataset), min_count=MIN_COUNT)
    loose = mode_metrics(final, mixture(dataset), min_count=1)
    return {"modes": strict["modes"], "modes_any": loose["modes"],
            "n_modes": strict["n_modes"], "high_quality_pct": strict["high_quality_pct"],
            "seconds": seconds, "steps": step, "snapshots": shots}


def run_settings(dataset: str, settings: dict, seed: int = 0, epochs: int | None = None,
                 max_steps: int | None = None) -> dict:
    """`run_setting` for each of `settings` ({name: overrides}), one printed line as each
    ends; {name: result}, the rows of `save_lab_figure`."""
    rows = {}
    for name, overrides in settings.items():
        rows[name] = r = run_setting(dataset, overrides, seed=seed, epochs=epochs,
                                     max_steps=max_steps)
        print(f"{name:>28}: {r['modes']}/{r['n_modes']} modes (>= 20 samples), "
              f"{r['modes_any']} with any sample, {r['high_quality_pct']:.1f}% high quality, "
              f"{r['seconds']:.0f}s", flush=True)
    return rows


def save_lab_figure(rows: dict, dataset: str, path):
    """rows: {setting name: run_setting result}. One row per setting, one column per
    snapshot: samples (blue) over the mixture's centres (red crosses)."""
    plt = plotting._pyplot()
    names = list(rows)
    ncol = max(len(r["snapshots"]) for r in rows.values())
    fig, axes = plt.subplots(len(names), ncol, figsize=(2.4 * ncol, 2.5 * len(names)),
                             squeeze=False)
    centres = mixture(dataset).centers
    lim = 1.3 * np.abs(centres).max()
    for i, name in enumerate(names):
        r = rows[name]
        for j, (step, pts) in enumerate(r["snapshots"]):
            ax = axes[i, j]
            ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.3, c="tab:blue")
            ax.scatter(centres[:, 0], centres[:, 1], s=25, marker="x", c="tab:red")
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"step {step}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{name}\n{r['modes']}/{r['n_modes']} modes, "
                              f"{r['high_quality_pct']:.0f}% HQ", fontsize=8)
    fig.suptitle(f"{dataset}: GAN samples (blue) over the true centres (red), by setting "
                 f"(rows) and training step (columns)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
