"""The improved-GAN ablation: what each of Salimans et al.'s techniques does, alone and together.

    python benchmarks/improved_gan_ablation.py                    # both parts, the defaults
    python benchmarks/improved_gan_ablation.py --parts lab --seeds 3 --epochs 200
    python benchmarks/improved_gan_ablation.py --parts dcgan --dcgan-epochs 3
    python benchmarks/improved_gan_ablation.py --parts cost       # each technique's step time
    python benchmarks/improved_gan_ablation.py --quick            # a smoke-sized run

Two problems, each starting from the non-saturating GAN the techniques were proposed for:

- **lab**: the mode-collapse lab (`tinygen/collapse.py`): the MLP GAN on ring8 and grid25,
  modes covered (>= 20 of 2,500 samples) and % high-quality samples, mean ± std over seeds.
  Settings: `collapse.ABLATION` (each technique alone, then all four; virtual batch norm
  needs a batch norm in G, which the points' G does not have).
- **dcgan**: DCGAN on MNIST for a fixed number of epochs, scored on 10,000 samples with the
  MNIST classifier's features: FID, the Inception-style score and the entropy of the class
  histogram (as a fraction of log 10: 1.0 is every digit equally often). Settings: each of
  the five techniques alone, then all five.
- **cost**: the time of one ring8 training step in each lab setting, on one thread, with the
  Numba kernels and with their NumPy twins (`TINYGEN_KERNELS=reference`): what each
  technique adds to a step, and what `numba_minibatch.py` saves minibatch discrimination.

Runs are single-threaded for the lab (small networks); the DCGAN part uses the default
threads. Run on an otherwise idle machine when the wall times matter; the table prints the
load average.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")   # the lab's tiny MLPs; see mode_collapse.py

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from common import interleaved_medians, machine, markdown_table, save, train_for  # noqa: E402

import tinygen as tg  # noqa: E402
from tinygen.collapse import ABLATION, TECHNIQUES, run_setting  # noqa: E402

DCGAN_SETTINGS = {"non-saturating (base)": {},
                  **{f"+ {k}": v for k, v in TECHNIQUES.items()},
                  "+ virtual batch norm": {"vbn": True},
                  "+ all five": {**{k: v for t in TECHNIQUES.values() for k, v in t.items()},
                                 "vbn": True}}


def pm(values, digits=1):
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def lab(datasets, seeds, epochs, settings):
    rows, records = [], []
    for dataset in datasets:
        for name in settings:
            overrides = ABLATION[name]
            runs = [run_setting(dataset, overrides, seed=s, epochs=epochs, snapshots=1)
                    for s in range(seeds)]
            rows.append([dataset, name, pm([r["modes"] for r in runs]),
                         f"{runs[0]['n_modes']}", pm([r["high_quality_pct"] for r in runs]),
                         f"{np.mean([r['seconds'] for r in runs]):.0f}"])
            records += [{"dataset": dataset, "setting": name, "seed": s,
                         **{k: v for k, v in r.items() if k != "snapshots"}}
                        for s, r in enumerate(runs)]
            print(" | ".join(rows[-1]), flush=True)
    return rows, records


def dcgan_run(overrides, epochs, seed, max_steps=None):
    """Train DCGAN on MNIST with `overrides`; score 10,000 samples."""
    from tinygen.data import DataLoader
    from tinygen.data.datasets import load_dataset
    from tinygen.metrics import classifier_metrics
    from tinygen.models import dcgan

    cfg = dcgan.Config(dataset="mnist", epochs=epochs, seed=seed, **overrides)
    tg.manual_seed(seed)
    x, y = load_dataset("mnist", "train", seed=seed)
    model = dcgan.DCGAN(cfg)
    loader = DataLoader((x, y), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        generator=seed)
    seconds, steps = train_for(model, loader, epochs, max_steps)
    model.eval()
    tg.manual_seed(seed + 100)
    samples = np.concatenate([model.sample(1000) for _ in range(10)])
    m = classifier_metrics(samples)
    return {"fid": float(m["fid"]), "is": float(m["is_mean"]),
            "entropy": float(m["class_entropy_frac"]), "seconds": seconds, "steps": steps}


def dcgan_part(epochs, seed, max_steps=None):
    rows, records = [], []
    for name, overrides in DCGAN_SETTINGS.items():
        r = dcgan_run(overrides, epochs, seed, max_steps)
        rows.append([name, f"{r['fid']:.1f}", f"{r['is']:.2f}", f"{r['entropy']:.3f}",
                     f"{r['seconds']:.0f}"])
        records.append({"setting": name, "seed": seed, **r})
        print(" | ".join(rows[-1]), flush=True)
    return rows, records


def step_cost(settings, repeats):
    """Median ms of one ring8 `train_step` per lab setting, Numba against reference kernels,
    timed in interleaved blocks (`common.interleaved_medians`)."""
    from tinygen import kernels
    from tinygen.data import DataLoader
    from tinygen.data.datasets import load_dataset
    from tinygen.models import gan

    x, y = load_dataset("ring8", "train", seed=0)
    rows = []
    for name in settings:
        fns = {}
        for backend in kernels.BACKENDS:
            tg.manual_seed(0)
            model = gan.GAN(gan.Config(dataset="ring8", seed=0, **ABLATION[name]))
            loader = DataLoader((x, y), batch_size=model.cfg.batch_size, shuffle=True,
                                drop_last=True, generator=0)
            batch = tuple(tg.tensor(b) for b in next(iter(loader)))

            def step(model=model, batch=batch, backend=backend):
                kernels.set_backend(backend)
                model.train_step(batch)
            fns[backend] = step
        med, samples = interleaved_medians(fns, repeats, warmup=5, block=10)
        kernels.set_backend("numba")
        spread = {k: np.median(np.reshape(v, (-1, 10)), axis=1) for k, v in samples.items()}
        rows.append([name] + [f"{med[k]:.1f} ({spread[k].min():.1f}-{spread[k].max():.1f})"
                              for k in ("numba", "reference")]
                    + [f"{med['reference'] / med['numba']:.2f}"])
        print(" | ".join(rows[-1]), flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["lab", "dcgan"], choices=["lab", "dcgan", "cost"])
    p.add_argument("--datasets", nargs="+", default=["ring8", "grid25"],
                   choices=["ring8", "grid25"])
    p.add_argument("--seeds", type=int, default=3, help="lab seeds per setting (default 3)")
    p.add_argument("--epochs", type=int, default=200, help="lab epochs per run (default 200)")
    p.add_argument("--settings", nargs="+", default=list(ABLATION), choices=list(ABLATION),
                   metavar="SETTING", help="lab settings to run (default all: "
                   + "; ".join(ABLATION) + ")")
    p.add_argument("--dcgan-epochs", type=int, default=3, help="DCGAN epochs (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="1 seed, 5 lab epochs, 20 DCGAN steps: checks that it runs")
    args = p.parse_args(argv)
    seeds, epochs = (1, 5) if args.quick else (args.seeds, args.epochs)
    info, out = machine(), {}
    if "lab" in args.parts:
        rows, out["lab"] = lab(args.datasets, seeds, epochs, args.settings)
        print(f"\nlab: {info['cpu']}, load average {info['load_average']:.2f}; {seeds} "
              f"seed(s), {epochs} epochs per run\n")
        print(markdown_table(["data", "setting", "modes (>= 20 samples)", "of", "HQ %",
                              "s / run"], rows))
    if "dcgan" in args.parts:
        rows, out["dcgan"] = dcgan_part(args.dcgan_epochs, 0, 20 if args.quick else None)
        info = machine()
        print(f"\ndcgan on MNIST: {info['cpu']}, load average {info['load_average']:.2f}; "
              f"{args.dcgan_epochs} epoch(s), seed 0, 10,000 samples\n")
        print(markdown_table(["setting", "FID", "IS", "class entropy", "train s"], rows))
    if "cost" in args.parts:
        rows = step_cost(args.settings, 20 if args.quick else 100)
        info = machine()
        print(f"\nring8 step cost: {info['cpu']}, load average {info['load_average']:.2f}; "
              f"one thread, ms per train_step: median (range of the block medians)\n")
        print(markdown_table(["setting", "numba ms", "reference ms", "reference / numba"],
                             rows))
        out["cost"] = rows
    save("improved_gan_ablation" + ("" if set(args.parts) == {"lab", "dcgan"}
                                    else "_" + "_".join(args.parts)), {"machine": info, **out})


if __name__ == "__main__":
    main()
