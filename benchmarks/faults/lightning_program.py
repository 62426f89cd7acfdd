"""The Lightning side of the fault suite: one configurable LightningModule and its training.

Written the way a user writes a small Lightning program (a `net` Sequential, a `loss_fn` module,
`self.log("train_loss")`/`self.log("val_loss")`), so that mlcheck sees what it would see in the
wild. Imports torch and Lightning: only the worker processes of `run_faults.py` load this.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

try:
    import lightning.pytorch as L
    from lightning.pytorch.callbacks import Callback, EarlyStopping
except ImportError:  # pragma: no cover - only pytorch_lightning installed
    import pytorch_lightning as L  # type: ignore[no-redef]
    from pytorch_lightning.callbacks import Callback, EarlyStopping  # type: ignore[no-redef]

from faults.data import Data


class BadOpAt(nn.Module):
    """A custom layer computing `op` ("log": log(relu(x)), "sqrt": sqrt(x), "div": x / (x - x))
    from its training call `at` on, the identity before: a NaN/Inf born at a late step."""

    def __init__(self, op: str, at: int) -> None:
        super().__init__()
        self.op = op
        self.at = at
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
        if not self.training or self.calls <= self.at:
            return x
        if self.op == "log":
            return torch.log(torch.relu(x))
        if self.op == "sqrt":
            return torch.sqrt(x)
        return x / (x - x)


class Attention(nn.Module):
    """Self-attention over the 8 rows of a digit with a causal -inf mask (healthy)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.register_buffer("mask", torch.triu(torch.full((8, 8), float("-inf")), diagonal=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.reshape(-1, 8, 8)
        out, _ = self.attn(seq, seq, seq, attn_mask=self.mask)
        return out.reshape(-1, 64)


def _linear(width: int, out: int, std: float | None = None, bias: float | None = None) -> nn.Linear:
    linear = nn.Linear(width, out)
    if std is not None:
        nn.init.normal_(linear.weight, std=std)
    if bias is not None:
        nn.init.constant_(linear.bias, bias)
    return linear


def layer_net(name: str, n_in: int, n_out: int) -> nn.Sequential:  # noqa: C901  (one branch per model)
    """The per-layer models of `catalog.LAYER_MODELS` (module paths `net.<index>`)."""
    from faults.catalog import NAN_STEP

    if name == "vanishing":
        layers: list[nn.Module] = []
        for i in range(10):
            layers += [_linear(n_in if i == 0 else 64, 64, std=0.01), nn.Sigmoid()]
        return nn.Sequential(*layers, nn.Linear(64, n_out))
    if name in ("exploding", "deep_relu"):
        layers = []
        for i in range(6):
            layers += [_linear(n_in if i == 0 else 64, 64, std=1.0 if name == "exploding" else None), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(64, n_out))
    if name == "dead":
        return nn.Sequential(
            nn.Linear(n_in, 64), nn.ReLU(), _linear(64, 128, bias=-10.0), nn.ReLU(), nn.Linear(128, n_out)
        )  # fmt: skip
    if name in ("saturated", "tanh"):
        return nn.Sequential(nn.Linear(n_in, 64), nn.Tanh(), nn.Linear(64, n_out))
    if name == "frozen":
        net = nn.Sequential(nn.Linear(n_in, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, n_out))
        net[2].requires_grad_(False)  # meant net[0]
        return net
    if name == "frozen_backbone":
        backbone = nn.Sequential(nn.Linear(n_in, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        backbone.requires_grad_(False)  # pre-trained, frozen on purpose
        return nn.Sequential(backbone, nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, n_out))
    if name.startswith("nan_"):
        op = name.removeprefix("nan_")
        return nn.Sequential(
            nn.Linear(n_in, 64), nn.ReLU(), nn.Linear(64, 32), BadOpAt(op, NAN_STEP), nn.Linear(32, n_out)
        )  # fmt: skip
    if name == "attention":
        return nn.Sequential(Attention(), nn.LayerNorm(64), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, n_out))
    raise KeyError(name)


def build_net(cfg: dict[str, Any], in_features: int, out_features: int) -> nn.Sequential:
    if cfg.get("layers"):
        return layer_net(cfg["layers"], in_features, out_features)
    layers: list[nn.Module] = []
    width = in_features
    for h in cfg["hidden"]:
        layers.append(nn.Linear(width, h))
        if cfg["batchnorm"]:
            layers.append(nn.BatchNorm1d(h))
        if cfg["activation"] == "relu":
            layers.append(nn.ReLU())
        if cfg["dropout"]:
            layers.append(nn.Dropout(cfg["dropout"]))
        width = h
    layers.append(nn.Linear(width, out_features))
    if cfg["output_activation"] == "softmax":
        layers.append(nn.Softmax(dim=-1))
    net = nn.Sequential(*layers)
    if cfg["init"] == "zeros":
        for m in net.modules():
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)
    return net


class Classifier(L.LightningModule):
    def __init__(
        self, cfg: dict[str, Any], in_features: int, num_classes: int, task: str, steps_per_epoch: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.task = task
        self.steps_per_epoch = steps_per_epoch
        self.net = build_net(cfg, in_features, num_classes if task == "classification" else 1)
        self.loss_fn = nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out if self.task == "classification" else out.squeeze(-1)

    def _loss(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        out = self(x)
        return self.loss_fn(out, y), out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss(batch)
        if self.cfg["l2"]:
            penalty = sum((m.weight**2).sum() for m in self.net if isinstance(m, nn.Linear))
            loss = loss + self.cfg["l2"] * penalty
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, out = self._loss(batch)
        self.log("val_loss", loss, on_epoch=True)
        if self.task == "classification":
            self.log("val_acc", (out.argmax(-1) == batch[1]).float().mean(), on_epoch=True)

    def configure_optimizers(self) -> Any:
        cfg = self.cfg
        params = self.net[-1].parameters() if cfg["frozen"] else self.parameters()
        if cfg["optimizer"] == "sgd":
            opt = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"])
        elif cfg["optimizer"] == "adamw":
            opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        else:
            opt = torch.optim.Adam(params, lr=cfg["lr"])
        total = cfg["epochs"] * self.steps_per_epoch
        schedule = cfg["schedule"]
        if schedule is None:
            return opt
        if schedule == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4 * self.steps_per_epoch, gamma=0.1)
        elif schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        elif schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=total)
        elif schedule == "warmup":
            warm = max(1, total // 10)

            def factor(step: int) -> float:
                if step < warm:
                    return (step + 1) / warm
                return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        else:
            raise ValueError(f"unknown schedule {schedule!r}")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def loaders(data: Data, batch_size: int) -> tuple[DataLoader, DataLoader]:
    train = TensorDataset(torch.from_numpy(data.x_train), torch.from_numpy(data.y_train))
    val = TensorDataset(torch.from_numpy(data.x_val), torch.from_numpy(data.y_val))
    return (
        DataLoader(train, batch_size=batch_size, shuffle=data.shuffle),
        DataLoader(val, batch_size=256),
    )


class StepRecorder(Callback):
    """Notes the global step at which each mlcheck finding first appeared (placed after the
    mlcheck callback, so it sees findings raised in the same hook)."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.seen = 0
        self.observed: list[int] = []
        self.layer_observations: list[Any] = []  # every LayerObservation the run recorded
        self._layers_seen = 0
        self.steps = 0

    def _collect_layers(self) -> None:
        """Copies the layer observations recorded since the last call out of the monitor's
        ring buffer (`run.layers` keeps only the latest few; a step adds at most one)."""
        monitor = getattr(getattr(self.source, "live", None), "monitor", None)
        history = getattr(getattr(monitor, "run", None), "layers", None)
        if history is None or history.total == self._layers_seen:
            return
        new = min(history.total - self._layers_seen, len(history))
        self.layer_observations += list(history)[-new:]
        self._layers_seen = history.total

    def _note(self, trainer: Any) -> None:
        self.steps = int(trainer.global_step)
        self._collect_layers()
        findings = getattr(self.source, "findings", None) or []
        while self.seen < len(findings):
            self.observed.append(self.steps)
            self.seen += 1

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        self._note(trainer)

    def on_validation_epoch_end(self, trainer: Any, *args: Any) -> None:
        self._note(trainer)

    def on_train_epoch_end(self, trainer: Any, *args: Any) -> None:
        self._note(trainer)

    def on_train_end(self, trainer: Any, *args: Any) -> None:
        self._note(trainer)


def divergence_threshold(data: Data) -> float:
    """The safety net's divergence threshold on val_loss: 3x the loss of an uninformed guess
    (ln C for C classes; the target variance, 1 after standardising, for regression)."""
    return 3 * (math.log(data.num_classes) if data.task == "classification" else 1.0)


def build(cfg: dict[str, Any], data: Data, seed: int) -> tuple[Classifier, DataLoader, DataLoader]:
    L.seed_everything(seed, verbose=False)
    train, val = loaders(data, cfg["batch_size"])
    model = Classifier(cfg, data.x_train.shape[1], data.num_classes, data.task, len(train))
    return model, train, val


def train(
    cfg: dict[str, Any], data: Data, mode: str, seed: int, workdir: str, make_callback: Any = None
) -> dict[str, Any]:
    """Trains once. `mode`: "mlcheck" (make_callback() added), "safety_net" (EarlyStopping with
    check_finite and divergence_threshold) or "plain". Returns the raw outcome."""
    model, train_loader, val_loader = build(cfg, data, seed)
    total = cfg["epochs"] * len(train_loader)
    callbacks: list[Any] = []
    net = cb = None
    if mode == "mlcheck":
        cb = make_callback()
        callbacks.append(cb)
    elif mode == "safety_net":
        net = EarlyStopping(
            monitor="val_loss",
            mode="min",
            patience=5,
            check_finite=True,
            divergence_threshold=divergence_threshold(data),
        )
        callbacks.append(net)
    recorder = StepRecorder(cb)
    callbacks.append(recorder)
    trainer = L.Trainer(
        max_epochs=cfg["epochs"],
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        default_root_dir=workdir,
        deterministic=False,
    )
    trainer.fit(model, train_loader, val_loader)
    out: dict[str, Any] = {
        "total_steps": total,
        "steps_run": int(trainer.global_step),
        "findings": list(getattr(cb, "findings", []) or []),
        "observed_steps": recorder.observed,
        "layer_observations": recorder.layer_observations,
        "final": {
            k: float(v) for k, v in trainer.callback_metrics.items() if k in ("val_loss", "val_acc", "train_loss_epoch")
        },
    }
    if net is not None:
        reason = getattr(net, "stopping_reason", None)
        reason_name = getattr(reason, "name", str(reason))
        if net.stopped_epoch or (reason is not None and reason_name != "NOT_STOPPED"):
            kind = {
                "NON_FINITE_METRIC": "nonfinite",
                "DIVERGENCE_THRESHOLD": "divergence",
                "PATIENCE_EXHAUSTED": "patience",
            }.get(reason_name, reason_name.lower())
            out["stopped"] = {"reason": kind, "step": int(trainer.global_step)}
    return out


def sanity_target(cfg: dict[str, Any], data: Data, seed: int) -> dict[str, Any]:
    """What `mlcheck.sanity` is given for this program: the module and its loaders."""
    model, train_loader, val_loader = build(cfg, data, seed)
    return {"model": model, "train_data": train_loader, "val_data": val_loader}
