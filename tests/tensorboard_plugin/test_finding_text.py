"""The tab reads findings back from the Markdown the TensorBoard sink writes: every field survives."""

from __future__ import annotations

import pytest

from mlcheck import Finding, Severity
from mlcheck.sinks.tensorboard import finding_markdown
from mlcheck.tensorboard_plugin.finding_text import parse_finding_markdown

CASES = [
    Finding(
        check="train-val-gap",
        severity=Severity.WARNING,
        message="Validation loss rose for 3 epochs while training loss fell.",
        evidence={"best_epoch": 4, "gap": 0.123456, "split": "val | train", "nan": float("nan")},
        hint="Stop at the best epoch (EarlyStopping), add regularisation.",
        step=120,
        epoch=5,
    ),
    Finding(check="overfit-batch", severity=Severity.ERROR, message="Cannot overfit one batch."),
    Finding(check="lr-schedule", severity=Severity.INFO, message="LR decays to 0 early.", epoch=2),
]


@pytest.mark.parametrize("finding", CASES, ids=lambda f: f.check)
def test_round_trip(finding):
    parsed = parse_finding_markdown(finding_markdown(finding), event_step=7)
    assert parsed is not None
    assert (parsed.check, parsed.severity, parsed.step, parsed.epoch) == (
        finding.check,
        finding.severity.value,
        finding.step,
        finding.epoch,
    )
    assert parsed.message == finding.message and parsed.hint == finding.hint and parsed.event_step == 7
    assert list(parsed.evidence) == list(finding.evidence)


def test_evidence_values_as_formatted():
    parsed = parse_finding_markdown(finding_markdown(CASES[0]))
    assert parsed.evidence == {"best_epoch": "4", "gap": "0.1235", "split": "val | train", "nan": "nan"}


@pytest.mark.parametrize("text", ["", "mlcheck: 3 findings", "**WARNING** no id here"])
def test_other_text_is_not_a_finding(text):
    assert parse_finding_markdown(text) is None
