"""A new user's first hour, round 20: the most common Lightning script shape, a LightningModule
class and two module-level DataLoaders handed to `trainer.fit(model, train_loader, val_loader)`
under `if __name__ == "__main__":`. `mlcheck sanity model.py` said "found no complete target ...
LightningModule class `Net` (not usable: no LightningDataModule and no train_dataloader())",
though the loaders were there; the torch-module discovery already took such loaders by name. A
LightningModule now takes them by the same rule (the one named train..., else the one not named
val.../test...; one named val.../test... is the validation data), and two loaders that could each
be the training one are named in the error with how to tell them apart."""

import json
import subprocess
import sys

_SCRIPT = """
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

g = torch.Generator().manual_seed(0)
x = torch.randn(320, 8, generator=g)
y = (x[:, 0] + x[:, 1] > 0).long()
{loaders}


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


if __name__ == "__main__":
    pl.Trainer(max_epochs=5).fit(Net(), {fit_args})
"""


def _sanity(tmp_path, loaders: str, fit_args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "model.py"
    script.write_text(_SCRIPT.format(loaders=loaders, fit_args=fit_args))
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(script), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )


def test_user20_a_lightning_module_takes_the_module_level_loaders(tmp_path):
    # the validation loader overlaps the training one: proof that both reached the checks
    proc = _sanity(
        tmp_path,
        "train_loader = DataLoader(TensorDataset(x[:256], y[:256]), batch_size=32, shuffle=True)\n"
        "val_loader = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64)",
        "train_loader, val_loader",
    )
    assert proc.returncode == 1, proc.stderr  # train-val-overlap is an ERROR
    report = json.loads(proc.stdout)
    overlap = [f for f in report["findings"] if f["check"] == "train-val-overlap"]
    assert overlap and overlap[0]["severity"] == "error", proc.stdout
    assert not [f for f in report["findings"] if f["check"] != "train-val-overlap" and f["severity"] != "info"], (
        proc.stdout
    )


def test_user20_two_loaders_either_of_which_could_train_are_named(tmp_path):
    proc = _sanity(
        tmp_path,
        "tr = DataLoader(TensorDataset(x[:256], y[:256]), batch_size=32, shuffle=True)\n"
        "va = DataLoader(TensorDataset(x[256:], y[256:]), batch_size=64)",
        "tr, va",
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    text = " ".join(proc.stderr.split())
    assert "several DataLoaders that could be the training one (tr, va)" in text, proc.stderr
    assert "mlcheck_target()" in text and "Traceback" not in text, proc.stderr
