"""What `mlcheck analyze` says about a watched run (issue 12, round 22): a log indexed by epochs
names the epoch alone (no "step 13" that is the epoch again), a log with steps keeps them; a
`train-val-gap` WARNING that the run's own record took back (its later INFO "the rise passed")
is shown demoted in the folder view, as the same run's curves alone give it. The real command as
a subprocess; the live record written by the real `Monitor`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

TIMEOUT_S = 120

#: (training loss, validation loss) per epoch of a real Keras run (a digits MLP on raw 0-16 pixels,
#: `CSVLogger`, round 20's `k_raw.csv`): the validation loss rises at epochs 12-13 (a WARNING at
#: epoch 13, live) and comes back below its best level by epoch 16 (the live INFO "that rise passed";
#: 24 before over39, when it had to come back below it by what the rise had to exceed).
KERAS_RUN = [
    (2.1763, 1.4676), (0.8100, 0.8887), (0.5661, 0.5491), (0.4570, 0.4816), (0.4528, 0.4468),
    (0.4632, 0.4459), (0.4656, 0.4100), (0.5157, 0.5215), (0.3815, 0.5119), (0.3297, 0.3894),
    (0.3269, 0.3722), (0.3683, 0.3457), (0.2927, 0.4487), (0.2906, 0.6040), (0.3051, 0.3052),
    (0.2791, 0.4229), (0.3199, 0.2831), (0.2548, 0.3491), (0.2567, 0.3268), (0.2328, 0.4850),
    (0.3229, 0.2501), (0.2980, 0.8110), (0.3708, 0.3168), (0.2917, 0.2866), (0.2200, 0.2389),
]  # fmt: skip
#: steps per epoch of the Lightning-style log below (a row's step is its epoch's last)
STEPS = 15


def mlcheck_analyze(path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=path if path.is_dir() else path.parent,
        env=env,
    )


def _gap(payload: dict) -> list[dict]:
    return [f for f in payload["findings"] if f["check"] == "train-val-gap"]


def test_user22_a_log_indexed_by_epochs_names_the_epoch_alone_a_log_with_steps_keeps_them(tmp_path):
    # A Keras CSVLogger file holds no step: analyze replayed each epoch at "step" = epoch, and
    # showed "(k_raw.csv; step 13, epoch 13)". Its findings now carry no step (JSON null), the
    # terminal and `Finding.format` say "epoch 13"; a Lightning metrics.csv of the same run, whose
    # rows hold real steps, keeps "step 209, epoch 13".
    keras = tmp_path / "keras" / "training.log"
    keras.parent.mkdir()
    keras.write_text("epoch,loss,val_loss\n" + "".join(f"{e},{t},{v}\n" for e, (t, v) in enumerate(KERAS_RUN)))
    lightning = tmp_path / "lightning" / "metrics.csv"
    lightning.parent.mkdir()
    lightning.write_text(
        "epoch,step,train_loss,val_loss\n"
        + "".join(f"{e},{(e + 1) * STEPS - 1},{t},{v}\n" for e, (t, v) in enumerate(KERAS_RUN))
    )

    done = mlcheck_analyze(keras, "--json")
    assert done.returncode == 0, done.stderr
    gap = _gap(json.loads(done.stdout))
    assert [(f["severity"], f["step"], f["epoch"]) for f in gap] == [("info", None, 13), ("info", None, 16)], gap
    text = mlcheck_analyze(keras)
    assert "(training.log; epoch 13)" in text.stdout and "step 13" not in text.stdout, text.stdout

    import mlcheck

    (run,) = mlcheck.analyze(keras).runs
    first = next(f for f in run.findings if f.check == "train-val-gap")
    assert first.format().startswith("[info] train-val-gap at epoch 13: "), first.format()

    # Keras' TensorBoard callback: `epoch_loss` in `train/` and `validation/`, its x the epoch
    from analyze_logs import scalar_event, write_with_writer

    events = tmp_path / "keras_tb"
    write_with_writer(events / "train", [scalar_event(e, "epoch_loss", t) for e, (t, _) in enumerate(KERAS_RUN)])
    write_with_writer(events / "validation", [scalar_event(e, "epoch_loss", v) for e, (_, v) in enumerate(KERAS_RUN)])
    gap = _gap(json.loads(mlcheck_analyze(events, "--json").stdout))
    assert [(f["step"], f["epoch"]) for f in gap] == [(None, 13), (None, 16)], gap

    done = mlcheck_analyze(lightning, "--json")
    assert done.returncode == 0, done.stderr
    gap = _gap(json.loads(done.stdout))
    assert [(f["step"], f["epoch"]) for f in gap] == [(14 * STEPS - 1, 13), (17 * STEPS - 1, 16)], gap
    assert "step 209, epoch 13" in mlcheck_analyze(lightning).stdout


def _watched(log_dir: Path) -> list:
    """The run above watched live by `Monitor(log_dir=...)` (findings.jsonl and its curves as
    event files); returns the live findings."""
    from mlcheck import Monitor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Monitor(log_dir=log_dir) as monitor:
            for e, (train, val) in enumerate(KERAS_RUN):
                monitor.log_epoch(e, step=(e + 1) * STEPS - 1, train_loss=train, val_loss=val)
    return list(monitor.findings)


def test_user22_a_live_warning_the_run_took_back_is_shown_demoted_in_the_folder_view(tmp_path):
    # The live callback cannot know the future: it recorded a WARNING at epoch 13 and, at epoch
    # 16, an INFO that the rise passed. The folder view (which shows the recorded findings)
    # showed the WARNING while the same run's curves alone gave INFO. Now it shows the
    # recorded WARNING demoted, its step, epoch and evidence as recorded.
    log_dir = tmp_path / "runs" / "exp1"
    live = _watched(log_dir)
    assert [(f.severity.value, f.epoch) for f in live if f.check == "train-val-gap"] == [("warning", 13), ("info", 16)]
    recorded = [json.loads(line) for line in (log_dir / "findings.jsonl").read_text().splitlines()]
    told = next(r for r in recorded if r["severity"] == "warning")

    done = mlcheck_analyze(tmp_path, "--json", "--fail-on", "warning")
    assert done.returncode == 0, (done.stdout, done.stderr)
    payload = json.loads(done.stdout)
    gap = _gap(payload)
    assert [(f["severity"], f["source"], f["epoch"]) for f in gap] == [("info", "live", 13), ("info", "live", 16)]
    first = gap[0]
    assert first["message"].startswith(told["message"]) and first["message"].endswith("the rise passed.")
    assert "(epoch 16: 0.3371)" in first["message"]
    assert (first["step"], first["evidence"]) == (told["step"], told["evidence"])
    assert first["hint"].startswith("Nothing to change for this run as logged.")
    assert [f for f in payload["findings"] if f["severity"] != "info"] == []
    # the curves alone (no live record) give the same verdict
    (log_dir / "findings.jsonl").rename(tmp_path / "kept.jsonl")
    alone = json.loads(mlcheck_analyze(tmp_path, "--json").stdout)
    assert [(f["severity"], f["source"], f["epoch"]) for f in _gap(alone)] == [
        ("info", "analyze", 13),
        ("info", "analyze", 16),
    ]

    # a record that ends before the rise passed keeps its WARNING: the INFO must be there, after it
    (log_dir / "findings.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in recorded if r["severity"] == "warning")
    )
    cut = mlcheck_analyze(tmp_path, "--json", "--fail-on", "warning")
    assert cut.returncode == 1, cut.stderr
    assert [(f["severity"], f["source"]) for f in _gap(json.loads(cut.stdout))] == [("warning", "live")]
    # and an INFO written before the WARNING (another rise's, of an earlier fit) takes nothing back
    (log_dir / "findings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(recorded)))
    reversed_ = mlcheck_analyze(tmp_path, "--json", "--fail-on", "warning")
    assert reversed_.returncode == 1, reversed_.stderr
    assert {f["severity"] for f in _gap(json.loads(reversed_.stdout))} == {"warning", "info"}


def test_findings_jsonl_keeps_each_findings_key_and_the_folder_view_matches_on_it(tmp_path):
    # `findings.jsonl` writes `Finding.key`, so the folder view knows the recorded WARNING and
    # the INFO that took it back by their keys; a file written before it kept keys is still read
    # by the evidence (the same verdict).
    log_dir = tmp_path / "runs" / "exp1"
    live = _watched(log_dir)
    recorded = [json.loads(line) for line in (log_dir / "findings.jsonl").read_text().splitlines()]
    assert [r["key"] for r in recorded] == [f.key for f in live]
    gap_keys = [r["key"] for r in recorded if r["check"] == "train-val-gap"]
    assert gap_keys[0].startswith("overfit") and gap_keys[1].startswith("overfit-passed"), gap_keys

    def verdict():
        done = mlcheck_analyze(tmp_path, "--json", "--fail-on", "warning")
        assert done.returncode == 0, (done.stdout, done.stderr)
        return [(f["severity"], f["source"], f["epoch"]) for f in _gap(json.loads(done.stdout))]

    assert verdict() == [("info", "live", 13), ("info", "live", 16)]
    old = [{k: v for k, v in r.items() if k != "key"} for r in recorded]
    (log_dir / "findings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    assert verdict() == [("info", "live", 13), ("info", "live", 16)]


def test_a_narrow_terminal_says_recorded_live_without_nested_parentheses(tmp_path):
    # round 23: a block's heading read "(exp1; step 24, epoch 24, (live))"
    _watched(tmp_path / "runs" / "exp1")
    done = mlcheck_analyze(tmp_path, env={**os.environ, "COLUMNS": "60"})
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "recorded live)" in done.stdout, done.stdout
    assert "(live))" not in done.stdout
