"""`mlcheck sanity` on a loss summed over the batch judges it as the live callbacks do
(tests/integrations/test_summed_loss_live.py): the sum itself, proven by the batch's loss being
the sum of its halves' losses, is INFO (harmless with a learning rate chosen for it); a rate tuned
for a mean is what warns, through `lr-too-high`'s range test, which names the sum as the likely
cause. Before, sanity gave the sum a WARNING whatever the rate, where the live run said INFO."""

import json
import os
import subprocess
import sys

import pytest

from mlcheck import Severity


def _sanity(fixtures, optimizer: str) -> tuple[int, list[dict]]:
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(fixtures / "summed_loss.py"), "--json", "--fail-on", "warning"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLCHECK_SUMMED_OPTIMIZER": optimizer, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


@pytest.mark.parametrize("optimizer", ["adam", "sgd-per-row"])
def test_a_deliberate_sum_with_a_rate_chosen_for_it_passes(fixtures, optimizer):
    code, findings = _sanity(fixtures, optimizer)
    assert code == 0, findings  # was 1: loss-at-init's WARNING
    (summed,) = [f for f in findings if f["check"] == "loss-at-init"]
    assert summed["severity"] == Severity.INFO.value and "summed over the batch" in summed["message"]
    assert summed["evidence"]["batch"] == 32 and "reduction='mean'" in summed["hint"]


def test_a_rate_tuned_for_a_mean_still_warns_and_names_the_sum(fixtures):
    code, findings = _sanity(fixtures, "sgd-mean")
    assert code == 1
    (high,) = [f for f in findings if f["check"] == "lr-too-high"]
    assert high["severity"] == Severity.WARNING.value and high["evidence"]["likely_cause"] == "loss-at-init"
