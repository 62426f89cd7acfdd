"""A new user's first hour, round 20: `loss-divergence`'s multiples at or below 1.

`LossDivergence(factor=0.5)`, and `factor = 0.5` under `[tool.mlcheck.checks.loss-divergence]`,
were taken: "a loss 0.5x its best" means any loss, and only the check's other thresholds kept a
healthy run quiet. Each of its "this many times a level" arguments (factor, the spike factors,
runaway_factor, rate_raise) must now be above 1, refused naming the argument and its default, in
Python and from the table (exit 2 from the command)."""

import subprocess
import sys

import pytest

from mlcheck.checks.optimization import LossDivergence


@pytest.mark.parametrize("name", ["factor", "spike_factor", "runaway_factor", "rate_raise"])
@pytest.mark.parametrize("value", [0.5, 1, 1.0, 0])
def test_user20_a_multiple_at_or_below_1_is_refused_naming_it(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be above 1 \(.*default .*\), got {value!r}"):
        LossDivergence(**{name: value})
    assert getattr(LossDivergence(**{name: 1.5}), name) == 1.5


def test_user20_factor_half_in_the_config_table_is_exit_2_naming_the_key(tmp_path):
    (tmp_path / "log.csv").write_text(
        "epoch,loss,val_loss\n" + "".join(f"{e},{1 / (e + 1)},{1.1 / (e + 1)}\n" for e in range(8))
    )
    (tmp_path / "pyproject.toml").write_text("[tool.mlcheck.checks.loss-divergence]\nfactor = 0.5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "log.csv"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    text = " ".join(proc.stderr.split())
    assert "[tool.mlcheck.checks.loss-divergence]" in text and "factor must be above 1" in text, proc.stderr
    assert "Traceback" not in proc.stderr
