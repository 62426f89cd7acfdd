"""The Keras side of the fault suite: one configurable Sequential model and its `fit`.

Keras 3 on the torch backend (set before `import keras`, as every script here must). Written the
way a user writes a small Keras program: `compile(loss=..., metrics=["accuracy"])`, `fit` with
`validation_data`.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="mlcheck-bench-keras-"))

import keras  # noqa: E402

from faults.data import Data  # noqa: E402


class BadOpAt(keras.layers.Layer):
    """A custom layer computing `op` ("log": log(relu(x)), "sqrt": sqrt(x), "div": x / (x - x))
    from its training call `at` on, the identity before: a NaN/Inf born at a late step."""

    def __init__(self, op: str, at: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.op = op
        self.at = at
        self.calls = 0

    def call(self, x: Any, training: Any = None) -> Any:
        if training:
            self.calls += 1
        if not training or self.calls <= self.at:
            return x
        if self.op == "log":
            return keras.ops.log(keras.ops.relu(x))
        if self.op == "sqrt":
            return keras.ops.sqrt(x)
        return x / (x - x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "op": self.op, "at": self.at}


def layer_model(name: str, n_in: int, n_out: int) -> keras.Model:  # noqa: C901  (one branch per model)
    """The per-layer models of `catalog.LAYER_MODELS` (layers named `hidden_<i>`, `out`)."""
    from faults.catalog import NAN_STEP

    def dense(i: int, units: int = 64, **kwargs: Any) -> Any:
        return keras.layers.Dense(units, name=f"hidden_{i}", **kwargs)

    head = keras.layers.Dense(n_out, name="out")
    if name == "vanishing":
        small = keras.initializers.RandomNormal(stddev=0.01)
        body = [dense(i, activation="sigmoid", kernel_initializer=small) for i in range(10)]
    elif name in ("exploding", "deep_relu"):
        init = keras.initializers.RandomNormal(stddev=1.0) if name == "exploding" else "glorot_uniform"
        body = [dense(i, activation="relu", kernel_initializer=init) for i in range(6)]
    elif name == "dead":
        body = [
            dense(0, activation="relu"),
            dense(1, 128, activation="relu", bias_initializer=keras.initializers.Constant(-10.0)),
        ]
    elif name in ("saturated", "tanh"):
        body = [dense(0, activation="tanh")]
    elif name == "frozen":
        body = [
            dense(0, activation="relu"),
            dense(1, activation="relu", trainable=False),
            dense(2, activation="relu"),
        ]  # meant hidden_0
    elif name == "frozen_backbone":
        body = [
            dense(0, activation="relu", trainable=False),
            dense(1, activation="relu", trainable=False),
            dense(2, 32, activation="relu"),
        ]
    elif name.startswith("nan_"):
        op = name.removeprefix("nan_")
        body = [dense(0, activation="relu"), dense(1, 32), BadOpAt(op, NAN_STEP, name=f"{op}_layer")]
    elif name == "attention":
        inputs = keras.Input((n_in,))
        seq = keras.layers.Reshape((8, 8))(inputs)
        att = keras.layers.MultiHeadAttention(2, 4, name="attention")(seq, seq, use_causal_mask=True)
        x = keras.layers.LayerNormalization(name="norm")(keras.layers.Flatten()(att))
        x = dense(0, activation="relu")(x)
        return keras.Model(inputs, head(x))
    else:
        raise KeyError(name)
    return keras.Sequential([keras.Input((n_in,)), *body, head])


def build_model(cfg: dict[str, Any], data: Data, steps_per_epoch: int) -> keras.Model:
    if cfg.get("layers"):
        model = layer_model(cfg["layers"], data.x_train.shape[1], data.num_classes)
        model.compile(
            optimizer=build_optimizer(cfg, steps_per_epoch),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model
    init = "zeros" if cfg["init"] == "zeros" else "glorot_uniform"
    bias_init = "zeros"
    reg = keras.regularizers.L2(cfg["l2"]) if cfg["l2"] else None
    layers: list[Any] = [keras.Input(shape=(data.x_train.shape[1],))]
    for h in cfg["hidden"]:
        layers.append(
            keras.layers.Dense(h, kernel_initializer=init, bias_initializer=bias_init, kernel_regularizer=reg)
        )
        if cfg["batchnorm"]:
            layers.append(keras.layers.BatchNormalization())
        if cfg["activation"] == "relu":
            layers.append(keras.layers.Activation("relu"))
        if cfg["dropout"]:
            layers.append(keras.layers.Dropout(cfg["dropout"]))
    classification = data.task == "classification"
    layers.append(
        keras.layers.Dense(
            data.num_classes if classification else 1,
            activation="softmax" if cfg["output_activation"] == "softmax" else None,
            kernel_initializer=init,
            bias_initializer=bias_init,
            kernel_regularizer=reg,
        )
    )
    model = keras.Sequential(layers)
    model.compile(
        optimizer=build_optimizer(cfg, steps_per_epoch),
        loss=(
            keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            if classification
            else keras.losses.MeanSquaredError()
        ),
        metrics=["accuracy"] if classification else [],
    )
    return model


def build_optimizer(cfg: dict[str, Any], steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr: Any = cfg["lr"]
    total = cfg["epochs"] * steps_per_epoch
    schedule = cfg["schedule"]
    if schedule == "step":
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(
            [4 * steps_per_epoch, 8 * steps_per_epoch], [cfg["lr"], cfg["lr"] / 10, cfg["lr"] / 100]
        )
    elif schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(cfg["lr"], decay_steps=total)
    elif schedule in ("warmup", "onecycle"):
        warm = max(1, total // 10)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=total - warm, warmup_target=cfg["lr"], warmup_steps=warm
        )
    elif schedule is not None:
        raise ValueError(f"unknown schedule {schedule!r}")
    if cfg["optimizer"] == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=cfg["momentum"])
    if cfg["optimizer"] == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=cfg["weight_decay"])
    return keras.optimizers.Adam(learning_rate=lr)


class StepRecorder(keras.callbacks.Callback):
    """Notes the step at which each mlcheck finding first appeared (placed after mlcheck's
    callback) and how many steps ran."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.source = source
        self.seen = 0
        self.observed: list[int] = []
        self.layer_observations: list[Any] = []  # every LayerObservation the run recorded
        self._layers_seen = 0
        self.steps = 0
        self.nonfinite_step: int | None = None

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

    def _note(self) -> None:
        self._collect_layers()
        findings = getattr(self.source, "findings", None) or []
        while self.seen < len(findings):
            self.observed.append(self.steps)
            self.seen += 1

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.steps += 1
        loss = (logs or {}).get("loss")
        if self.nonfinite_step is None and loss is not None and not math.isfinite(float(loss)):
            self.nonfinite_step = self.steps
        self._note()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._note()

    def on_train_end(self, logs: Any = None) -> None:
        self._note()


def steps_per_epoch(cfg: dict[str, Any], data: Data) -> int:
    return math.ceil(len(data.x_train) / cfg["batch_size"])


def build(cfg: dict[str, Any], data: Data, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return build_model(cfg, data, steps_per_epoch(cfg, data))


def train(
    cfg: dict[str, Any], data: Data, mode: str, seed: int, workdir: str, make_callback: Any = None
) -> dict[str, Any]:
    """Trains once. `mode`: "mlcheck" (make_callback() added), "safety_net" (TerminateOnNaN +
    EarlyStopping on val_loss, patience 5) or "plain". Returns the raw outcome."""
    model = build(cfg, data, seed)
    spe = steps_per_epoch(cfg, data)
    callbacks: list[Any] = []
    cb = early = None
    if mode == "mlcheck":
        cb = make_callback()
        callbacks.append(cb)
    elif mode == "safety_net":
        early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)
        callbacks += [keras.callbacks.TerminateOnNaN(), early]
    recorder = StepRecorder(cb)
    callbacks.append(recorder)
    history = model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        shuffle=data.shuffle,
        callbacks=callbacks,
        verbose=0,
    )
    final = {k: float(v[-1]) for k, v in history.history.items() if k in ("val_loss", "val_accuracy", "loss") and v}
    out: dict[str, Any] = {
        "total_steps": cfg["epochs"] * spe,
        "steps_run": recorder.steps,
        "findings": list(getattr(cb, "findings", []) or []),
        "observed_steps": recorder.observed,
        "layer_observations": recorder.layer_observations,
        "final": final,
    }
    if mode == "safety_net":
        if early is not None and early.stopped_epoch:
            out["stopped"] = {"reason": "patience", "step": recorder.steps}
        elif recorder.steps < cfg["epochs"] * spe:
            # TerminateOnNaN stops at the batch whose loss is NaN or Inf
            out["stopped"] = {"reason": "nonfinite", "step": recorder.steps}
    return out


def sanity_target(cfg: dict[str, Any], data: Data, seed: int) -> dict[str, Any]:
    """What `mlcheck.sanity` is given for this program: the compiled model and its data."""
    model = build(cfg, data, seed)
    return {"model": model, "train_data": (data.x_train, data.y_train), "val_data": (data.x_val, data.y_val)}
