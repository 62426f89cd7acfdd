"""Documentation generated from the checks' docstrings: `mlcheck explain` and docs/checks/."""

from __future__ import annotations

import inspect
from pathlib import Path

import mlcheck
from mlcheck.checks.base import SECTIONS, Check, registry

# The folder that holds the `mlcheck` package: paths below it read as in the repository.
_PACKAGE_ROOT = Path(mlcheck.__file__).resolve().parent.parent


def builtin_checks() -> dict[str, type[Check]]:
    """The checks that ship with mlcheck (users' registered checks are documented by them)."""
    return {k: v for k, v in registry().items() if v.__module__.startswith("mlcheck.checks.")}


def implemented_in(cls: type[Check]) -> str:
    """The file that defines a check's class, as "mlcheck/checks/preflight/overfit_batch.py"
    for built-in checks; a user's check is named by its full path (or module, without a file)."""
    try:
        path = Path(inspect.getfile(cls)).resolve()
    except (TypeError, OSError):  # defined in a REPL or a notebook: no file
        return cls.__module__
    if path.is_relative_to(_PACKAGE_ROOT):
        path = path.relative_to(_PACKAGE_ROOT)
    return path.as_posix()


def check_markdown(cls: type[Check]) -> str:
    """One check's page: id, family, severity, summary, the three sections, Example and Use
    instead (code), Args."""
    doc = cls.doc()
    lines = [
        f"# `{cls.id}`",
        "",
        f"Family: {cls.family} · default severity: {cls.severity.value} · "
        f"{'on by default' if cls.default else 'off by default'}",
        "",
        doc.get("summary", ""),
        "",
        f"Implemented in `{implemented_in(cls)}` (class `{cls.__qualname__}`).",
        "",
    ]
    for section in SECTIONS:
        lines += [f"## {section}", "", doc.get(section, "(not documented)"), ""]
    for section in ("Example", "Use instead"):  # ruff's pair: the buggy code, then the fix
        if section in doc:
            lines += [f"## {section}", "", "```python", doc[section], "```", ""]
    if "Args" in doc:
        lines += ["## Arguments", "", "```", doc["Args"], "```", ""]
    lines += [
        "## Silencing it",
        "",
        f'`MLCheckCallback(suppress=["{cls.id}"])`, `mlcheck analyze --suppress {cls.id}`, '
        f'or `suppress = ["{cls.id}"]` under `[tool.mlcheck]` in pyproject.toml.',
        "",
    ]
    return "\n".join(lines)


def catalogue_markdown() -> str:
    lines = [
        "# Check catalogue",
        "",
        "Generated from the checks' docstrings by `python -m mlcheck.docs docs/checks`; do not edit by hand.",
        "",
        "| id | family | severity | summary |",
        "|---|---|---|---|",
    ]
    for check_id, cls in builtin_checks().items():
        lines.append(
            f"| [`{check_id}`]({check_id}.md) | {cls.family} | {cls.severity.value} | {cls.doc().get('summary', '')} |"
        )
    return "\n".join(lines) + "\n"


def generate(folder: Path) -> dict[Path, str]:
    """{path: text} of every page; `write` puts them on disk, tests compare them."""
    pages = {folder / "README.md": catalogue_markdown()}
    for check_id, cls in builtin_checks().items():
        pages[folder / f"{check_id}.md"] = check_markdown(cls)
    return pages


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in generate(folder).items():
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    import sys

    write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/checks"))
