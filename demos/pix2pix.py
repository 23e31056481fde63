"""pix2pix as 4x super-resolution: MNIST digits from 7x7 back to 28x28.

    python demos/pix2pix.py                # the L1-only U-Net and pix2pix, 2 epochs each
    python demos/pix2pix.py --smoke        # three steps each (for the tests)

Needs MNIST (TINYGEN_DATA or --data-dir). Run time: the same two trainings (2 epochs of 937
steps of 64 each) took 150 s (L1 only) and 321 s (pix2pix) on one core of a shared 2-core AMD
EPYC VM in `benchmarks/translation.py`, whose scoring of the 10,000 test images took about
half a minute more: about 9 minutes in all. The demo's own full run trained in 122 s and
255 s (one thread, beside another one-thread run; pix2pix 93.89% accuracy).

Each 28x28 image is averaged down to 7x7 (4x4 blocks); the U-Net G of
`tinygen/models/pix2pix.py` learns to invert that, once with L1 alone (lambda_gan = 0) and
once with pix2pix's L1 x 100 + conditional PatchGAN loss. It writes, to --out (default
out/pix2pix), superres.png: held-out digits as input (each pixel a 4x4 block), bilinear
upsampling, the L1-only U-Net, pix2pix and the ground truth, one row each; and prints PSNR,
L1, FID and the MNIST classifier's accuracy for each (the smoke run prints PSNR and L1 only).
"""

import time

import tinygen as tg
from tinygen import demo
from tinygen.models.pix2pix import Config, Pix2Pix
from tinygen.translation import save_sr_grid, sr_rows


def main(argv=None):
    p = demo.parser(__doc__, "pix2pix", "default 2 (937 steps of 64 each)", datasets=("mnist",))
    args = p.parse_args(argv)
    (x, y), (xt, yt) = demo.start("pix2pix", args, argv)
    models = {}
    for name, lambda_gan in (("L1-only U-Net", 0.0), ("pix2pix", 1.0)):
        cfg = Config(epochs=args.epochs or 2, seed=args.seed, lambda_gan=lambda_gan)
        start = time.perf_counter()
        run = "run_l1" if lambda_gan == 0 else "run_gan"
        models[name] = demo.train(Pix2Pix(cfg), x, y, args, run)
        print(f"{name}: trained in {time.perf_counter() - start:.0f}s", flush=True)
    tg.manual_seed(args.seed)                              # the test-time dropout masks
    n = 100 if args.smoke else 10_000
    for name, s in sr_rows(xt[:n], yt[:n], cfg.factor, models, with_fid=not args.smoke,
                           data_dir=args.data_dir):
        extra = "" if args.smoke else f", FID {s['fid']:.1f}, accuracy {100 * s['acc']:.2f}%"
        print(f"  {name:>14}: PSNR {s['psnr']:.2f} dB, L1 {s['l1']:.4f}{extra}")
    figure = save_sr_grid(models, xt[:10], cfg.factor, args.out / "superres.png",
                          title="7x7 -> 28x28 on held-out MNIST digits")
    demo.show([figure])


if __name__ == "__main__":
    main()
