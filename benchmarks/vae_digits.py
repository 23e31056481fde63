"""Why the main demo's VAE has two hidden layers: do its reconstructions show the right digit?

    python benchmarks/vae_digits.py                 # 2 settings x 2 seeds, about a minute
    python benchmarks/vae_digits.py --seeds 0 1 2 --epochs 300

A VAE with a 2-D latent space on the 1,438 training 8x8 digits, as `demos/vae.py` trains it,
once with pytorch/examples' single hidden layer (Adam 1e-3) and once with the demo's two
(Adam 3e-3). Each is scored on the 359 test digits by the negative ELBO and its parts, and by
how often a LeNet trained on the digits (`tinygen.translation.digits_classifier`) reads a
reconstruction (the decoded posterior mean) as the test digit's true class; the first row
gives that classifier's accuracy on the originals, the ceiling. Results go to
benchmarks/results/vae_digits.json.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, save, train_for  # noqa: E402

import tinygen as tg  # noqa: E402
from tinygen.data import DataLoader  # noqa: E402
from tinygen.data.datasets import load_dataset  # noqa: E402
from tinygen.models.vae import VAE, Config  # noqa: E402
from tinygen.translation import accuracy, digits_classifier  # noqa: E402

SETTINGS = {"1 hidden layer, Adam 1e-3": dict(hidden_layers=1, lr=1e-3),
            "2 hidden layers, Adam 3e-3 (the demo)": dict(hidden_layers=2, lr=3e-3)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=150, help="the demo's 150 (default)")
    args = p.parse_args(argv)

    (x, y), (xt, yt) = load_dataset("digits", "train"), load_dataset("digits", "test")
    reader = digits_classifier(8)
    rows = [["originals (the classifier's ceiling)", "", "", "", "", accuracy(reader, xt, yt), ""]]
    for name, setting in SETTINGS.items():
        for seed in args.seeds:
            tg.manual_seed(seed)
            model = VAE(Config(dataset="digits", image_size=8, latent=2, hidden=256,
                               batch_size=64, epochs=args.epochs, seed=seed, **setting))
            loader = DataLoader((x, y), batch_size=64, shuffle=True, generator=seed)
            seconds, _ = train_for(model, loader, args.epochs)
            model.eval()
            s = model.evaluate(DataLoader((xt, yt), batch_size=500))
            rows.append([name, seed, s["loss"], s["recon"], s["kl"],
                         accuracy(reader, model.reconstruct(xt), yt), seconds])
            print(f"{name}, seed {seed}: {rows[-1][2:]}", flush=True)

    headers = ["setting", "seed", "test -ELBO", "recon", "KL", "read as the right digit", "s"]
    info = machine()
    print(f"\n{args.epochs} epochs; {info['cpu']}, load average {info['load_average']:.2f}\n")
    print(markdown_table(headers, rows))
    save("vae_digits", {"machine": info, "epochs": args.epochs, "headers": headers,
                        "rows": rows})


if __name__ == "__main__":
    main()
