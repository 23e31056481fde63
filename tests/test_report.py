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
