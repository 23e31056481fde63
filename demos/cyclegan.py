"""CycleGAN between two real handwriting domains: MNIST and the 8x8 digits, unpaired.

    python demos/cyclegan.py               # MNIST <-> digits, 1 epoch (1,875 steps)
    python demos/cyclegan.py --ablation    # also the same run without the cycle loss
    python demos/cyclegan.py --smoke       # three steps (for the tests)

Needs MNIST (TINYGEN_DATA or --data-dir). Run time: 0.35-0.45 s per step of 32 on one core of
a shared 2-core AMD EPYC VM (600 steps took 229-259 s), so 11-14 minutes for the default
epoch, twice that with --ablation (estimated from 600 steps). `--epochs 3` trained in 1,742 s
(9.7 min an epoch, one thread, beside another one-thread run): 60.1% / 83.0% agreement.

It trains `tinygen/models/cyclegan.py` (two generators, two PatchGAN discriminators, least
squares GAN loss, cycle loss x 10, a pool of 50 past fakes, linear lr decay over the second
half) and writes, to --out (default out/cyclegan):

1. cycle.png            rows of held-out images: real A (MNIST), fake B = G_AB(a),
                        reconstructed A = G_BA(G_AB(a)), then real B, fake A, reconstructed B;
2. confusion_ab.png, confusion_ba.png  which digit each held-out source digit became, as
                        the target domain's classifier reads it (rows: source label);
3. cycle_no_cycle.png, confusion_no_cycle_ab.png, confusion_no_cycle_ba.png  the same
                        without the cycle loss (with --ablation).

and prints whether the digit survived: how often each target domain's classifier agrees with
the source label (`tinygen/translation.py`), the cycle error and FID in the MNIST direction.
"""

import time

from tinygen import demo
from tinygen.data.translation import load_domain
from tinygen.models.cyclegan import Config, CycleGAN
from tinygen.translation import cyclegan_metrics, save_confusions, save_cycle_grid


def main(argv=None):
    p = demo.parser(__doc__, "cyclegan", "default 1 (1,875 steps of 32)", datasets=("mnist",))
    p.add_argument("--ablation", action="store_true", help="also train without the cycle loss")
    args = p.parse_args(argv)
    (x, y), (xt, yt) = demo.start("cyclegan", args, argv)
    xb, yb = load_domain("digits", "test")
    figures = []
    for lam in (10.0, 0.0) if args.ablation else (10.0,):
        cfg = Config(epochs=args.epochs or 1, seed=args.seed, lambda_cycle=lam)
        model = CycleGAN(cfg)
        model.setup(x, y)                                  # the lr schedule's length
        start = time.perf_counter()
        demo.train(model, x, y, args, f"run_lambda{lam:g}")
        print(f"lambda_cycle {lam:g}: trained in {time.perf_counter() - start:.0f}s", flush=True)
        name = "cycle.png" if lam else "cycle_no_cycle.png"
        figures.append(save_cycle_grid(model, xt[:10], xb[:10], args.out / name))
        figures += report(model, xt, yt, xb, yb, args,
                          "confusion.png" if lam else "confusion_no_cycle.png")
    demo.show(figures)


def report(model, xt, yt, xb, yb, args, name):
    """The numbers behind the figure, and the confusion figures (the smoke run skips the
    classifiers, which may need minutes of training on a fresh machine)."""
    n = 50 if args.smoke else 1000
    if args.smoke:
        rec = model.translate(model.translate(xt[:n], "ab"), "ba")
        print(f"  cycle error A {abs(rec - xt[:n]).mean():.4f} per pixel (smoke: no classifier)")
        return []
    m = cyclegan_metrics(model, xt[:n], yt[:n], xb, yb, data_dir=args.data_dir,
                         confusions=True)
    print(f"  digit kept A->B {100 * m['agree_ab']:.1f}%, B->A {100 * m['agree_ba']:.1f}% "
          f"(classifiers on real images: {100 * m['real_acc_a']:.1f}%, "
          f"{100 * m['real_acc_b']:.1f}%); cycle error A {m['cycle_a']:.4f}, B "
          f"{m['cycle_b']:.4f}; FID of G_BA(b) {m['fid_ba']:.1f} (untranslated b: "
          f"{m['fid_b_untranslated']:.1f})")
    print(f"  learning nothing, the same classifiers: no translation A->B "
          f"{100 * m['agree_ab_identity']:.1f}%, B->A {100 * m['agree_ba_identity']:.1f}%; "
          f"MNIST made like the 8x8 digits by hand {100 * m['agree_ab_made_like_b']:.1f}%")
    return save_confusions(m, args.out / name)


if __name__ == "__main__":
    main()
