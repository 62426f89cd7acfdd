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

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcheck.checks.base import Check, registry

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
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None) -> Config:
    """Reads [tool.mlcheck] from `path` or the nearest pyproject.toml; empty Config if none."""
    path = path or find_pyproject()
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    table = data.get("tool", {}).get("mlcheck")
    if table is None:
        return Config()
    known = {"select", "suppress", "fail-on", "checks"}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in [tool.mlcheck]: {sorted(unknown)}; known: {sorted(known)}")
    cfg = Config(
        select=list(table["select"]) if "select" in table else None,
        suppress=list(table.get("suppress", [])),
        fail_on=table.get("fail-on"),
        check_args={k: dict(v) for k, v in table.get("checks", {}).items()},
        source=path,
    )
    validate_ids([*(cfg.select or []), *cfg.suppress, *cfg.check_args], where=str(path))
    return cfg


def validate_ids(ids: Iterable[str], where: str = "") -> None:
    reg = registry()
    bad = sorted(set(i for i in ids if i not in reg))
    if bad:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}unknown check id(s) {', '.join(bad)}. Run `mlcheck checks` for the catalogue.")


def build_checks(
    select: Iterable[str] | None = None,
    suppress: Iterable[str] = (),
    config: Config | None = None,
) -> list[Check]:
    """Check instances: `select` (or the config's, or the defaults) minus `suppress`, built with
    the config's per-check arguments. Explicitly selected checks run even if off by default."""
    config = config or Config()
    reg = registry()
    select = list(select) if select else config.select
    suppress = set(suppress) | set(config.suppress)
    validate_ids([*(select or []), *suppress])
    ids = select if select else [i for i, cls in reg.items() if cls.default]
    out = []
    for check_id in ids:
        if check_id in suppress:
            continue
        kwargs = config.check_args.get(check_id, {})
        try:
            out.append(reg[check_id](**kwargs))
        except TypeError as exc:
            raise ConfigError(f"bad arguments for check {check_id!r} {kwargs}: {exc}") from None
    return out
