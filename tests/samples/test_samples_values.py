"""What `samples.csv` holds is what the model computed: on a real Lightning fit, each sample's
row equals the statistics recomputed from the softmax of the outputs its training (and
validation) steps produced, epoch by epoch, keyed by the same content hash. A change in how the
capture takes, reduces or stores the outputs (another probability, rows out of line, a lost or
doubled epoch, another id) shows here."""

from __future__ import annotations

import csv
import warnings
from collections import defaultdict

import numpy as np

from mlcheck.checks.base import default_checks
from mlcheck.checks.hashing import canonical_rows, fingerprints
from mlcheck.checks.samples import NoisyLabels, WeakSlice
from tests.lightning_trainer import quiet_trainer

EPOCHS = 3


def _fit(tmp_path, seen):
    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    x, y = (x[:800] / 16).astype(np.float32), y[:800].astype(np.int64)
    y[:600][::17] = (y[:600][::17] + 3) % 10  # a few wrong labels: some rows flagged, some not

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, inputs):
            return self.net(inputs)

        def _keep(self, split, batch, out):
            if not self.trainer.sanity_checking:
                probs = torch.softmax(out.detach().float(), dim=1)
                x, y = batch[0].numpy().copy(), batch[1].numpy().copy()
                seen.append((split, self.current_epoch, x, y, probs.numpy()))

        def training_step(self, batch, i):
            out = self(batch[0])
            self._keep("train", batch, out)
            return nn.functional.cross_entropy(out, batch[1])

        def validation_step(self, batch, i):
            out = self(batch[0])
            self._keep("val", batch, out)
            self.log("val_loss", nn.functional.cross_entropy(out, batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    def loader(a, b, shuffle, size):
        ds = torch.utils.data.TensorDataset(torch.tensor(a), torch.tensor(b))
        return torch.utils.data.DataLoader(ds, batch_size=size, shuffle=shuffle)

    cb = MLCheckCallback(checks=[*default_checks(), NoisyLabels(), WeakSlice()], overfit_batch=False, log_dir=tmp_path)
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb], accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Net(), loader(x[:600], y[:600], True, 32), loader(x[600:], y[600:], False, 64))
    return cb


def _expected(seen):
    """Per (split, id): the probabilities of the label, the predictions and the label, in the
    order the steps ran."""
    out: dict[tuple[str, int], dict[str, list]] = defaultdict(lambda: {"p": [], "pred": [], "label": []})
    for split, _, x, y, probs in seen:
        for sid, label, row in zip(fingerprints(canonical_rows(x)), y, probs):
            entry = out[(split, int(sid))]
            entry["p"].append(float(row[label]))
            entry["pred"].append(int(row.argmax()))
            entry["label"].append(int(label))
    return out


def test_samples_csv_holds_the_statistics_of_the_outputs_each_step_computed(tmp_path):
    seen: list = []
    _fit(tmp_path, seen)
    assert {(s, e) for s, e, *_ in seen} == {(s, e) for s in ("train", "val") for e in range(EPOCHS)}
    expected = _expected(seen)
    with open(tmp_path / "mlcheck" / "samples.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(expected) and len(rows) >= 790  # digits has a few identical rows
    flagged = 0
    for row in rows:
        want = expected[(row["split"], int(row["id"]))]
        p = np.array(want["p"], np.float64)
        assert int(row["epochs"]) == len(p) >= EPOCHS, row
        assert int(row["given_label"]) == want["label"][0]
        assert float(row["confidence"]) == round(p.mean(), 4) or abs(float(row["confidence"]) - p.mean()) < 1e-4, row
        assert abs(float(row["variability"]) - p.std()) < 1e-3, row
        right = np.array(want["pred"]) == np.array(want["label"])
        assert float(row["correctness"]) == round(right.mean(), 4), row
        assert int(row["last_predicted"]) == want["pred"][-1], row
        assert abs(float(row["last_prob"]) - round(np.round(p[-1] * 255) / 255, 4)) < 1e-4, row
        assert int(row["last_epoch"]) == EPOCHS - 1
        wrong = [q for q, ok in zip(want["pred"], right) if not ok]
        assert int(row["predicted_label"]) == (wrong[-1] if wrong else want["pred"][-1]), row
        flagged += int(row["flagged"])
    assert flagged  # the check ranked the rows it holds, flagged ones first
