"""A check is found from its id in one step, and the check catalogue does not depend on the
sanity runner (the runner depends on it)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import mlcheck.checks

ROOT = Path(__file__).resolve().parents[1]
CHECKS = Path(mlcheck.checks.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at top level, under TYPE_CHECKING or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_checks_never_import_the_sanity_runner():
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.startswith("mlcheck.sanity"))
        for p in CHECKS.rglob("*.py")
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_each_preflight_check_lives_in_a_file_named_after_its_id():
    from mlcheck.checks import registry

    for check_id, cls in registry().items():
        if cls.family == "pre-flight":
            assert cls.__module__ == "mlcheck.checks.preflight." + check_id.replace("-", "_")


def test_explain_names_the_file_that_implements_the_check():
    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "explain", "overfit-batch"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )  # one line, unwrapped
    assert out.returncode == 0, out.stderr
    assert "Implemented in mlcheck/checks/preflight/overfit_batch.py (class OverfitBatch)" in out.stdout


def test_parse_doc_splits_example_and_use_instead():
    from mlcheck.checks.base import parse_doc

    header_level = "Summary.\n\nExample:\n    bad()\n\nUse instead:\n    good()\n"
    code_level = "Summary.\n\nExample:\n    bad()\n\n    Use instead:\n    good()\n"
    for text in (header_level, code_level):
        doc = parse_doc(text)
        assert (doc["Example"], doc["Use instead"]) == ("bad()", "good()")


def test_every_preflight_check_shows_the_bug_and_the_fix():
    from mlcheck.checks import registry
    from mlcheck.docs import check_markdown

    for cls in registry().values():
        if cls.family == "pre-flight":
            doc = cls.doc()
            assert doc.get("Example") and doc.get("Use instead"), cls.id
            assert "## Use instead" in check_markdown(cls)
    mismatch = registry()["output-loss-mismatch"].doc()
    assert "nn.Softmax" in mismatch["Example"] and "nn.Softmax" not in mismatch["Use instead"]
