"""Every demo runs end to end in its smoke mode and writes the figures it promises."""

import importlib.util
from pathlib import Path

import pytest

DEMOS = Path(__file__).resolve().parents[1] / "demos"

pytest.importorskip("sklearn", reason="the demos train on the offline digits (scikit-learn)")


def load(name):
    spec = importlib.util.spec_from_file_location(f"demo_{name}", DEMOS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, figures", [
    ("vae", ["reconstructions.png", "samples.png", "latent_scatter.png", "interpolations.png",
             "latent_map.png"]),
    ("cvae", ["styles.png", "samples.png", "transfer.png"]),
    ("ae", ["reconstructions.png"]),
    ("dae", ["denoise_salt_pepper.png"]),
    ("gan", ["samples.png", "run/health.png"]),
    ("dcgan", ["progress.png", "samples.png", "interpolations.png", "run/health.png"]),
    ("cgan", ["classes.png", "run/health.png"]),
    ("mode_collapse", ["lab_ring8.png"]),
    ("improved_gan", ["ablation_ring8.png"]),
    ("aae", ["codes_gaussian.png", "samples_mixture10.png", "manifold_swiss_roll.png",
             "supervised_styles.png", "semi_styles.png", "clusters.png"]),
])
def test_demo_smoke_mode_writes_its_figures(name, figures, tmp_path, capsys):
    load(name).main(["--smoke", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    for figure in figures:
        assert (tmp_path / figure).stat().st_size > 0
        assert str(tmp_path / figure) in printed        # the demo says where it wrote it


def test_a_demo_run_folder_can_be_evaluated_and_a_nameless_one_is_refused(tmp_path, capsys):
    """A demo records its model's registered name, so `tinygen eval OUT/run` rebuilds it; a
    checkpoint without one gets a one-line error naming the file, not a KeyError."""
    from tinygen import serialization
    from tinygen.cli import main
    from tinygen.report import load_run

    load("vae").main(["--smoke", "--out", str(tmp_path)])
    model, cfg, name = load_run(tmp_path / "run")
    assert (name, cfg.hidden_layers, model.cfg.latent) == ("vae", 2, 2)
    ckpt = serialization.load(tmp_path / "run" / "checkpoint.npz")
    ckpt["config"] = {k: v for k, v in ckpt["config"].items() if k != "model"}
    serialization.save(ckpt, tmp_path / "nameless" / "checkpoint.npz")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "nameless")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("tinygen: error: ") and "does not name a registered model" in err
    assert "nameless" in err


def test_autodiff_tour_prints_the_graph_and_passes_gradcheck(capsys):
    load("autodiff_tour").main([])
    printed = capsys.readouterr().out
    for needle in ["topological order", "tanh", "pow_scalar", "d/dw", "passed"]:
        assert needle in printed


def test_every_demo_is_tested():
    tested = {"vae", "cvae", "ae", "dae", "gan", "dcgan", "cgan", "mode_collapse",
              "improved_gan", "ssgan", "aae", "autodiff_tour", "cyclegan", "pix2pix"}
    assert {p.stem for p in DEMOS.glob("*.py")} == tested


def test_ssgan_demo_smoke_mode(tmp_path, capsys):
    """The semi-supervised GAN's demo trains on MNIST (it has no offline variant)."""
    from tinygen.data.mnist import load_mnist
    try:
        load_mnist("test")
    except (OSError, ValueError) as err:
        pytest.skip(f"needs MNIST: {err}")
    load("ssgan").main(["--smoke", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "labelled: 100 images ([10, 10, 10, 10, 10, 10, 10, 10, 10, 10] per class)" in printed
    assert "epoch 1: test error" in printed
    for figure in ("labelled.png", "samples.png"):
        assert (tmp_path / figure).stat().st_size > 0


@pytest.mark.parametrize("name, figures", [("cyclegan", ["cycle.png"]),
                                           ("pix2pix", ["superres.png"])])
def test_translation_demos_smoke_mode(name, figures, tmp_path, capsys):
    """The image-to-image demos translate MNIST (the digits are the other domain)."""
    from tinygen.data.mnist import load_mnist
    try:
        load_mnist("test")
    except (OSError, ValueError) as err:
        pytest.skip(f"needs MNIST: {err}")
    load(name).main(["--smoke", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "trained in" in printed and ("PSNR" in printed or "cycle error" in printed)
    for figure in figures:
        assert (tmp_path / figure).stat().st_size > 0
        assert str(tmp_path / figure) in printed
