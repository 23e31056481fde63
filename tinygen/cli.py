"""The `tinygen` command (also `python -m tinygen`).

    tinygen train classifier --epochs 4          # train a registered model
    tinygen train vae --help                     # its options, from its Config dataclass
    tinygen sample runs/classifier-mnist         # sample grid from a trained run
    tinygen eval runs/classifier-mnist           # metrics of a trained run
    tinygen bench kernels --quick                # run a benchmark script
    tinygen gradcheck                            # check every layer's gradient numerically

Every model option is a field of the model's `Config` dataclass, so `--help` is generated
from the same place the defaults live.

A mistake in what the user typed (a negative batch size, a missing data folder, a run folder
that holds no checkpoint) is a `UserError`: one line, `tinygen: error: ...`, exit status 2,
like argparse's own errors. `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

COMMON = ("dataset", "epochs", "batch_size", "lr", "seed")


class UserError(Exception):
    """Something the user typed or pointed at is wrong: shown as one line, exit status 2."""


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except Exception as err:
        if getattr(args, "debug", False):
            raise
        if isinstance(err, _user_errors()):
            return _user_error(str(err))
        # A bug rather than a mistake: still one line, and the way to see more.
        print(f"tinygen: error: {type(err).__name__}: {_one_line(str(err))} (run again with "
              f"--debug for the traceback)", file=sys.stderr)
        return 1


def _user_errors() -> tuple:
    from tinygen.data import DatasetError
    from tinygen.serialization import CheckpointError

    return (UserError, DatasetError, CheckpointError, FileNotFoundError, NotADirectoryError,
            IsADirectoryError, PermissionError)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _parser():
    from tinygen.models import REGISTRY

    # --debug is accepted before or after the command: on the top parser, and on every
    # subparser with SUPPRESS, so a subparser that does not see it leaves the top's value.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
    parser = argparse.ArgumentParser(prog="tinygen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an "
                        "error")
    sub = parser.add_subparsers(title="commands")
    add = lambda *a, **kw: sub.add_parser(*a, parents=[debug], **kw)

    train = add("train", help="train a model", description="Train a registered "
                "model; writes samples, log.jsonl and checkpoint.npz to --out.")
    models = train.add_subparsers(title="models", metavar="MODEL")
    for name, (module, _) in REGISTRY.items():
        _add_model_parser(models, name, module, debug)

    sample = add("sample", help="draw samples from a trained run",
                            description="Rebuild a run's model from its checkpoint and write a "
                            "grid (or scatter) of samples.")
    sample.add_argument("run_dir", type=Path, help="a folder written by `tinygen train`")
    sample.add_argument("-n", type=int, default=64, help="how many samples (default 64)")
    sample.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    sample.add_argument("--kind", default="samples", choices=list(SAMPLE_KINDS),
                        help="what to draw: " + "; ".join(f"{k}: {v}"
                                                          for k, v in SAMPLE_KINDS.items()))
    sample.add_argument("--data-dir", type=Path, help="folder holding mnist/ (for kinds that "
                        "encode real images)")
    sample.add_argument("--out", type=Path, help="PNG path (default RUN_DIR/KIND.png)")
    sample.set_defaults(run=_sample)

    ev = add("eval", help="evaluate a trained run with every metric that applies",
                        description="Held-out metrics of the model itself; for MNIST image "
                        "models FID, KID, Inception-style score, class entropy (through the "
                        "cached MNIST classifier, trained once if missing) and Parzen "
                        "log-likelihood; for toy mixtures, modes covered. Writes "
                        "RUN_DIR/metrics.json.")
    ev.add_argument("run_dir", type=Path, help="a folder written by `tinygen train`")
    ev.add_argument("--data-dir", type=Path, help="folder holding mnist/ (else TINYGEN_DATA)")
    ev.add_argument("-n", type=int, default=10_000, help="samples to score (default 10000)")
    ev.set_defaults(run=_eval)

    rep = add("report", help="one table and one figure for all evaluated runs",
                         description="Gather RUNS/*/metrics.json (from `tinygen eval`) into "
                         "report.md (model, metric, value, paper value, training time) and "
                         "report.png (samples side by side).")
    rep.add_argument("runs", type=Path, nargs="?", default=Path("runs"),
                     help="folder of run folders (default runs)")
    rep.add_argument("--out", type=Path, help="where to write the report (default RUNS)")
    rep.set_defaults(run=_report)

    bench = add("bench", help="run a benchmark script from benchmarks/",
                           description="Runs benchmarks/bench_NAME.py from the source checkout "
                           "and prints its table.")
    bench.add_argument("name", choices=["engine", "kernels", "layers", "models"],
                       help="which benchmark")
    bench.add_argument("--quick", action="store_true", help="fewer repeats")
    bench.set_defaults(run=_bench)

    gc = add("gradcheck", help="check layer gradients numerically",
                        description="Compare each layer's and loss's analytic gradient with "
                        "central differences in float64, and print a table.")
    gc.set_defaults(run=_gradcheck)
    return parser


def _add_model_parser(models, name, module, debug):
    doc = (module.__doc__ or "").strip()
    summary = " ".join(doc.split("\n\n")[0].split()) if doc else name
    p = models.add_parser(name, help=summary, description=doc, parents=[debug],
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults, notes = module.Config(), _field_comments(module.Config)
    for f in dataclasses.fields(module.Config):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        kind = type(default) if default is not None else str
        text = f"{notes[f.name]} " if f.name in notes else ""
        text += "(set from the data)" if f.name in FROM_DATA else f"(default {default})"
        if kind is bool:
            p.add_argument(flag, type=_bool, default=None, metavar="BOOL", help=text)
        else:
            p.add_argument(flag, type=kind, default=None, help=text)
    p.add_argument("--out", type=Path, help=f"output folder (default runs/{name}-DATASET)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz, "
                   "with the options stored there (--epochs may be raised)")
    p.add_argument("--force", action="store_true", help="with --resume: accept options that "
                   "differ from the checkpoint's (the run is then no longer bitwise "
                   "reproducible)")
    p.add_argument("--data-dir", type=Path, help="folder holding mnist/ (else TINYGEN_DATA)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps (smoke runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_train, model=name)


# Config fields that `tinygen train` fills in from the loaded dataset.
FROM_DATA = ("image_size", "channels")
# Help for the fields every model's Config has.
COMMON_HELP = {
    "dataset": "digits (8x8, bundled, no download), mnist, fashion_mnist, or a 2-D toy set: "
               "ring8, grid25, spiral, two_moons, swiss_roll",
    "epochs": "passes over the training set",
    "batch_size": "examples per optimisation step",
    "lr": "learning rate",
    "seed": "seeds the weights, the data order and every random draw",
}


def _field_comments(config_class) -> dict:
    """{field: its trailing comment} from the Config's source (and its base classes'), so the
    help text lives beside the default it explains."""
    notes = dict(COMMON_HELP)
    for cls in reversed(config_class.__mro__[:-1]):
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        for line in lines:
            m = re.match(r"\s+(\w+):\s*[^=]+=[^#]*#\s*(.+)$", line)
            if m:
                notes[m.group(1)] = m.group(2).strip()
    return notes


def _bool(text):
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# ----------------------------------------------------------------------------------------------
# Commands.


def _train(args):
    import tinygen as tg
    from tinygen import models
    from tinygen.data import DataLoader
    from tinygen.train import CHECKPOINT, fit

    module = models.REGISTRY[args.model][0]
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(module.Config)
                 if getattr(args, f.name) is not None}
    _check_options(module.Config, overrides)
    _check_positive(max_steps=args.max_steps)
    cfg = module.Config(**overrides)
    out = args.out or Path("runs") / f"{args.model}-{cfg.dataset}"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the run's outputs")
    if args.force and not args.resume:
        raise UserError("--force only applies with --resume")
    if args.resume:
        if not (out / CHECKPOINT).is_file():
            raise UserError(f"--resume: there is no checkpoint at {out / CHECKPOINT}; run "
                            f"without --resume to start a new run there")
        cfg = _resumed_config(args, module.Config, overrides, out / CHECKPOINT)
    tg.manual_seed(cfg.seed)
    x, y = _load_data(cfg.dataset, "train", args.data_dir, cfg.seed)
    xt, yt = _load_data(cfg.dataset, "test", args.data_dir, cfg.seed)
    cfg = _fit_config_to_data(cfg, x)
    model_class = models.REGISTRY[args.model][1]
    if x.ndim == 2 and not model_class.takes_points:
        takers = [n for n, (_, c) in models.REGISTRY.items() if c.takes_points]
        raise UserError(f"{args.model} trains on images, but {cfg.dataset} is a set of 2-D "
                        f"points; models that take points: {', '.join(takers)}")
    if cfg.batch_size > len(x):      # drop_last would leave no batch at all
        raise UserError(f"--batch-size {cfg.batch_size} is larger than the {len(x)} training "
                        f"examples of {cfg.dataset}")
    try:
        model = models.build(args.model, cfg)
    except ValueError as err:                       # an option the model refuses
        raise UserError(str(err)) from None
    model.setup(x, y)
    loader = DataLoader((x, y), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        generator=cfg.seed)
    test_loader = DataLoader((xt, yt), batch_size=1000)
    print(f"training {args.model} on {cfg.dataset} ({len(x)} examples), "
          f"{model.num_parameters():,} parameters -> {out}", file=sys.stderr)
    created = not out.exists()
    try:
        # A sample grid after every epoch, or about 20 over a long run (not 600 scatter
        # plots for the toy GAN's 600 short epochs).
        result = fit(model, loader, cfg.epochs, out, config={"model": args.model,
                     **dataclasses.asdict(cfg)}, resume=args.resume, eval_loader=test_loader,
                     max_steps=args.max_steps, quiet=args.quiet,
                     sample_every=max(1, cfg.epochs // 20))
    except BaseException:
        # A start that failed before its first checkpoint leaves no half-made run folder
        # behind (only one this command created: never a folder the user already had).
        if created and out.is_dir() and not (out / CHECKPOINT).exists():
            shutil.rmtree(out)
        raise
    print(f"done: {result.step} steps in {result.seconds:.1f}s; outputs in {out}",
          file=sys.stderr)
    return 130 if result.interrupted else 0


def _check_options(config_class, overrides: dict) -> None:
    """Refuse impossible values up front, in the flag's own name. Every integer option is a
    count or a seed, so it cannot be negative; one whose default is positive (epochs, batch
    size, layer widths) cannot be zero either. (An AE's --hidden 0 means "no hidden layer",
    and its default is 0; a Config lists in `may_be_zero` the others whose 0 means
    something, like CycleGAN's --pool-size. An option whose default is negative is an index
    that counts from the end, like --fm-layer; the model checks it.) Every float option must
    be finite."""
    defaults = config_class()
    for name, value in overrides.items():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        if isinstance(default, int) and not isinstance(default, bool) and default < 0:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            zero_ok = name in getattr(config_class, "may_be_zero", ())
            least = 1 if isinstance(default, int) and default >= 1 and not zero_ok else 0
            if value < least:
                raise UserError(f"{flag} must be {'positive' if least else '>= 0'}, got "
                                f"{value}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{flag} must be a finite number, got {value}")


def _check_positive(**values) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            flag = "-n" if name == "n" else "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be positive, got {value}")


# Options that may change on --resume without changing the run that was interrupted.
RESUMABLE = ("epochs",)


def _resumed_config(args, config_class, overrides: dict, checkpoint: Path):
    """The checkpoint's config with the options given now. An option that changes the run
    (batch size, architecture, learning rate, ...) breaks the bitwise-resume guarantee, so it
    is refused, listing each change, unless --force is given."""
    from tinygen.train import load_config

    saved = dict(load_config(checkpoint))
    if saved.get("model", args.model) != args.model:
        raise UserError(f"--resume: {checkpoint} is a {saved['model']} run, not {args.model}")
    fields = {f.name for f in dataclasses.fields(config_class)}
    base = {k: v for k, v in saved.items() if k in fields}
    changed = [f"--{k.replace('_', '-')} {base[k]} -> {v}" for k, v in overrides.items()
               if k in base and v != base[k] and k not in RESUMABLE and k not in FROM_DATA]
    if changed and not args.force:
        raise UserError(f"--resume: these options differ from the checkpoint's: "
                        f"{'; '.join(changed)}. Drop them to resume exactly, or add --force")
    if changed:
        print(f"warning: resuming with changed options ({'; '.join(changed)}); the run is no "
              f"longer bitwise reproducible", file=sys.stderr)
    # Options added to the model since the checkpoint was written take today's default,
    # which may not be what the interrupted run did: say so.
    defaults = config_class()
    added = [f"--{f.name.replace('_', '-')} {getattr(defaults, f.name)}"
             for f in dataclasses.fields(config_class)
             if f.name not in base and f.name not in overrides and f.name not in FROM_DATA]
    if added:
        print(f"warning: {checkpoint} predates these options; resuming with their defaults: "
              f"{'; '.join(added)}", file=sys.stderr)
    return config_class(**{**base, **overrides})


def _load_data(name, split, data_dir, seed):
    """load_dataset, with the CLI's advice when the files are missing or cannot be fetched."""
    from tinygen.data import DatasetError
    from tinygen.data.datasets import load_dataset

    try:
        return load_dataset(name, split, data_dir=data_dir, seed=seed)
    except (FileNotFoundError, DatasetError) as err:
        if not hasattr(err, "searched"):
            raise
        lines = str(err).splitlines()
        failed = f", and downloading it failed ({lines[1].strip()})" \
            if isinstance(err, DatasetError) and len(lines) > 1 else ""
        raise UserError(f"{err.dataset} data not found in {', '.join(err.searched)}{failed}. "
                        f"Pass --data-dir DIR or set TINYGEN_DATA=DIR, where DIR holds "
                        f"{err.dataset}/") from None


def _user_error(message: str) -> int:
    print(f"tinygen: error: {_one_line(message)}", file=sys.stderr)
    return 2


def _fit_config_to_data(cfg, x):
    """Set the FROM_DATA fields the model has from the images actually loaded."""
    if x.ndim != 4:
        return cfg
    found = {"image_size": x.shape[-1], "channels": x.shape[1]}
    return dataclasses.replace(cfg, **{k: v for k, v in found.items() if hasattr(cfg, k)})


def _load_run(run_dir: Path):
    from tinygen.report import load_run

    if not Path(run_dir).is_dir():
        raise UserError(f"{run_dir} is not a folder; give a run folder written by "
                        f"`tinygen train`")
    try:
        model, cfg, _ = load_run(run_dir)
    except FileNotFoundError as err:
        raise UserError(str(err)) from None
    return model, cfg


SAMPLE_KINDS = {
    "samples": "a grid of N samples",
    "reconstructions": "test images (top) and their reconstructions",
    "scatter": "latent codes of test images coloured by label",
    "manifold": "decoded grid over a 2-D latent space (models trained with --latent 2)",
    "interpolate": "linear and spherical interpolations between test images (GANs: between "
                   "random noise vectors)",
    "arithmetic": "test images moved to every class by class-mean vectors (GANs: samples "
                  "moved by class-mean noise vectors)",
    "styles": "one style per row, every class per column (conditional models: cvae, cgan)",
    "translate": "held-out images and their translations (cyclegan: real, translated and "
                 "reconstructed, both ways; pix2pix: input, bilinear, output, truth)",
}


def _sample(args):
    import tinygen as tg
    from tinygen import latent
    from tinygen.train import save_samples

    _check_positive(n=args.n)
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.out is not None and args.out.is_dir():
        raise UserError(f"--out {args.out} is a folder; give the path of a PNG file")
    model, cfg = _load_run(args.run_dir)
    tg.manual_seed(args.seed)
    path = args.out or args.run_dir / f"{args.kind}.png"
    if args.kind == "translate":
        return _sample_translations(model, cfg, args, path)
    from tinygen.models.adversarial import Adversarial
    if isinstance(model, Adversarial) and not getattr(model, "has_encoder", False):
        return _sample_from_noise(model, cfg, args, path)   # a GAN: its tools start from z
    needs_data = args.kind in ("reconstructions", "scatter", "interpolate", "arithmetic")
    if needs_data:
        x, y = _load_data(cfg.dataset, "test", args.data_dir, cfg.seed)
        x, y = x[:max(args.n, 500)], y[:max(args.n, 500)]
    tools = {
        "samples": lambda: save_samples(model, path, args.n),
        "reconstructions": lambda: latent.save_reconstructions(model, x, path, y),
        "scatter": lambda: latent.save_latent_scatter(model, x, y, path),
        "manifold": lambda: latent.save_manifold(model, path),
        "interpolate": lambda: latent.save_interpolations(model, x, path, y),
        "arithmetic": lambda: latent.save_arithmetic(model, x, y, path),
        "styles": lambda: latent.save_styles(model, path),
    }
    written = _draw(tools, args.kind)
    if written is None:
        raise UserError(f"{type(model).__name__} does not generate samples")
    print(written)
    return 0


def _draw(tools, kind):
    try:
        return tools[kind]()
    except (AttributeError, NotImplementedError, ValueError) as err:
        raise UserError(f"cannot draw {kind!r} for this model: {err}") from None


def _sample_translations(model, cfg, args, path):
    """The translation figure of an image-to-image model, from held-out images."""
    if not hasattr(model, "save_translation_figure"):
        raise UserError(f"cannot draw 'translate' for {type(model).__name__}: only the "
                        f"image-to-image models (cyclegan, pix2pix) translate")
    x, y = _load_data(cfg.dataset, "test", args.data_dir, cfg.seed)
    print(model.save_translation_figure(x, y, path, n=min(args.n, 12)))
    return 0


def _sample_from_noise(model, cfg, args, path):
    from tinygen import latent
    from tinygen.train import save_samples

    def classify(images):
        from tinygen.metrics import mnist_classifier
        return mnist_classifier(data_dir=args.data_dir).predict(images).argmax(axis=1)

    tools = {
        "samples": lambda: save_samples(model, path, args.n),
        "interpolate": lambda: latent.save_noise_interpolations(model, path),
        "arithmetic": lambda: latent.save_noise_arithmetic(model, path, classify),
        "styles": lambda: latent.save_styles(model, path),
        "manifold": lambda: latent.save_manifold(model, path),
    }
    if getattr(model, "points", False):        # a GAN of 2-D points: only a scatter
        tools = {"samples": tools["samples"]}
    if args.kind not in tools:
        raise UserError(f"cannot draw {args.kind!r} for {type(model).__name__}: it has no "
                        f"encoder, so it has no codes of real images; choose from "
                        f"{', '.join(tools)}")
    if args.kind == "arithmetic" and cfg.dataset != "mnist":
        raise UserError("arithmetic finds class vectors with the MNIST classifier: it needs a "
                        "model trained on --dataset mnist")
    written = _draw(tools, args.kind)
    if written is None:                        # pix2pix: it needs an input image
        raise UserError(f"{type(model).__name__} does not sample from noise; try --kind "
                        f"translate")
    print(written)
    return 0


def _eval(args):
    from tinygen.report import evaluate_run

    _check_positive(n=args.n)
    _load_run(args.run_dir)                     # a clear message if there is no checkpoint
    start = time.perf_counter()
    metrics = evaluate_run(args.run_dir, data_dir=args.data_dir, n_samples=args.n,
                           log=lambda m: print(m, file=sys.stderr))
    for k, v in metrics.items():
        print(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}")
    print(f"({time.perf_counter() - start:.1f}s; written to {args.run_dir / 'metrics.json'})",
          file=sys.stderr)
    return 0


def _report(args):
    from tinygen.report import write_report

    if not args.runs.is_dir():
        raise UserError(f"{args.runs} is not a folder; give the folder that holds the run "
                        f"folders (default runs)")
    runs = [p for p in sorted(args.runs.iterdir()) if p.is_dir()]
    if not runs:
        raise UserError(f"{args.runs} holds no run folders; train and eval a model first")
    md, png = write_report(runs, args.out or args.runs)
    print(md)
    if png:
        print(png)
    return 0


def _bench(args):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / f"bench_{args.name}.py"
    if not script.exists():
        raise UserError(f"{script} not found: benchmarks are scripts in the source checkout")
    cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
    return subprocess.call(cmd)


def _gradcheck(args):
    import tinygen as tg
    from tinygen.nn import functional as F

    rng = np.random.default_rng(0)

    def t(*shape):
        return tg.tensor(rng.standard_normal(shape))

    target = tg.tensor(rng.random((3, 4)))   # drawn once: the checked function must not vary
    cases = {
        "linear": (lambda x, w, b: F.linear(x, w, b), t(3, 4), t(5, 4), t(5)),
        "conv2d s2 p1": (lambda x, w: F.conv2d(x, w, stride=2, padding=1), t(2, 3, 7, 7),
                         t(4, 3, 3, 3)),
        "conv_transpose2d s2 p1": (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1),
                                   t(2, 3, 4, 4), t(3, 2, 4, 4)),
        "batch_norm (train)": (lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
                               t(4, 3, 5, 5), t(3), t(3)),
        "layer_norm": (lambda x: F.layer_norm(x, 6), t(3, 6)),
        "max_pool2d": (lambda x: F.max_pool2d(x, 2), t(2, 2, 6, 6)),
        "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1), t(2, 2, 7, 7)),
        "cross_entropy": (lambda x: F.cross_entropy(x, np.array([0, 2, 1])), t(3, 4)),
        "bce_with_logits": (lambda x: F.binary_cross_entropy_with_logits(x, target), t(3, 4)),
        "kl_normal": (lambda m, lv: F.kl_normal(m, lv), t(3, 4), t(3, 4)),
    }
    failures = 0
    print(f"{'layer':<26} result")
    for name, (fn, *inputs) in cases.items():
        try:
            tg.gradcheck(fn, *inputs)
            verdict = "ok"
        except tg.GradcheckError as err:
            failures += 1
            verdict = f"FAILED: {err}"
        print(f"{name:<26} {verdict}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
