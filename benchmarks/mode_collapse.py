"""The mode-collapse lab's table: modes covered and sample quality per GAN setting, over seeds.

    python benchmarks/mode_collapse.py                  # every setting, ring8 and grid25, 3 seeds
    python benchmarks/mode_collapse.py --seeds 5 --datasets ring8
    python benchmarks/mode_collapse.py --quick          # 1 seed, a tenth of the epochs

Each run trains `gan` with the setting's overrides (`tinygen/collapse.py`, `SETTINGS`) and
scores 2,500 samples: modes covered by at least 20 high-quality samples ("modes"), by at least
one ("modes, any"), and the % of samples within 3 std of a centre ("HQ"). Mean ± std over
seeds. Targets for the best setting: ring8 8/8 modes with HQ >= 90%; grid25 >= 24.6 modes
(VEEGAN's best) with HQ >= 90%. It also writes the figure of the first seed's runs to
benchmarks/results/mode_collapse_DATASET.png.

Runs are single-threaded (OMP_NUM_THREADS=1 is set below): the networks are small, and two
threads only wait for each other.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from common import machine, markdown_table, save  # noqa: E402

from tinygen.collapse import SETTINGS, run_setting, save_lab_figure  # noqa: E402
from tinygen.models import gan  # noqa: E402


def pm(values, digits=1):
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="seeds per setting (default 3)")
    p.add_argument("--datasets", nargs="+", default=["ring8", "grid25"],
                   choices=["ring8", "grid25"])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--epochs", type=int, help=f"epochs per run (default {gan.Config.epochs})")
    p.add_argument("--quick", action="store_true", help="1 seed, a tenth of the epochs")
    args = p.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    epochs = args.epochs or (max(1, gan.Config.epochs // 10) if args.quick else None)
    rows, records = [], []
    for dataset in args.datasets:
        first_seed = {}
        for name in args.settings:
            runs = [run_setting(dataset, SETTINGS[name], seed=s, epochs=epochs)
                    for s in range(seeds)]
            first_seed[name] = runs[0]
            modes = [r["modes"] for r in runs]
            rows.append([dataset, name, pm(modes), pm([r["modes_any"] for r in runs]),
                         f"{min(modes)}-{max(modes)} / {runs[0]['n_modes']}",
                         pm([r["high_quality_pct"] for r in runs]),
                         f"{np.mean([r['seconds'] for r in runs]):.0f}"])
            records += [{"dataset": dataset, "setting": name, "seed": s,
                         **{k: v for k, v in r.items() if k != "snapshots"}}
                        for s, r in enumerate(runs)]
            print(" | ".join(rows[-1]), flush=True)
        figure = Path(__file__).parent / "results" / f"mode_collapse_{dataset}.png"
        save_lab_figure(first_seed, dataset, figure)
        print(f"figure: {figure}")
    info = machine()
    print(f"\n{info['cpu']}, load average {info['load_average']:.2f}; {seeds} seed(s), "
          f"{epochs or gan.Config.epochs} epochs per run\n")
    print(markdown_table(["data", "setting", "modes (>= 20 samples)", "modes (>= 1)",
                          "range", "HQ %", "s / run"], rows))
    save("mode_collapse", {"machine": info, "runs": records})


if __name__ == "__main__":
    main()
