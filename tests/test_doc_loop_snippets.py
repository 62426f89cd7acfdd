"""The hand-written-loop snippets of README.md and docs/live.md run as written (their `...` is
one real torch training step) over several epochs, and give the checks one step axis that
counts on across epochs (was: README's snippet used an `epoch` it never defined, and live.md's
restarted its steps at 0 each epoch, so markers of later epochs landed on the first's steps)."""

import re
from pathlib import Path

import torch
from torch import nn

import mlcheck
from mlcheck import Monitor, live

ROOT = Path(__file__).resolve().parent.parent


def snippet(path: str, marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / path).read_text(), flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    line = next(ln for ln in block.splitlines() if ln.strip() == "...")
    pad = line[: len(line) - len(line.lstrip())]
    step = "; ".join(
        [
            "loss = loss_fn(model(x), y)",
            "optimizer.zero_grad()",
            "loss.backward()",
            "optimizer.step()",
            "train_loss = val_loss = loss.item()",
        ]
    )
    return block.replace(line, pad + step, 1).replace('log_dir="runs/exp1"', "log_dir=LOG_DIR")


def namespace(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(96, 8)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = nn.Linear(8, 2)
    return {
        "LOG_DIR": str(tmp_path),
        "loader": [(x[i : i + 16], y[i : i + 16]) for i in range(0, 96, 16)],
        "model": model,
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.05),
        "loss_fn": nn.CrossEntropyLoss(),
        "epochs": 3,
    }


def test_readme_monitor_loop_runs_and_counts_steps_on(tmp_path, monkeypatch):
    seen = []

    class Recording(Monitor):
        def log_step(self, step, **kw):
            seen.append(step)
            return super().log_step(step, **kw)

    monkeypatch.setattr(mlcheck, "Monitor", Recording)
    exec(snippet("README.md", "with Monitor("), namespace(tmp_path))
    assert seen == list(range(3 * 6))


def test_live_md_liverun_loop_runs_and_counts_steps_on(tmp_path, monkeypatch):
    seen = []
    hold = live.LiveRun.hold_step

    def recording(self, step, *args, **kw):
        seen.append(step)
        return hold(self, step, *args, **kw)

    monkeypatch.setattr(live.LiveRun, "hold_step", recording)
    ns = namespace(tmp_path)
    exec(snippet("docs/live.md", "LiveRun(LiveOptions("), ns)
    assert seen == list(range(3 * 6))


def test_readme_names_the_fields_of_a_finding():
    """Was: only `finding.format()` appeared in the docs, so `f.check_id` was a natural guess."""
    import dataclasses

    readme = (ROOT / "README.md").read_text()
    for field in dataclasses.fields(mlcheck.Finding):
        if field.name != "key":  # internal: not serialised
            assert f"`{field.name}`" in readme, field.name


def test_layers_md_plain_loop_names_a_planted_nan_layer(tmp_path):
    """docs/layers.md's plain-loop snippet, as written, names the layer that computes log(0)
    (was: its `Monitor(log_dir=...)` had only the default checks, so the opt-in
    `nonfinite-origin` was not there to judge what `recorder.locate` found: no finding at all)."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/layers.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if "recorder = LayerRecorder(model)" in b and "TorchBreakpoints" not in b]
    block = block.replace('log_dir="runs/exp1"', "log_dir=LOG_DIR")

    class LateLog(nn.Module):
        calls = 0

        def forward(self, x):
            self.calls += 1
            return torch.log(x * 0) if self.calls > 3 else x

    ns = namespace(tmp_path)
    torch.manual_seed(0)
    ns["model"] = model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), LateLog(), nn.Linear(8, 2))
    ns["optimizer"] = torch.optim.SGD(model.parameters(), lr=0.05)
    ns["torch"] = torch  # the user's own import
    exec(block, ns)
    origins = [f for f in ns["monitor"].findings if f.check == "nonfinite-origin"]
    assert [f.evidence["layer"] for f in origins] == ["2"]


def test_readme_monitor_section_points_to_a_sanity_command_that_runs():
    """Monitor sees only the logged numbers; README's Monitor section names the `mlcheck sanity`
    command for model and loss bugs, and that command, run as written, checks the plain-loop
    example's model (was: no pointer, and examples/plain_loop.py had no target to check)."""
    import json
    import shlex
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Any loop: `Monitor`", 1)[1].split("\n## ", 1)[0]
    (command,) = re.findall(r"`(mlcheck sanity [^`]+)`", section)
    args = shlex.split(command)[1:]
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", *args, "--json"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["findings"] == []
    status = {c["check"]: c["status"] for c in report["checks"]}
    assert status["overfit-batch"] == status["output-loss-mismatch"] == "ok"  # the model itself was checked


def test_live_md_checks_snippets_run_as_written(tmp_path):
    """docs/live.md's `checks=` snippets, pasted after its own check, run a real Lightning fit
    (was: `default_checks` and `LossPlateau` were used without an import: NameError)."""
    import lightning.pytorch as pl

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/live.md").read_text(), flags=re.S)
    (own,) = [b for b in blocks if "class ConstantTargets(Check)" in b]
    (extra,) = [b for b in blocks if "ConstantTargets()])" in b]
    (twice,) = [b for b in blocks if "LossPlateau(min_epochs=10)" in b]

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(8, 2)

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    def fit(block: str) -> list:
        exec(block, ns)
        x = torch.randn(64, 8)
        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
        trainer = pl.Trainer(
            max_epochs=1, callbacks=[ns["cb"]], default_root_dir=tmp_path, logger=False, enable_progress_bar=False
        )
        trainer.fit(Tiny(), data)
        return ns["cb"].monitor.checks

    ns: dict = {}
    exec(own, ns)
    assert "constant-targets" in [c.id for c in fit(extra)]
    checks = fit(twice)
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids)) and "loss-plateau" in ids
    (plateau,) = [c for c in checks if c.id == "loss-plateau"]
    assert plateau.min_epochs == 10
