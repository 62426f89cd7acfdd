"""Finding what to check in a user's model.py, and wrapping it in the right `Trainable`.

`mlcheck sanity model.py` imports model.py as a module (so training belongs under
`if __name__ == "__main__":`), then looks for, in this order:

1. `model.py:NAME`, when given: a function returning a target, or the model object itself.
2. A function `mlcheck_target()` returning a dict with `model`, `train_data` and optionally
   `val_data`, `loss`, `optimizer`.
3. Common shapes at module level: a LightningModule (instance, or a class that builds without
   arguments) with a LightningDataModule or its own dataloaders; a compiled Keras model with
   arrays named like `x_train`/`y_train`; a torch `nn.Module` with a loss, an optimizer and a
   DataLoader.

Every error raised here is a `BadInput` whose message says what was found and how to choose.
Errors in the user's own code are a `UserCodeError`, carrying the user's traceback with
mlcheck's and the import machinery's frames removed.

This module puts the steps in order; each step is its own module:
`mlcheck.sanity.import_guard` (importing model.py safely), `mlcheck.sanity.candidates`
(finding targets in it), `mlcheck.sanity.trainable_factory` (the `Trainable` for a target) and
`mlcheck.sanity.usercode` (the user's errors and tracebacks).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mlcheck.errors import BadInput
from mlcheck.preflight_context import Budget
from mlcheck.sanity.candidates import choice_message, find_candidates, from_object
from mlcheck.sanity.import_guard import (
    SLOW_IMPORT_SECONDS,
    ImportTime,
    TrainingAtImport,
    import_model_file,
    slow_import_note,
)
from mlcheck.sanity.trainable_factory import TARGET_KEYS, make_trainable, target_dict
from mlcheck.sanity.usercode import UserCodeError, caller_dirs, user_code, user_traceback
from mlcheck.sanity.watchdog import import_seconds, stage
from mlcheck.spelling import meant
from mlcheck.trainable import Trainable

# Names this module has always offered (`mlcheck.sanity.discovery.UserCodeError` is documented;
# benchmarks and the runner import the others from here).
__all__ = [
    "SLOW_IMPORT_SECONDS",
    "TARGET_KEYS",
    "ImportTime",
    "Target",
    "TrainingAtImport",
    "UserCodeError",
    "import_model_file",
    "make_trainable",
    "resolve",
    "split_selector",
    "user_code",
    "user_traceback",
]


@dataclass
class Target:
    """What discovery found: the Trainable to check and where it came from."""

    trainable: Trainable
    name: str
    framework: str
    import_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    user_paths: tuple[str, ...] = ()


def resolve(target: Any, budget_seconds: float = Budget.seconds) -> Target:
    """A `Target` from a path ("model.py", "model.py:fn"), a target dict or a Trainable.

    Importing model.py and building its target run under the safety nets of
    `mlcheck.sanity.watchdog` for a per-check budget of `budget_seconds` (a `StageTimeout`
    past them)."""
    if isinstance(target, Trainable):
        return Target(target, type(target).__name__, target.framework or "custom")
    if isinstance(target, dict):
        trainable = make_trainable(target, where="the target dict")
        return Target(trainable, "dict", trainable.framework, user_paths=caller_dirs())
    # Building the target is part of loading model.py: the first optimizer or DataLoader may
    # import much of torch (~6 s on a loaded machine), so it gets the import's net.
    net = import_seconds(budget_seconds)
    if isinstance(target, ModuleType):
        return _from_module(
            target, None, Path(getattr(target, "__file__", "") or target.__name__), ImportTime(0.0), net
        )
    if isinstance(target, (str, os.PathLike)):
        path, selector = split_selector(os.fspath(target))
        with stage("the import", path.name, net, (str(path.resolve().parent),)):
            module, took = import_model_file(path)
        return _from_module(module, selector, path, took, net)
    raise BadInput(
        f"cannot check a {type(target).__name__}: pass a path to model.py, a dict with "
        "'model' and 'train_data', or a mlcheck.trainable.Trainable"
    )


def split_selector(spec: str) -> tuple[Path, str | None]:
    """ "model.py:build" -> (Path("model.py"), "build"); drive letters stay with the path."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail and not tail.startswith(("\\", "/")) and tail.isidentifier():
        return Path(head), tail
    return Path(spec), None


def _from_module(module: ModuleType, selector: str | None, path: Path, took: ImportTime, net: float) -> Target:
    user_dirs = (str(path.resolve().parent),)
    display = path.name
    note = slow_import_note(display, took)
    with stage("building the target", display, net, user_dirs):
        chosen, label = _choose(module, selector, path, user_dirs)
    with user_code(f"preparing the target from {display}", user_dirs):
        with stage("preparing the target", display, net, user_dirs):
            trainable = make_trainable(chosen, where=label)
    return Target(trainable, label, trainable.framework, took.total, [note] if note else [], user_dirs)


def _choose(
    module: ModuleType, selector: str | None, path: Path, user_dirs: tuple[str, ...]
) -> tuple[dict[str, Any], str]:
    """(target dict, label) by the order in this module's docstring."""
    display = path.name
    if selector is not None:
        if not hasattr(module, selector):
            found = [c.name for c in find_candidates(module)] + [
                n for n, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module.__name__
            ]
            raise BadInput(
                f"{display} has no attribute {selector!r}. "
                + (
                    f"Found: {', '.join(dict.fromkeys(found))}."
                    if found
                    else f"It defines no function and no model to choose; give the name of the function that "
                    f"returns the target (or the model itself) as {display}:NAME, or define mlcheck_target()."
                )
            )
        return from_object(module, selector, getattr(module, selector), display, user_dirs), f"{display}:{selector}"
    if callable(getattr(module, "mlcheck_target", None)):
        with user_code(f"{display}:mlcheck_target()", user_dirs):
            spec = module.mlcheck_target()
        return target_dict(spec, f"{display}:mlcheck_target()"), f"{display}:mlcheck_target"
    candidates = find_candidates(module)
    usable = [c for c in candidates if not c.problem]
    if len(usable) != 1:
        raise BadInput(_misspelt_target(module, display) + choice_message(display, path, candidates, usable))
    with user_code(f"building {usable[0].name} from {display}", user_dirs):
        chosen = usable[0].build()
    return chosen, f"{display}:{usable[0].name}"


def _misspelt_target(module: ModuleType, display: str) -> str:
    """The lead of the no-target error where model.py defines a near miss of `mlcheck_target`
    (`mlcheck_targets`, `mlcheck_traget`, `mlcheck_target_`): the user meant it, and the list of
    what discovery found would not say why their function was passed over; else ''."""
    functions = [
        n
        for n, v in vars(module).items()
        if inspect.isfunction(v) and v.__module__ == module.__name__ and n != "mlcheck_target"
    ]
    near = meant("mlcheck_target", functions)
    if near is None:
        return ""
    return (
        f"{display} defines {near}(), but mlcheck looks for mlcheck_target(): rename it, or choose it with "
        f"`mlcheck sanity {display}:{near}`; "
    )
