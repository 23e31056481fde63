"""Where an AAE clustering run's test error comes from: empty clusters, mixed ones, or names.

    python benchmarks/aae_clusters.py runs/aae_cluster16_s0 runs/aae_cluster16_dn03

The paper scores clustering (Section 6) by naming each cluster after its head, the training
image it is most sure of, and counting the test images whose cluster bears another name
(`CategoricalAAE.cluster_error`). A high error can have three causes, and this script
measures each for every run folder it is given:

- **empty clusters**: K clusters, but the training images fill only a few of them, so some
  digits get no cluster of their own ("used" counts the clusters that hold at least one of
  the 10,000 training images the run keeps for naming; "digits unnamed" lists the digits no
  used cluster is named after);
- **mixed clusters**: a cluster holds several digits. "purity" is the fraction of those
  training images whose label is their cluster's most common one, and "majority error" is the
  test error when each cluster is named after its most common label instead of its head
  (not the paper's scoring: it reads every training label, so it is only a diagnosis);
- **soft codes**: "mean max q" is the mean over the images of max_k q(k|x); 1 means one-hot
  codes, 1/K codes that say nothing.

If the head error and the majority error are close, the clusters are mixed or missing, not
misnamed. The numbers use the run's first 10,000 training images (those `setup` keeps for
the heads) and the whole test set of its dataset.
"""

import argparse
from pathlib import Path

import numpy as np
from common import machine, markdown_table

from tinygen.data.datasets import load_dataset
from tinygen.report import load_run
from tinygen.serialization import CheckpointError


def profile(model, x, y, xt, yt) -> dict:
    """The clustering's numbers (see the module doc) on training images x, y (the naming
    pool) and test images xt, yt."""
    y, yt = np.asarray(y), np.asarray(yt)
    q = model.q_y(x)
    k = q.shape[1]
    assigned = q.argmax(axis=1)
    sizes = np.bincount(assigned, minlength=k)
    heads = model.cluster_labels(x, y)                          # (K,) the paper's names
    counts = np.zeros((k, int(max(y.max(), yt.max())) + 1), np.int64)
    np.add.at(counts, (assigned, y), 1)                         # cluster x label
    majority = np.where(sizes > 0, counts.argmax(axis=1), heads)   # empty: keep the head's
    test_cluster = model.q_y(xt).argmax(axis=1)
    named = set(heads[sizes > 0].tolist())
    return {"clusters": k, "used": int((sizes > 0).sum()),
            "largest": int(sizes.max()), "mean_max_q": float(q.max(axis=1).mean()),
            "purity": float(counts.max(axis=1).sum() / len(y)),
            "head_error": float(np.mean(heads[test_cluster] != yt)),
            "majority_error": float(np.mean(majority[test_cluster] != yt)),
            "unnamed": sorted(set(range(counts.shape[1])) - named)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders of aae_cluster (or "
                   "aae_semi) written by `tinygen train`")
    args = p.parse_args(argv)
    rows, data = [], {}
    for run in args.runs:
        try:
            model, cfg, _ = load_run(run)
        except (FileNotFoundError, CheckpointError) as err:
            raise SystemExit(f"aae_clusters.py: {err}") from None
        if not hasattr(model, "cluster_labels"):
            raise SystemExit(f"aae_clusters.py: {run} is a {type(model).__name__} run, not "
                             f"an AAE with a categorical code")
        if cfg.dataset not in data:
            data[cfg.dataset] = (load_dataset(cfg.dataset, "train"),
                                 load_dataset(cfg.dataset, "test"))
        (x, y), (xt, yt) = data[cfg.dataset]
        r = profile(model, x[:10_000], y[:10_000], xt, yt)
        rows.append([str(run), f"{r['used']} of {r['clusters']}", f"{r['largest']:,}",
                     f"{r['mean_max_q']:.3f}", f"{100 * r['purity']:.1f}%",
                     f"{100 * r['head_error']:.2f}%", f"{100 * r['majority_error']:.2f}%",
                     " ".join(map(str, r["unnamed"])) or "none"])
    info = machine()
    print(f"{info['cpu']}, load average {info['load_average']:.2f}\n")
    print(markdown_table(["run", "used", "largest", "mean max q", "purity",
                          "head error (paper's)", "majority error", "digits unnamed"], rows))


if __name__ == "__main__":
    main()
