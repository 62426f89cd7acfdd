"""A real Lightning fit's `samples.csv` read the ways a user reads it: the `noisy-labels` hint
names the file, `mlcheck.samples.sample_ids` joins its rows back to the data (also as
docs/samples.md shows), and the TensorBoard tab lists the samples the finding counts."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_samples_live import _digits, _lightning

from mlcheck.samples import sample_ids

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    """Digits with 8% of the training labels flipped, trained 20 epochs with noisy-labels on."""
    xt, yt, xv, yv, flip = _digits(noise=0.08)
    cb, _, _ = _lightning(xt, yt, xv, yv, tmp_path_factory.mktemp("noisy"))
    with open(cb.resolved_log_dir / "mlcheck" / "samples.csv", newline="") as f:
        table = list(csv.DictReader(f))
    return cb, xt, yt, xv, yv, table


def test_noisy_labels_hint_names_the_written_file(fit):
    cb, *_ = fit
    (finding,) = [f for f in cb.findings if f.check == "noisy-labels"]
    path = cb.resolved_log_dir / "mlcheck" / "samples.csv"
    assert f"See {path} for the ranked list" in finding.hint and "<log_dir>" not in finding.hint
    assert path.is_file()


def test_analyze_names_the_file_it_read_in_the_hint(fit):
    cb, *_ = fit
    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(cb.resolved_log_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = [f for f in json.loads(out.stdout)["findings"] if f["check"] == "noisy-labels"]
    path = cb.resolved_log_dir / "mlcheck" / "samples.csv"
    assert len(found) == 1 and f"See {path} for the ranked list" in found[0]["hint"], out.stdout


def test_sample_ids_join_samples_csv_back_to_the_data_rows(fit):
    cb, xt, yt, xv, yv, table = fit
    for split, x, y in (("train", xt, yt), ("val", xv, yv)):
        rows = {sid: i for i, sid in enumerate(sample_ids(x).tolist())}
        assert len(rows) == len(x)  # digits has no duplicate rows: one id each
        written = [r for r in table if r["split"] == split]
        assert sorted(int(r["id"]) for r in written) == sorted(rows)  # every row, and nothing else
        assert all(int(r["given_label"]) == y[rows[int(r["id"])]] for r in written)
    # float64 data matches the float32 rows the model was fed
    assert (sample_ids(xt.astype(np.float64)) == sample_ids(xt)).all()


def test_docs_sample_ids_snippet_runs_on_a_real_run(fit, capsys):
    cb, xt, _, _, _, table = fit
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "samples.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if "sample_ids(" in b]
    space = {"cb": cb, "x_train": xt}
    exec(block, space)
    flagged = {int(r["id"]) for r in table if r["split"] == "train" and r["flagged"] == "1"}
    assert flagged and sorted(space["rows"]) == space["rows"]
    assert set(sample_ids(xt[space["rows"]]).tolist()) == flagged
    assert f"{len(flagged)} flagged training samples" in capsys.readouterr().out


def test_tensorboard_tab_lists_the_samples_noisy_labels_flagged(fit):
    from mlcheck.tensorboard_plugin.samples import MAX_SUSPECTS, find_samples, read_samples

    cb, _, _, _, _, table = fit
    (finding,) = [f for f in cb.findings if f.check == "noisy-labels"]
    path = find_samples(str(cb.resolved_log_dir.parent), [cb.resolved_log_dir.name])
    summary = read_samples(path)
    assert summary["suspect_rule"] == "flagged"
    assert summary["flagged"]["train"] == finding.evidence["flagged"]
    assert summary["flagged"].get("val", 0) == finding.evidence["val_flagged"]
    flagged = [r for r in table if r["flagged"] == "1"]  # the writer's order: training first
    shown = [(s["split"], s["id"]) for s in summary["suspects"]]
    assert shown == [(r["split"], r["id"]) for r in flagged][:MAX_SUSPECTS]
