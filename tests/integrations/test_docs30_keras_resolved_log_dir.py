"""docs30: `cb.resolved_log_dir` after a Keras fit is the folder the fit wrote to, as docs/samples.md
uses it (`cb.resolved_log_dir / "mlcheck" / "samples.csv"`). It was None after every Keras fit:
the Keras adapter hands the LiveRun its own sinks, and the property read only the Monitor's
log_dir, which is then unset; docs/samples.md's block failed with `TypeError: unsupported operand
type(s) for /: 'NoneType' and 'str'`."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from mlcheck.checks.base import default_checks  # noqa: E402
from mlcheck.checks.samples import NoisyLabels  # noqa: E402
from mlcheck.integrations.keras import MLCheckCallback  # noqa: E402

DOC = Path(__file__).parent.parent.parent / "docs" / "samples.md"


def _data(n: int = 320) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 8)).astype("float32")
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")


def _fit(cb: MLCheckCallback, x: np.ndarray, y: np.ndarray) -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:256], y[:256], validation_data=(x[256:], y[256:]), epochs=3, batch_size=32, verbose=0, callbacks=[cb])


def test_keras_resolved_log_dir_is_the_folder_written(tmp_path):
    x, y = _data()
    cb = MLCheckCallback(log_dir=tmp_path / "run", overfit_batch=False)
    assert cb.resolved_log_dir is None  # before a run
    _fit(cb, x, y)
    assert cb.resolved_log_dir == tmp_path / "run"
    assert (cb.resolved_log_dir / "findings.jsonl").exists() or any(cb.resolved_log_dir.rglob("events.out.*"))


def test_samples_md_block_runs_as_written_after_a_keras_fit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default log_dir, logs/, as a user gets it
    x_train, y = _data()
    cb = MLCheckCallback(checks=[*default_checks(), NoisyLabels()], overfit_batch=False)
    _fit(cb, x_train, y)
    text = DOC.read_text()
    (block,) = [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", text, re.S) if "samples.csv" in b]
    namespace = {"cb": cb, "x_train": x_train[:256]}
    exec(compile(block, str(DOC), "exec"), namespace)  # opens logs/mlcheck/samples.csv, prints the rows
    assert cb.resolved_log_dir == Path("logs")
    assert "rows" in namespace
