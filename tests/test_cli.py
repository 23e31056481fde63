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
    assert main(["sample", str(out)]) == 2


def test_eval_without_a_run_says_what_to_do(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "train first" in capsys.readouterr().err


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
    assert main(["sample", str(runs / "vae"), "--kind", "styles"]) == 2   # not conditional
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
    assert main(["sample", str(out), "--kind", "interpolate"]) == 2   # points: scatter only


def test_cgan_samples_styles_and_interpolations(tmp_path):
    out = tmp_path / "cgan"
    assert main(["train", "cgan", "--dataset", "digits", "--max-steps", "3", "--out", str(out),
                 "--quiet", "--width", "4"]) == 0
    for kind in ["samples", "styles", "interpolate"]:
        assert main(["sample", str(out), "--kind", kind]) == 0
        assert (out / f"{kind}.png").stat().st_size > 0
    assert main(["sample", str(out), "--kind", "reconstructions"]) == 2   # no encoder
    assert main(["sample", str(out), "--kind", "arithmetic"]) == 2        # conditional


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


# ----------------------------------------------------------------------------------------------
# Issue 15: user errors are one line and exit 2; bad options are refused before any work.

DIGITS = ["--dataset", "digits", "--quiet"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1
    line = err[-1]
    assert line.startswith("tinygen: error: ") and "Traceback" not in "\n".join(err)
    return line


@pytest.mark.parametrize("argv, message", [
    (["train", "classifier", "--seed", "-1"], "--seed must be >= 0, got -1"),
    (["train", "classifier", "--epochs", "0"], "--epochs must be positive, got 0"),
    (["train", "classifier", "--epochs", "-2"], "--epochs must be positive"),
    (["train", "classifier", "--max-steps", "0"], "--max-steps must be positive"),
    (["train", "classifier", "--batch-size", "0"], "--batch-size must be positive"),
    (["train", "classifier", "--batch-size", "5000"], "--batch-size 5000 is larger than the 1438"),
    (["train", "vae", "--hidden", "0"], "--hidden must be positive"),
    (["train", "vae", "--latent", "-1"], "--latent must be positive"),
    (["train", "ae", "--hidden", "-1"], "--hidden must be >= 0"),
    (["train", "classifier", "--lr", "inf"], "--lr must be a finite number"),
    (["sample", "RUN", "-n", "0"], "-n must be positive, got 0"),
    (["sample", "RUN", "--seed", "-3"], "--seed must be >= 0"),
    (["eval", "RUN", "-n", "-5"], "-n must be positive"),
    (["report", "NOWHERE"], "is not a folder"),
    (["sample", "NOWHERE"], "is not a folder"),
])
def test_bad_options_are_one_line_errors_with_exit_2(tmp_path, capsys, argv, message):
    argv = [str(tmp_path / "nope") if a == "NOWHERE" else str(tmp_path) if a == "RUN" else a
            for a in argv]
    if argv[0] == "train":
        argv += DIGITS + ["--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_out_pointing_at_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", "classifier", *DIGITS, "--out", str(tmp_path / "file")]) == 2
    assert "--out" in one_line_error(capsys) and (tmp_path / "file").read_text() == "x"


def test_missing_data_names_the_cli_options(tmp_path, capsys, monkeypatch):
    import tinygen.data.mnist as mnist

    def offline(url, dest, deadline=None):
        raise OSError("network is unreachable")

    monkeypatch.setattr(mnist, "fetch", offline)
    argv = ["train", "classifier", "--dataset", "mnist", "--data-dir", str(tmp_path / "d"),
            "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    line = one_line_error(capsys)
    assert "--data-dir" in line and "TINYGEN_DATA" in line and "data_dir=" not in line
    assert "network is unreachable" in line
    assert not (tmp_path / "run").exists()


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="is not a folder"):
        main(["--debug", "report", str(tmp_path / "nope")])
    with pytest.raises(Exception, match="is not a folder"):
        main(["report", str(tmp_path / "nope"), "--debug"])


def test_unexpected_errors_are_one_line_with_a_hint(tmp_path, capsys, monkeypatch):
    import tinygen.report

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    (tmp_path / "r").mkdir()
    monkeypatch.setattr(tinygen.report, "write_report", broken)
    assert main(["report", str(tmp_path)]) == 1
    assert "RuntimeError: boom (run again with --debug" in one_line_error(capsys)


def test_resume_without_a_checkpoint_stops(tmp_path, capsys):
    assert main(["train", "classifier", *DIGITS, "--out", str(tmp_path), "--resume"]) == 2
    assert "--resume: there is no checkpoint at" in one_line_error(capsys)
    assert not (tmp_path / "log.jsonl").exists()


def test_resume_with_changed_options_refuses_unless_forced(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["train", "classifier", *DIGITS, "--out", out, "--width", "4", "--max-steps", "2"]
    assert main(base + ["--batch-size", "32"]) == 0
    capsys.readouterr()
    # The stored options are used when none are given, and --epochs may grow.
    assert main(base[:-2] + ["--resume", "--epochs", "2", "--max-steps", "4"]) == 0
    assert "resumed from" in capsys.readouterr().err
    changed = base[:-2] + ["--resume", "--batch-size", "16", "--width", "8"]
    assert main(changed) == 2
    line = one_line_error(capsys)
    assert "--batch-size 32 -> 16" in line and "--width 4 -> 8" in line and "--force" in line
    forced = base[:-2] + ["--resume", "--batch-size", "16", "--force", "--max-steps", "5"]
    assert main(forced) == 0
    assert "no longer bitwise reproducible" in capsys.readouterr().err
    assert main(["train", "vae", *DIGITS, "--out", out, "--resume"]) == 2
    assert "is a classifier run, not vae" in one_line_error(capsys)


def test_resume_names_options_the_checkpoint_predates(tmp_path, monkeypatch, capsys):
    """A checkpoint written before an option existed resumes with its default, and says so."""
    import tinygen.train
    out = str(tmp_path / "run")
    base = ["train", "classifier", *DIGITS, "--out", out, "--width", "4", "--max-steps", "2"]
    assert main(base) == 0
    capsys.readouterr()
    real = tinygen.train.load_config

    def without_dropout(path):
        return {k: v for k, v in real(path).items() if k != "dropout"}
    monkeypatch.setattr(tinygen.train, "load_config", without_dropout)
    assert main(base[:-2] + ["--resume", "--epochs", "2", "--max-steps", "3"]) == 0
    err = capsys.readouterr().err
    assert "predates these options; resuming with their defaults: --dropout 0.25" in err
    monkeypatch.setattr(tinygen.train, "load_config", real)
    assert main(base[:-2] + ["--resume", "--epochs", "2", "--max-steps", "4"]) == 0
    assert "predates" not in capsys.readouterr().err


def test_a_failed_start_leaves_no_run_folder(tmp_path, monkeypatch, capsys):
    import tinygen.train

    def fails(*args, **kwargs):
        kwargs_out = args[3]
        kwargs_out.mkdir(parents=True)
        (kwargs_out / "log.jsonl").write_text("")
        raise RuntimeError("first step failed")

    monkeypatch.setattr(tinygen.train, "fit", fails)
    assert main(["train", "classifier", *DIGITS, "--out", str(tmp_path / "run")]) == 1
    assert not (tmp_path / "run").exists()
    (tmp_path / "mine").mkdir()                      # a folder the user made is never removed
    assert main(["train", "classifier", *DIGITS, "--out", str(tmp_path / "mine")]) == 1
    assert (tmp_path / "mine").is_dir()


def test_report_on_an_empty_folder_is_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no run folders" in one_line_error(capsys)
