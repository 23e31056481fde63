"""The mode-collapse lab: watch GAN settings cover, or lose, the modes of a 2-D mixture.

    python demos/mode_collapse.py                    # ring8: about 2 minutes (2 x 15,600 steps
    python demos/mode_collapse.py --dataset grid25   # at 3.9 ms); grid25 the same

Each setting (`tinygen/collapse.py`, SETTINGS) trains the same GAN from the same seed; only
the objective (and, as they arrive, the improved-GAN switches) differs. The figure has one row
per setting and one column per quarter of training, with G's samples from a fixed batch of
noise over the true centres, and the final count of modes covered (at least 20 of 2,500
samples) and high-quality samples (within 3 std) beside each row. Writes --out (default
out/mode_collapse)/lab_DATASET.png. `python benchmarks/mode_collapse.py` runs the same lab over
several seeds and prints the table.
"""

from tinygen import demo
from tinygen.collapse import SETTINGS, run_settings, save_lab_figure


def main(argv=None):
    args = demo.parser(__doc__, "mode_collapse", "default 200 (the gan model's: 600)",
                       datasets=("ring8", "grid25")).parse_args(argv)
    demo.start("mode_collapse", args, argv)
    epochs = 1 if args.smoke else (args.epochs or 200)
    rows = run_settings(args.dataset, SETTINGS, seed=args.seed, epochs=epochs)
    demo.show([save_lab_figure(rows, args.dataset, args.out / f"lab_{args.dataset}.png")])


if __name__ == "__main__":
    main()
