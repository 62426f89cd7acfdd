import json
import math
import warnings

import numpy as np
import pytest

from mlcheck import Finding, Monitor, MLCheckWarning, Severity
from mlcheck.series import Series


def test_series_is_bounded_and_exact_in_mean():
    s = Series(capacity=8)
    values = np.arange(1000, dtype=float)
    for i, v in enumerate(values):
        s.add(i, v)
    b = s.buckets(include_open=True)
    assert len(s) <= 8
    assert np.isclose((b["mean"] * b["n"]).sum() / b["n"].sum(), values.mean())
    assert b["min"].min() == 0 and b["max"].max() == 999


def test_series_extend_matches_add():
    rng = np.random.default_rng(0)
    v = rng.normal(size=5000)
    v[1234] = np.nan
    a, b = Series(16), Series(16)
    for i, x in enumerate(v):
        a.add(i, x)
    b.extend(np.arange(len(v)), v)
    ba, bb = a.buckets(True), b.buckets(True)
    for k in ba:
        assert np.allclose(ba[k], bb[k]), k
    assert a.nonfinite == b.nonfinite == 1 and a.first_nonfinite_x == b.first_nonfinite_x == 1234


def test_monitor_dedups_and_writes_jsonl(tmp_path):
    m = Monitor(log_dir=tmp_path)
    f = Finding("loss-plateau", Severity.WARNING, "stalled", {"x": math.inf}, "raise lr", step=3)
    with pytest.warns(MLCheckWarning):
        assert m.report(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not m.report(f)  # same problem again: an update, not a new warning
    m.close()
    lines = (tmp_path / "findings.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["evidence"] == {"x": "inf"}
    assert m.findings == [f]


def test_info_findings_do_not_warn():
    m = Monitor()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.report(Finding("loss-plateau", Severity.INFO, "fyi"))
    assert len(m.findings) == 1


def test_stop_on_error():
    m = Monitor(stop_on="error", warn=False)
    m.report(Finding("loss-plateau", Severity.WARNING, "w"))
    assert not m.should_stop
    m.report(Finding("nonfinite-loss", Severity.ERROR, "e"))
    assert m.should_stop and m.stop_reason.check == "nonfinite-loss"


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, mlcheck; heavy = [m for m in ('torch', 'keras', 'lightning', "
            "'pytorch_lightning', 'rich', 'tensorflow') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
