"""TorchTrainable and LightningTrainable: data forms, loss configuration, clones, and the promise
that no pre-flight check changes the user's model, optimizer, modes or random state."""

from __future__ import annotations

import random
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.checks.learning_rate import LRTooHigh, LRTooLow
from mlcheck.checks.preflight import (
    BatchDependence,
    InputIndependence,
    LossAtInit,
    OutputLossMismatch,
    OverfitBatch,
    UnusedParameters,
)
from mlcheck.integrations.torch import LightningTrainable, TorchTrainable
from mlcheck.preflight_context import Budget, PreflightContext
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    return (X[order] / 16.0).astype(np.float32), y[order]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3))
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.body(x))


class LitNet(pl.LightningModule):
    def __init__(self, lr=1e-3):
        super().__init__()
        self.lr = lr
        self.net = Net()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class Digits(pl.LightningDataModule):
    def __init__(self, X, y):
        super().__init__()
        self.X, self.y = X, y

    def setup(self, stage=None):
        ds = TensorDataset(torch.tensor(self.X), torch.tensor(self.y))
        self.train, self.val = torch.utils.data.random_split(ds, [1500, len(ds) - 1500])

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=32, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=64)


ALL = [
    OverfitBatch,
    LossAtInit,
    InputIndependence,
    BatchDependence,
    UnusedParameters,
    OutputLossMismatch,
    LRTooHigh,
    LRTooLow,
]


def snapshot(module, optimizers):
    """Everything a check must leave exactly as it was."""
    return {
        "state": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in module.named_parameters()},
        "modes": [(name, m.training) for name, m in module.named_modules()],
        "optim": [_opt_state(o) for o in optimizers],
        "torch_rng": torch.get_rng_state().clone(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "python_rng": random.getstate(),
    }


def _opt_state(opt):
    sd = opt.state_dict()
    return (
        {k: {n: v.clone() if torch.is_tensor(v) else v for n, v in s.items()} for k, s in sd["state"].items()},
        [{k: v for k, v in g.items()} for g in sd["param_groups"]],
    )


def assert_same(before, after):
    assert before["state"].keys() == after["state"].keys()
    for k in before["state"]:
        assert torch.equal(before["state"][k], after["state"][k]), k
    for k, g in before["grads"].items():
        assert (g is None) == (after["grads"][k] is None) and (g is None or torch.equal(g, after["grads"][k])), k
    assert before["modes"] == after["modes"]
    for (s0, g0), (s1, g1) in zip(before["optim"], after["optim"]):
        assert g0 == g1
        assert s0.keys() == s1.keys()
        for k in s0:
            for n in s0[k]:
                v0, v1 = s0[k][n], s1[k][n]
                assert torch.equal(v0, v1) if torch.is_tensor(v0) else v0 == v1
    assert torch.equal(before["torch_rng"], after["torch_rng"])
    assert np.array_equal(before["numpy_rng"], after["numpy_rng"])
    assert before["python_rng"] == after["python_rng"]


def warm_optimizer(module, optimizer, X, y, steps=3):
    """A few real steps, so the optimizer has state (Adam moments) that must survive."""
    module.train()
    for i in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(
            module(torch.tensor(X[i * 32 : (i + 1) * 32])), torch.tensor(y[i * 32 : (i + 1) * 32])
        ).backward()
        optimizer.step()


def test_torch_model_unchanged_by_every_check(digits):
    X, y = digits
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    warm_optimizer(model, optimizer, X, y)
    model.train()
    model.body[1].eval()  # mixed modes (a frozen BatchNorm) must come back as they were
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=32, shuffle=True)
    t = TorchTrainable(model, nn.CrossEntropyLoss(), optimizer, loader)
    before = snapshot(model, [optimizer])
    ctx = PreflightContext(t, Budget(seconds=120))
    for cls in ALL:
        ctx.budget = ctx.budget.restart()
        list(cls().preflight(ctx))
        assert_same(before, snapshot(model, [optimizer]))
    assert len(ctx.cache) >= 2  # the overfit run and the range test were computed


def test_lightning_module_unchanged_and_silent(digits):
    X, y = digits
    torch.manual_seed(0)
    module = LitNet()
    t = LightningTrainable(module, datamodule=Digits(X, y))
    before = snapshot(module, t.optimizers)
    ctx = PreflightContext(t, Budget(seconds=120))
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # self.log without a trainer must not warn
        for cls in ALL:
            ctx.budget = ctx.budget.restart()
            found += list(cls().preflight(ctx))
            assert_same(before, snapshot(module, t.optimizers))
    assert [f for f in found if f.severity.rank > 0] == []
    assert "log" not in module.__dict__  # the no-op logging patch was removed


def test_clone_is_independent_and_carries_optimizer_state(digits):
    X, y = digits
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    warm_optimizer(model, optimizer, X, y)
    t = TorchTrainable(model, nn.CrossEntropyLoss(), optimizer, (X, y))
    clone = t.clone()
    assert clone.get_lr() == 3e-3
    copied = clone.optimizer.state_dict()["state"]
    for k, s in optimizer.state_dict()["state"].items():
        assert torch.equal(s["exp_avg"], copied[k]["exp_avg"])
    params = {id(p) for p in clone.module.parameters()}
    assert all(id(p) in params for g in clone.optimizer.param_groups for p in g["params"])
    before = t.parameters()
    batch = t.batches("train", 1)[0]
    clone.set_lr(0.1)
    for _ in range(3):
        clone.train_step(batch)
    assert t.get_lr() == 3e-3
    assert all(np.array_equal(before[n], v) for n, v in t.parameters().items())
    assert any(not np.array_equal(before[n], v) for n, v in clone.parameters().items())


def test_data_forms(digits):
    X, y = digits
    model = nn.Linear(64, 10)
    forms = {
        "arrays": (X, y),
        "tensors": (torch.tensor(X), torch.tensor(y)),
        "dataset": TensorDataset(torch.tensor(X), torch.tensor(y)),
        "loader": DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=16),
        "list_of_batches": [(torch.tensor(X[:8]), torch.tensor(y[:8]))] * 3,
    }
    for name, data in forms.items():
        t = TorchTrainable(model, nn.CrossEntropyLoss(), None, data)
        batches = t.batches("train", 2)
        assert len(batches) == 2, name
        xb, yb = t.to_numpy(batches[0])
        assert xb.dtype == np.float32 and xb.shape[1] == 64 and yb.dtype.kind == "i", name
        rebuilt = t.from_numpy(xb[:4], yb[:4])
        assert t.forward(rebuilt).shape == (4, 10), name
        assert t.batches("val", 1) == []
    dicts = [{"image": torch.tensor(X[:8]), "label": torch.tensor(y[:8])}]
    t = TorchTrainable(model, nn.CrossEntropyLoss(), None, dicts)
    xb, yb = t.to_numpy(t.batches("train")[0])
    assert xb.shape == (8, 64) and set(t.from_numpy(xb, yb)) == {"image", "label"}


def test_batches_do_not_consume_random_state(digits):
    X, y = digits
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=32, shuffle=True)
    t = TorchTrainable(nn.Linear(64, 10), nn.CrossEntropyLoss(), None, loader)
    state = torch.get_rng_state().clone()
    t.batches("train", 3)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize(
    "tail, loss, expected",
    [
        ((), nn.CrossEntropyLoss(), ("cross_entropy", True, "linear")),
        ((nn.Softmax(dim=1),), nn.CrossEntropyLoss(), ("cross_entropy", True, "softmax")),
        ((nn.LogSoftmax(dim=1),), nn.NLLLoss(), ("nll", False, "log_softmax")),
        ((), F.cross_entropy, ("cross_entropy", True, "linear")),
        ((), lambda out, y: F.cross_entropy(out, y), ("cross_entropy", True, "linear")),
        ((), lambda out, y: 0.5 * F.cross_entropy(out, y), ("cross_entropy", True, "linear")),
        ((nn.LogSoftmax(dim=1),), lambda out, y: F.nll_loss(out, y), ("nll", False, "log_softmax")),
    ],
)
def test_loss_config_detection(digits, tail, loss, expected):
    torch.manual_seed(0)
    t = TorchTrainable(nn.Sequential(nn.Linear(64, 10), *tail), loss, None, digits)
    cfg = t.loss_config()
    assert (cfg.loss, cfg.from_logits, cfg.output_activation) == expected
    assert cfg.output_units == 10 and cfg.task == "classification"


def test_loss_config_binary_and_unknown(digits):
    X, y = digits
    yb = (y % 2).astype(np.float32)[:, None]
    t = TorchTrainable(nn.Sequential(nn.Linear(64, 1), nn.Sigmoid()), nn.BCELoss(), None, (X, yb))
    cfg = t.loss_config()
    assert (cfg.loss, cfg.from_logits, cfg.output_activation, cfg.output_units) == ("bce", False, "sigmoid", 1)
    weird = TorchTrainable(nn.Linear(64, 10), lambda out, y: out.pow(2).mean() + y.float().mean(), None, (X, y))
    assert weird.loss_config().loss is None


def test_lightning_loss_config_from_values_and_modules(digits):
    torch.manual_seed(0)
    t = LightningTrainable(LitNet(), train_data=digits)
    assert t.loss_config().loss == "cross_entropy"  # F.cross_entropy in training_step

    class WithModule(LitNet):
        def __init__(self):
            super().__init__()
            self.criterion = nn.CrossEntropyLoss(label_smoothing=0.1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return {"loss": self.criterion(self(x), y)}

    t = LightningTrainable(WithModule(), train_data=digits)
    assert t.loss_config().loss == "cross_entropy"
    assert t.loss(t.batches("train")[0]) > 0


def test_lightning_trainable_inside_a_running_trainer(digits, tmp_path):
    """What the Lightning callback does at train start: the live optimizer is used (and copied,
    never stepped), the trainer reference is not deep-copied, and the check is silent."""
    X, y = digits
    seen = {}

    class AtStart(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            t = LightningTrainable(pl_module, train_data=trainer.train_dataloader)
            seen["same_optimizer"] = t.optimizers[0] is trainer.optimizers[0]
            before = snapshot(pl_module, t.optimizers)
            seen["findings"] = list(OverfitBatch().preflight(PreflightContext(t)))
            after = snapshot(pl_module, t.optimizers)
            assert_same(before, after)
            seen["trainer_kept"] = pl_module.trainer is trainer

    torch.manual_seed(0)
    trainer = quiet_trainer(max_steps=2, callbacks=[AtStart()], default_root_dir=tmp_path)
    trainer.fit(LitNet(), datamodule=Digits(X, y))
    assert seen == {"same_optimizer": True, "findings": [], "trainer_kept": True}


def test_lightning_optimizer_forms(digits):
    class WithScheduler(LitNet):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 10)}

    class Lists(LitNet):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.02)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 10)]

    assert LightningTrainable(WithScheduler(), train_data=digits).get_lr() == 0.05
    t = LightningTrainable(Lists(), train_data=digits)
    assert t.get_lr() == 0.02 and t.clone().get_lr() == 0.02


def test_manual_optimization_is_refused_clearly(digits):
    class Manual(LitNet):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

    t = LightningTrainable(Manual(), train_data=digits)
    with pytest.raises(NotImplementedError, match="manual optimization"):
        t.clone().train_step(t.batches("train")[0])


def test_configure_optimizers_that_needs_a_trainer(digits):
    class OneCycle(LitNet):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            steps = self.trainer.estimated_stepping_batches  # needs a trainer
            return [opt], [torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=steps)]

    with pytest.raises(ValueError, match="optimizer="):
        LightningTrainable(OneCycle(), train_data=digits)
    module = OneCycle()
    t = LightningTrainable(module, train_data=digits, optimizer=torch.optim.SGD(module.parameters(), lr=0.1))
    assert t.get_lr() == 0.1 and t.clone().get_lr() == 0.1


def test_configured_rate_is_read_before_warmup(digits):
    model = nn.Linear(64, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01)  # lowers "lr" to 1e-3 at once
    assert TorchTrainable(model, nn.CrossEntropyLoss(), opt, digits).get_lr() == 0.1
    clone = TorchTrainable(model, nn.CrossEntropyLoss(), opt, digits).clone()
    clone.set_lr(0.5)
    assert clone.get_lr() == 0.5


def test_logits_that_happen_to_lie_in_0_1_are_not_taken_for_sigmoid(digits):
    X, y = digits
    model = nn.Linear(64, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.fill_(0.5)  # every logit 0.5 at init
    t = TorchTrainable(model, nn.BCEWithLogitsLoss(), None, (X, (y % 2).astype(np.float32)[:, None]))
    assert t.loss_config().output_activation == "linear"
    assert list(OutputLossMismatch().preflight(PreflightContext(t))) == []


def test_plain_torch_model_with_a_datamodule(digits):
    X, y = digits
    t = TorchTrainable(nn.Linear(64, 10), nn.CrossEntropyLoss(), None, Digits(X, y))
    assert len(t.batches("train", 2)) == 2 and len(t.batches("val", 1)) == 1
    assert t.clone().batches("train", 2)[0] is t.batches("train", 2)[0]


# -- input kind and run facts (mlcheck.task) ------------------------------------------------------


class Bag(nn.Module):
    """Token ids -> EmbeddingBag (mean) -> 3 classes."""

    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(1000, 8, mode="mean")
        self.head = nn.Linear(8, 3)

    def forward(self, ids):
        return self.head(self.bag(ids))


class PositionalMLP(nn.Module):
    """Float features plus a learned position embedding: the inputs are not embedding ids."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(64, 16)
        self.pos = nn.Embedding(1, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.proj(x) + self.pos.weight[0])


def test_embedding_bag_inputs_are_embedding_ids():
    ids = torch.randint(0, 1000, (64, 6), generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(1))
    t = TorchTrainable(Bag(), nn.CrossEntropyLoss(), None, (ids, y))
    assert t.input_kind() == "embedding_ids"
    emb = TorchTrainable(
        nn.Sequential(nn.Embedding(1000, 4), nn.Flatten(), nn.Linear(24, 3)), nn.CrossEntropyLoss(), None, (ids, y)
    )
    assert emb.input_kind() == "embedding_ids"


def test_float_inputs_are_not_embedding_ids_even_with_an_embedding_inside(digits):
    t = TorchTrainable(PositionalMLP(), nn.CrossEntropyLoss(), None, digits)
    assert t.input_kind() is None
    assert TorchTrainable(Net(), nn.CrossEntropyLoss(), None, digits).input_kind() is None


def test_sanity_run_facts_follow_the_loss_family(digits):
    from mlcheck.sanity.runner import _run_info

    X, y = digits
    multi_hot = np.eye(10, dtype=np.float32)[y] + np.eye(10, dtype=np.float32)[(y + 1) % 10]
    multilabel = TorchTrainable(nn.Linear(64, 10), nn.BCEWithLogitsLoss(), None, (X, multi_hot))
    info = _run_info(multilabel)
    assert (info.task, info.num_classes) == ("classification", 2)  # chance level ln 2 per label
    info = _run_info(TorchTrainable(nn.Linear(64, 10), nn.CrossEntropyLoss(), None, digits))
    assert (info.task, info.num_classes) == ("classification", 10)
    info = _run_info(TorchTrainable(nn.Linear(64, 1), nn.MSELoss(), None, (X, y.astype(np.float32)[:, None])))
    assert (info.task, info.num_classes) == ("regression", None)
