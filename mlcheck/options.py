"""Validation of the options that `Monitor` and the callbacks share: one rule and one message
per argument, raised where the user passes it."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

STOP_ON = (None, "error", "warning")
TASKS = (None, "classification", "regression")


def lowered(value: Any) -> Any:
    """A string in lower case, anything else as it is: the names of severities and tasks are
    taken in any case ("Error", "Classification"), as `Severity.parse` takes severities."""
    return value.lower() if isinstance(value, str) else value


def stop_on(value: Any) -> str | None:
    """`value` in lower case ("Error" is "error"); None, "error" or "warning"."""
    if lowered(value) not in STOP_ON:
        raise ValueError(f"stop_on must be None, 'error' or 'warning' (any case), got {value!r}")
    return lowered(value)


def integer(name: str, value: Any, *, minimum: int, hint: str = "") -> int:
    """`value` as an int >= `minimum`; a bool or a float is refused rather than truncated."""
    if type(value) is int and value >= minimum:  # the common case, first (no ABC check)
        return value
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}{hint}")
    return int(value)


def flag(name: str, value: Any, *, optional: bool = False) -> bool | None:
    """`value` as a bool: True/False (numpy's bool too); None only where `optional`. A string
    such as "yes" or "false" is refused rather than read as truthy."""
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    allowed = "True, False or None" if optional else "True or False"
    raise TypeError(f"{name} must be {allowed}, got {value!r}")


def optional_integer(name: str, value: Any, *, minimum: int, hint: str = "") -> int | None:
    return None if value is None else integer(name, value, minimum=minimum, hint=hint)


def seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def optional_function(name: str, value: Any, what: str, *, arguments: int | None = None) -> Any:
    """`value` when it is callable or None: a non-function would fail at the first batch. With
    `arguments`, it must also accept that many positional arguments (how mlcheck calls it): a
    Keras `slice_by=lambda x, y: ...` would otherwise fail at the first recorded batch, switch
    the check off mid-run and leave `weak-slice` silent."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if value is not None and arguments is not None:
        try:
            signature = inspect.signature(value)
        except (TypeError, ValueError):  # a builtin or C function without a signature: not checked
            return value
        try:
            signature.bind(*([None] * arguments))
        except TypeError as error:
            called = "one argument" if arguments == 1 else f"{arguments} arguments"
            raise TypeError(
                f"{name} must be {what}: it is called with {called}, which {value!r} cannot take ({error})"
            ) from None
    return value


def optional_text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {value!r}")
    return value


def instance(name: str, value: Any, cls: type, *, optional: bool = False) -> Any:
    """`value` when it is a `cls` (or None where `optional`): a dict of the same fields, say,
    would fail in every check that reads it, and switch them off mid-run."""
    if (value is None and optional) or isinstance(value, cls):
        return value
    allowed = f"a {cls.__name__}" + (" or None" if optional else "")
    raise TypeError(f"{name} must be {allowed}, got {value!r}")


def sinks(name: str, value: Any) -> list[Any]:
    """Sinks as a list: None is none; one sink is one item; each must have a callable `emit`
    (a `mlcheck.sinks.Sink`), or every finding would fail to reach it."""
    if value is None:
        return []
    items = [value] if callable(getattr(value, "emit", None)) else value
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"{name} must be a list of sinks (mlcheck.sinks.Sink), got {value!r}") from None
    for item in items:
        if not callable(getattr(item, "emit", None)):
            raise TypeError(f"{name} must hold sinks (mlcheck.sinks.Sink, with an emit method), got {item!r}")
    return items


def task(value: Any) -> str | None:
    """`value` in lower case ("Classification" is "classification"); None or one of `TASKS`."""
    if lowered(value) not in TASKS:
        raise ValueError(f"task must be None, 'classification' or 'regression' (any case), got {value!r}")
    return lowered(value)


def check_ids(name: str, ids: Iterable[str] | str | None, also: Iterable[str] = ()) -> tuple[str, ...]:
    """Check ids as a tuple, each registered or in `also` (the ids of unregistered checks the
    user passed); a lone string is one id, not its characters."""
    from mlcheck.checks.base import registry

    if ids is None:
        return ()
    ids = id_items(name, ids)
    if not ids:  # nothing to look up (the usual `suppress`): the registry is not copied
        return ids
    if not all(isinstance(i, str) for i in ids):
        raise TypeError(f"{name} must be a list of check ids (strings), got {ids!r}")
    registered = registry()
    known = list(registered) + [i for i in also if i not in registered]
    unknown = sorted(set(ids) - set(known))
    if unknown:
        from mlcheck.checks.base import did_you_mean

        hint = did_you_mean(unknown, known)
        hint = f" ({hint})" if hint else ""
        raise ValueError(f"{name} names unknown check ids {unknown}{hint}; available: {', '.join(known)}")
    return ids


def unsuppressed(checks: Sequence[Any], suppress: Iterable[str], selected_by: str = "checks") -> list[Any]:
    """`checks` less those whose id `suppress` names. ValueError when that leaves none of a
    non-empty list: a run that checks nothing reads as clean. One rule for the Python API
    (`Monitor`, the callbacks: `checks=`) and `[tool.mlcheck]` / `--select`
    (`config.build_checks`: `selected_by="select"`)."""
    quiet = set(suppress)
    out = [c for c in checks if c.id not in quiet]
    if checks and not out:
        none_left([c.id for c in checks], selected_by)
    return out


def none_left(ids: Iterable[str], selected_by: str) -> None:
    """Raises the ValueError of `unsuppressed`: every check of `ids` is suppressed."""
    raise ValueError(
        f"every check selected ({', '.join(dict.fromkeys(ids))}) is also suppressed, so none would run; "
        f"take it out of suppress (or of {selected_by})"
    )


def check_items(name: str, checks: Any) -> list[Any] | None:
    """`checks` as a list, items unbuilt (instances, classes or ids); a lone string, class or
    instance is one item, not its characters; None stays None."""
    from mlcheck.checks.base import Check

    if checks is None:
        return None
    if isinstance(checks, (str, type, Check)):
        return [checks]
    try:
        return list(checks)
    except TypeError:
        raise TypeError(f"{name} must be a list of checks or check ids, got {checks!r}") from None


def id_items(name: str, ids: Any) -> tuple[Any, ...]:
    """`ids` as a tuple, unvalidated (see `check_ids`); a lone string is one id, None none (as
    `Monitor(suppress=None)` has always taken it)."""
    if ids is None:
        return ()
    if isinstance(ids, str):
        return (ids,)
    try:
        return tuple(ids)
    except TypeError:
        raise TypeError(f"{name} must be a list of check ids, got {ids!r}") from None


def log_dir(value: Any, *, flags: tuple[Any, ...] = (None,)) -> Any:
    """`value` unchanged when it is one of `flags` or a path that is a directory or does not
    exist yet; a path to a file, or something that is no path, raises here rather than when
    the first event is written mid-run. An empty string raises too: `Path("")` is the working
    directory, where files would land unasked (an unset environment variable read with a ""
    default is the usual source), while a user who meant "no files" wants False. So does a
    path starting with `~`, which Python does not expand (a folder named `~` appeared)."""
    if any(value is f for f in flags):
        return value
    allowed = " or ".join(repr(f) for f in flags)
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"log_dir must be a directory path (str or os.PathLike) or {allowed}, got {value!r}")
    if isinstance(value, str) and not value:
        raise ValueError(
            f'log_dir is an empty string: give a directory path ("." for the working directory) or {allowed} '
            "(False: no files)"
        )
    if str(value).startswith("~"):  # Python does not expand it: a folder named "~" appeared here
        given, meant = str(value), os.path.expanduser(value)
        raise ValueError(
            f"log_dir {given!r} starts with '~', which Python does not expand: it would make a folder named '~' "
            f"in the working directory; give os.path.expanduser({given!r}) ({meant!r})"
        )
    path = Path(value)
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                where = "" if parent == path else f" (it lies under {str(parent)!r})"
                raise ValueError(f"log_dir must be a directory, but {str(parent)!r} is a file{where}")
            break
    return value


def selection(checks: Any, select: Any, suppress: Any) -> tuple[list[Any] | None, list[Any] | None, list[Any]]:
    """The `checks`, `select` and `suppress` arguments of the Python API's runs
    (`mlcheck.analyze.run`, `mlcheck.sanity.run`) as lists (None stays None, but for `suppress`):
    a lone id or check is one item (a string is not its characters), iterators are read once
    here (a generator for `suppress` was read empty later)."""
    return (
        None if checks is None else check_instances("checks", checks),
        None if select is None else list(id_items("select", select)),
        list(id_items("suppress", suppress if suppress is not None else ())),
    )


def check_instances(name: str, checks: Any) -> list[Any]:
    """`checks` as Check instances: each item an instance, a Check class (built with its
    defaults) or a check id (likewise); a lone string or class is one check; an id given twice
    is one check, the later one."""
    from mlcheck.checks.base import Check, get_check

    items = check_items(name, checks) or []
    check_ids(name, [c for c in items if isinstance(c, str)])
    out = []
    for c in items:
        if isinstance(c, str):
            c = get_check(c)
        if isinstance(c, type) and issubclass(c, Check):
            c = c()
        if not isinstance(c, Check):
            raise TypeError(f"{name} must hold Check instances, Check classes or check ids, got {c!r}")
        out.append(c)
    # one instance per id, the later one in the earlier one's place: `[*default_checks(),
    # LossPlateau(min_epochs=10)]` configures the default check; two instances had judged the
    # same run, and their findings were deduplicated by id
    last = {c.id: c for c in out}
    out = [last[i] for i in dict.fromkeys(c.id for c in out)]
    return out


# -- observations ------------------------------------------------------------------------------
# What `Monitor.log_*` accept, checked before any state changes. Numbers arrive as Python,
# numpy or torch scalars and one-element arrays or tensors (torch by duck typing: mlcheck never
# imports it); NaN and Inf are valid observations, since they are what the checks look for.

#: steps and epochs are integers in [-INT64, INT64): what TensorBoard stores
INT64 = 2**63


def _single(name: str, value: Any, what: str) -> Any:
    """The Python scalar inside a one-element array or tensor; other values as they are."""
    if isinstance(value, (str, bytes, bool, np.bool_)) or value is None:
        raise TypeError(f"{name} must be {what}, got {value!r}")
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "item"):
        if math.prod(shape) != 1:
            raise TypeError(f"{name} must be {what}, got an array of shape {tuple(shape)}")
        if "bool" in str(getattr(value, "dtype", "")) or "complex" in str(getattr(value, "dtype", "")):
            raise TypeError(f"{name} must be {what}, got {value!r}")
        value = value.item()
    return value


def number(name: str, value: Any) -> float:
    """`value` as a float: any real number, as a Python, numpy or torch scalar or one-element
    array or tensor (bfloat16 and float16 included). Non-finite values are kept."""
    if type(value) is float:  # the common case, first
        return value
    value = _single(name, value, "a number")
    if isinstance(value, bool) or not isinstance(value, (Real, np.generic)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # ints past float range; numpy complex, void
        raise ValueError(f"{name} must be a number within float range, got {value!r}") from None


def optional_number(name: str, value: Any) -> float | None:
    return None if value is None else number(name, value)


def index(name: str, value: Any) -> int:
    """A step or epoch as an int: an integer (Python, numpy, one-element array or tensor) or an
    integral float such as 5.0, within int64 (what TensorBoard stores)."""
    if type(value) is int and -INT64 <= value < INT64:  # the common case, first
        return value
    value = _single(name, value, "an integer")
    if isinstance(value, bool) or not isinstance(value, (Real, np.generic)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, (Integral, np.integer)):
        value = float(value)
        if not value.is_integer():
            raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not -INT64 <= value < INT64:
        raise ValueError(f"{name} must fit in 64 bits, got {value}")
    return value


def optional_index(name: str, value: Any) -> int | None:
    return None if value is None else index(name, value)


def metrics(name: str, value: Any) -> dict[str, float]:
    """A mapping of metric names (strings) to numbers, None values dropped."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of metric names to numbers, got {value!r}")
    out = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be metric names (strings), got {key!r}")
        if item is not None:
            out[key] = number(f"{name}[{key!r}]", item)
    return out


def module_names(name: str, value: Any) -> tuple[str, ...]:
    """Module paths or class names: a list of strings, or one string (one name, not its
    characters, which would each match a module called "0" or "1"). An empty or blank name is
    refused (ValueError): "" is the root module's path and would match the whole model."""
    if isinstance(value, str):
        items: tuple[Any, ...] = (value,)
    elif isinstance(value, Mapping):  # its keys would pass silently for a list of names
        raise TypeError(f"{name} must be a list of module paths or class names (strings), got a mapping {value!r}")
    else:
        try:
            items = tuple(value)
        except TypeError:
            items = (value,)
    if not all(isinstance(i, str) for i in items):
        raise TypeError(f"{name} must be a list of module paths or class names (strings), got {value!r}")
    blank = [i for i in items if not i.strip()]
    if blank:
        # "" is the root module's path: it would match the whole model, so every layer is allowed
        raise ValueError(
            f"{name} holds an empty module name ({blank[0]!r}), which would match the whole model: give the "
            f"paths or class names of the modules meant (e.g. {name}=['encoder.mask']), or leave it out"
        )
    return items


def unmatched_module_names(
    name: str, given: Iterable[str], paths: Iterable[str], kinds: Iterable[str], separator: str = "."
) -> str:
    """The warning for the names in `given` (a `module_names` argument) that match no module
    path, no path's prefix (a parent, "encoder" of "encoder.mask") and no class name of the
    model, naming the nearest valid ones; "" when every name matches. Known only once the
    model is (at the start of the fit), so a warning there rather than an error: a typo would
    otherwise leave the argument doing nothing."""
    from mlcheck.spelling import nearest

    paths = [p for p in paths if p]
    prefixes = {p.rsplit(separator, k)[0] for p in paths for k in range(1, p.count(separator) + 1)}
    valid = set(paths) | prefixes | set(kinds)
    unmatched = [n for n in given if n not in valid]
    if not unmatched:
        return ""
    guesses = []
    for n in unmatched:
        close = nearest(n, sorted(valid), n=3, cutoff=0.6)
        guesses.append(
            f"{n!r}: did you mean {' or '.join(repr(c) for c in close)}?" if close else f"{n!r}: no close name"
        )
    some = ", ".join(repr(p) for p in paths[:6]) + (", ..." if len(paths) > 6 else "")
    return (
        f"mlcheck: {name} names {unmatched}, which match no module path or class name of the model, so they "
        f"allow nothing ({'; '.join(guesses)}); its modules are named like {some}"
    )


def names(name: str, value: Any) -> list[str] | None:
    """Parameter names: a list of strings, or one string (one name, not its characters)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        return [str(v) for v in value]
    except TypeError:
        raise TypeError(f"{name} must be a list of parameter names, got {value!r}") from None


# -- many observations at once (`Monitor.log_steps`) --------------------------------------------


def _vector(name: str, value: Any, what: str) -> np.ndarray:
    """`value` as a one-dimensional numpy array of real numbers: a sequence, a numpy array, a
    torch tensor (by duck typing; bfloat16 and float16 as float32) or an iterator, read once."""
    value = _host(name, value, what)
    if isinstance(value, (list, tuple)):  # numpy would make [1.0, "2"] text and [None, 1.0] NaN
        for i, item in enumerate(value):  # (0-d tensors and arrays are numbers to numpy too)
            if item is None or isinstance(item, (str, bytes, bool, np.bool_)):
                raise TypeError(f"{name} must be {what}, got {item!r} at index {i}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged lists
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} that has no array form") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional ({what}), got shape {array.shape}")
    if array.dtype.name == "bfloat16":  # ml_dtypes'
        array = array.astype(np.float32)
    if array.dtype.kind == "O":  # Python objects: ints past 64 bits, numbers mixed with None
        _reals(name, array, what)
        try:
            array = array.astype(np.float64)
        except OverflowError:
            raise ValueError(f"{name} must be {what} within float range") from None
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be {what}, got an array of {array.dtype}")
    return array


def _host(name: str, value: Any, what: str) -> Any:
    """A torch tensor as a numpy array, an iterator as a list; other values as they are."""
    if value is None or isinstance(value, (str, bytes, Mapping)):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        try:
            value = value.detach()
            if str(value.dtype).removeprefix("torch.") in ("bfloat16", "float16"):
                value = value.float()
            return value.cpu().numpy()
        except Exception as exc:  # a tensor on the meta device has no values
            raise TypeError(f"{name} must be {what}, got a tensor whose values cannot be read ({exc})") from None
    if isinstance(value, Iterator):  # a generator: read it once, here
        return list(value)
    return value


def _reals(name: str, items: Iterable[Any], what: str) -> None:
    for i, item in enumerate(items):
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (Real, np.integer, np.floating)):
            raise TypeError(f"{name} must be {what}, got {item!r} at index {i}")


def indices(name: str, value: Any) -> np.ndarray:
    """Steps as an int64 array: integers, or integral floats (5.0 -> 5), within int64."""
    array = _vector(name, value, "a list or array of integer steps")
    if array.dtype.kind == "f" or array.dtype == np.uint64:
        whole = np.isfinite(array) & (array == np.floor(array)) if array.dtype.kind == "f" else True
        inside = (np.abs(array) < INT64) if array.dtype.kind == "f" else (array < INT64)
        bad = np.flatnonzero(~(whole & inside))
        if len(bad):
            raise ValueError(f"{name} must be integers within 64 bits, got {array[bad[0]]!r} at index {bad[0]}")
    return array.astype(np.int64, copy=False)


def numbers(name: str, value: Any, length: int) -> np.ndarray:
    """Real numbers as a float64 array, one per step (`length`); NaN and Inf are kept."""
    array = _vector(name, value, "a list or array of numbers").astype(np.float64, copy=False)
    if len(array) != length:
        raise ValueError(f"{name} must hold one value per step: got {len(array)} values for {length} steps")
    return array
