"""Image-to-image translation on real digits: the CycleGAN table and the pix2pix table.

    python benchmarks/translation.py                    # both tables, the CLI's defaults
    python benchmarks/translation.py --quick            # a few hundred steps each (minutes)
    python benchmarks/translation.py --models pix2pix --epochs 5

1. **CycleGAN**, MNIST <-> the 8x8 digits upsampled to 28x28 (`tinygen/models/cyclegan.py`),
   with the cycle loss (lambda = 10) and without it (lambda = 0): how often the target
   domain's classifier agrees with the source label on held-out translated images, each way;
   the cycle reconstruction error per pixel; FID of the MNIST-direction translations (next to
   the FID of the untranslated digits, the "before" number). `tinygen/translation.py` defines
   each column.
2. **pix2pix**, 7x7 -> 28x28 MNIST super-resolution (`tinygen/models/pix2pix.py`): PSNR, L1,
   FID and the MNIST classifier's accuracy for nearest, bilinear and bicubic upsampling, the
   U-Net trained with L1 alone (lambda_gan = 0) and pix2pix (L1 x 100 + cGAN); last, the
   accuracy of a LeNet trained on the 7x7 inputs themselves (`input_readability`), which
   says how much of the digit the input keeps.

Each run trains from the same seed; the tables give epochs, steps and wall time, and the
machine's CPU and load average (training runs here share the machine with whatever else runs,
so the seconds are upper bounds). Results go to benchmarks/results/translation.json and the
figures to --out.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, save, train_for  # noqa: E402

import tinygen as tg  # noqa: E402
from tinygen.data import DataLoader  # noqa: E402
from tinygen.data.translation import load_domain  # noqa: E402
from tinygen.models import cyclegan, pix2pix  # noqa: E402
from tinygen.translation import (  # noqa: E402
    cyclegan_metrics,
    input_readability,
    save_confusions,
    save_cycle_grid,
    save_sr_grid,
    sr_rows,
)

QUICK = {"train_images": 9600, "eval_images": 500}     # 300 CycleGAN / 150 pix2pix steps


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="train on 9,600 MNIST images, score "
                   "500 held-out ones: a smoke run of the whole protocol")
    p.add_argument("--models", nargs="+", default=["cyclegan", "pix2pix"],
                   choices=["cyclegan", "pix2pix"])
    p.add_argument("--epochs", type=int, help="passes over the training images (default: each "
                   "model's Config)")
    p.add_argument("--train-images", type=int, default=0, help="train on the first N MNIST "
                   "training images (0: all 60,000)")
    p.add_argument("--eval-images", type=int, default=10_000, help="held-out MNIST test "
                   "images to score (the digits' test split has 359)")
    p.add_argument("--lambda-identity", type=float, default=0.0, help="CycleGAN's identity "
                   "loss weight (times lambda_cycle) in both of its runs (default 0: off)")
    p.add_argument("--readability-epochs", type=int, default=5, help="epochs of the LeNet "
                   "trained on pix2pix's 7x7 inputs themselves, the scale for its accuracy "
                   "column (0: skip it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--out", type=Path, default=Path("out") / "translation")
    args = p.parse_args(argv)
    if args.quick:
        args.train_images = args.train_images or QUICK["train_images"]
        args.eval_images = min(args.eval_images, QUICK["eval_images"])
        args.readability_epochs = min(args.readability_epochs, 1)
    return args


def train(model, x, y, cfg, seed):
    """(seconds, steps) of training `model` on (x, y) for cfg.epochs."""
    model.setup(x, y)
    loader = DataLoader((x, y), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        generator=seed)
    return train_for(model, loader, cfg.epochs)


def cyclegan_table(args, data):
    (x, y), (xt, yt) = data
    xb, yb = load_domain("digits", "test")
    rows, record = [], []
    for name, lam in (("with cycle loss (lambda 10)", 10.0), ("without (lambda 0)", 0.0)):
        tg.manual_seed(args.seed)
        cfg = cyclegan.Config(lambda_cycle=lam, seed=args.seed,
                              lambda_identity=args.lambda_identity,
                              **({"epochs": args.epochs} if args.epochs else {}))
        model = cyclegan.CycleGAN(cfg)
        seconds, steps = train(model, x, y, cfg, args.seed)
        m = cyclegan_metrics(model, xt, yt, xb, yb, data_dir=args.data_dir, confusions=True)
        figures = save_confusions(m, args.out / f"cyclegan_lambda{lam:g}_confusion.png")
        print("\n".join(f"  {d}: rows = source label, columns = class read\n"
                        f"{m[f'confusion_{d}']}" for d in ("ab", "ba")), flush=True)
        print(f"cyclegan {name}: {steps} steps in {seconds:.0f}s: {m}", flush=True)
        rows.append([name, f"{100 * m['agree_ab']:.1f}%", f"{100 * m['agree_ba']:.1f}%",
                     m["cycle_a"], m["cycle_b"],
                     f"{m['fid_ba']:.1f} ({m['fid_b_untranslated']:.1f})",
                     cfg.epochs, steps, f"{seconds:.0f}"])
        m = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in m.items()}
        record.append({"setting": name, "config": dataclasses.asdict(cfg), **m,
                       "steps": steps, "seconds": seconds,
                       "figures": [str(f) for f in figures]})
        save_cycle_grid(model, xt[:10], xb[:10],
                        args.out / f"cyclegan_lambda{lam:g}.png")
    # Translations that learn nothing, scored by the same classifiers (the same for both runs)
    rows.append(["no translation (identity)", f"{100 * m['agree_ab_identity']:.1f}%",
                 f"{100 * m['agree_ba_identity']:.1f}%", "-", "-",
                 f"{m['fid_b_untranslated']:.1f}", "-", "-", "-"])
    rows.append(["A made like B by hand (32x32 bitmap, 4x4 counts)",
                 f"{100 * m['agree_ab_made_like_b']:.1f}%", "-", "-", "-", "-", "-", "-", "-"])
    clf = (f"classifiers on real held-out images: MNIST {100 * m['real_acc_a']:.2f}%, "
           f"digits {100 * m['real_acc_b']:.2f}%")
    headers = ["CycleGAN", "A->B agreement", "B->A agreement", "cycle error A (L1/pixel)",
               "cycle error B", "FID B->A (untranslated B)", "epochs", "steps", "wall s"]
    return markdown_table(headers, rows) + "\n" + clf, record


def pix2pix_table(args, data):
    (x, y), (xt, yt) = data
    models, times = {}, {}
    for name, lam_gan in (("L1-only U-Net", 0.0), ("pix2pix", 1.0)):
        tg.manual_seed(args.seed)
        cfg = pix2pix.Config(lambda_gan=lam_gan, seed=args.seed,
                             **({"epochs": args.epochs} if args.epochs else {}))
        models[name] = pix2pix.Pix2Pix(cfg)
        times[name] = train(models[name], x, y, cfg, args.seed)
        print(f"{name}: {times[name][1]} steps in {times[name][0]:.0f}s", flush=True)
    tg.manual_seed(args.seed)                          # the test-time dropout masks
    rows = sr_rows(xt, yt, cfg.factor, models, data_dir=args.data_dir)
    table = [[name, s["psnr"], s["l1"], s["fid"], f"{100 * s['acc']:.2f}%",
              cfg.epochs if name in times else "-", times[name][1] if name in times else "-",
              f"{times[name][0]:.0f}" if name in times else "-"] for name, s in rows]
    save_sr_grid(models, xt[:10], cfg.factor, args.out / "pix2pix.png",
                 title="7x7 -> 28x28 on held-out MNIST: input, bilinear, L1-only, pix2pix, truth")
    headers = ["7x7 -> 28x28", "PSNR (dB)", "L1", "FID", "MNIST classifier accuracy",
               "epochs", "steps", "wall s"]
    record = [{"method": n, **s} for n, s in rows]
    if args.readability_epochs:            # the scale for the accuracy column
        start = time.perf_counter()
        acc = input_readability(x, y, xt, yt, cfg.factor, args.readability_epochs, args.seed)
        seconds = time.perf_counter() - start
        table.append(["LeNet trained on the 7x7 inputs themselves (reads the inputs)", "-", "-",
                      "-", f"{100 * acc:.2f}%", args.readability_epochs, "-", f"{seconds:.0f}"])
        record.append({"method": "input readability", "acc": acc, "seconds": seconds})
    return markdown_table(headers, table), record


def main(argv=None):
    args = parse(argv)
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average "
          f"{info['load_average']:.2f}; numpy {info['numpy']}", flush=True)
    start = time.perf_counter()
    x, y = load_domain("mnist", "train", data_dir=args.data_dir)
    xt, yt = load_domain("mnist", "test", data_dir=args.data_dir)
    if args.train_images:
        x, y = x[:args.train_images], y[:args.train_images]
    data = ((x, y), (xt[:args.eval_images], yt[:args.eval_images]))
    print(f"training on {len(x)} MNIST images, scoring {len(data[1][0])} held-out ones")
    results, tables = {}, []
    if "cyclegan" in args.models:
        table, results["cyclegan"] = cyclegan_table(args, data)
        tables.append(table)
    if "pix2pix" in args.models:
        table, results["pix2pix"] = pix2pix_table(args, data)
        tables.append(table)
    print("\n\n".join(tables))
    print(f"\ntotal {time.perf_counter() - start:.0f}s; load average now "
          f"{machine()['load_average']:.2f}; figures in {args.out}")
    print(save("translation", {"args": {k: str(v) for k, v in vars(args).items()},
                               "results": results}))


if __name__ == "__main__":
    main()
