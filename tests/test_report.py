"""`tinygen report`: the paper column says when a run's budget differs from the paper's."""

import json

from tinygen.report import write_report


def test_the_paper_column_names_both_training_budgets(tmp_path):
    for name, epochs in (("short", 1), ("full", 10)):
        run = tmp_path / name
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps(
            {"model": "vae", "dataset": "mnist", "epochs": epochs, "loss": 110.0,
             "train_seconds": 12.0}))
    md, _ = write_report([tmp_path / "short", tmp_path / "full"], tmp_path / "report")
    rows = {line.split("|")[1].strip(): line for line in md.read_text().splitlines()
            if line.startswith("| short") or line.startswith("| full")}
    assert "105.6 (after 10 epochs; this run: 1)" in rows["short"]
    assert "105.6 (10 epochs, as this run)" in rows["full"]
    assert "| epochs |" in md.read_text()


def test_eval_skips_parzen_where_the_samples_are_repeats(tmp_path, monkeypatch):
    """CycleGAN's `sample` repeats the translations of 359 test digits: `tinygen eval` scores
    them with the classifier metrics but not with a Parzen window; other models get both."""
    import types

    import numpy as np

    import tinygen.metrics as metrics
    from tinygen import report
    from tinygen.models.cyclegan import CycleGAN

    assert CycleGAN.parzen_meaningful is False
    parzen_calls = []
    monkeypatch.setattr(metrics, "classifier_metrics", lambda s, data_dir=None: {"fid": 1.0})
    monkeypatch.setattr(metrics, "parzen_evaluate", lambda *a: parzen_calls.append(1) or
                        {"mean": 2.0, "se": 0.1, "sigma": 0.2})
    monkeypatch.setattr(report, "load_dataset", lambda *a, **k: (
        np.zeros((1000, 1, 28, 28), np.float32), np.zeros(1000, np.int64)))
    monkeypatch.setattr(report, "training_seconds", lambda run_dir: 1.0)
    cfg = types.SimpleNamespace(dataset="mnist", seed=0, epochs=1)
    for meaningful in (False, True):
        model = types.SimpleNamespace(
            parzen_meaningful=meaningful, evaluate=lambda loader: {"loss": 0.5},
            sample=lambda n: np.zeros((n, 1, 28, 28), np.float32))
        monkeypatch.setattr(report, "load_run", lambda run_dir, m=model: (m, cfg, "cyclegan"))
        results = report.evaluate_run(tmp_path, n_samples=10, log=lambda *a: None)
        assert results["fid"] == 1.0 and ("parzen" in results) is meaningful
    assert len(parzen_calls) == 1
