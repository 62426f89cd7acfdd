"""A hand-written loop watched by `Monitor(log_dir=...)` in the mlcheck tab: the curves Monitor
wrote (`mlcheck/curves/...`) are the run's train and validation losses beside its finding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_routes import get_json, make_client

from mlcheck import Monitor

pytestmark = pytest.mark.xdist_group("tensorboard_plugin")


def test_a_monitor_run_shows_its_own_loss_curves(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Monitor(log_dir=tmp_path / "loop") as monitor:
            for s in range(600):
                loss = (2.3 * np.exp(-min(s, 300) / 100) + 0.2) * min(10.0, 1 + max(0, s - 300) / 30)
                monitor.log_step(s, loss=float(loss), lr=0.01)
                if s % 100 == 99:
                    monitor.log_epoch(s // 100, step=s, train_loss=float(loss), val_loss=1.1 * float(loss))
    assert [f.check for f in monitor.findings] == ["loss-divergence"]
    client, _ = make_client(tmp_path)
    page = get_json(client, "run", run="loop")
    curves = {c["tag"]: c for c in page["losses"]}
    assert set(curves) == {
        "mlcheck/curves/train_loss_step",
        "mlcheck/curves/train_loss_epoch",
        "mlcheck/curves/val_loss",
    }
    assert (
        curves["mlcheck/curves/val_loss"]["split"] == "val"
        and len(curves["mlcheck/curves/train_loss_step"]["points"]) >= 2
    )
    assert page["axis"] == "step" and [f["check"] for f in page["findings"]] == ["loss-divergence"]
