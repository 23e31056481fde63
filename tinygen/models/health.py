"""A GAN health monitor: the numbers that show a GAN failing, and a warning when one starts.

A GAN's losses do not fall the way a classifier's do: a D loss that holds steady can mean a
healthy balance or a G that has given up. What tells them apart is a handful of numbers, logged
to `log.jsonl` at every log interval and drawn over the run in `health.png`:

- mean D(x) and mean D(G(z)): in balance both hover in the middle; D(G(z)) -> 0 means D wins;
- both losses, and the gradient norms of G and D (from the last step of each);
- a **probe** of sample diversity, from a fixed batch of noise so that only G changes between
  two probes: the modes covered on the 2-D mixtures (`probe_modes`, at least 20 of 2,500
  high-quality samples each), or the classes that the MNIST classifier finds in 1,000 samples
  (`probe_classes`, each at least 2% of them, a fifth of a fair share).

It warns once, in plain words, when one of the classic failures starts:

- **D wins**: D(G(z)) falls below 0.05 while G's gradient norm has collapsed to a tenth of its
  peak. With the minimax objective this is the saturation that `adversarial.py` explains.
- **Mode collapse**: the probe's count drops to half of its best so far or less.
- **Divergence** (a NaN or Inf loss or gradient) stops training instead; `adversarial.py`
  replays the step under `detect_anomaly()` so the error names the op and the model line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

D_WINS_D_FAKE = 0.05       # mean D(G(z)) below this ...
D_WINS_GRAD_DROP = 0.1     # ... while G's gradient norm is below this fraction of its peak
COLLAPSE_DROP = 0.5        # probe count at or below this fraction of its best so far,
COLLAPSE_MIN_BEST = 4      # once the best so far is at least this (not the first steps' noise)
PROBE_KEYS = ("probe_modes", "probe_classes")


class HealthMonitor:
    """Reads each log record (plus the model's probe) and warns once per failure kind."""

    def __init__(self, stream=None):
        self.stream = stream
        self.warned: set = set()
        self.peak_gnorm_g = 0.0
        self.best: dict = {}          # probe key -> (best count, step)

    def observe(self, record: dict, probe: dict) -> list[str]:
        """Add `probe` to `record`; return (and print) the warnings that are new."""
        record.update(probe)
        new = [(kind, text) for kind, text in self._signs(record) if kind not in self.warned]
        for kind, text in new:
            self.warned.add(kind)
            print(f"\nwarning (step {record.get('step')}): {text}",
                  file=self.stream or sys.stderr)
        return [text for _, text in new]

    def _signs(self, r: dict):
        gnorm = r.get("gnorm_g")
        if gnorm is not None:
            if (r.get("d_fake", 1.0) < D_WINS_D_FAKE
                    and gnorm < D_WINS_GRAD_DROP * self.peak_gnorm_g):
                yield "d_wins", (
                    f"D is winning: mean D(G(z)) = {r['d_fake']:.3f} and G's gradient norm fell "
                    f"from {self.peak_gnorm_g:.3g} to {gnorm:.3g}, so G gets almost no signal. "
                    f"Try the non-saturating objective, a lower D learning rate or fewer D steps.")
            self.peak_gnorm_g = max(self.peak_gnorm_g, gnorm)
        for key in PROBE_KEYS:
            if key not in r:
                continue
            best, at = self.best.get(key, (0, None))
            if best >= COLLAPSE_MIN_BEST and r[key] <= COLLAPSE_DROP * best:
                what = "modes" if key == "probe_modes" else "digit classes"
                yield "collapse", (
                    f"mode collapse: a fixed batch of samples now covers {r[key]:.0f} {what}, "
                    f"down from {best:.0f} at step {at}. G is putting its samples on a few "
                    f"outputs that fool D.")
            if r[key] > best:
                self.best[key] = (r[key], r.get("step"))


# ----------------------------------------------------------------------------------------------
# Probes: how many modes or classes a fixed batch of samples covers.


def mode_probe(points, dataset: str, min_count: int = 20) -> dict:
    """Modes covered (>= `min_count` high-quality samples each) and % high quality."""
    from tinygen.data import toy
    from tinygen.metrics import mode_metrics

    mixture = toy.ring8_mixture() if dataset == "ring8" else toy.grid25_mixture()
    m = mode_metrics(points, mixture, min_count=min_count)
    return {"probe_modes": m["modes"], "probe_hq": m["high_quality_pct"]}


def class_probe(images, classifier, min_share: float = 0.02) -> dict:
    """Classes that hold >= `min_share` of the samples, and the class-histogram entropy."""
    from tinygen.metrics import class_entropy, class_histogram

    probs = classifier.predict(images)
    hist = class_histogram(probs)
    return {"probe_classes": int((hist >= min_share).sum()),
            "probe_entropy": float(class_entropy(probs)[0])}


# ----------------------------------------------------------------------------------------------
# The figure.

PANELS = [
    ("D's output (mean)", ["d_real", "d_fake"], "mean D(x), mean D(G(z))", False),
    ("losses", ["loss_d", "loss_g"], "loss", False),
    ("gradient norms", ["gnorm_d", "gnorm_g"], "||grad||", True),
    ("sample diversity (fixed noise)", ["probe_modes", "probe_classes"], "count", False),
]
LABELS = {"d_real": "D(x)", "d_fake": "D(G(z))", "loss_d": "D loss", "loss_g": "G loss",
          "gnorm_d": "D", "gnorm_g": "G", "probe_modes": "modes covered",
          "probe_classes": "digit classes present"}


def plot_health(run_dir) -> Path | None:
    """health.png from RUN_DIR/log.jsonl: four panels of the monitor's numbers by step."""
    from tinygen import plotting

    log = Path(run_dir) / "log.jsonl"
    if not log.exists():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    records = [r for r in records if "loss_d" in r]
    if not records:
        return None
    plt = plotting._pyplot()
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.2))
    for ax, (title, keys, ylabel, log_scale) in zip(axes, PANELS, strict=True):
        for key in keys:
            pts = [(r["step"], r[key]) for r in records if key in r]
            if pts:
                steps, values = np.array(pts, dtype=float).T
                ax.plot(steps, values, label=LABELS[key])
        if log_scale and ax.lines:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"GAN health: {Path(run_dir).name}")
    fig.tight_layout()
    path = Path(run_dir) / "health.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
