"""The child process of the real `mlcheck sanity` command imports model.py with the arguments
`python model.py` would give it (none), not the options it was handed as JSON."""

import subprocess
import sys

MODEL = """
import argparse
import sys

import torch
from torch import nn

# a training script's usual module-level parser: it must see no arguments, only its defaults
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
args = parser.parse_args()
ARGV = list(sys.argv)


def mlcheck_target():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    return {
        "model": model,
        "train_data": torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32),
        "loss": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.SGD(model.parameters(), lr=args.lr),
    }


print("argv seen by model.py:", ARGV, file=sys.stderr)
"""


def test_model_py_sees_no_command_line_arguments(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(MODEL)
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", f"{path}:mlcheck_target", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "unrecognized arguments" not in proc.stderr, proc.stderr
    assert f"argv seen by model.py: [{str(path)!r}]" in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), proc.stderr  # checked: clean or with findings, never bad input
