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
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import inspect
import linecache
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

from mlcheck.errors import BadInput
from mlcheck.trainable import Trainable

#: Keys a target dict may have.
TARGET_KEYS = ("model", "train_data", "val_data", "loss", "optimizer")

#: Importing model.py slower than this earns a note (it may be loading data or training).
SLOW_IMPORT_SECONDS = 30.0  # a digits/MNIST model.py imports in ~5-10 s, frameworks included

_X_NAMES = ("x_train", "X_train", "train_x", "train_X", "x_tr", "X_tr", "x", "X", "features")
_Y_NAMES = ("y_train", "Y_train", "train_y", "train_Y", "y_tr", "Y_tr", "y", "Y", "labels", "targets")
_XV_NAMES = ("x_val", "X_val", "x_valid", "X_valid", "x_validation", "X_validation", "val_x", "x_test", "X_test")
_YV_NAMES = ("y_val", "Y_val", "y_valid", "Y_valid", "y_validation", "Y_validation", "val_y", "y_test", "Y_test")
_LOSS_NAMES = ("loss_fn", "criterion", "loss_func", "loss_function", "loss", "objective")

_HOW_TO_CHOOSE = (
    "Choose one with `mlcheck sanity {path}:NAME`, or define `mlcheck_target()` in {name} "
    'returning {{"model": ..., "train_data": ..., "val_data": ..., "loss": ..., "optimizer": ...}}.'
)


class UserCodeError(BadInput):
    """The user's own code failed (importing model.py, building the target, a forward pass).

    `str()` is the one-line summary; `user_traceback` is the user's traceback, mlcheck's and
    importlib's frames removed, for the CLI to show below it.
    """

    def __init__(self, message: str, user_traceback: str = "") -> None:
        super().__init__(message)
        self.user_traceback = user_traceback


class TrainingAtImport(BaseException):
    """Raised inside model.py when it starts training while mlcheck imports it. A
    BaseException so that a user's `except Exception` around `fit` does not swallow it."""


@dataclass
class Target:
    """What discovery found: the Trainable to check and where it came from."""

    trainable: Trainable
    name: str
    framework: str
    import_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    user_paths: tuple[str, ...] = ()


# -- entry point ---------------------------------------------------------------------------


def resolve(target: Any) -> Target:
    """A `Target` from a path ("model.py", "model.py:fn"), a target dict or a Trainable."""
    if isinstance(target, Trainable):
        return Target(target, type(target).__name__, target.framework or "custom")
    if isinstance(target, dict):
        trainable = make_trainable(target, where="the target dict")
        return Target(trainable, "dict", trainable.framework, user_paths=_caller_dirs())
    if isinstance(target, ModuleType):
        return _from_module(target, None, Path(getattr(target, "__file__", "") or target.__name__), 0.0)
    if isinstance(target, (str, os.PathLike)):
        path, selector = split_selector(os.fspath(target))
        module, seconds = import_model_file(path)
        return _from_module(module, selector, path, seconds)
    raise BadInput(
        f"cannot check a {type(target).__name__}: pass a path to model.py, a dict with "
        "'model' and 'train_data', or a mlcheck.trainable.Trainable"
    )


def split_selector(spec: str) -> tuple[Path, str | None]:
    """"model.py:build" -> (Path("model.py"), "build"); drive letters stay with the path."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail and not tail.startswith(("\\", "/")) and tail.isidentifier():
        return Path(head), tail
    return Path(spec), None


# -- importing model.py --------------------------------------------------------------------


def import_model_file(path: Path) -> tuple[ModuleType, float]:
    """Imports model.py as a module (not as `__main__`), guarding against training at import.

    Returns the module and the seconds the import took."""
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if path.is_dir():
        raise BadInput(f"{path} is a directory; give the Python file that builds the model")
    if path.suffix != ".py":
        raise BadInput(f"{path} is not a Python file (.py)")
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    try:
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
        raise UserCodeError(
            f"{path} has a syntax error at line {exc.lineno}: {exc.msg}", detail
        ) from None

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
    try:
        with guard:
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
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UserCodeError(
            f"importing {path} raised {type(exc).__name__}: {_one_line(exc)}",
            user_traceback(exc, (folder,)),
        ) from None
    seconds = time.perf_counter() - started
    if guard.fit_called:  # the user caught our exception; training would have started
        raise UserCodeError(
            f"{path} started training while being imported ({guard.fit_called}). Put training "
            'under `if __name__ == "__main__":`.'
        )
    return module, seconds


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


# -- the user's traceback ------------------------------------------------------------------

_MLCHECK_DIRS = tuple(
    str(Path(p).resolve()) + os.sep
    for p in (Path(__file__).parent.parent, Path(__file__).parent.parent.parent / "integrations")
)


def user_traceback(exc: BaseException, user_dirs: tuple[str, ...] = (), raising_frame: bool = True) -> str:
    """The traceback of `exc` as the user should see it: mlcheck's own frames and importlib's
    removed; when `user_dirs` are known, library frames between the user's frames are folded
    too (the frame that raised stays, unless `raising_frame` is False: mlcheck raised there)."""
    frames = traceback.extract_tb(exc.__traceback__)
    user_dirs = tuple(str(Path(d).resolve()) + os.sep for d in user_dirs)

    def is_user(fs: traceback.FrameSummary) -> bool:
        f = os.path.abspath(fs.filename)
        return any(f.startswith(d) for d in user_dirs) and not _is_mlcheck(f)

    kept = [
        fs for fs in frames
        if not _is_mlcheck(os.path.abspath(fs.filename)) and "<frozen importlib" not in fs.filename
    ]
    if user_dirs and any(is_user(fs) for fs in kept):
        last = kept[-1] if kept and raising_frame else None
        kept = [fs for fs in kept if is_user(fs) or fs is last]
    lines = ["Traceback (most recent call last):\n"]
    lines += traceback.StackSummary.from_list(kept).format()
    if raising_frame:
        lines += traceback.format_exception_only(type(exc), exc)
    else:
        lines.append(f"(stopped here by mlcheck: {exc})")
    return "".join(lines).rstrip()


def _is_mlcheck(filename: str) -> bool:
    return filename.startswith(_MLCHECK_DIRS)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else repr(exc)


def _caller_dirs() -> tuple[str, ...]:
    """Folders of the code that called mlcheck (for tracebacks of dict targets)."""
    out = []
    for frame in inspect.stack(0)[2:8]:
        f = os.path.abspath(frame.filename)
        if not _is_mlcheck(f) and "site-packages" not in f and not f.startswith(sys.prefix):
            out.append(os.path.dirname(f))
    return tuple(dict.fromkeys(out))


@contextlib.contextmanager
def user_code(what: str, user_dirs: tuple[str, ...] = ()) -> Iterator[None]:
    """Turns an exception from the user's code into a `UserCodeError` naming `what` ran."""
    try:
        yield
    except (BadInput, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise UserCodeError(
            f"{what} raised {type(exc).__name__}: {_one_line(exc)}", user_traceback(exc, user_dirs)
        ) from None


# -- finding the target in a module --------------------------------------------------------


@dataclass
class _Candidate:
    name: str
    description: str
    build: Callable[[], dict[str, Any]]
    problem: str = ""  # why it cannot be used as it stands (listed, never chosen)


def _from_module(module: ModuleType, selector: str | None, path: Path, seconds: float) -> Target:
    user_dirs = (str(path.resolve().parent),)
    display = path.name
    notes = []
    if seconds > SLOW_IMPORT_SECONDS:
        notes.append(
            f"importing {display} took {seconds:.0f} s; mlcheck imports it to find the model, so "
            'loading large data or training belongs under `if __name__ == "__main__":`.'
        )
    if selector is not None:
        if not hasattr(module, selector):
            found = [c.name for c in _candidates(module)] + [
                n for n, v in vars(module).items()
                if inspect.isfunction(v) and v.__module__ == module.__name__
            ]
            raise BadInput(
                f"{display} has no attribute {selector!r}. "
                + (f"Found: {', '.join(dict.fromkeys(found))}." if found else "")
            )
        chosen = _from_object(module, selector, getattr(module, selector), display, user_dirs)
        label = f"{display}:{selector}"
    elif callable(getattr(module, "mlcheck_target", None)):
        with user_code(f"{display}:mlcheck_target()", user_dirs):
            spec = module.mlcheck_target()
        chosen = _target_dict(spec, f"{display}:mlcheck_target()")
        label = f"{display}:mlcheck_target"
    else:
        candidates = _candidates(module)
        usable = [c for c in candidates if not c.problem]
        if len(usable) != 1:
            raise BadInput(_choice_message(display, path, candidates, usable))
        with user_code(f"building {usable[0].name} from {display}", user_dirs):
            chosen = usable[0].build()
        label = f"{display}:{usable[0].name}"
    with user_code(f"preparing the target from {display}", user_dirs):
        trainable = make_trainable(chosen, where=label)
    return Target(trainable, label, trainable.framework, seconds, notes, user_dirs)


def _choice_message(display: str, path: Path, candidates: list[_Candidate], usable: list[_Candidate]) -> str:
    how = _HOW_TO_CHOOSE.format(path=path, name=display)
    if not candidates:
        return (
            f"found no model to check in {display}: no mlcheck_target() function, no "
            "LightningModule, no compiled Keras model with x_train/y_train arrays, and no torch "
            "nn.Module with a loss, an optimizer and a DataLoader at module level. " + how
        )
    listing = "; ".join(
        f"{c.description}" + (f" (not usable: {c.problem})" if c.problem else "") for c in candidates
    )
    if not usable:
        return f"found no complete target in {display}. Found: {listing}. " + how
    return f"found {len(usable)} possible targets in {display}: {listing}. " + how


def _from_object(module: ModuleType, name: str, obj: Any, display: str, user_dirs: tuple[str, ...]) -> dict[str, Any]:
    where = f"{display}:{name}"
    if _is_lightning_class(obj):
        with user_code(f"{name}()", user_dirs):
            obj = obj()
    elif inspect.isfunction(obj) or inspect.ismethod(obj):
        with user_code(f"{where}()", user_dirs):
            obj = obj()
        if isinstance(obj, dict):
            return _target_dict(obj, f"{where}()")
    if isinstance(obj, dict):
        return _target_dict(obj, where)
    if isinstance(obj, Trainable):
        return {"model": obj}
    if _is_lightning_module(obj):
        return _lightning_data(module, name, obj).build()
    if _is_keras_model(obj):
        cand = _keras_candidate(module, name, obj)
    elif _is_torch_module(obj):
        cand = _torch_candidate(module, name, obj)
    else:
        raise BadInput(
            f"{where} is a {type(obj).__name__}; expected a LightningModule, a Keras model, a torch "
            "nn.Module, or a function returning one of them or a target dict"
        )
    if cand.problem:
        raise BadInput(f"{where}: {cand.problem}")
    return cand.build()


def _target_dict(spec: Any, where: str) -> dict[str, Any]:
    if isinstance(spec, Trainable):
        return {"model": spec}
    if not isinstance(spec, dict):
        raise BadInput(
            f"{where} returned a {type(spec).__name__}; it must return a dict with 'model' and "
            "'train_data' (optional: 'val_data', 'loss', 'optimizer')"
        )
    unknown = set(spec) - set(TARGET_KEYS)
    if unknown:
        raise BadInput(f"{where} returned unknown key(s) {sorted(unknown)}; known keys: {', '.join(TARGET_KEYS)}")
    if "model" not in spec:
        raise BadInput(f"{where} returned no 'model'; known keys: {', '.join(TARGET_KEYS)}")
    return dict(spec)


def _candidates(module: ModuleType) -> list[_Candidate]:
    """Every plausible target at module level, complete or not."""
    names = {n: v for n, v in vars(module).items() if not n.startswith("_") and not inspect.ismodule(v)}
    out: list[_Candidate] = []
    instances = {type(v) for v in names.values() if _is_lightning_module(v)}
    for n, v in names.items():
        if _is_lightning_module(v):
            out.append(_lightning_data(module, n, v))
        elif (
            _is_lightning_class(v) and v.__module__ == module.__name__
            and v not in instances and not inspect.isabstract(v) and not _has_subclass_here(v, names)
        ):
            out.append(_lightning_class(module, n, v))
    for n, v in names.items():
        if _is_keras_model(v):
            out.append(_keras_candidate(module, n, v))
    inner = _inner_modules(names)
    for n, v in names.items():
        if _is_torch_module(v) and not _is_lightning_module(v) and not _is_torch_loss(v) and id(v) not in inner:
            out.append(_torch_candidate(module, n, v))
    return out


def _has_subclass_here(cls: type, names: dict[str, Any]) -> bool:
    return any(inspect.isclass(v) and v is not cls and issubclass(v, cls) for v in names.values())


def _inner_modules(names: dict[str, Any]) -> set[int]:
    """ids of torch modules that are parts of other module-level modules (a backbone inside a
    LightningModule is not a target of its own)."""
    inner: set[int] = set()
    for v in names.values():
        if _is_torch_module(v):
            for sub in v.modules():
                if sub is not v:
                    inner.add(id(sub))
    return inner


def _lightning_class(module: ModuleType, name: str, cls: type) -> _Candidate:
    try:
        inspect.signature(cls).bind()
    except (TypeError, ValueError):
        return _Candidate(name, f"LightningModule class `{name}`", dict, "it needs constructor arguments")
    data = _lightning_data(module, name, None)

    def build() -> dict[str, Any]:
        return _lightning_data(module, name, cls()).build()

    description = data.description.replace("LightningModule `", "LightningModule class `", 1)
    return _Candidate(name, description, build, data.problem)


def _lightning_data(module: ModuleType, name: str, model: Any) -> _Candidate:
    """A LightningModule with its data: a LightningDataModule at module level (instance, or a
    class built without arguments), else the module's own *_dataloader methods."""
    dms = [(n, v) for n, v in vars(module).items() if not n.startswith("_") and _is_datamodule(v)]
    dm_classes = [
        (n, v) for n, v in vars(module).items()
        if _is_datamodule_class(v) and v.__module__ == module.__name__
        and not any(type(inst) is v for _, inst in dms)
    ]
    label = f"LightningModule `{name}`"
    if len(dms) + len(dm_classes) > 1:
        found = ", ".join(n for n, _ in dms + dm_classes)
        return _Candidate(name, label, dict, f"several LightningDataModules ({found}); say which in mlcheck_target()")
    if dms:
        dm_name, dm = dms[0]
        return _Candidate(name, f"{label} with LightningDataModule `{dm_name}`",
                          lambda: {"model": model, "train_data": dm})
    if dm_classes:
        dm_name, dm_cls = dm_classes[0]
        try:
            inspect.signature(dm_cls).bind()
        except (TypeError, ValueError):
            return _Candidate(name, label, dict, f"LightningDataModule class `{dm_name}` needs constructor arguments")
        return _Candidate(name, f"{label} with LightningDataModule `{dm_name}()`",
                          lambda: {"model": model, "train_data": dm_cls()})
    cls = type(model) if model is not None else getattr(module, name, None)
    if cls is not None and _overrides(cls, "train_dataloader"):
        return _Candidate(name, f"{label} with its own dataloaders", lambda: {"model": model})
    return _Candidate(name, label, dict, "no LightningDataModule and no train_dataloader()")


def _overrides(cls: Any, method: str) -> bool:
    if not inspect.isclass(cls):
        return False
    for klass in cls.__mro__:
        if method in klass.__dict__:
            return not klass.__module__.startswith(("lightning.", "pytorch_lightning."))
    return False


def _keras_candidate(module: ModuleType, name: str, model: Any) -> _Candidate:
    g = vars(module)
    x = _first_array(g, _X_NAMES)
    y = _first_array(g, _Y_NAMES)
    label = f"Keras model `{name}`"
    if x is None or y is None:
        return _Candidate(name, label, dict, "no training arrays (looked for x_train/X_train and y_train)")
    xv, yv = _first_array(g, _XV_NAMES), _first_array(g, _YV_NAMES)
    desc = f"{label} with arrays `{x[0]}`, `{y[0]}`" + (f", `{xv[0]}`, `{yv[0]}`" if xv and yv else "")
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        return _Candidate(name, desc, dict, "it is not compiled; call model.compile(...) at import "
                          "or return loss and optimizer from mlcheck_target()")

    def build() -> dict[str, Any]:
        spec = {"model": model, "train_data": (x[1], y[1])}
        if xv and yv:
            spec["val_data"] = (xv[1], yv[1])
        return spec

    return _Candidate(name, desc, build)


def _first_array(g: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    for n in names:
        v = g.get(n)
        if v is not None and hasattr(v, "shape") and hasattr(v, "__len__") and not _is_torch_module(v):
            return n, v
    return None


def _torch_candidate(module: ModuleType, name: str, model: Any) -> _Candidate:
    g = {n: v for n, v in vars(module).items() if not n.startswith("_")}
    label = f"torch module `{name}`"
    optimizers = [(n, v) for n, v in g.items() if _is_torch_optimizer(v) and _optimizes(v, model)]
    losses = [(n, v) for n, v in g.items() if _is_torch_loss(v)] or [
        (n, g[n]) for n in _LOSS_NAMES if n in g and callable(g[n]) and not inspect.isclass(g[n])
    ]
    loaders = [(n, v) for n, v in g.items() if _is_dataloader(v)]
    train = [(n, v) for n, v in loaders if "train" in n.lower()] or [
        (n, v) for n, v in loaders if not any(s in n.lower() for s in ("val", "test"))
    ]
    val = [(n, v) for n, v in loaders if any(s in n.lower() for s in ("val", "test"))]
    missing = []
    if len(optimizers) != 1:
        missing.append("an optimizer over its parameters" if not optimizers else
                       f"one optimizer (found {', '.join(n for n, _ in optimizers)})")
    if len(losses) != 1:
        missing.append("a loss (nn.CrossEntropyLoss() or a function named loss_fn/criterion)"
                       if not losses else f"one loss (found {', '.join(n for n, _ in losses)})")
    if len(train) != 1:
        missing.append("a training DataLoader" if not train else
                       f"one training DataLoader (found {', '.join(n for n, _ in train)})")
    if missing:
        return _Candidate(name, label, dict, "needs " + ", ".join(missing))
    desc = (f"{label} with loss `{losses[0][0]}`, optimizer `{optimizers[0][0]}`, "
            f"DataLoader `{train[0][0]}`" + (f" and `{val[0][0]}`" if len(val) == 1 else ""))

    def build() -> dict[str, Any]:
        spec = {"model": model, "loss": losses[0][1], "optimizer": optimizers[0][1], "train_data": train[0][1]}
        if len(val) == 1:
            spec["val_data"] = val[0][1]
        return spec

    return _Candidate(name, desc, build)


def _optimizes(optimizer: Any, model: Any) -> bool:
    ids = {id(p) for p in model.parameters()}
    return any(id(p) in ids for group in optimizer.param_groups for p in group["params"])


# -- type tests that import no framework ---------------------------------------------------


def _classes(*paths: str) -> tuple[type, ...]:
    out = []
    for path in paths:
        mod_name, _, attr = path.rpartition(".")
        mod = sys.modules.get(mod_name)
        cls = getattr(mod, attr, None) if mod is not None else None
        if isinstance(cls, type):
            out.append(cls)
    return tuple(out)


def _isinstance(obj: Any, *paths: str) -> bool:
    classes = _classes(*paths)
    return bool(classes) and isinstance(obj, classes)


_LM = ("lightning.pytorch.LightningModule", "pytorch_lightning.LightningModule")
_DM = ("lightning.pytorch.LightningDataModule", "pytorch_lightning.LightningDataModule")


def _is_lightning_module(obj: Any) -> bool:
    return _isinstance(obj, *_LM)


def _is_lightning_class(obj: Any) -> bool:
    return _is_subclass(obj, *_LM)


def _is_datamodule(obj: Any) -> bool:
    return _isinstance(obj, *_DM)


def _is_datamodule_class(obj: Any) -> bool:
    return _is_subclass(obj, *_DM)


def _is_subclass(obj: Any, *paths: str) -> bool:
    classes = _classes(*paths)
    return inspect.isclass(obj) and bool(classes) and issubclass(obj, classes) and obj not in classes


def _is_keras_model(obj: Any) -> bool:
    return _isinstance(obj, "keras.Model")


def _is_torch_module(obj: Any) -> bool:
    return _isinstance(obj, "torch.nn.Module")


def _is_torch_loss(obj: Any) -> bool:
    return _isinstance(obj, "torch.nn.modules.loss._Loss")


def _is_torch_optimizer(obj: Any) -> bool:
    return _isinstance(obj, "torch.optim.Optimizer")


def _is_dataloader(obj: Any) -> bool:
    return _isinstance(obj, "torch.utils.data.DataLoader")


# -- wrapping in a Trainable ---------------------------------------------------------------


def make_trainable(spec: dict[str, Any], where: str = "the target") -> Trainable:
    """The `Trainable` for a target dict, importing only the integration it needs."""
    spec = _target_dict(spec, where)
    model = spec["model"]
    if isinstance(model, Trainable):
        return model
    if "train_data" not in spec and not _is_lightning_module(model):
        raise BadInput(f"{where} has no 'train_data' (a DataLoader, arrays (x, y) or a dataset)")
    if _is_lightning_module(model):
        from mlcheck.integrations.torch import LightningTrainable

        trainable: Trainable = LightningTrainable(
            model, train_data=spec.get("train_data"), val_data=spec.get("val_data"),
        )
        kind = _torch_input_kind(model)
    elif _is_keras_model(model):
        from mlcheck.integrations.keras.trainable import KerasTrainable, first_layer_kind

        trainable = KerasTrainable(
            model, train_data=spec["train_data"], val_data=spec.get("val_data"),
            loss=spec.get("loss"), optimizer=spec.get("optimizer"),
        )
        kind = first_layer_kind(model)
    elif _is_torch_module(model):
        if spec.get("loss") is None:
            raise BadInput(f"{where}: a plain torch nn.Module needs a 'loss' too (e.g. nn.CrossEntropyLoss())")
        from mlcheck.integrations.torch import TorchTrainable

        trainable = TorchTrainable(
            model, spec["loss"], spec.get("optimizer"),
            train_data=spec["train_data"], val_data=spec.get("val_data"),
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
    """"embedding_ids" when the model holds an embedding lookup (as the Lightning callback says)."""
    embedding = _classes("torch.nn.Embedding", "torch.nn.EmbeddingBag")
    return "embedding_ids" if any(isinstance(m, embedding) for m in model.modules()) else None
