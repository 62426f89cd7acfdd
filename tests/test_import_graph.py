"""Imports go one way: the CLI imports its commands, the commands never import the CLI, and no
import cycle crosses a package boundary (read from the source, call-time imports included)."""

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlcheck"
COMMAND_MODULES = ["mlcheck.cli", "mlcheck.analyze.command", "mlcheck.sanity.command"]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(name: str, path: Path, modules: dict[str, Path], call_time: bool) -> set[str]:
    """The mlcheck modules `name` imports: at module level, and inside functions if `call_time`.
    `from pkg import x` counts as importing pkg.x when that is a module, else pkg."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # never runs
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import) and (call_time or not inside):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and (call_time or not inside):
                base = child.module or ""
                if child.level:
                    base = ".".join(package[: len(package) - child.level + 1] + ([base] if base else []))
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in child.names)
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return {m for m in found if m in modules and m != name}


def _graph(call_time: bool) -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules, call_time) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _package_of(module: str) -> str:
    """The package a module belongs to; a nested package (`mlcheck.checks.preflight`) counts
    as part of its top package (`mlcheck.checks`)."""
    package = module if (_modules()[module].name == "__init__.py") else module.rpartition(".")[0]
    return ".".join(package.split(".")[:2])


def test_the_graph_reader_sees_imports_inside_functions():
    graph = _graph(call_time=True)
    assert "mlcheck.analyze.command" in graph["mlcheck.cli"]
    assert "mlcheck.config" in graph["mlcheck.analyze"]  # imported inside analyze's run()


@pytest.mark.parametrize("call_time", [False, True], ids=["module-level", "with-call-time"])
def test_no_import_cycle_crosses_a_package(call_time):
    # A package and its own submodules importing each other is how `mlcheck.sinks` and
    # `mlcheck.checks` register their parts; a cycle between packages is a layering mistake.
    crossing = [c for c in _cycles(_graph(call_time)) if len({_package_of(m) for m in c}) > 1]
    assert not crossing, f"import cycles across packages: {crossing}"


def test_commands_do_not_import_the_cli():
    importers = sorted(m for m, imports in _graph(call_time=True).items() if "mlcheck.cli" in imports)
    assert importers == ["mlcheck.__main__"]


@pytest.mark.parametrize("order", list(itertools.permutations(COMMAND_MODULES)), ids="->".join)
def test_cli_and_commands_import_in_any_order(order):
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in order)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
