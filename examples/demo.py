"""`make demo`: two small PyTorch Lightning runs on scikit-learn's digits with mlcheck watching.

1. A clean run: mlcheck stays quiet.
2. The same run with a common bug, validation rows copied from the training set: mlcheck
   raises `train-val-overlap` while training, with the numbers and the fix.

Both write TensorBoard logs (your curves plus mlcheck's markers and text) under
.mlcheck-demo/; the script prints the command that opens them. Runs in well under a minute on
a laptop CPU.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightning.pytorch as L  # noqa: E402
from rich.console import Console  # noqa: E402

from lightning_digits import DigitsClassifier, digits_loaders  # noqa: E402
from mlcheck import MLCheckWarning  # noqa: E402
from mlcheck.integrations.lightning import MLCheckCallback  # noqa: E402
from mlcheck.report import render_findings  # noqa: E402

ROOT = Path(".mlcheck-demo")


def run(name: str, leak: bool) -> MLCheckCallback:
    L.seed_everything(0, verbose=False)
    train, val = digits_loaders()
    if leak:  # the bug: a quarter of the validation rows are training rows
        (xv, yv), (xt, yt) = val.dataset.tensors, train.dataset.tensors
        val = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.cat([xv[:270], xt[:90]]), torch.cat([yv[:270], yt[:90]])),
            batch_size=256,
        )
    cb = MLCheckCallback()
    trainer = L.Trainer(
        max_epochs=8,
        callbacks=[cb],
        logger=L.loggers.TensorBoardLogger(ROOT, name=name),
        log_every_n_steps=10,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(DigitsClassifier(), train, val)
    return cb


def main() -> None:
    console = Console()
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # keep the terminal for the findings
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", MLCheckWarning)  # shown in the tables below instead
    for title, name, leak in (
        ("1/2  clean run: an MLP on digits", "clean", False),
        ("2/2  same run, validation rows copied from training", "leaky_validation", True),
    ):
        console.rule(title)
        cb = run(name, leak)
        render_findings(console, [(None, f) for f in cb.findings], title=f"mlcheck findings: {name}")
        console.print(f"TensorBoard run: {cb.resolved_log_dir}")
    console.rule()
    console.print(f"Open both runs in TensorBoard:  tensorboard --logdir {ROOT}")
    console.print("Scalars tab: mlcheck/<check-id> markers beside train_loss; Text tab: each finding.")


if __name__ == "__main__":
    main()
