"""Building the `Trainable` for what discovery found: a target dict (`model`, `train_data`,
optionally `val_data`, `loss`, `optimizer`), wrapped by the one integration it needs, which is
imported only then."""

from __future__ import annotations

from typing import Any

from mlcheck.errors import BadInput
from mlcheck.sanity.framework_types import is_keras_model, is_lightning_module, is_torch_module, loaded_classes
from mlcheck.trainable import Trainable

#: Keys a target dict may have.
TARGET_KEYS = ("model", "train_data", "val_data", "loss", "optimizer")


def make_trainable(spec: dict[str, Any], where: str = "the target") -> Trainable:
    """The `Trainable` for a target dict, importing only the integration it needs."""
    spec = target_dict(spec, where)
    model = spec["model"]
    if isinstance(model, Trainable):
        return model
    if "train_data" not in spec and not is_lightning_module(model):
        raise BadInput(f"{where} has no 'train_data' (a DataLoader, arrays (x, y) or a dataset)")
    if is_lightning_module(model):
        from mlcheck.integrations.torch import LightningTrainable

        trainable: Trainable = LightningTrainable(
            model,
            train_data=spec.get("train_data"),
            val_data=spec.get("val_data"),
        )
        kind = _torch_input_kind(model)
    elif is_keras_model(model):
        from mlcheck.integrations.keras.trainable import KerasTrainable, first_layer_kind

        trainable = KerasTrainable(
            model,
            train_data=spec["train_data"],
            val_data=spec.get("val_data"),
            loss=spec.get("loss"),
            optimizer=spec.get("optimizer"),
        )
        kind = first_layer_kind(model)
    elif is_torch_module(model):
        if spec.get("loss") is None:
            raise BadInput(f"{where}: a plain torch nn.Module needs a 'loss' too (e.g. nn.CrossEntropyLoss())")
        import torch

        # a Keras-style name ("mse", "adam") would fail inside the first step, read as the user's code
        if not callable(spec["loss"]):
            raise BadInput(
                f"{where}: 'loss' is {spec['loss']!r}; a plain torch nn.Module needs a loss module or "
                "function (e.g. nn.CrossEntropyLoss())"
            )
        optimizer = spec.get("optimizer")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise BadInput(
                f"{where}: 'optimizer' is {optimizer!r}; a plain torch nn.Module needs a torch.optim "
                "optimizer (e.g. torch.optim.Adam(model.parameters())), or none"
            )
        from mlcheck.integrations.torch import TorchTrainable

        trainable = TorchTrainable(
            model,
            spec["loss"],
            spec.get("optimizer"),
            train_data=spec["train_data"],
            val_data=spec.get("val_data"),
        )
        kind = _torch_input_kind(model)
    else:
        raise BadInput(
            f"{where}: 'model' is a {type(model).__name__}; expected a LightningModule, a Keras "
            "model, a torch nn.Module or a mlcheck.trainable.Trainable"
        )
    if getattr(trainable, "input_kind", None) is None:
        # what the data checks need to know about the inputs (e.g. token ids are not "unscaled")
        trainable.input_kind = kind  # type: ignore[attr-defined]
    return trainable


def _torch_input_kind(model: Any) -> str | None:
    """ "embedding_ids" when the model holds an embedding lookup (as the Lightning callback says)."""
    embedding = loaded_classes("torch.nn.Embedding", "torch.nn.EmbeddingBag")
    return "embedding_ids" if any(isinstance(m, embedding) for m in model.modules()) else None


def target_dict(spec: Any, where: str) -> dict[str, Any]:
    """`spec` checked as a target dict (a copy); a bare Trainable becomes {"model": it}."""
    if isinstance(spec, Trainable):
        return {"model": spec}
    if not isinstance(spec, dict):
        raise BadInput(
            f"{where} returned a value of type {type(spec).__name__}; it must return a dict with 'model' and "
            "'train_data' (optional: 'val_data', 'loss', 'optimizer')"
        )
    unknown = set(spec) - set(TARGET_KEYS)
    if unknown:
        raise BadInput(f"{where} returned unknown key(s) {sorted(unknown)}; known keys: {', '.join(TARGET_KEYS)}")
    if "model" not in spec:
        raise BadInput(f"{where} returned no 'model'; known keys: {', '.join(TARGET_KEYS)}")
    return dict(spec)
