"""User configuration: the `[tool.mlcheck]` table in pyproject.toml, and check selection.

```toml
[tool.mlcheck]
select = ["loss-plateau", "train-val-gap"]   # default: every default check
suppress = ["class-imbalance"]
fail-on = "warning"                          # CLI exit status threshold

[tool.mlcheck.checks.loss-divergence]        # constructor arguments of one check
factor = 5.0
```
"""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlcheck.checks.base import Check, check_arguments, did_you_mean, init_parameters, registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]


class ConfigError(ValueError):
    """A bad [tool.mlcheck] table or selection; the message says what to change."""


@dataclass
class Config:
    select: list[str] | None = None
    suppress: list[str] = field(default_factory=list)
    fail_on: str | None = None
    check_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None


def find_pyproject(start: Path | None = None) -> Path | None:
    # a POSIX working directory holds no symlink (the kernel hands back the path it resolved):
    # `resolve()`, a look-up of every component, is needed for a start given only
    here = Path.cwd() if start is None and os.name == "posix" else (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


FAIL_ON = ("info", "warning", "error")


def load_config(path: Path | None = None, *, given: str | None = None, otherwise: str = "") -> Config:
    """Reads [tool.mlcheck] from `path` or the nearest pyproject.toml; empty Config if none.

    Args:
        path: the file; None: the nearest pyproject.toml from the working directory.
        given: how the user named `path` (`config='x.toml'`, `--config x.toml`): a file that is
            missing, a directory or unreadable is refused with it, so the message names the
            argument to change; `otherwise` says what else it takes.

    Raises:
        ConfigError: the file cannot be read, or a value in the table is wrong; the message is
            one line naming the file and the key.
    """
    path = path or find_pyproject()
    if path is None:
        return Config()
    if given is not None and not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError(
            f"{given}: {path} {what}; give the path of a pyproject.toml with a [tool.mlcheck] table{otherwise}"
        )
    key = _file_key(path)
    loaded = _LOADED.get(key) if key is not None else None
    if loaded is None:
        loaded = _read_config(path, given)
        if key is not None and _settled(key):
            if len(_LOADED) >= 8:
                _LOADED.clear()
            _LOADED[key] = loaded
    return _own_copy(loaded, path)


#: Configs read, by file (`_file_key`): a run reads the nearest pyproject.toml at construction
#: and at fit start, every run of a process; checking the table again (the misplaced-table
#: search compares every [tool] key with "mlcheck") cost ~0.9 M instructions a run.
_LOADED: dict[tuple, Config] = {}

#: A file modified less than this many seconds before it was read is not kept in `_LOADED`:
#: file times advance in coarse ticks (a few ms), so an edit in the same tick, at the same
#: size, would keep the key of the content it replaced (git's "racily clean" entries). An edit
#: of an older file moves its time past the key's.
SETTLED_SECONDS = 2.0


def _own_copy(config: Config, path: Path) -> Config:
    """The caller's copy of a Config kept in `_LOADED`, its file named as this caller named it."""
    return replace(
        config,
        select=None if config.select is None else list(config.select),
        suppress=list(config.suppress),
        check_args=copy.deepcopy(config.check_args) if config.check_args else {},
        source=None if config.source is None else path,
    )


def _file_key(path: Path) -> tuple | None:
    """(absolute path, device, inode, size, modification and change times in ns) of `path`;
    None where it cannot be read (the read then raises as before)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _settled(key: tuple) -> bool:
    """The file of `key` was last changed `SETTLED_SECONDS` or more before now (see there)."""
    return time.time_ns() - max(key[-2:]) >= SETTLED_SECONDS * 1e9


def _read_config(path: Path, given: str | None) -> Config:
    """The [tool.mlcheck] table of `path` read and checked (`load_config`)."""
    try:
        parsed = _parsed(path)
    except ConfigError as exc:
        if given is None:
            raise
        raise ConfigError(f"{given}: {exc}") from None
    tool = parsed.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: `tool` must be a table, got tool = {tool!r}")
    table = copy.deepcopy(tool.get("mlcheck"))  # the parsed file is shared (`_parsed`)
    if table is None:
        _misplaced_table(path, parsed, tool)
        return Config()
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.mlcheck] must be a table, got mlcheck = {table!r}")
    _unknown_keys(path, table)
    fail_on = table.get("fail-on")
    fail_on = fail_on.lower() if isinstance(fail_on, str) else fail_on  # any case, as --fail-on
    if fail_on is not None and fail_on not in FAIL_ON:
        raise ConfigError(
            f'{path}: [tool.mlcheck] fail-on must be "info", "warning" or "error" (any case), got {fail_on!r}'
        )
    select = _ids(path, table, "select")
    if "select" in table and not select:  # `select = []` read as "the defaults" ran checks the user did not expect
        raise ConfigError(
            f"{path}: [tool.mlcheck] select = {table['select']!r} names no check id; name the checks to run, "
            "or remove `select` to run the defaults"
        )
    return Config(
        select=list(select) if select else None,
        suppress=list(_ids(path, table, "suppress")),
        fail_on=fail_on,
        check_args=_check_args(path, table.get("checks", {})),
        source=path,
    )


#: Parsed files by content: a callback reads the file twice (at construction, to refuse a bad
#: table there, and at fit start), and parsing, not reading, is what costs.
_PARSED: dict[str, dict[str, Any]] = {}


def _misplaced_table(path: Path, parsed: dict[str, Any], tool: dict[str, Any]) -> None:
    """A table meant for mlcheck under another name (`[mlcheck]`, `[tool.mlchek]`,
    `[tool.mlcheck-train]`) was read as no configuration at all: its `suppress` and `fail-on`
    silently did nothing. ConfigError naming the table and the one that is read."""
    named = [f"[{key}]" for key in parsed if isinstance(parsed[key], dict) and _like_mlcheck(key)]
    named += [f"[tool.{key}]" for key in tool if isinstance(tool[key], dict) and _like_mlcheck(key)]
    if named:
        raise ConfigError(
            f"{path}: {named[0]} is not read: mlcheck's table is [tool.mlcheck] (rename it to "
            "[tool.mlcheck], or remove it)"
        )


#: The keys of [tool.mlcheck].
KEYS = ("checks", "fail-on", "select", "suppress")


def _unknown_keys(path: Path, table: dict[str, Any]) -> None:
    """ConfigError naming a key [tool.mlcheck] does not have, with the one meant where it is a
    near miss (`suppres`, `fail_on`, `check`), or the table a check's arguments belong in
    (`[tool.mlcheck.loss-divergence]` is the key `loss-divergence` of [tool.mlcheck])."""
    from mlcheck.checks.base import closest_id
    from mlcheck.spelling import meant as spelt

    unknown = sorted(set(table) - set(KEYS))
    if not unknown:
        return
    key = unknown[0]
    check_id = closest_id(key, registry())
    if isinstance(table[key], dict) and check_id is not None:
        raise ConfigError(
            f"{path}: [tool.mlcheck.{key}] is not read: a check's arguments go under [tool.mlcheck.checks.{check_id}]"
        )
    squashed = key.lower().replace("_", "-")
    meant = squashed if squashed in KEYS else spelt(squashed, KEYS)
    hint = f" (did you mean {meant!r}?)" if meant else ""
    more = f" (and {len(unknown) - 1} more: {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
    raise ConfigError(f"{path}: unknown key {key!r} in [tool.mlcheck]{hint}{more}; the keys are {', '.join(KEYS)}")


def _like_mlcheck(key: str) -> bool:
    """`mlcheck`, `MLCheck`, `ml-check`, `mlcheck-train`, `mlchek`: a name meant for mlcheck."""
    from mlcheck.spelling import similarity

    squashed = key.lower().replace("-", "").replace("_", "")
    return squashed.startswith("mlcheck") or similarity(squashed, "mlcheck") >= 0.85


def _parsed(path: Path) -> dict[str, Any]:
    """The TOML of `path`, parsed once per content (shared: copy what you keep)."""
    try:
        text = path.read_text(encoding="utf-8")
        if text not in _PARSED:
            if len(_PARSED) >= 8:
                _PARSED.clear()
            _PARSED[text] = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return _PARSED[text]


def _ids(path: Path, table: dict[str, Any], key: str) -> tuple[str, ...]:
    """A list of check ids under `key` (a lone string is one id, not its characters)."""
    from mlcheck.options import check_ids

    if isinstance(table.get(key), dict):  # [tool.mlcheck.suppress]: its keys were read as ids
        raise ConfigError(
            f'{path}: [tool.mlcheck] {key} must be a list of check ids ({key} = ["class-imbalance"]), '
            f"got a table ([tool.mlcheck.{key}])"
        )
    try:
        return check_ids(f"{path}: [tool.mlcheck] {key}", table.get(key))
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _check_args(path: Path, checks: Any) -> dict[str, dict[str, Any]]:
    """[tool.mlcheck.checks.ID] tables: constructor arguments by check id."""
    if not isinstance(checks, dict):
        raise ConfigError(f"{path}: [tool.mlcheck] checks must be a table of tables, got checks = {checks!r}")
    for check_id, args in checks.items():
        if not isinstance(args, dict):
            raise ConfigError(
                f"{path}: [tool.mlcheck.checks] {check_id} must be a table of constructor arguments "
                f"([tool.mlcheck.checks.{check_id}]), got {check_id} = {args!r}"
            )
    validate_ids(checks, where=f"{path}: [tool.mlcheck.checks]")
    return {k: dict(v) for k, v in checks.items()}


def validate_ids(ids: Iterable[str], where: str = "") -> None:
    reg = registry()
    bad = sorted(set(i for i in ids if i not in reg))
    if bad:
        prefix = f"{where}: " if where else ""
        hint = did_you_mean(bad, reg)
        hint = f" ({hint})" if hint else ""
        raise ConfigError(
            f"{prefix}unknown check id(s) {', '.join(bad)}{hint}. Run `mlcheck checks` for the catalogue."
        )


def build_checks(
    select: Iterable[str] | None = None,
    suppress: Iterable[str] = (),
    config: Config | None = None,
) -> list[Check]:
    """Check instances: `select` (or the config's, or the defaults) minus `suppress`, built with
    the config's per-check arguments. Explicitly selected checks run even if off by default."""
    config = config or Config()
    reg = registry()
    if isinstance(select, str):  # one id, not its characters
        select = [select]
    if isinstance(suppress, str):
        suppress = [suppress]
    select = list(select) if select else config.select
    suppress = set(suppress) | set(config.suppress)
    validate_ids([*(select or []), *suppress])
    ids = select if select else [i for i, cls in reg.items() if cls.default]
    out = []
    for check_id in ids:
        if check_id in suppress:
            continue
        kwargs = config.check_args.get(check_id, {})
        _unknown_arguments(config, check_id, reg[check_id], kwargs)
        try:
            if not hasattr(reg[check_id].__init__, "__wrapped__"):
                check_arguments(reg[check_id], kwargs)  # a user's check: mlcheck's own refuse them when built
            out.append(reg[check_id](**kwargs))
        except (TypeError, ValueError) as exc:
            where = f"{config.source}: [tool.mlcheck.checks.{check_id}] " if config.source else ""
            raise ConfigError(f"{where}bad arguments for check {check_id!r} {kwargs}: {exc}") from None
    if select and not out:  # a run that checks nothing would read as clean
        from mlcheck.options import none_left

        try:
            none_left(select, "select")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return out


def _unknown_arguments(config: Config, check_id: str, cls: type[Check], kwargs: dict[str, Any]) -> None:
    """ConfigError naming an argument `[tool.mlcheck.checks.ID]` gives that the check does not
    take, with the one meant where it is a near miss (Python's own error named `__init__`)."""
    import inspect

    from mlcheck.spelling import meant as spelt

    params = init_parameters(cls)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = [k for k in kwargs if k not in takes]
    if not unknown:
        return
    key = unknown[0]
    meant = spelt(key.replace("-", "_"), takes)
    hint = f" (did you mean {meant!r}?)" if meant else ""
    where = f"{config.source}: " if config.source else ""
    raise ConfigError(
        f"{where}[tool.mlcheck.checks.{check_id}] {key} is not an argument of {check_id}{hint}; it takes "
        + (", ".join(takes) if takes else "none")
        + f" (`mlcheck explain {check_id}` says what each means)"
    )
