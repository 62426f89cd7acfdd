"""The real `mlcheck` command with its stdout closed before it writes (`mlcheck ... | head -1`):
no traceback, nothing on stderr, exit 141 (128 + SIGPIPE, as a shell reports it), whichever way
the output is written (print, rich, the table or JSON; in `sanity`, from its child process)."""

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "sanity" / "fixtures"
NAN_LOG = "epoch,loss,val_loss\n0,2.0,nan\n1,nan,1.7\n2,1.2,1.4\n"  # nonfinite-loss: exit 1 when read


@pytest.mark.parametrize(
    "args",
    [
        ["checks", "--json"],
        ["checks"],
        ["explain", "loss-plateau"],
        ["analyze", "log.csv", "--json"],
        ["analyze", "log.csv"],
        ["sanity", str(FIXTURES / "torch_clean.py"), "--select", "nonfinite-input"],
        ["sanity", str(FIXTURES / "torch_clean.py"), "--select", "nonfinite-input", "--json"],
    ],
    ids=lambda args: " ".join(Path(a).name for a in args),
)
def test_a_closed_stdout_ends_the_command_quietly(args, tmp_path):
    (tmp_path / "log.csv").write_text(NAN_LOG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcheck", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    proc.stdout.close()  # long before the command has anything to write (importing takes longer)
    stderr = proc.stderr.read().decode()
    status = proc.wait(timeout=240)
    # was: a BrokenPipeError traceback (exit 1), rich's exit 1 (read as "findings"), or in
    # sanity "the process running it ended with exit status 1 ... os._exit()?" (exit 2)
    assert (status, stderr) == (141, "")
