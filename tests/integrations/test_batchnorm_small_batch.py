"""BatchNorm trained at a tiny batch, on real fits of the digits: a CNN with BatchNorm at batch 2
was called `loss-plateau` and `lr-too-low` (raise the learning rate), where the batch statistics of
two samples are the cause (Wu & He 2018). `batch-dependence` now says so at train start (an INFO,
key `batchnorm-small-batch`), and the curve and layer checks name it as their likely cause. The
same model at batch 32 stays silent; at batch 2 without BatchNorm nothing blames BatchNorm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

EXPLAINED = ("loss-plateau", "lr-too-low", "train-val-gap", "vanishing-gradient", "dead-units")


def _fit(tmp_path, *, batch_size: int, norm: bool = True, epochs: int = 3, lr: float = 0.1) -> MLCheckCallback:
    import lightning.pytorch as pl

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32).reshape(-1, 1, 8, 8), torch.tensor(y)

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), *([nn.BatchNorm2d(c_out)] if norm else []), nn.ReLU()]

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                *block(1, 16), *block(16, 32), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)
            )

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr, momentum=0.9)

    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb])
    train = DataLoader(TensorDataset(x[:600], y[:600]), batch_size=batch_size, shuffle=True)
    trainer.fit(Module(), train, DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=64))
    return cb


def test_batchnorm_at_batch_two_is_named_as_the_cause(tmp_path):
    cb = _fit(tmp_path, batch_size=2)
    (bn,) = [f for f in cb.findings if f.key == "batchnorm-small-batch"]  # was: not said
    assert bn.check == "batch-dependence" and bn.severity == Severity.INFO and bn.step == 0
    assert bn.evidence["batch"] == 2 and bn.evidence["batchnorm_layers"] == 2 and "`net.1`" in bn.message
    symptoms = [f for f in cb.findings if f.check in EXPLAINED]
    assert symptoms, "the run stalls at batch 2 (was: loss-plateau, raise the learning rate)"
    assert all(f.evidence.get("likely_cause") == "batch-dependence" for f in symptoms)
    assert all(f.hint.startswith("Fix `batch-dependence` first") for f in symptoms)


def test_batchnorm_at_batch_32_stays_silent(tmp_path):
    cb = _fit(tmp_path, batch_size=32, epochs=2)
    assert [f for f in cb.findings if f.check == "batch-dependence"] == []
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == []


def test_batch_two_without_batchnorm_is_not_blamed_on_it(tmp_path):
    # SGD at 0.1 without BatchNorm kills its ReLUs at batch 2: a real fault, with its own cause
    cb = _fit(tmp_path, batch_size=2, norm=False, epochs=1)
    assert [f for f in cb.findings if f.check == "batch-dependence"] == []
    assert all(f.evidence.get("likely_cause") != "batch-dependence" for f in cb.findings)


def test_frozen_batchnorm_is_not_counted():
    from mlcheck.integrations.torch import TorchTrainable

    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.BatchNorm1d(4))
    data = (np.zeros((8, 4), np.float32), np.zeros(8, np.int64))
    assert TorchTrainable(model, nn.CrossEntropyLoss(), train_data=data).batch_norm_layers() == ["1", "3"]
    model[1].eval()  # frozen for fine-tuning: it uses its running statistics
    assert TorchTrainable(model, nn.CrossEntropyLoss(), train_data=data).batch_norm_layers() == ["3"]


@pytest.mark.parametrize(
    ("batch_size", "frozen", "told"), [(2, False, True), (2, True, False), (32, False, False)], ids=str
)
def test_keras_batchnorm_at_a_tiny_batch(tmp_path, batch_size, frozen, told):
    import keras

    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    keras.utils.set_random_seed(0)
    norm = keras.layers.BatchNormalization()
    norm.trainable = not frozen  # a frozen BatchNormalization runs in inference mode
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32), norm, keras.layers.ReLU(), keras.layers.Dense(10, "softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = KerasCallback(log_dir=str(tmp_path))
    model.fit(x[:200], y[:200], batch_size=batch_size, epochs=1, verbose=0, callbacks=[cb])
    found = [f for f in cb.findings if f.check == "batch-dependence"]
    assert [(f.key, f.severity, f.evidence["batch"]) for f in found] == (
        [("batchnorm-small-batch", Severity.INFO, 2)] if told else []
    )
