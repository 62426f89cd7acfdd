"""The built distribution, not the editable checkout: a wheel and an sdist are built from this
tree, the wheel is installed into a fresh virtual environment, and everything a user reaches
after `pip install mlcheck-train` is exercised from there.

Guards what every other test misses because it imports the source tree: a subpackage left out
of pyproject's `packages` (as `mlcheck.checks.preflight` once was), the `mlcheck.integrations`
package-dir mapping, the console script, the `pytest11` entry point.

Offline and fast (~15 s): the build runs without isolation (setuptools and wheel come from the
project's .venv), the wheel goes in with `pip --python NEWVENV install --no-deps --no-index`,
and the dependencies (numpy, tensorboard, rich, torch, lightning, pytest) come from the
project's .venv through a path in a `.pth` file. A path in a `.pth` file only extends sys.path:
the `.pth` files of that directory (the editable install's finder among them) are not run, so
`mlcheck` itself can only come from the wheel, which the test asserts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _source_modules() -> set[str]:
    """Every module of the source tree as its path inside the wheel (integrations/ ships as
    mlcheck/integrations/)."""
    found = {p.relative_to(ROOT).as_posix() for p in (ROOT / "mlcheck").rglob("*.py")}
    found |= {"mlcheck/" + p.relative_to(ROOT).as_posix() for p in (ROOT / "integrations").rglob("*.py")}
    return found


#: what the build reads: a copy of these is built, not the checkout, whose root other tests
#: and their subprocesses may write into meanwhile (setuptools stages the sdist in the source
#: folder; a concurrent change there once failed the build with a missing staging folder)
_BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "mlcheck", "integrations")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    out, src = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in _BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=skip)
        elif path.exists():
            shutil.copy2(path, src / name)
    _run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), str(src)], src)
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its python."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env_dir).strip()
    )
    (purelib / "_mlcheck_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = dist.glob("*.whl")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "--python", str(python)]
    _run([*pip, "install", "--no-deps", "--no-index", str(wheel)], env_dir)
    return python


def test_wheel_holds_every_module_and_the_sdist_every_source(dist: Path) -> None:
    (wheel,) = dist.glob("mlcheck_train-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_source_modules() - names)
    assert not missing, f"modules missing from the wheel (add their package to pyproject's packages): {missing}"
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(wheel).read(meta).decode()
    assert "mlcheck = mlcheck.cli:main" in entry_points and "mlcheck = mlcheck.pytest_plugin" in entry_points
    assert "[tensorboard_plugins]\nmlcheck = mlcheck.tensorboard_plugin.plugin:MLCheckPlugin" in entry_points
    static = {p.relative_to(ROOT).as_posix() for p in (ROOT / "mlcheck" / "tensorboard_plugin" / "static").iterdir()}
    assert static and not sorted(static - names), "the TensorBoard tab's static files are missing from the wheel"

    (sdist,) = dist.glob("mlcheck_train-*.tar.gz")
    with tarfile.open(sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    sources = {p.relative_to(ROOT).as_posix() for d in ("mlcheck", "integrations") for p in (ROOT / d).rglob("*.py")}
    assert not sorted(sources - in_sdist), "sources missing from the sdist"
    assert {"README.md", "pyproject.toml"} <= in_sdist


def test_installed_wheel_imports_runs_and_registers(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env_bin = installed.parent
    probe = textwrap.dedent(
        """
        import importlib.metadata, sys
        import mlcheck
        assert mlcheck.__file__.startswith(sys.prefix), mlcheck.__file__
        heavy = sorted(m for m in ("torch", "lightning", "keras", "rich", "tensorflow") if m in sys.modules)
        assert not heavy, f"import mlcheck imported {heavy}"
        import mlcheck.checks.preflight
        from mlcheck.integrations.lightning import MLCheckCallback
        assert MLCheckCallback.__module__ == "mlcheck.integrations.lightning"
        dist = importlib.metadata.distribution("mlcheck-train")
        assert str(dist.locate_file("")).startswith(sys.prefix), dist.locate_file("")
        print(dist.version)
        """
    )
    version = _run([str(installed), "-c", probe], tmp_path, env).strip()
    assert _run([str(env_bin / "mlcheck"), "--version"], tmp_path, env).strip() == f"mlcheck {version}"
    catalogue = _run([str(env_bin / "mlcheck"), "checks"], tmp_path, env)
    for check_id in ("nonfinite-loss", "train-val-overlap", "overfit-batch", "unused-parameters"):
        assert check_id in catalogue

    # The pytest plugin, found through its entry point, runs the pre-flight checks on a model.
    (tmp_path / "test_fixture.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            def test_sane(mlcheck_sanity):
                torch.manual_seed(0)
                x = torch.randn(64, 4)
                y = (x[:, 0] > 0).long()
                model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
                result = mlcheck_sanity(
                    {"model": model, "loss": nn.CrossEntropyLoss(), "train_data": (x, y)}, fail_on="error"
                )
                assert result is not None
            """
        )
    )
    out = _run([str(installed), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_fixture.py"], tmp_path, env)
    assert "1 passed" in out
