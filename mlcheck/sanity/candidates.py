"""Finding what to check in the user's imported model.py: `mlcheck_target()`, or the common
shapes at module level (a LightningModule with its data: a LightningDataModule, its own
dataloaders or module-level DataLoaders; a compiled Keras model with arrays
named like `x_train`/`y_train`, a torch module with a loss, an optimizer and a DataLoader).
Every plausible target is listed, complete or not, so that an error can name what was found."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mlcheck.errors import BadInput
from mlcheck.sanity.framework_types import (
    is_dataloader,
    is_datamodule,
    is_datamodule_class,
    is_keras_model,
    is_lightning_class,
    is_lightning_module,
    is_torch_loss,
    is_torch_module,
    is_torch_optimizer,
)
from mlcheck.sanity.trainable_factory import target_dict
from mlcheck.sanity.usercode import user_code
from mlcheck.trainable import Trainable

# Module-level names looked up, in this order, for a Keras model's arrays and a torch loss.
_X_NAMES = ("x_train", "X_train", "train_x", "train_X", "x_tr", "X_tr", "x", "X", "features")
_Y_NAMES = ("y_train", "Y_train", "train_y", "train_Y", "y_tr", "Y_tr", "y", "Y", "labels", "targets")
_XV_NAMES = ("x_val", "X_val", "x_valid", "X_valid", "x_validation", "X_validation", "val_x", "x_test", "X_test")
_YV_NAMES = ("y_val", "Y_val", "y_valid", "Y_valid", "y_validation", "Y_validation", "val_y", "y_test", "Y_test")
_LOSS_FUNCTION_NAMES = ("loss_fn", "criterion", "loss_func", "loss_function", "loss", "objective")

_HOW_TO_CHOOSE = (
    "Choose one with `mlcheck sanity {path}:NAME`, or define `mlcheck_target()` in {name} "
    'returning {{"model": ..., "train_data": ..., "val_data": ..., "loss": ..., "optimizer": ...}}.'
)


@dataclass
class Candidate:
    """One plausible target at module level: `build()` returns its target dict."""

    name: str
    description: str
    build: Callable[[], dict[str, Any]]
    problem: str = ""  # why it cannot be used as it stands (listed, never chosen)


def choice_message(display: str, path: Path, candidates: list[Candidate], usable: list[Candidate]) -> str:
    """Why no single target could be chosen: what was found, and how to choose."""
    how = _HOW_TO_CHOOSE.format(path=path, name=display)
    if not candidates:
        return (
            f"found no model to check in {display}: no mlcheck_target() function, no "
            "LightningModule, no compiled Keras model with x_train/y_train arrays, and no torch "
            "nn.Module with a loss, an optimizer and a DataLoader at module level. " + how
        )
    listing = "; ".join(f"{c.description}" + (f" (not usable: {c.problem})" if c.problem else "") for c in candidates)
    if not usable:
        return f"found no complete target in {display}. Found: {listing}. " + how
    return f"found {len(usable)} possible targets in {display}: {listing}. " + how


def from_object(module: ModuleType, name: str, obj: Any, display: str, user_dirs: tuple[str, ...]) -> dict[str, Any]:
    """The target dict for `model.py:NAME`: a function returning a target, or the model itself."""
    where = f"{display}:{name}"
    if is_lightning_class(obj):
        with user_code(f"{name}()", user_dirs):
            obj = obj()
    elif inspect.isfunction(obj) or inspect.ismethod(obj):
        with user_code(f"{where}()", user_dirs):
            obj = obj()
        if isinstance(obj, dict):
            return target_dict(obj, f"{where}()")
    if isinstance(obj, dict):
        return target_dict(obj, where)
    if isinstance(obj, Trainable):
        return {"model": obj}
    if is_lightning_module(obj):
        return _lightning_data(module, name, obj).build()
    if is_keras_model(obj):
        cand = _keras_candidate(module, name, obj)
    elif is_torch_module(obj):
        cand = _torch_candidate(module, name, obj)
    else:
        raise BadInput(
            f"{where} is a {type(obj).__name__}; expected a LightningModule, a Keras model, a torch "
            "nn.Module, or a function returning one of them or a target dict"
        )
    if cand.problem:
        raise BadInput(f"{where}: {cand.problem}")
    return cand.build()


def find_candidates(module: ModuleType) -> list[Candidate]:
    """Every plausible target at module level, complete or not."""
    names = {n: v for n, v in vars(module).items() if not n.startswith("_") and not inspect.ismodule(v)}
    out: list[Candidate] = []
    instances = {type(v) for v in names.values() if is_lightning_module(v)}
    for n, v in names.items():
        if is_lightning_module(v):
            out.append(_lightning_data(module, n, v))
        elif (
            is_lightning_class(v)
            and v.__module__ == module.__name__
            and v not in instances
            and not inspect.isabstract(v)
            and not _has_subclass_here(v, names)
        ):
            out.append(_lightning_class(module, n, v))
    for n, v in names.items():
        if is_keras_model(v):
            out.append(_keras_candidate(module, n, v))
    inner = _inner_modules(names)
    for n, v in names.items():
        if (
            is_torch_module(v)
            and not is_lightning_module(v)
            and not is_keras_model(v)  # on Keras' torch backend a Keras model is a torch module too
            and not is_torch_loss(v)
            and id(v) not in inner
        ):
            out.append(_torch_candidate(module, n, v))
    return out


def _has_subclass_here(cls: type, names: dict[str, Any]) -> bool:
    return any(inspect.isclass(v) and v is not cls and issubclass(v, cls) for v in names.values())


def _inner_modules(names: dict[str, Any]) -> set[int]:
    """ids of torch modules that are parts of other module-level modules (a backbone inside a
    LightningModule is not a target of its own)."""
    inner: set[int] = set()
    for v in names.values():
        if is_torch_module(v):
            for sub in v.modules():
                if sub is not v:
                    inner.add(id(sub))
    return inner


def _lightning_class(module: ModuleType, name: str, cls: type) -> Candidate:
    try:
        inspect.signature(cls).bind()
    except (TypeError, ValueError):
        return Candidate(name, f"LightningModule class `{name}`", dict, "it needs constructor arguments")
    data = _lightning_data(module, name, None)

    def build() -> dict[str, Any]:
        return _lightning_data(module, name, cls()).build()

    description = data.description.replace("LightningModule `", "LightningModule class `", 1)
    return Candidate(name, description, build, data.problem)


def _lightning_data(module: ModuleType, name: str, model: Any) -> Candidate:
    """A LightningModule with its data: a LightningDataModule at module level (instance, or a
    class built without arguments), else the module's own *_dataloader methods."""
    dms = [(n, v) for n, v in vars(module).items() if not n.startswith("_") and is_datamodule(v)]
    dm_classes = [
        (n, v)
        for n, v in vars(module).items()
        if is_datamodule_class(v) and v.__module__ == module.__name__ and not any(type(inst) is v for _, inst in dms)
    ]
    label = f"LightningModule `{name}`"
    if len(dms) + len(dm_classes) > 1:
        found = ", ".join(n for n, _ in dms + dm_classes)
        return Candidate(name, label, dict, f"several LightningDataModules ({found}); say which in mlcheck_target()")
    if dms:
        dm_name, dm = dms[0]
        return Candidate(
            name, f"{label} with LightningDataModule `{dm_name}`", lambda: {"model": model, "train_data": dm}
        )
    if dm_classes:
        dm_name, dm_cls = dm_classes[0]
        try:
            inspect.signature(dm_cls).bind()
        except (TypeError, ValueError):
            return Candidate(name, label, dict, f"LightningDataModule class `{dm_name}` needs constructor arguments")
        return Candidate(
            name, f"{label} with LightningDataModule `{dm_name}()`", lambda: {"model": model, "train_data": dm_cls()}
        )
    cls = type(model) if model is not None else getattr(module, name, None)
    if cls is not None and _overrides(cls, "train_dataloader"):
        return Candidate(name, f"{label} with its own dataloaders", lambda: {"model": model})
    # the loaders given to `trainer.fit(model, train_loader, val_loader)`, at module level
    train, val = _loaders({n: v for n, v in vars(module).items() if not n.startswith("_")})
    if len(train) > 1:
        found = ", ".join(n for n, _ in train)
        return Candidate(
            name,
            label,
            dict,
            f"no LightningDataModule, no train_dataloader(), and several DataLoaders that could be the training "
            f"one ({found}); name the training one train_... and the validation one val_..., or say which in "
            "mlcheck_target()",
        )
    if not train:
        return Candidate(name, label, dict, "no LightningDataModule, no train_dataloader() and no DataLoader")
    spec = {"train_data": train[0][1], **({"val_data": val[0][1]} if len(val) == 1 else {})}
    desc = f"{label} with DataLoader `{train[0][0]}`" + (f" and `{val[0][0]}`" if len(val) == 1 else "")
    return Candidate(name, desc, lambda: {"model": model, **spec})


def _loaders(g: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The module-level DataLoaders that could be the training data, and those named as validation
    data: one whose name holds "train" is the training one; else any not named val.../test..."""
    loaders = [(n, v) for n, v in g.items() if is_dataloader(v)]
    val = [(n, v) for n, v in loaders if any(s in n.lower() for s in ("val", "test"))]
    train = [(n, v) for n, v in loaders if "train" in n.lower()] or [(n, v) for n, v in loaders if (n, v) not in val]
    return train, val


def _overrides(cls: Any, method: str) -> bool:
    if not inspect.isclass(cls):
        return False
    for klass in cls.__mro__:
        if method in klass.__dict__:
            return not klass.__module__.startswith(("lightning.", "pytorch_lightning."))
    return False


def _keras_candidate(module: ModuleType, name: str, model: Any) -> Candidate:
    g = vars(module)
    x = _first_array(g, _X_NAMES)
    y = _first_array(g, _Y_NAMES)
    label = f"Keras model `{name}`"
    if x is None or y is None:
        return Candidate(name, label, dict, "no training arrays (looked for x_train/X_train and y_train)")
    xv, yv = _first_array(g, _XV_NAMES), _first_array(g, _YV_NAMES)
    desc = f"{label} with arrays `{x[0]}`, `{y[0]}`" + (f", `{xv[0]}`, `{yv[0]}`" if xv and yv else "")
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        return Candidate(
            name,
            desc,
            dict,
            "it is not compiled; call model.compile(...) at import or return loss and optimizer from mlcheck_target()",
        )

    def build() -> dict[str, Any]:
        spec = {"model": model, "train_data": (x[1], y[1])}
        if xv and yv:
            spec["val_data"] = (xv[1], yv[1])
        return spec

    return Candidate(name, desc, build)


def _first_array(g: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    """The first of `names` bound to an array, or to a dict of arrays of one length (a Keras
    model's named inputs, `x_train = {"a": xa, "b": xb}`, which `fit` and the checks take as is)."""
    for n in names:
        v = g.get(n)
        if _is_array(v) or _is_array_dict(v):
            return n, v
    return None


def _is_array(v: Any) -> bool:
    return v is not None and hasattr(v, "shape") and hasattr(v, "__len__") and not is_torch_module(v)


def _is_array_dict(v: Any) -> bool:
    if not isinstance(v, dict) or not v or not all(_is_array(a) for a in v.values()):
        return False
    return len({len(a) for a in v.values()}) == 1


def _torch_candidate(module: ModuleType, name: str, model: Any) -> Candidate:
    g = {n: v for n, v in vars(module).items() if not n.startswith("_")}
    label = f"torch module `{name}`"
    optimizers = [(n, v) for n, v in g.items() if is_torch_optimizer(v) and _optimizes(v, model)]
    losses = [(n, v) for n, v in g.items() if is_torch_loss(v)] or [
        (n, g[n]) for n in _LOSS_FUNCTION_NAMES if n in g and callable(g[n]) and not inspect.isclass(g[n])
    ]
    train, val = _loaders(g)
    missing = []
    if len(optimizers) != 1:
        missing.append(
            "an optimizer over its parameters"
            if not optimizers
            else f"one optimizer (found {', '.join(n for n, _ in optimizers)})"
        )
    if len(losses) != 1:
        missing.append(
            "a loss (nn.CrossEntropyLoss() or a function named loss_fn/criterion)"
            if not losses
            else f"one loss (found {', '.join(n for n, _ in losses)})"
        )
    if len(train) != 1:
        missing.append(
            "a training DataLoader"
            if not train
            else f"one training DataLoader (found {', '.join(n for n, _ in train)})"
        )
    if missing:
        return Candidate(name, label, dict, "needs " + ", ".join(missing))
    desc = f"{label} with loss `{losses[0][0]}`, optimizer `{optimizers[0][0]}`, DataLoader `{train[0][0]}`" + (
        f" and `{val[0][0]}`" if len(val) == 1 else ""
    )

    def build() -> dict[str, Any]:
        spec = {"model": model, "loss": losses[0][1], "optimizer": optimizers[0][1], "train_data": train[0][1]}
        if len(val) == 1:
            spec["val_data"] = val[0][1]
        return spec

    return Candidate(name, desc, build)


def _optimizes(optimizer: Any, model: Any) -> bool:
    ids = {id(p) for p in model.parameters()}
    return any(id(p) in ids for group in optimizer.param_groups for p in group["params"])
