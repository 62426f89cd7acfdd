"""The loss computed on the wrong tensor (an intermediate output: `cross_entropy(self.layer1(x)[:, :10],
y)`, while validation scores the model's real output), on a real Lightning fit of the digits:
`unused-parameters` names the layers after that tensor at the first step (they get no gradient),
and no check calls the run overfitting. The same module with the loss on its output is silent."""

from __future__ import annotations

import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Net(lpt.LightningModule):
    def __init__(self, wrong: bool) -> None:
        super().__init__()
        self.layer1, self.layer2 = nn.Linear(64, 32), nn.Linear(32, 10)
        self.wrong = wrong

    def forward(self, x):
        return self.layer2(F.relu(self.layer1(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self.layer1(x)[:, :10] if self.wrong else self(x)  # the bug: an intermediate output
        loss = F.cross_entropy(out, y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


@pytest.mark.parametrize("wrong", [True, False])
def test_loss_on_an_intermediate_output_is_named_not_called_overfitting(tmp_path, wrong):
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    lpt.seed_everything(0, verbose=False)
    data = [
        TensorDataset(torch.from_numpy(a), torch.from_numpy(b)) for a, b in ((x[:1400], y[:1400]), (x[1400:], y[1400:]))
    ]
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=8, callbacks=[cb])
    trainer.fit(Net(wrong), DataLoader(data[0], batch_size=32, shuffle=True), DataLoader(data[1], batch_size=128))
    loud = [f for f in cb.findings if f.severity >= Severity.WARNING]
    if not wrong:
        assert loud == []
        return
    (finding,) = loud  # at the first step, naming the layer after the tensor the loss used
    assert finding.check == "unused-parameters" and finding.step == 0
    assert finding.evidence["parameters"] == ["layer2.weight", "layer2.bias"]
