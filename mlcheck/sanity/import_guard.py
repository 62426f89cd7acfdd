"""Importing the user's model.py safely: as a module (not `__main__`), timed, and with
training at import stopped, the error saying to put training under
`if __name__ == "__main__":`."""

from __future__ import annotations

import builtins
import contextlib
import importlib.abc
import importlib.util
import linecache
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mlcheck.errors import BadInput
from mlcheck.sanity.usercode import Interrupted, UserCodeError, accelerator_hint, one_line, user_traceback

#: Importing model.py slower than this earns a note (it may be loading data or training).
SLOW_IMPORT_SECONDS = 30.0  # a digits/MNIST model.py imports in ~5-10 s, frameworks included


class TrainingAtImport(BaseException):
    """Raised inside model.py when it starts training while mlcheck imports it. A
    BaseException so that a user's `except Exception` around `fit` does not swallow it."""


@dataclass(frozen=True)
class ImportTime:
    """The seconds importing model.py took, and how many of them went to the installed packages
    its own code imports (torch, Lightning, Keras: ~5-10 s alone, far more on a loaded machine),
    which no change to model.py removes."""

    total: float
    packages: float = 0.0

    @property
    def own(self) -> float:
        """The seconds of model.py's own code (its neighbour modules included)."""
        return max(self.total - self.packages, 0.0)


class _PackageImports:
    """While model.py runs, times the imports its own code makes of modules that are not its
    neighbours (a `.py` file or package in its folder): those are the installed packages."""

    def __init__(self, module: ModuleType, folder: Path) -> None:
        self.seconds = 0.0
        self._globals = vars(module)
        self._folder = folder
        self._original: Callable[..., Any] = builtins.__import__

    def __enter__(self) -> _PackageImports:
        self._original = builtins.__import__
        builtins.__import__ = self._import
        return self

    def __exit__(self, *exc: object) -> None:
        builtins.__import__ = self._original

    def _import(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if globals is not self._globals or level or self._neighbour(name.partition(".")[0]):
            return self._original(name, globals, locals, fromlist, level)
        started = time.perf_counter()
        try:
            return self._original(name, globals, locals, fromlist, level)
        finally:
            self.seconds += time.perf_counter() - started

    def _neighbour(self, top: str) -> bool:
        return (self._folder / f"{top}.py").is_file() or (self._folder / top).is_dir()


def _selector_hint(spec: str) -> str:
    """Where `spec` is an existing file, a colon and something that is no name (`model.py:`,
    `model.py:a:b`, `model.py:build()`), what `PATH.py:NAME` takes; else nothing."""
    at = spec.find(":")
    while at > 0:
        head, tail = spec[:at], spec[at + 1 :]
        if Path(head).is_file():
            got = f"got {tail!r}" if tail else "the name after the colon is empty"
            return (
                f"; {head} exists: `{head}:NAME` picks one thing in it, NAME a Python name such as "
                f"mlcheck_target ({got})"
            )
        at = spec.find(":", at + 1)
    return ""


def import_model_file(path: Path) -> tuple[ModuleType, ImportTime]:
    """Imports model.py as a module (not as `__main__`), guarding against training at import.

    Returns the module and the seconds the import took (`ImportTime`)."""
    if not path.exists():
        raise BadInput(f"{path}: no such file{_selector_hint(str(path))}")
    if path.is_dir():
        raise BadInput(f"{path} is a directory; give the Python file that builds the model")
    if path.suffix != ".py":
        raise BadInput(f"{path} is not a Python file (.py){_saved_model_hint(path)}")
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    try:
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
        raise UserCodeError(f"{path} has a syntax error at line {exc.lineno}: {exc.msg}", detail) from None

    resolved = path.resolve()
    name = _module_name(resolved)
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always have one
        raise BadInput(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    folder = str(resolved.parent)
    if folder not in sys.path:  # so model.py can import its neighbours, as `python model.py` can
        sys.path.insert(0, folder)
    sys.modules[name] = module
    linecache.checkcache(str(resolved))
    started = time.perf_counter()
    guard = _FitGuard()
    packages = _PackageImports(module, resolved.parent)
    try:
        with guard, packages:
            spec.loader.exec_module(module)
    except TrainingAtImport as exc:
        sys.modules.pop(name, None)
        raise UserCodeError(
            f"{path} started training while being imported ({exc}). mlcheck imports {path.name} "
            'to find the model, so put training under `if __name__ == "__main__":`.',
            user_traceback(exc, (folder,), raising_frame=False),
        ) from None
    except BaseException as exc:  # the user's code: anything, SystemExit included
        sys.modules.pop(name, None)
        if isinstance(exc, (KeyboardInterrupt, Interrupted)):
            raise
        raise UserCodeError(
            f"importing {path} raised {type(exc).__name__}: {one_line(exc)}{accelerator_hint(exc)}",
            user_traceback(exc, (folder,)),
        ) from None
    seconds = time.perf_counter() - started
    if guard.fit_called:  # the user caught our exception; training would have started
        raise UserCodeError(
            f"{path} started training while being imported ({guard.fit_called}). Put training "
            'under `if __name__ == "__main__":`.'
        )
    return module, ImportTime(seconds, min(packages.seconds, seconds))


def slow_import_note(display: str, took: ImportTime) -> str | None:
    """The advice for an import of model.py that took long, or None when it was quick. Only
    model.py's own seconds earn the advice to move work under `__main__`: the packages it
    imports take what they take (long on a loaded machine), wherever the import stands."""
    if took.total <= SLOW_IMPORT_SECONDS:
        return None
    packages = f"{took.packages:.0f} s of it importing installed packages" if took.packages >= 1 else ""
    if took.own <= SLOW_IMPORT_SECONDS and packages:
        return (
            f"importing {display} took {took.total:.0f} s, {packages}: a loaded machine or a cold "
            f"disk, not {display}'s own code, which took {took.own:.0f} s."
        )
    return (
        f"importing {display} took {took.total:.0f} s{f' ({packages})' if packages else ''}; mlcheck "
        "imports it to find the model, so loading large data or training belongs under "
        '`if __name__ == "__main__":`.'
    )


def _module_name(path: Path) -> str:
    stem = path.stem if path.stem.isidentifier() else "model"
    existing = sys.modules.get(stem)
    if existing is None or getattr(existing, "__file__", None) == str(path):
        return stem
    return f"mlcheck_user_{stem}_{abs(hash(str(path))):x}"


class _FitGuard:
    """Makes `Trainer.fit`, Keras `Model.fit` and torch optimizer steps raise
    `TrainingAtImport` while model.py is imported. Framework modules not imported yet are
    patched when model.py imports them (an import hook), so mlcheck imports no framework itself."""

    def __init__(self) -> None:
        self.fit_called = ""
        self._undo: list[Callable[[], None]] = []
        self._patches: dict[str, Callable[[ModuleType], None]] = {
            "lightning.pytorch.trainer.trainer": lambda m: self._patch_method(m.Trainer, "fit", "Trainer.fit()"),
            "pytorch_lightning.trainer.trainer": lambda m: self._patch_method(m.Trainer, "fit", "Trainer.fit()"),
            "keras.src.models.model": lambda m: self._patch_method(m.Model, "fit", "model.fit()"),
            "torch.optim.optimizer": self._patch_optimizer,
        }
        self._finder = _PatchOnImport(self._patches)

    def __enter__(self) -> _FitGuard:
        for name, patch in self._patches.items():
            if name in sys.modules:
                patch(sys.modules[name])
        sys.meta_path.insert(0, self._finder)
        self._undo.append(lambda: sys.meta_path.remove(self._finder))
        return self

    def __exit__(self, *exc: Any) -> None:
        for undo in reversed(self._undo):
            with contextlib.suppress(Exception):
                undo()
        self._undo.clear()

    def _stop(self, what: str) -> None:
        self.fit_called = self.fit_called or f"it called {what}"
        raise TrainingAtImport(f"it called {what}")

    def _patch_method(self, cls: type, attr: str, what: str) -> None:
        missing = object()
        original = cls.__dict__.get(attr, missing)

        def refuse(*args: Any, **kwargs: Any) -> Any:
            self._stop(what)

        setattr(cls, attr, refuse)

        def undo() -> None:
            if original is missing:
                delattr(cls, attr)
            else:
                setattr(cls, attr, original)

        self._undo.append(undo)

    def _patch_optimizer(self, module: ModuleType) -> None:
        register = getattr(module, "register_optimizer_step_pre_hook", None)
        if register is None:  # pragma: no cover - torch < 2.0
            return
        handle = register(lambda *a, **k: self._stop("optimizer.step()"))
        self._undo.append(handle.remove)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs a patch right after one of the named modules is first executed."""

    def __init__(self, patches: dict[str, Callable[[ModuleType], None]]) -> None:
        self.patches = patches

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        patch = self.patches.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


_SAVED_MODEL_LOADERS = {
    ".keras": "keras.saving.load_model({path!r})",
    ".h5": "keras.saving.load_model({path!r})",
    ".pt": "torch.load({path!r}, weights_only=False)",
    ".pth": "torch.load({path!r}, weights_only=False)",
    ".ckpt": "YourLightningModule.load_from_checkpoint({path!r})",
}


def _saved_model_hint(path: Path) -> str:
    """For a saved model or checkpoint: how to point `mlcheck sanity` at it (it needs the data,
    loss and optimizer too, which a saved file does not hold)."""
    loader = _SAVED_MODEL_LOADERS.get(path.suffix.lower())
    if loader is None:
        return ""
    return (
        f"; it looks like a saved model. mlcheck sanity needs the training data too: write a model.py "
        f"with `def mlcheck_target(): return {{'model': {loader.format(path=str(path))}, "
        "'train_data': ..., 'loss': ..., 'optimizer': ...}` and run `mlcheck sanity model.py` "
        "(docs/sanity.md)"
    )
