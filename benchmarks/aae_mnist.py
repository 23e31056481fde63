"""The adversarial autoencoder's MNIST experiments (Makhzani et al. 2015), beside the paper.

    python benchmarks/aae_mnist.py --experiments semi100 cluster16 --epochs 10
    python benchmarks/aae_mnist.py                        # every experiment, 1 seed, 20 epochs
    python benchmarks/aae_mnist.py --seeds 0 1 2 --experiments semi100 semi1000
    python benchmarks/aae_mnist.py --quick                # 20 steps each: it runs
    python benchmarks/aae_mnist.py --experiments semi100 --seeds 0 1 2 --epochs 16 \
        --extra "--input-noise 0.3 --lr-step 8 --lr-gamma 0.1"   # the README's best 100-label runs

Each experiment is the `tinygen train` command printed beside it, run into
runs/aae_mnist/<experiment>_seed<s>/ (figures included), and scored as the paper does:

    unsupervised   aae, N(0, I) prior, 8-D code: Parzen (paper 340 +- 2 nats), FID and the
                   Inception-style score of its samples (`tinygen eval`; the README's VAE row
                   is the comparison)
    supervised     aae --supervised: the label goes to the decoder; styles.png holds the
                   style figure; scored by the test reconstruction BCE
    semi100/1000/all   aae_semi with 100, 1000 or all 60,000 labels: test error of
                   argmax q(y|x) (paper 1.90 +- 0.10, 1.60 +- 0.08, 0.85 +- 0.02%)
    cluster16/30   aae_cluster with 16 or 30 clusters and no labels: test error after naming
                   each cluster by its head (paper 9.55% and 4.10%)
    reduce2d       aae_semi --heads --latent 2 with 1000 labels: the 2-D representation
                   r = W_c y + z (codes.png) and its test error

The paper trains for thousands of epochs with SGD; the epochs here are stated in the table.
Run it on an idle machine: a wall time is for the 2-core machine it prints.

Two scripts look into the misses: `aae_torch_twin.py` trains a semi-supervised run's PyTorch
copy step for step (engine or recipe?), and `aae_clusters.py RUN...` splits a clustering
run's error into empty, mixed and soft clusters.
"""

import argparse
import json
import shlex
import time
from pathlib import Path

import numpy as np
from common import machine, markdown_table, save

from tinygen import cli

RUNS = Path("runs/aae_mnist")

EXPERIMENTS = {     # name: (tinygen train arguments, the metric, the paper's number)
    "unsupervised": ("aae --latent 8", "parzen", "Parzen 340 ± 2"),
    "supervised": ("aae --supervised true --latent 8", "eval_recon_bce", ""),
    "semi100": ("aae_semi --labels 100", "eval_error", "1.90 ± 0.10%"),
    "semi1000": ("aae_semi --labels 1000", "eval_error", "1.60 ± 0.08%"),
    "semiall": ("aae_semi --labels 60000", "eval_error", "0.85 ± 0.02%"),
    "cluster16": ("aae_cluster --clusters 16", "eval_cluster_error", "9.55%"),
    "cluster30": ("aae_cluster --clusters 30", "eval_cluster_error", "4.10%"),
    "reduce2d": ("aae_semi --labels 1000 --heads true --latent 2", "eval_error", ""),
}


def train(name, seed, epochs, max_steps, extra):
    """Train (or, if a run of it was killed, resume) one experiment; (run folder, seconds)."""
    out = RUNS / ("quick" if max_steps else "") / f"{name}_seed{seed}"
    args = (f"train {EXPERIMENTS[name][0]} --dataset mnist --epochs {epochs} --seed {seed} "
            f"--out {out} --quiet {extra}").split()
    if max_steps:
        args += ["--max-steps", str(max_steps)]
    print("  tinygen " + shlex.join(args), flush=True)
    start = time.perf_counter()
    if cli.main(args + (["--resume", "--force"] if (out / "checkpoint.npz").exists() else [])):
        raise SystemExit(f"aae_mnist: training {name} failed")
    return out, time.perf_counter() - start


def score(name, out):
    """The experiment's metric: the last epoch's held-out number, or `tinygen eval`'s."""
    metric = EXPERIMENTS[name][1]
    if metric == "parzen":
        from tinygen.report import evaluate_run
        m = evaluate_run(out, log=lambda *a: None)
        return {"parzen": m["parzen"], "parzen_se": m["parzen_se"], "fid": m["fid"],
                "score": m["is_mean"]}
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    logged = [r[metric] for r in records if metric in r]
    if logged:                                      # the test-set score of the last epoch
        return {metric: logged[-1]}
    from tinygen.data.datasets import load_dataset  # stopped mid-epoch (--quick): score now
    from tinygen.report import load_run
    model = load_run(out)[0]
    model.setup(*load_dataset("mnist", "train"))   # the cluster heads' pool of images
    return {metric: model.evaluate([load_dataset("mnist", "test")])[metric[5:]]}


def cell(name, results):
    metric = EXPERIMENTS[name][1]
    if metric == "parzen":
        r = results[0]
        return (f"Parzen {r['parzen']:.1f} ± {r['parzen_se']:.1f}, FID {r['fid']:.1f}, "
                f"score {r['score']:.2f}")
    values = 100 * np.array([r[metric] for r in results])
    spread = f" ± {values.std():.2f}" if len(values) > 1 else ""
    what = "BCE/pixel" if metric == "eval_recon_bce" else "test error"
    if metric == "eval_recon_bce":
        return f"{what} {values.mean() / 100:.4f}"
    return f"{what} {values.mean():.2f}{spread}%"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiments", nargs="+", choices=list(EXPERIMENTS),
                   default=list(EXPERIMENTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--extra", default="", help="more `tinygen train` flags, e.g. '--hidden 500'")
    p.add_argument("--quick", action="store_true", help="20 steps an experiment, 1 seed")
    args = p.parse_args(argv)
    seeds = args.seeds[:1] if args.quick else args.seeds
    rows, records = [], []
    for name in args.experiments:
        results, seconds = [], []
        for seed in seeds:
            out, s = train(name, seed, args.epochs, 20 if args.quick else None, args.extra)
            results.append(score(name, out))
            seconds.append(s)
            print(f"  {name} seed {seed}: {results[-1]}, {s / 60:.1f} min", flush=True)
        records.append({"experiment": name, "seeds": seeds, "results": results,
                        "seconds": seconds})
        rows.append([name, f"`tinygen train {EXPERIMENTS[name][0]}`", cell(name, results),
                     EXPERIMENTS[name][2], str(args.epochs) if not args.quick else "20 steps",
                     f"{np.mean(seconds) / 60:.1f}"])
    info = machine()
    print(f"\n{info['cpu']}, load average {info['load_average']:.2f}; "
          f"seeds {' '.join(map(str, seeds))} {args.extra}\n")
    print(markdown_table(["experiment", "command", "result", "paper", "epochs", "min / run"],
                         rows))
    print("saved", save("aae_mnist_" + "_".join(args.experiments),
                        {"machine": info, "epochs": args.epochs, "extra": args.extra,
                         "runs": records}))


if __name__ == "__main__":
    main()
