"""The plugin's routes through werkzeug's test client, over event files written by real Lightning
and Keras runs (and a synthetic run with layer statistics and a samples.csv), read by
TensorBoard's own multiplexer and data provider: what a TensorBoard server does, minus the socket."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_ingester, data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from werkzeug.test import Client

from mlcheck import Finding, Severity
from mlcheck.sinks.tensorboard import TensorBoardSink
from mlcheck.tensorboard_plugin.plugin import MLCheckPlugin
from tests.lightning_trainer import quiet_trainer

pytestmark = pytest.mark.xdist_group("tensorboard_plugin")

LEAKY = "lightning/leaky_validation/version_0"


def make_client(logdir: Path) -> tuple[Client, MLCheckPlugin]:
    mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance=data_ingester.DEFAULT_TENSOR_SIZE_GUIDANCE)
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    plugin = MLCheckPlugin(base_plugin.TBContext(logdir=str(logdir), data_provider=provider, multiplexer=mux))
    return Client(application.TensorBoardWSGI([plugin], data_provider=provider)), plugin


def get_json(client: Client, path: str, **query) -> dict:
    response = client.get(f"/data/plugin/mlcheck/{path}", query_string=query)
    assert response.status_code == 200, (path, query, response.get_data(as_text=True))
    return response.get_json()


@pytest.fixture(scope="module")
def client(tab_logdir) -> Client:
    return make_client(tab_logdir[0])[0]


def test_runs_table_has_every_run_with_worst_severity_and_count(client, tab_logdir):
    _, truth = tab_logdir
    listing = client.get("/data/plugins_listing").get_json()
    assert listing["mlcheck"]["enabled"] is True and listing["mlcheck"]["tab_name"] == "mlcheck"
    rows = {r["run"]: r for r in get_json(client, "runs")["runs"]}
    assert set(rows) == {"lightning/clean/version_0", LEAKY, "keras_leaky", "synthetic/layers_and_samples"}
    assert rows["keras_leaky"]["members"] == ["keras_leaky/train", "keras_leaky/validation"]
    for run, findings in truth.items():
        assert rows[run]["count"] == len(findings), run
        assert rows[run]["watched"]
        assert set(rows[run]["counts"]) == {f.check for f in findings}
    assert rows["lightning/clean/version_0"]["worst"] is None  # watched and clean
    assert rows[LEAKY]["worst"] == "error" and rows[LEAKY]["counts"] == {"train-val-overlap": {"error": 1}}
    synthetic = rows["synthetic/layers_and_samples"]
    assert synthetic["has_layers"] and synthetic["has_samples"] and synthetic["worst"] == "warning"


@pytest.mark.parametrize("run", [LEAKY, "keras_leaky"])
def test_run_page_has_findings_losses_and_markers(client, tab_logdir, run):
    (finding,) = tab_logdir[1][run]
    page = get_json(client, "run", run=run)
    (shown,) = page["findings"]
    assert shown["check"] == finding.check == "train-val-overlap"
    assert shown["severity"] == "error" and shown["message"] == finding.message and shown["hint"] == finding.hint
    assert (shown["step"], shown["epoch"]) == (finding.step, finding.epoch)
    assert shown["evidence"]["val_in_train"] == str(finding.evidence["val_in_train"])
    splits = {curve["split"] for curve in page["losses"]}
    assert splits == {"train", "val"}, [(c["member"], c["tag"]) for c in page["losses"]]
    assert all(len(c["points"]) >= 2 for c in page["losses"])
    if run == "keras_leaky":  # epoch_loss is written at the epoch index: findings sit at their epoch
        assert page["axis"] == "epoch" and shown["x"] == finding.epoch and not page["markers"]
        assert {c["tag"] for c in page["losses"]} == {"epoch_loss"}
    else:
        assert page["axis"] == "step" and shown["x"] == shown["event_step"] == finding.step
        assert finding.step in page["markers"]["train-val-overlap"]
    assert page["samples"] is None  # the per-sample checks are opt-in


def test_layers_and_samples_appear_when_present(client):
    page = get_json(client, "run", run="synthetic/layers_and_samples")
    layers = page["layers"]
    assert layers["layers"] == ["encoder.0", "encoder.2", "encoder.4", "head"]
    assert layers["stats"] == ["dead_units", "grad_norm"]
    assert len(layers["steps"]) == 40 and len(layers["values"]["grad_norm"][0]) == 40
    assert layers["flagged"] == {"encoder.0": ["vanishing-gradient"]}  # not encoder.2 or head
    samples = page["samples"]
    assert samples["rows"] == 1000
    assert [s["id"] for s in samples["suspects"]] == ["17", "42", "311"]
    assert samples["classes"]["splits"] == ["all"] and sum(samples["classes"]["given"]["all"]) == 1000
    assert {f["check"] for f in page["findings"]} == {"vanishing-gradient", "noisy-labels", "weak-slice"}
    weak = next(f for f in page["findings"] if f["check"] == "weak-slice")
    assert weak["evidence"] == {"slice": "label=8", "accuracy": "0.61", "rest_accuracy": "0.94"}


def test_static_files_and_docs(client):
    js = client.get("/data/plugin/mlcheck/index.js")
    assert js.status_code == 200 and "export async function render" in js.get_data(as_text=True)
    assert "javascript" in js.headers["Content-Type"]
    assert client.get("/data/plugin/mlcheck/style.css").status_code == 200
    doc = get_json(client, "docs", check="train-val-overlap")
    assert doc["path"] == "docs/checks/train-val-overlap.md" and "## How to fix" in doc["markdown"]
    assert client.get("/data/plugin/mlcheck/docs?check=no-such-check").status_code == 404
    assert client.get("/data/plugin/mlcheck/run?run=no-such-run").status_code == 404


def test_inactive_without_mlcheck_output(tmp_path):
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path / "plain"))
    writer.add_event(_scalar_event("loss", 0, 1.0))
    writer.close()
    client, plugin = make_client(tmp_path)
    assert plugin.is_active() is False
    assert client.get("/data/plugins_listing").get_json()["mlcheck"]["enabled"] is False
    (row,) = get_json(client, "runs")["runs"]
    assert row == {**row, "run": "plain", "watched": False, "count": 0, "worst": None}


def _scalar_event(tag: str, step: int, value: float):
    from tensorboard.compat.proto import event_pb2, summary_pb2

    summary = summary_pb2.Summary(value=[TensorBoardSink.scalar_value(tag, value)])
    return event_pb2.Event(wall_time=time.time(), step=step, summary=summary)


def test_fast_with_100_runs_and_1000_findings(tmp_path):
    checks = ("loss-plateau", "lr-too-high", "train-val-gap", "class-imbalance", "unshuffled-data")
    for r in range(100):
        sink = TensorBoardSink(tmp_path / f"run_{r:03d}")
        for step in range(0, 200, 20):
            sink.scalars(step, {"train_loss": 1.0 / (step + 1)})
        for i in range(10):
            sev = (Severity.INFO, Severity.WARNING, Severity.ERROR)[(r + i) % 3]
            sink.emit(Finding(check=checks[i % 5], severity=sev, message=f"m{i}", evidence={"x": i}, step=200 + i))
        sink.close()
    client, _ = make_client(tmp_path)
    start = time.perf_counter()
    data = get_json(client, "runs")
    elapsed = time.perf_counter() - start
    assert len(data["runs"]) == 100 and sum(r["count"] for r in data["runs"]) == 1000
    assert elapsed < 2.0, f"/runs took {elapsed:.2f} s for 100 runs and 1,000 findings"
    start = time.perf_counter()
    page = get_json(client, "run", run="run_042")
    assert len(page["findings"]) == 10 and time.perf_counter() - start < 0.5


def test_layers_whose_output_held_nan_are_listed(tmp_path):
    # A real Lightning fit whose custom layer computes log(0) from step 6 on: the recorder writes
    # no statistic of an output holding NaN/Inf, only its `nonfinite` count, so before, the tab
    # listed no layer with non-finite values on such a run.
    import lightning.pytorch as lpt
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    class LateLog(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += self.training
            return torch.log(x * 0) if self.training and self.calls > 6 else x

    class Net(lpt.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), LateLog(), nn.Linear(32, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    x, y = load_digits(return_X_y=True)
    data = torch.utils.data.TensorDataset(torch.tensor(x[:320] / 16, dtype=torch.float32), torch.tensor(y[:320]))
    lpt.seed_everything(0, verbose=False)
    trainer = quiet_trainer(
        max_steps=10,
        callbacks=[MLCheckCallback(warn=False, every_n_steps=1, overfit_batch=False)],
        logger=lpt.loggers.TensorBoardLogger(tmp_path, name="nan"),
    )
    model = Net()
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=32))
    assert not all(torch.isfinite(p).all() for p in model.parameters())  # the fault happened
    layers = get_json(make_client(tmp_path)[0], "run", run="nan/version_0")["layers"]
    assert "nonfinite" in layers["stats"]
    named = layers["nonfinite"].get("grad_norm", [])
    assert "net.0" in named and "net.3" in named, layers["nonfinite"]
