"""`mlcheck analyze` reads a finished run's `mlcheck/samples.csv` back: the same noisy-labels and
weak-slice findings as the live run, from the files alone (the real command, as a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np

from mlcheck.checks.base import default_checks
from mlcheck.checks.samples import NoisyLabels, WeakSlice
from tests.lightning_trainer import quiet_trainer

PER_SAMPLE = ("noisy-labels", "weak-slice")


def mlcheck_analyze(*args):
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
    )


def _noisy_digits_run(tmp_path):
    """Lightning on digits with 8% symmetric noise and 30% of class 3 mislabelled, logging to
    TensorBoard under tmp_path; returns the callback."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger
    from sklearn.datasets import load_digits
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = (x[order] / 16).astype(np.float32), y[order].astype(np.int64)
    rng = np.random.default_rng(0)
    flip = (rng.random(len(y)) < 0.08) | ((y == 3) & (rng.random(len(y)) < 0.3))
    y[flip] = (y[flip] + rng.integers(1, 10, flip.sum())) % 10

    class MLP(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

        def training_step(self, batch, i):
            xb, yb = batch
            loss = nn.functional.cross_entropy(self.net(xb), yb)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, i):
            xb, yb = batch
            self.log("val_loss", nn.functional.cross_entropy(self.net(xb), yb))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    def loader(a, b, shuffle):
        return torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.tensor(a), torch.tensor(b)), batch_size=64, shuffle=shuffle
        )

    torch.manual_seed(0)
    cb = MLCheckCallback(checks=[*default_checks(), NoisyLabels(), WeakSlice()], overfit_batch=False)
    trainer = quiet_trainer(
        max_epochs=20,
        callbacks=[cb],
        logger=TensorBoardLogger(str(tmp_path), name="runs"),
        accelerator="cpu",
        log_every_n_steps=5,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(MLP(), loader(x[:1300], y[:1300], True), loader(x[1300:], y[1300:], False))
    return cb


def _summary(findings):
    """What must match: check, severity, and the numbers the verdict rests on."""
    out = []
    for f in findings:
        ev = f["evidence"] if isinstance(f, dict) else f.evidence
        check = f["check"] if isinstance(f, dict) else f.check
        severity = f["severity"] if isinstance(f, dict) else f.severity.value
        if check == "noisy-labels":
            out.append((check, severity, ev["flagged"], ev["judged"], ev["val_flagged"]))
        elif check == "weak-slice":
            out.append((check, severity, ev["slice"], ev["size"], round(ev["error_rate"], 6)))
    return sorted(out)


def test_analyze_reads_samples_csv_back_with_the_live_findings(tmp_path):
    cb = _noisy_digits_run(tmp_path)
    live = _summary(f for f in cb.findings if f.check in PER_SAMPLE)
    assert ("noisy-labels", "warning") in {s[:2] for s in live} and ("weak-slice", "warning") in {s[:2] for s in live}
    assert (cb.resolved_log_dir / "mlcheck" / "samples.csv").exists()

    done = mlcheck_analyze(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert _summary(f for f in payload["findings"] if f["check"] in PER_SAMPLE) == live
    # attached to the run whose curves lie in the same folder, not a run of their own
    assert {f["run"] for f in payload["findings"] if f["check"] in PER_SAMPLE} == {"runs/version_0"}

    # the table alone, and --suppress
    alone = mlcheck_analyze(cb.resolved_log_dir / "mlcheck" / "samples.csv", "--json")
    assert _summary(json.loads(alone.stdout)["findings"]) == live
    quiet = mlcheck_analyze(tmp_path, "--json", "--suppress", "noisy-labels,weak-slice")
    assert not [f for f in json.loads(quiet.stdout)["findings"] if f["check"] in PER_SAMPLE]


def test_a_malformed_samples_csv_is_one_clear_line_not_a_traceback(tmp_path):
    run = tmp_path / "run"
    (run / "mlcheck").mkdir(parents=True)
    (run / "metrics.csv").write_text("epoch,step,train_loss\n" + "".join(f"0,{i},{2.3 - i / 100}\n" for i in range(50)))
    table = run / "mlcheck" / "samples.csv"
    for text, says in [
        ("rank,split,id\n1,train,5\n", "columns missing"),
        ("\x00\xff garbage", "cannot be read"),
    ]:
        table.write_bytes(text.encode("latin-1"))
        done = mlcheck_analyze(tmp_path)
        assert done.returncode == 0, done.stderr  # the curves beside it are still analysed
        assert "Traceback" not in done.stderr and says in done.stderr and str(table) in done.stderr
        assert len([line for line in done.stderr.splitlines() if "samples.csv" in line]) == 1
    # a row with a value out of range: named by its line
    header = (
        "rank,split,id,given_label,predicted_label,confidence,variability,correctness,epochs,"
        "last_prob,flagged,last_predicted,last_epoch,previous_right\n"
    )
    table.write_text(header + "1,train,7,3,2,1.7,0.1,0.0,5,0.1,1,2,4,0\n")
    done = mlcheck_analyze(table)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "line 2" in done.stderr and "outside [0, 1]" in done.stderr


def test_analyze_keeps_the_samples_the_live_run_flagged_from_its_epoch_history(tmp_path):
    """A sample flagged live from the epochs before memorisation (per-epoch evidence that
    samples.csv does not hold) looks learnt over the whole run; read back, it was dropped, so
    analyze counted fewer flagged samples than the live finding."""
    from mlcheck.samples import CSV_COLUMNS, read_samples_csv

    path = tmp_path / "samples.csv"
    rows = []
    for i in range(40):
        memorised = i == 7  # right and confident at the end: only the live history flagged it
        row = dict(rank=i, split="train", id=1000 + i, given_label=i % 4, predicted_label=i % 4, confidence=0.9,
                   variability=0.05, correctness=1.0, epochs=6, last_prob=0.95, flagged=int(memorised),
                   last_predicted=i % 4, last_epoch=5, previous_right=1)  # fmt: skip
        rows.append(",".join(str(row[c]) for c in CSV_COLUMNS))
    path.write_text(",".join(CSV_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    train = read_samples_csv(path).get("train")
    judged, flagged = NoisyLabels().flagged_train(train)
    assert judged.all() and list(np.flatnonzero(flagged)) == [list(train.ids).index(1007)]


def test_the_finding_names_ids_as_samples_csv_writes_them():
    """Content-hash ids were shown in hex in the message and in decimal in samples.csv: the
    id a finding named could not be found in the table."""
    from mlcheck.checks.samples import _describe
    from mlcheck.samples import SplitSamples

    big = 471802700597748448
    data = SplitSamples.from_table(
        {
            k: np.array([v], np.float64)
            for k, v in dict(
                epochs=3,
                confidence=0.1,
                variability=0.0,
                given_label=2,
                correctness=0.0,
                last_prob=0.1,
                last_predicted=5,
                predicted_label=5,
                last_epoch=2,
                previous_right=0,
            ).items()
        }
        | {"id": np.array([big], np.uint64)}  # fmt: skip
    )
    assert f"id {big} labelled 2, predicted 5" == _describe(data, 0)["text"]
