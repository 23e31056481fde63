"""Where a semi-supervised GAN's test errors go: each run's confusion, and its worst pair.

    python benchmarks/ssgan_errors.py runs/ssgan_s0 runs/ssgan_s1
    python benchmarks/ssgan_errors.py runs/ssgan_s1 --figure docs/ssgan_seed1_sevens.png

For each folder written by `tinygen train ssgan` it rebuilds the model from the checkpoint and
prints the averaged D's MNIST test error (the raw D's beside it), the errors of each true class,
and the largest off-diagonal counts of the confusion matrix, "true digit -> digit D reads".

With 10 labels a class, a whole style of a digit can go to the wrong class: D's features group
the unlabelled images well, but only the 100 labelled ones say which group is which digit, and a
style that none of them shows takes the name of its nearest labelled neighbour. --figure draws
the worst pair a -> b of the first run: test images of a read as b, some of a read right, and
the run's own labelled images of a and of b (from its `labelled.json`), so one can see whether
the labelled a's contain that style at all. --labelled-only SEED... draws the labelled images of
class a for other seeds' labelled sets (chosen as `tinygen train ssgan --seed S` chooses them)
without training anything.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from tinygen import plotting
from tinygen.data.datasets import load_dataset
from tinygen.metrics import confusion_counts
from tinygen.models.labelled import LabelledSet


def worst_pairs(counts, n: int = 5) -> list[tuple[int, int, int]]:
    """The n largest off-diagonal cells of a confusion matrix as (count, true, read as),
    largest first (ties: by true class, then by the class read)."""
    counts = np.asarray(counts)
    cells = [(int(counts[i, j]), i, j) for i in range(len(counts)) for j in range(len(counts))
             if i != j and counts[i, j] > 0]
    return sorted(cells, key=lambda c: (-c[0], c[1], c[2]))[:n]


def analyse(run_dir, data_dir=None) -> dict:
    """The run's test confusion (averaged D), its errors, and its labelled indices."""
    from tinygen.report import load_run
    model, cfg, name = load_run(run_dir)
    if name != "ssgan":
        raise SystemExit(f"ssgan_errors: {run_dir} holds a {name} run, not ssgan")
    labelled = Path(run_dir) / "labelled.json"
    if not labelled.exists():
        raise SystemExit(f"ssgan_errors: no labelled.json in {run_dir}")
    xt, yt = load_dataset(cfg.dataset, "test", data_dir=data_dir)
    pred, pred_raw = model.classify(xt), model.classify(xt, averaged=False)
    return {"run": str(run_dir), "seed": cfg.seed, "labels": cfg.labels,
            "counts": confusion_counts(yt, pred, cfg.n_classes),
            "error": float(np.mean(pred != yt)), "error_raw": float(np.mean(pred_raw != yt)),
            "predicted": pred, "labelled": json.loads(labelled.read_text())["indices"],
            "dataset": cfg.dataset}


def pair_rows(test, pred, train, labelled, a: int, b: int, per_row: int = 10):
    """Images and row names for the pair a -> b: two rows of test a's read as b, one of test
    a's read right, then the labelled a's and b's."""
    (xt, yt), (x, y) = test, train
    shape = xt.shape[1:]
    wrong = np.flatnonzero((yt == a) & (pred == b))
    right = np.flatnonzero((yt == a) & (pred == a))
    labelled = np.asarray(labelled)
    rows = [(f"test {a}s read as {b}", xt[wrong[:per_row]]),
            (f"more test {a}s read as {b}", xt[wrong[per_row:2 * per_row]]),
            (f"test {a}s read as {a}", xt[right[:per_row]]),
            (f"labelled {a}s", x[labelled[y[labelled] == a][:per_row]]),
            (f"labelled {b}s", x[labelled[y[labelled] == b][:per_row]])]
    images = np.zeros((len(rows) * per_row, *shape), np.float32)
    for r, (_, ims) in enumerate(rows):
        images[r * per_row:r * per_row + len(ims)] = ims
    return images, [name for name, _ in rows]


def labelled_row(train, labels: int, n_classes: int, seed: int, a: int, per_row: int = 10):
    """The labelled images of class a that `tinygen train ssgan --seed SEED` would choose, as
    one row of `per_row` (blank where fewer)."""
    x, y = train
    chosen = LabelledSet(labels, int(np.prod(x.shape[1:])), n_classes)
    chosen.choose(x, y, seed=seed)
    index = np.asarray(chosen.index.data)
    picks = x[index[y[index] == a][:per_row]]
    row = np.zeros((per_row, *x.shape[1:]), np.float32)
    row[:len(picks)] = picks
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="folders written by `tinygen train ssgan`")
    p.add_argument("--data-dir", type=Path, help="folder holding mnist/ (else TINYGEN_DATA)")
    p.add_argument("--top", type=int, default=5, help="confused pairs to list (default 5)")
    p.add_argument("--figure", type=Path, help="PNG of the first run's worst pair")
    p.add_argument("--labelled-only", type=int, nargs="*", default=[], metavar="SEED",
                   help="also draw the labelled images of the worst pair's true class for "
                        "these seeds' labelled sets (needs --figure)")
    args = p.parse_args(argv)
    if args.labelled_only and not args.figure:
        p.error("--labelled-only draws into the figure: give --figure too")
    results = [analyse(run, args.data_dir) for run in args.runs]
    for r in results:
        off = r["counts"] - np.diag(np.diag(r["counts"]))
        print(f"{r['run']} (seed {r['seed']}, {r['labels']} labels): test error "
              f"{100 * r['error']:.2f}% (raw D {100 * r['error_raw']:.2f}%)")
        print("  errors per true class: " + ", ".join(f"{k}: {n}" for k, n in
                                                      enumerate(off.sum(1))))
        print("  most confused (true -> read as: count): " + ", ".join(
            f"{i} -> {j}: {n}" for n, i, j in worst_pairs(r["counts"], args.top)))
    if args.figure:
        first = results[0]
        pairs = worst_pairs(first["counts"], 1)
        if not pairs:
            raise SystemExit(f"ssgan_errors: {first['run']} makes no test error: no pair to draw")
        _, a, b = pairs[0]
        train = load_dataset(first["dataset"], "train", data_dir=args.data_dir)
        test = load_dataset(first["dataset"], "test", data_dir=args.data_dir)
        images, names = pair_rows(test, first["predicted"], train, first["labelled"], a, b)
        for seed in args.labelled_only:
            row = labelled_row(train, first["labels"], len(first["counts"]), seed, a)
            images, names = np.concatenate([images, row]), names + [f"seed {seed}: labelled {a}s"]
        plotting.save_labelled_grid(
            images, args.figure, nrow=10, row_labels=names,
            title=f"seed {first['seed']}: test error {100 * first['error']:.2f}%, of which "
                  f"{int(first['counts'][a, b])} {a}s read as {b}")
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
