"""A Lightning run resumed with `ckpt_path=` in a new process keeps what `train-val-overlap` saw
before the checkpoint: the overlap judged after the resume is found once, as in a run never
interrupted.

Epoch 0 hashes every training batch (`hash_epochs=1`) and has no validation
(`check_val_every_n_epoch=2`); the checkpoint is taken at its end. After the resume the adapter
hashes no more training batches (its pass counter is restored), and the first validation pass,
a copy of the last 300 training rows, can only be matched against the fingerprints in the
checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    from pathlib import Path

    import numpy as np
    import torch
    from torch import nn
    import lightning.pytorch as pl
    from mlcheck.integrations.lightning import MLCheckCallback

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")


    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


    def fit(root, max_epochs, ckpt_path=None):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(1200, 16)).astype(np.float32)
        y = (x[:, :4].argmax(axis=1)).astype(np.int64)
        data = torch.utils.data.TensorDataset
        train = torch.utils.data.DataLoader(data(torch.tensor(x), torch.tensor(y)), batch_size=32)
        val = torch.utils.data.DataLoader(data(torch.tensor(x[900:]), torch.tensor(y[900:])),
                                          batch_size=100)
        cb = MLCheckCallback(overfit_batch=False, sample_batches=1, hash_epochs=1,
                             log_dir=str(root / "logs"))
        ckpt = pl.callbacks.ModelCheckpoint(dirpath=root / "ckpt", save_last=True,
                                            save_on_train_epoch_end=True)
        pl.seed_everything(0, verbose=False)
        trainer = pl.Trainer(max_epochs=max_epochs, default_root_dir=str(root),
                             check_val_every_n_epoch=2, num_sanity_val_steps=0,
                             enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[cb, ckpt], deterministic=True, logger=False)
        trainer.fit(Net(), train, val, ckpt_path=ckpt_path)
        findings = [f.to_dict() | {"key": f.key} for f in cb.findings]
        (root / "findings.json").write_text(json.dumps(findings))


    root = Path(sys.argv[2])
    if sys.argv[1] == "first":        # epoch 0, checkpoint at its end
        fit(root, 1)
    elif sys.argv[1] == "resume":     # epoch 1 in a new process, from that checkpoint
        fit(root, 2, ckpt_path=str(root / "ckpt" / "last.ckpt"))
    else:                             # both epochs, never interrupted
        fit(root, 2)
""")


def run(tmp_path: Path, phase: str, root: Path) -> list[dict]:
    script = tmp_path / "resume_script.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), phase, str(root)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((root / "findings.json").read_text())


def overlap(findings: list[dict]) -> list[dict]:
    return [f for f in findings if f["check"] == "train-val-overlap"]


@pytest.mark.slow
def test_overlap_judged_after_a_resume_in_a_new_process_is_found_once(tmp_path):
    first = run(tmp_path, "first", tmp_path / "run")
    assert overlap(first) == []  # no validation yet: nothing to judge before the checkpoint
    resumed = run(tmp_path, "resume", tmp_path / "run")
    whole = run(tmp_path, "whole", tmp_path / "whole")

    (found,) = overlap(resumed)  # found, and once: the checkpoint's findings are not repeated
    assert found["severity"] == "error" and found["epoch"] == 1
    # judged at the first validation batch: all 100 rows are among the 1200 hashed in epoch 0
    assert found["evidence"]["val_in_train"] == 100 and found["evidence"]["train_samples"] == 1200
    assert overlap(whole) == [found]  # as if never interrupted
    lines = (tmp_path / "run" / "logs" / "findings.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["check"] == "train-val-overlap" for line in lines) == 1
