"""`mlcheck.analyze` and `mlcheck.sanity`: always the packages, callable as the functions they
were (`mlcheck.analyze(path)` is `mlcheck.analyze.run(path)`), whatever was imported first."""

import subprocess
import sys
import textwrap

import pytest

# Each order is a fresh interpreter: what is imported first is the point.
FIRST_IMPORTS = {
    "nothing": "",
    "a submodule": "import mlcheck.analyze.tags, mlcheck.sanity.runner",
    "the commands": "import mlcheck.cli",
    "from-import": "from mlcheck import analyze, sanity",
}


@pytest.mark.parametrize("first", FIRST_IMPORTS.values(), ids=FIRST_IMPORTS.keys())
def test_analyze_and_sanity_are_callable_packages(first, tmp_path):
    (tmp_path / "training.csv").write_text(
        "epoch,loss\n" + "".join(f"{e},{1.0 / (e + 1):.4f}\n" for e in range(10)), encoding="utf-8"
    )
    code = textwrap.dedent(f"""
        import sys, types
        import mlcheck.errors
        {first}
        import mlcheck
        import mlcheck.analyze as analyze_package, mlcheck.sanity as sanity_package
        assert mlcheck.analyze is analyze_package and mlcheck.sanity is sanity_package
        assert isinstance(mlcheck.analyze, types.ModuleType) and isinstance(mlcheck.sanity, types.ModuleType)
        assert mlcheck.analyze.analyze is mlcheck.analyze.run and mlcheck.sanity.sanity is mlcheck.sanity.run
        called = mlcheck.analyze({str(tmp_path / "training.csv")!r})
        ran = mlcheck.analyze.run({str(tmp_path / "training.csv")!r})
        assert [r.name for r in called.runs] == [r.name for r in ran.runs] == ["training.csv"]
        try:
            mlcheck.sanity(42)
        except mlcheck.errors.BadInput as exc:
            assert "cannot check a int" in str(exc)
        else:
            raise AssertionError("mlcheck.sanity(42) did not raise")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_import_mlcheck_does_not_import_analyze_or_sanity():
    code = (
        "import sys, mlcheck; "
        "print(sorted(m for m in sys.modules if m.startswith(('mlcheck.analyze', 'mlcheck.sanity'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
