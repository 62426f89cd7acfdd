"""One unscaled data set is one `unnormalized-input` finding in a real fit.

Before, raw 0-255 digits gave a finding per split, and raw tabular features (too large and
columns apart) one per split and kind: four warnings for one forgotten `StandardScaler`. Now the
first sighting (the training batches, with both kinds of evidence where both show) is the one
finding; the validation split showing the same problem later only marks it.
"""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from torch import nn

from mlcheck import MLCheckWarning
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback


def _digits_8bit() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits as raw 8-bit pixels (0-16 stretched to whole numbers 0-255)."""
    x, y = load_digits(return_X_y=True)
    return np.round(x * 255 / 16).astype(np.float32), y.astype(np.int64)


def _cancer_raw() -> tuple[np.ndarray, np.ndarray]:
    """Breast-cancer features in their raw units: areas ~500 beside fractal dimensions ~0.06."""
    x, y = load_breast_cancer(return_X_y=True)
    return x.astype(np.float32), y.astype(np.int64)


DATA = {"digits-0-255": _digits_8bit, "cancer-raw-features": _cancer_raw}
BOTH_KINDS = {"digits-0-255": False, "cancer-raw-features": True}


def _split(name: str):
    x, y = DATA[name]()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    n = int(0.75 * len(x))
    return (x[:n], y[:n]), (x[n:], y[n:])


def _assert_one_finding(findings, caught, both_kinds: bool) -> None:
    scale = [f for f in findings if f.check == "unnormalized-input"]
    assert len(scale) == 1, [f.message for f in scale]
    [f] = scale
    assert f.message.startswith("Training"), f.message
    assert "train" in f.evidence["split"]
    assert f.evidence["train_p99_abs"] > 50
    if both_kinds:
        assert "wildly different scales" in f.message
        assert f.evidence["train_column_ratio"] > 1000
    # raised at the first training batch, as before; one Python warning for it
    assert f.step == 0
    texts = [str(w.message) for w in caught if issubclass(w.category, MLCheckWarning)]
    assert sum("] unnormalized-input at" in t for t in texts) == 1, texts
    # a symptom it causes (exploding-gradient on a 2-epoch run, now sampled often enough for a
    # layer verdict) names it as the likely cause, and its fix first: not a second scaling finding
    others = [t for t in texts if "unnormalized-input" in t and "] unnormalized-input at" not in t]
    assert all("This likely follows from `unnormalized-input`" in t for t in others), others


@pytest.mark.parametrize("name", list(DATA))
def test_lightning_fit_reports_one_scaling_problem_once(tmp_path, name):
    (xt, yt), (xv, yv) = _split(name)
    classes = int(yt.max()) + 1

    class Net(lpt.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(xt.shape[1], 32), nn.ReLU(), nn.Linear(32, classes))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    def loader(x, y, shuffle):
        data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
        return torch.utils.data.DataLoader(data, batch_size=32, shuffle=shuffle)

    lpt.seed_everything(0, verbose=False)
    cb = LightningCallback(overfit_batch=False)
    trainer = lpt.Trainer(
        max_epochs=2,
        default_root_dir=str(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=5,
        callbacks=[cb],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Net(), loader(xt, yt, True), loader(xv, yv, False))
    _assert_one_finding(cb.findings, caught, BOTH_KINDS[name])


@pytest.mark.parametrize("name", list(DATA))
def test_keras_fit_reports_one_scaling_problem_once(tmp_path, name):
    (xt, yt), (xv, yv) = _split(name)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((xt.shape[1],)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(int(yt.max()) + 1, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    cb = KerasCallback(log_dir=tmp_path / "logs", overfit_batch=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(xt, yt, validation_data=(xv, yv), epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    _assert_one_finding(cb.findings, caught, BOTH_KINDS[name])
