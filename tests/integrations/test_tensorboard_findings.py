"""Every finding of a run can be read back through a real TensorBoard server.

TensorBoard drops a tag's later points when a step goes back on that tag (`purge_orphaned_data`)
and shows one point per step: findings at several steps and epochs of one check, epoch-only
findings and several findings at one step must all survive.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from torch import nn

from mlcheck import Check, Severity
from mlcheck.integrations.lightning import MLCheckCallback


class FiresOften(Check):
    """Fires at two steps (twice at the first, with different keys) and at every epoch end
    without a step, like the epoch-level checks do.

    What it does:
        Test check.
    Why it matters:
        Test check.
    How to fix:
        Nothing.
    """

    id = "test-fires-often"
    family = "test"
    severity = Severity.WARNING

    def reset(self) -> None:
        self.step_calls = 0

    def on_step(self, run):  # the first two evaluation points
        self.step_calls += 1
        if self.step_calls > 2:
            return ()
        return [self.finding(f"fired at step {run.step} ({k})", step=run.step, key=f"{run.step}{k}") for k in "ab"]

    def on_epoch(self, run):
        return [self.finding(f"fired at epoch {run.epoch}", epoch=run.epoch, key=f"epoch{run.epoch}")]


class Net(lpt.LightningModule):
    def __init__(self, nan_after: int | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        self.nan_after = nan_after

    def training_step(self, batch, _):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        if self.nan_after is not None and self.global_step >= self.nan_after:
            loss = loss * float("nan")
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        if self.nan_after is not None and self.global_step >= self.nan_after:
            loss = loss * float("nan")
        self.log("val_loss", loss)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _fit(root, cb, model, epochs=3):
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(640, 8)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 3, size=640))
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:512], y[:512]), batch_size=16)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[512:], y[512:]), batch_size=64)
    trainer = lpt.Trainer(
        max_epochs=epochs,
        callbacks=[cb],
        default_root_dir=root,
        log_every_n_steps=8,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, train, val)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, **query):
    url = f"http://127.0.0.1:{port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read().decode())


def _read_back(logdir, expected_texts: int) -> tuple[dict, dict]:
    """(text entries by tag, mlcheck/findings points) of run version_0, from a real server."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        texts: dict = {}
        while time.monotonic() < deadline:
            assert server.poll() is None, "tensorboard exited"
            try:
                tags = _get(port, "/data/plugin/text/tags").get("version_0", [])
                texts = {t: _get(port, "/data/plugin/text/text", run="version_0", tag=t) for t in tags}
                if sum(map(len, texts.values())) >= expected_texts + 1:  # and the summary
                    break
            except OSError:
                pass
            time.sleep(1)
        counts = _get(port, "/data/plugin/scalars/scalars", run="version_0", tag="mlcheck/findings")
        return texts, counts
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["steps-and-epochs", "nan-run"])
def test_every_finding_reaches_the_tensorboard_server(tmp_path, case):
    if case == "steps-and-epochs":
        cb = MLCheckCallback(checks=[FiresOften()], overfit_batch=False, warn=False)
        _fit(tmp_path, cb, Net())
    else:  # a real NaN run: losses, validation and weights go non-finite at step 40
        cb = MLCheckCallback(overfit_batch=False, warn=False)
        _fit(tmp_path, cb, Net(nan_after=40))
    findings = cb.findings
    lines = (tmp_path / "lightning_logs" / "version_0" / "findings.jsonl").read_text().splitlines()
    assert len(lines) == len(findings) >= 4
    texts, counts = _read_back(tmp_path / "lightning_logs", expected_texts=len(findings))
    shown = [entry["text"] for tag, entries in texts.items() if tag != "mlcheck/summary" for entry in entries]
    assert len(texts.get("mlcheck/summary", [])) == 1  # the end-of-fit summary
    assert len(shown) == len(findings), (shown, [f.message for f in findings])
    for finding in findings:
        assert any(finding.message in text for text in shown), finding.message
    assert [round(p[2]) for p in counts] == list(range(1, len(findings) + 1))
    steps = [p[1] for p in counts]
    assert steps == sorted(steps)
