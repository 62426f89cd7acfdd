"""`mlcheck.testing.assert_sane` and the `mlcheck_sanity` pytest fixture, inside real pytest runs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlcheck import Check, Severity
from mlcheck.testing import assert_sane
from numpy_trainable import NumpyTrainable, blobs

HERE = Path(__file__).parent


def test_assert_sane_passes_a_healthy_model_and_returns_the_result():
    result = assert_sane(NumpyTrainable(*blobs()))
    assert result.checks and not result.at_or_above("warning")


class Note(Check):
    """Always says something worth a look."""

    id = "test-note"
    family = "preflight"

    def preflight(self, ctx):
        yield self.finding("worth a look", severity=Severity.INFO)


def test_assert_sane_lists_the_findings():
    x, y, xv, yv = blobs()
    x[::5, 0] = np.inf
    with pytest.raises(AssertionError) as info:
        assert_sane(NumpyTrainable(x, y, xv, yv))
    text = str(info.value)
    assert "mlcheck sanity found" in text
    assert "[error] nonfinite-input" in text and "Fix:" in text


def test_assert_sane_fail_on():
    target = NumpyTrainable(*blobs())
    assert_sane(target, checks=[Note()])  # INFO is below the default "warning"
    with pytest.raises(AssertionError, match="test-note"):
        assert_sane(target, checks=[Note()], fail_on="info")


def test_fixture_in_a_real_pytest_run(pytester):
    pytester.makepyfile(numpy_trainable=(HERE / "numpy_trainable.py").read_text())
    pytester.makepyfile(
        test_model="""
        import numpy as np
        from numpy_trainable import NumpyTrainable, blobs

        def test_healthy(mlcheck_sanity):
            result = mlcheck_sanity(NumpyTrainable(*blobs()))
            assert result.checks

        def test_broken(mlcheck_sanity):
            x, y, xv, yv = blobs()
            x[::5, 0] = np.nan
            np.seterr(all="ignore")
            mlcheck_sanity(NumpyTrainable(x, y, xv, yv))

        def test_broken_model_file(mlcheck_sanity, tmp_path):
            path = tmp_path / "model.py"
            path.write_text("import numpy_trainable as nt\\n"
                            "mlcheck_target = lambda: {'model': nt.NumpyTrainable(*nt.blobs())}\\n")
            mlcheck_sanity(str(path), fail_on="error")
        """
    )
    # a subprocess: the plugin is found through its pytest11 entry point, as in users' projects
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*mlcheck sanity found * problem(s)*", "*[[]error[]] nonfinite-input*"])
    assert "Traceback" not in result.stdout.str()  # pytest.fail(pytrace=False): findings only


def test_plugin_imports_no_framework():
    code = (
        "import sys, mlcheck.pytest_plugin, mlcheck.testing, mlcheck.sanity; "
        "bad = [m for m in ('torch', 'keras', 'lightning', 'rich', 'tensorflow') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
