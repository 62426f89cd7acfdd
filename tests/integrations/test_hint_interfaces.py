"""A finding's hint names the knob of the interface that produced it: the same `overfit-batch`
shortfall (a learning rate so small that the loss on one batch is still falling when the step
budget ends) reported by the live Lightning callback, by the `mlcheck sanity` command and by
`mlcheck.sanity.run` asks for more steps in each one's own words."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import lightning.pytorch as lpt
import pytest

import mlcheck.sanity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

#: Adam at 1.5e-4 (then 1.5e-3, the check's second try) on 16 random-label samples: the loss
#: falls from ~2.4 to ~0.8 in 60 steps and still falls by more than 10% in the last quarter.
STEPS = 60
#: Generous nets: the verdict must come from the steps, not from a loaded machine's clock.
SECONDS = 120

MODEL = textwrap.dedent(
    """
    import lightning.pytorch as pl
    import numpy as np
    import torch
    from torch import nn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 32)).astype("float32")
    y = rng.integers(0, 10, 64).astype("int64")


    class SlowLearner(pl.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def train_dataloader(self):
            data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
            return torch.utils.data.DataLoader(data, batch_size=16)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1.5e-4)


    module = SlowLearner()
    """
)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "slow_learner.py"
    path.write_text(MODEL)
    return path


def _still_falling(findings):
    (finding,) = [f for f in findings if f.check == "overfit-batch"]
    assert finding.severity.value == "info" and finding.key == "inconclusive", finding.format()
    assert "still falling" in finding.message
    return finding.hint


def test_the_live_callback_names_its_constructor_argument(model_file, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(model_file.parent))
    from slow_learner import SlowLearner

    cb = MLCheckCallback(overfit_steps=STEPS, overfit_seconds=SECONDS, log_dir=False)
    lpt.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=1, callbacks=[cb], default_root_dir=str(tmp_path))
    trainer.fit(SlowLearner())
    hint = _still_falling(cb.findings)
    assert f"overfit_steps={4 * STEPS}" in hint
    assert "--budget" not in hint and "Budget(" not in hint


def test_the_command_names_its_option(model_file):
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(model_file), "--json", "--select", "overfit-batch"]
        + ["--budget-steps", str(STEPS), "--budget-seconds", str(SECONDS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (finding,) = json.loads(proc.stdout)["findings"]
    assert finding["check"] == "overfit-batch" and "still falling" in finding["message"]
    assert f"--budget-steps {4 * STEPS}" in finding["hint"]
    assert "Budget(" not in finding["hint"] and "overfit_steps" not in finding["hint"]


def test_the_python_api_names_budget(model_file):
    budget = mlcheck.sanity.Budget(steps=STEPS, seconds=SECONDS)
    result = mlcheck.sanity.run(str(model_file), select=["overfit-batch"], budget=budget)
    hint = _still_falling(result.findings)
    assert f"Budget(steps={4 * STEPS})" in hint
    assert "--budget" not in hint and "overfit_steps" not in hint


def test_every_interface_spells_every_budget_setting():
    from mlcheck.preflight_context import KNOBS, PreflightContext, knob

    settings = {"steps", "seconds", "max_seconds"}
    assert all(set(spelled) == settings for spelled in KNOBS.values())
    assert knob("cli", "max_seconds", 45) == "--budget-max-seconds 45"
    assert knob("live", "seconds", 30) == "overfit_seconds=30"
    with pytest.raises(ValueError, match="interface"):
        PreflightContext(trainable=None, interface="gui")  # type: ignore[arg-type]
