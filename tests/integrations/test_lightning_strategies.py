"""Lightning strategies beyond DDP: `ddp_spawn` with two gloo processes on CPU.

Under `ddp_spawn` the callback is pickled into each spawned process, so what each rank saw is
written by a small reporting callback from inside that process. Checked: only rank zero raises
findings, warns and writes `findings.jsonl`; an ERROR finding raised on rank zero alone (a
check that fires at a fixed step) stops every rank at the same step through `stop_on`.

Not tested, because they do not run on this CPU-only machine: FSDP (Lightning's FSDPStrategy
needs CUDA), DeepSpeed, and multi-node runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ddp")]

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, warnings
    import torch
    from torch import nn
    import lightning.pytorch as L
    from mlcheck import Check, MLCheckWarning, Severity
    from mlcheck.integrations.lightning import MLCheckCallback

    class FireAt(Check):
        \"\"\"Fires one ERROR at step 12 (test helper).\"\"\"
        id = "strategy-fire"
        family = "test"
        default = False
        def on_step(self, run):
            if run.step is not None and run.step >= 12:
                yield self.finding("reached step 12", step=run.step, severity=Severity.ERROR, key="once")

    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        def training_step(self, batch, i):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    class Report(L.Callback):
        def __init__(self):
            self.caught = None
        def on_fit_start(self, trainer, pl_module):
            self.ctx = warnings.catch_warnings(record=True)
            self.caught = self.ctx.__enter__()
            warnings.simplefilter("always")
        def on_fit_end(self, trainer, pl_module):
            self.ctx.__exit__(None, None, None)
            cb = next(c for c in trainer.callbacks if isinstance(c, MLCheckCallback))
            with open(os.path.join(sys.argv[1], f"rank{trainer.global_rank}.json"), "w") as f:
                json.dump({"findings": [x.check for x in cb.findings], "steps": trainer.global_step,
                           "warnings": sum(issubclass(w.category, MLCheckWarning) for w in self.caught)}, f)

    if __name__ == "__main__":
        out = sys.argv[1]
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1024, 8, generator=g)
        y = (x[:, 0] > 0).long()
        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
        cb = MLCheckCallback(checks=[FireAt()], overfit_batch=False, stop_on="error", every_n_steps=4,
                             log_dir=os.path.join(out, "logs"))
        trainer = L.Trainer(strategy="ddp_spawn", accelerator="cpu", devices=2, max_epochs=3,
                            enable_progress_bar=False, enable_model_summary=False, logger=False,
                            enable_checkpointing=False, default_root_dir=out, callbacks=[cb, Report()])
        trainer.fit(Net(), data)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_spawn_rank_zero_writes_and_its_stop_reaches_every_rank(tmp_path):
    script = tmp_path / "spawn_run.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), PYTHONWARNINGS="ignore")
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["findings"] == ["strategy-fire"] and r0["warnings"] == 1
    assert r1["findings"] == [] and r1["warnings"] == 0
    # 32 steps per epoch per rank, 96 in all: both stopped together, before the first epoch
    # ended (steps reach the checks in blocks of 16-32, and ranks agree every 4 steps)
    assert r0["steps"] == r1["steps"] and 12 <= r0["steps"] <= 40
    lines = (tmp_path / "logs" / "findings.jsonl").read_text().splitlines()
    assert [json.loads(line)["check"] for line in lines] == ["strategy-fire"]
    # user35: one end-of-fit summary, rank zero's; rank one's ("checked 0 steps ... no problems
    # found") contradicted it
    summaries = [line for line in proc.stderr.splitlines() if "mlcheck: checked" in line]
    assert len(summaries) == 1 and "1 finding" in summaries[0], summaries
