"""Salimans et al.'s improved-GAN techniques, one at a time, on the mode-collapse lab's ring8.

    python demos/improved_gan.py                 # 6 settings x 7,800 steps
    python demos/improved_gan.py --epochs 200    # the README's ablation budget

Time: a run's cost is its steps times the step's: on one thread of the 2-core AMD VM a plain
ring8 step takes 7 ms, with minibatch discrimination 20 ms and with all four techniques 25 ms
(`python benchmarks/improved_gan_ablation.py --parts cost`; minibatch discrimination took 85 ms
before its Numba kernel). At the benchmark's 200 epochs one ring8 run took 481 s with
minibatch discrimination on a shared core; the default 100 epochs is half the steps.

Every row trains the same non-saturating GAN from the same seed, the setting that collapses
on ring8 (see demos/mode_collapse.py); one row switches on feature matching, one minibatch
discrimination, one historical averaging, one one-sided label smoothing, and the last all four
(`tinygen/collapse.py`, ABLATION; the math is in `tinygen/models/improved.py`). Virtual batch
norm needs a batch norm in G, which this G for 2-D points does not have: the DCGAN part of
`benchmarks/improved_gan_ablation.py` has it. The figure shows G's samples from fixed noise
over the 8 true centres, at four points in training, with the final modes covered (>= 20 of
2,500 samples) and % high-quality samples beside each row. Writes --out (default
out/improved_gan)/ablation_DATASET.png. One seed only: the benchmark runs three.
"""

from tinygen import demo
from tinygen.collapse import ABLATION, run_settings, save_lab_figure


def main(argv=None):
    args = demo.parser(__doc__, "improved_gan", "default 100",
                       datasets=("ring8", "grid25")).parse_args(argv)
    demo.start("improved_gan", args, argv)
    epochs = 1 if args.smoke else (args.epochs or 100)
    rows = run_settings(args.dataset, ABLATION, seed=args.seed, epochs=epochs,
                        max_steps=4 if args.smoke else None)
    demo.show([save_lab_figure(rows, args.dataset, args.out / f"ablation_{args.dataset}.png")])


if __name__ == "__main__":
    main()
