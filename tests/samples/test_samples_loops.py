"""Per-sample capture under the loop shapes Lightning allows (gradient accumulation, a last
partial batch, `limit_train_batches`, data set indices in the batch, two optimizers): the
stored (id, label, probability) rows must be the model's own, and a clean run that is still
learning must not be called mislabelled."""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.hashing import canonical_rows, fingerprints
from mlcheck.checks.samples import NoisyLabels, WeakSlice


def _fit(tmp_path, *, epochs=6, indexed=False, two_optimizers=False, batch_size=32, **trainer_kw):  # noqa: C901
    """Clean digits; the module records, in its own training_step, the probability it gives each
    row's label. Returns (callback, {id: [probability per epoch]}, labels by id)."""
    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16).astype(np.float32), y.astype(np.int64)
    xt, yt, xv, yv = x[:1200], y[:1200], x[1200:], y[1200:]
    seen: dict[int, list[float]] = collections.defaultdict(list)

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
            self.automatic_optimization = not two_optimizers

        def forward(self, inputs):
            return self.net(inputs)

        def training_step(self, batch, i):
            xb, yb = (batch["x"], batch["y"]) if indexed else batch
            out = self(xb)
            prob = torch.softmax(out.detach(), 1)[torch.arange(len(yb)), yb].numpy()
            keys = batch["index"].numpy() if indexed else fingerprints(canonical_rows(xb.numpy()))
            for key, p in zip(keys.tolist(), prob.tolist()):
                seen[int(key)].append(p)
            loss = nn.functional.cross_entropy(out, yb)
            if two_optimizers:
                for opt in self.optimizers():
                    opt.zero_grad()
                    self.manual_backward(loss, retain_graph=True)
                    opt.step()
                return None
            return loss

        def validation_step(self, batch, i):
            xb, yb = (batch["x"], batch["y"]) if indexed else batch
            self.log("val_loss", nn.functional.cross_entropy(self(xb), yb))

        def configure_optimizers(self):
            if two_optimizers:
                return [torch.optim.SGD(self.net[i].parameters(), lr=0.05) for i in (0, 2)]
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    class Indexed(torch.utils.data.Dataset):
        def __init__(self, x, y):
            self.x, self.y = torch.tensor(x), torch.tensor(y)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"x": self.x[i], "index": i, "y": self.y[i]}

    def data(x, y):
        return Indexed(x, y) if indexed else torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))

    train = torch.utils.data.DataLoader(data(xt, yt), batch_size=batch_size, shuffle=True)
    val = torch.utils.data.DataLoader(data(xv, yv), batch_size=128)
    cb = MLCheckCallback(checks=[*default_checks(), NoisyLabels(), WeakSlice()], overfit_batch=False, log_dir=tmp_path)
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **trainer_kw,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Net(), train, val)
    keys = np.arange(len(xt)) if indexed else fingerprints(canonical_rows(xt))
    return cb, seen, dict(zip(keys.tolist(), yt.tolist()))


def _assert_aligned(cb, seen, labels):
    train = cb.monitor.run.samples.get("train")
    assert train.size == len(seen)
    ids = train.ids.tolist()
    assert [labels[i] for i in ids] == train.column("labels").tolist()  # each id has its own label
    assert train.column("epochs").tolist() == [len(seen[i]) for i in ids]
    # the stored statistics are those of the probabilities the model itself computed for that id
    np.testing.assert_allclose(train.confidence(), [np.mean(seen[i]) for i in ids], atol=1e-5)
    np.testing.assert_allclose(train.latest_prob(), [seen[i][-1] for i in ids], atol=0.5 / 255 + 1e-6)


def test_gradient_accumulation_rows_are_aligned_and_a_clean_run_still_learning_is_not_noisy(tmp_path):
    # 4 micro-batches per optimizer step: 60 steps in 6 epochs, a model still learning. Before
    # the learned-rest rule, 15% of these clean digits were called mislabelled (WARNING): the
    # capture was aligned (asserted here), the samples were simply not learnt yet.
    cb, seen, labels = _fit(tmp_path, accumulate_grad_batches=4)
    _assert_aligned(cb, seen, labels)
    noisy = [f for f in cb.findings if f.check == "noisy-labels"]
    assert [f.severity.value for f in noisy] == ["info"]
    assert noisy[0].evidence["confidence_of_rest"] < 0.64  # the rule that kept it INFO


@pytest.mark.parametrize(
    "shape",
    [
        dict(accumulate_grad_batches=4, batch_size=64),  # 19 batches, the last of 48 rows, in a 3-batch window
        dict(limit_train_batches=13),  # a random 416 of 1200 samples per epoch
        dict(indexed=True, accumulate_grad_batches=4),  # ids from the batch's index
        dict(two_optimizers=True),  # manual optimization, two optimizers per batch
    ],
    ids=["partial-batch-and-window", "limit-train-batches", "indexed", "two-optimizers"],
)
def test_rows_are_aligned_under_other_loop_shapes(tmp_path, shape):
    cb, seen, labels = _fit(tmp_path, epochs=3, **shape)
    _assert_aligned(cb, seen, labels)
