"""The `tinygen` command: every subcommand explains itself, and a tiny run works end to end."""

import json
import subprocess
import sys

import pytest

from tinygen.cli import main
from tinygen.models import REGISTRY

pytest.importorskip("sklearn", reason="the offline digits need scikit-learn")


@pytest.mark.parametrize("argv", [[], ["train"], ["sample"], ["eval"], ["report"], ["bench"],
                                  ["gradcheck"]] + [["train", m] for m in REGISTRY])
def test_every_subcommand_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv + ["--help"])
    assert exit_.value.code == 0
    assert "usage: tinygen" in capsys.readouterr().out


def test_model_help_lists_config_fields_with_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "classifier", "--help"])
    text = capsys.readouterr().out
    for flag in ["--epochs", "--batch-size", "--lr", "--seed", "--dataset", "--resume",
                 "--data-dir", "--out", "--width"]:
        assert flag in text
    assert "LeNet" in text                      # the model's docstring is the description


def test_train_then_eval_then_resume_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "classifier", "--dataset", "digits", "--epochs", "1", "--out", str(out),
            "--quiet", "--batch-size", "32"]
    assert main(argv) == 0
    assert (out / "checkpoint.npz").exists() and (out / "log.jsonl").exists()
    assert main(["eval", str(out)]) == 0
    assert "acc:" in capsys.readouterr().out
    assert main(argv[:5] + ["2"] + argv[6:] + ["--resume"]) == 0
    assert "resumed from" in capsys.readouterr().err


def test_sample_reports_models_that_cannot_sample(tmp_path):
    out = tmp_path / "run"
    main(["train", "classifier", "--dataset", "digits", "--epochs", "1", "--out", str(out),
          "--quiet", "--max-steps", "2"])
    assert main(["sample", str(out)]) == 1


def test_eval_without_a_run_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="train first"):
        main(["eval", str(tmp_path)])


def test_gradcheck_command_passes(capsys):
    assert main(["gradcheck"]) == 0
    assert "conv_transpose2d" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "tinygen", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "train" in done.stdout


def test_vae_train_sample_eval_report(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "vae", "--dataset", "digits", "--epochs", "1", "--out",
                 str(runs / "vae"), "--quiet", "--hidden", "32", "--latent", "2"]) == 0
    for kind in ["samples", "reconstructions", "scatter", "manifold", "interpolate",
                 "arithmetic"]:
        assert main(["sample", str(runs / "vae"), "--kind", kind]) == 0
        assert (runs / "vae" / f"{kind}.png").exists()
    assert main(["sample", str(runs / "vae"), "--kind", "styles"]) == 1   # not conditional
    assert main(["eval", str(runs / "vae")]) == 0
    metrics = json.loads((runs / "vae" / "metrics.json").read_text())
    assert metrics["model"] == "vae" and metrics["loss"] > 0 and metrics["train_seconds"] > 0
    assert main(["report", str(runs)]) == 0
    table = (runs / "report.md").read_text()
    assert "| vae | vae | digits | loss |" in table
    assert (runs / "report.png").exists()


def test_gan_on_ring8_train_eval_sample(tmp_path, capsys):
    out = tmp_path / "gan"
    assert main(["train", "gan", "--dataset", "ring8", "--epochs", "1", "--out", str(out),
                 "--quiet"]) == 0
    assert (out / "health.png").exists()
    assert main(["eval", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_modes"] == 8
    assert 0 <= metrics["modes"] <= metrics["modes_any"] <= 8     # >= 20 samples vs >= 1
    assert main(["sample", str(out)]) == 0
    assert main(["sample", str(out), "--kind", "interpolate"]) == 1   # points: scatter only


def test_cgan_samples_styles_and_interpolations(tmp_path):
    out = tmp_path / "cgan"
    assert main(["train", "cgan", "--dataset", "digits", "--max-steps", "3", "--out", str(out),
                 "--quiet", "--width", "4"]) == 0
    for kind in ["samples", "styles", "interpolate"]:
        assert main(["sample", str(out), "--kind", kind]) == 0
        assert (out / f"{kind}.png").stat().st_size > 0
    assert main(["sample", str(out), "--kind", "reconstructions"]) == 1   # no encoder
    assert main(["sample", str(out), "--kind", "arithmetic"]) == 1        # conditional


@pytest.mark.parametrize("model", ["dcgan", "cgan", "vae"])
def test_image_models_refuse_points_in_one_line(tmp_path, model, capsys):
    assert main(["train", model, "--dataset", "ring8", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinygen: error: ") and "\n" not in err
    assert "2-D points" in err and "gan" in err
    assert not (tmp_path / "x").exists()                 # no empty run folder left behind


def test_gan_help_names_the_toy_datasets(capsys):
    with pytest.raises(SystemExit):
        main(["train", "gan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ["ring8", "grid25", "--objective", "--d-steps", "--lr-d", "--beta1-d"]:
        assert name in text
