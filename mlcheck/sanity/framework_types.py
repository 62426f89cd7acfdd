"""Is this object a LightningModule, a Keras model, a torch module...? Answered without
importing any framework: a class is looked up only in frameworks model.py already imported
(an object of a framework that is not imported cannot exist)."""

from __future__ import annotations

import inspect
import sys
from typing import Any


def loaded_classes(*paths: str) -> tuple[type, ...]:
    """The classes named by dotted paths whose modules are already imported."""
    out = []
    for path in paths:
        mod_name, _, attr = path.rpartition(".")
        mod = sys.modules.get(mod_name)
        cls = getattr(mod, attr, None) if mod is not None else None
        if isinstance(cls, type):
            out.append(cls)
    return tuple(out)


def _isinstance(obj: Any, *paths: str) -> bool:
    classes = loaded_classes(*paths)
    return bool(classes) and isinstance(obj, classes)


_LM = ("lightning.pytorch.LightningModule", "pytorch_lightning.LightningModule")
_DM = ("lightning.pytorch.LightningDataModule", "pytorch_lightning.LightningDataModule")


def is_lightning_module(obj: Any) -> bool:
    return _isinstance(obj, *_LM)


def is_lightning_class(obj: Any) -> bool:
    return _is_subclass(obj, *_LM)


def is_datamodule(obj: Any) -> bool:
    return _isinstance(obj, *_DM)


def is_datamodule_class(obj: Any) -> bool:
    return _is_subclass(obj, *_DM)


def _is_subclass(obj: Any, *paths: str) -> bool:
    classes = loaded_classes(*paths)
    return inspect.isclass(obj) and bool(classes) and issubclass(obj, classes) and obj not in classes


def is_keras_model(obj: Any) -> bool:
    return _isinstance(obj, "keras.Model")


def is_torch_module(obj: Any) -> bool:
    return _isinstance(obj, "torch.nn.Module")


def is_torch_loss(obj: Any) -> bool:
    return _isinstance(obj, "torch.nn.modules.loss._Loss")


def is_torch_optimizer(obj: Any) -> bool:
    return _isinstance(obj, "torch.optim.Optimizer")


def is_dataloader(obj: Any) -> bool:
    return _isinstance(obj, "torch.utils.data.DataLoader")
