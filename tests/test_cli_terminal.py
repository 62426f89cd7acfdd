"""How the real `mlcheck` command writes to the terminal: with its stdout closed before it writes
(`mlcheck ... | head -1`), no traceback, nothing on stderr, exit 141 (128 + SIGPIPE, as a shell
reports it), whichever way the output is written (print, rich, the table or JSON; in `sanity`,
from its child process); stdout on a full disk: one line on stderr and exit 74; text in paths
and messages printed as it is."""

import signal
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


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize(
    "args",
    [
        ["checks"],
        ["explain", "loss-plateau"],
        ["analyze", "log.csv", "--json"],
        ["analyze", "log.csv"],
        ["sanity", str(FIXTURES / "torch_clean.py"), "--select", "nonfinite-input", "--json"],
    ],
    ids=lambda args: " ".join(Path(a).name for a in args),
)
def test_an_output_that_cannot_be_written_is_one_line_and_exit_74(args, tmp_path):
    """stdout on a full disk (/dev/full: every write fails with ENOSPC) was an OSError traceback
    and exit 1, which a script reads as "findings"; in sanity, from its child process."""
    (tmp_path / "log.csv").write_text(NAN_LOG)
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "mlcheck", *args], stdout=full, stderr=subprocess.PIPE, cwd=tmp_path, timeout=240
        )
    stderr = proc.stderr.decode()
    assert proc.returncode == 74, stderr
    assert stderr == "mlcheck: error: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("command", ["analyze", "sanity"])
def test_emoji_codes_in_a_path_are_printed_as_they_are(command, tmp_path):
    """rich turned ":smile:" in a path into an emoji ("run:a:b.py" read "run🅰b.py")."""
    path = tmp_path / ("run:smile:.py" if command == "sanity" else "run:smile:")
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", command, str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and f"{path}: no such file" in " ".join(proc.stderr.split()), proc.stderr


@pytest.mark.parametrize("command", ["analyze", "sanity"])
def test_an_empty_path_is_refused(command, tmp_path):
    """`mlcheck analyze "$LOGDIR"` with LOGDIR unset read the current directory (and sanity said
    ". is a directory")."""
    (tmp_path / "log.csv").write_text(NAN_LOG)
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", command, ""], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 2 and proc.stderr.startswith("mlcheck: error: PATH is empty ('')"), proc.stderr


OVERFIT_LOG = "epoch,loss,val_loss\n" + "".join(
    f"{e},{t},{v}\n"
    for e, (t, v) in enumerate(
        zip([0.9, 0.7, 0.5, 0.4, 0.35, 0.3, 0.27, 0.25, 0.22, 0.2], [0.8, 0.6, 0.5, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    )
)


@pytest.mark.parametrize("columns", [60, 80, 140])
def test_a_finding_is_printed_whole_at_any_terminal_width(columns, tmp_path):
    """In 80 columns the table left the finding ~14 characters a line and cut evidence items
    ("best_val_los…"); below 100 columns each finding is now a block, and nothing is cut."""
    import json
    import os

    (tmp_path / "overfit.csv").write_text(OVERFIT_LOG)
    env = {**os.environ, "COLUMNS": str(columns)}
    run = [sys.executable, "-m", "mlcheck", "analyze", str(tmp_path / "overfit.csv")]
    table = subprocess.run(run, capture_output=True, text=True, timeout=120, env=env)
    (finding,) = json.loads(subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=120).stdout)[
        "findings"
    ]
    assert table.returncode == 0 and "…" not in table.stdout
    assert max(map(len, table.stdout.splitlines())) <= columns
    flat = " ".join(table.stdout.split())
    for key, value in finding["evidence"].items():  # every evidence item, whole
        assert f"{key}={value}" in flat.replace("│ ", "").replace(" │", "") or columns >= 100, key
    if columns < 100:
        assert "WARNING train-val-gap" in flat and finding["message"] in flat and "┃" not in table.stdout
    else:
        assert "┃ severity" in table.stdout


def test_ctrl_c_during_the_imports_is_one_line_and_exit_130(tmp_path):
    """SIGINT while the command is still importing (its first ~0.3 s) was a KeyboardInterrupt
    traceback from the console script's `from mlcheck.cli import main`: `import mlcheck` imported
    numpy and every check before `main` could catch anything. The signal is sent once numpy has
    been imported (`-X importtime` prints each import as it ends), with mlcheck's own imports to
    go."""
    script = Path(sys.executable).parent / "mlcheck"  # the console script users run
    if not script.exists():
        pytest.skip("no `mlcheck` console script beside this Python")
    (tmp_path / "log.csv").write_text(NAN_LOG)
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", str(script), "analyze", "log.csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    lines = []
    for line in proc.stderr:  # one line per import, as it ends
        lines.append(line)
        if line.rstrip().endswith("| numpy") or line.rstrip().split("|")[-1].strip() == "numpy":
            proc.send_signal(signal.SIGINT)
            break
    else:
        pytest.fail(f"numpy was never imported: {''.join(lines)[-2000:]}")
    _, rest = proc.communicate(timeout=240)
    said = [line for line in (*lines, *rest.splitlines()) if not line.startswith("import time:")]
    assert "Traceback" not in rest
    assert (proc.returncode, [s.strip() for s in said]) == (130, ["mlcheck: interrupted"])


def test_fa26_no_none_is_printed_for_a_level_the_check_could_not_know(tmp_path):
    """A loss stuck at 0.693 in a loss-only log (held-out-9's rosepy: no class count, so no chance
    level): `loss-plateau` is told, and neither the terminal, the plain-text rendering nor the
    TensorBoard text shows `None` (its evidence once read `chance_loss=None, prior_entropy=None`)."""
    import json

    from mlcheck.findings import Finding, Severity
    from mlcheck.sinks.tensorboard import finding_markdown

    losses = [0.6985, 0.6951, 0.6940, 0.6935, 0.6932, 0.6931, 0.6931, 0.6930, 0.6931, 0.6930]
    rows = "".join(f"{k},{t:.5f},{t + 0.001:.5f}\n" for k, t in enumerate(losses))
    (tmp_path / "log.csv").write_text("epoch,loss,val_loss\n" + rows)
    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "log.csv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "COLUMNS": "200"},
    ).stdout
    assert "loss-plateau" in out
    assert "None" not in out
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "mlcheck", "analyze", "log.csv", "--json"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        ).stdout
    )
    plateau = next(f for f in data["findings"] if f["check"] == "loss-plateau")
    finding = Finding(
        plateau["check"],
        Severity(plateau["severity"]),
        plateau["message"],
        plateau["evidence"],
        epoch=plateau["epoch"],
    )
    assert None in plateau["evidence"].values()  # the JSON keeps what the check could not know, as null
    assert "None" not in finding.format()
    assert "None" not in finding_markdown(finding)
