"""How targets are found in model.py (the error cases are in test_bad_input.py)."""

from mlcheck.sanity import sanity
from mlcheck.sanity.discovery import split_selector


def test_split_selector():
    assert split_selector("model.py:build") == (__import__("pathlib").Path("model.py"), "build")
    assert split_selector("model.py")[1] is None
    assert split_selector(r"C:\work\model.py")[1] is None


def test_lightning_instances_with_a_datamodule(fixtures):
    result = sanity(fixtures / "lightning_instances.py", select=["loss-at-init"])
    assert result.target == "lightning_instances.py:model"
    assert result.framework == "lightning"
    assert not result.failed


def test_selector_names_a_lightning_class(fixtures):
    result = sanity(f"{fixtures / 'lightning_clean.py'}:DigitsMLP", select=["nonfinite-input"])
    assert result.target == "lightning_clean.py:DigitsMLP"
    assert [c.check for c in result.checks] == ["nonfinite-input"]


def test_selector_names_a_function_returning_a_target(fixtures):
    result = sanity(f"{fixtures / 'buggy_nonfinite_input.py'}:mlcheck_target", select=["nonfinite-input"])
    assert "nonfinite-input" in {f.check for f in result.findings}


def test_the_import_time_of_installed_packages_is_told_apart_from_model_py_own(tmp_path, monkeypatch):
    """A slow import made slow by the packages model.py imports (a loaded machine importing
    torch) must not earn the advice to move model.py's work under `__main__`."""
    import time

    from mlcheck.sanity.import_guard import ImportTime, import_model_file, slow_import_note

    site = tmp_path / "site"
    site.mkdir()
    (site / "slow_installed_pkg.py").write_text("import time\ntime.sleep(0.4)\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "helpers_here.py").write_text("import time\ntime.sleep(0.2)\n")
    (project / "model.py").write_text(
        "import time\nimport slow_installed_pkg\nimport helpers_here\ntime.sleep(0.2)\nVALUE = 1\n"
    )
    monkeypatch.syspath_prepend(str(site))
    started = time.perf_counter()
    module, took = import_model_file(project / "model.py")
    elapsed = time.perf_counter() - started
    assert module.VALUE == 1
    assert 0.4 <= took.packages < 0.4 + 0.3  # the installed package, not the neighbour module
    assert took.own >= 0.4  # model.py's own sleep and its neighbour's
    assert took.total <= elapsed

    # the notes: the packages' seconds alone earn no advice to move code under __main__
    framework_bound = slow_import_note("model.py", ImportTime(total=45.0, packages=41.0))
    assert "41 s of it importing installed packages" in framework_bound
    assert "__main__" not in framework_bound and "4 s" in framework_bound
    own_bound = slow_import_note("model.py", ImportTime(total=45.0, packages=5.0))
    assert "__main__" in own_bound and "(5 s of it importing installed packages)" in own_bound
    assert slow_import_note("model.py", ImportTime(total=20.0, packages=1.0)) is None
