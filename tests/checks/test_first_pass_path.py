"""The live core's path for full-pass batches of large samples (`Monitor.log_pass_batch`): the
gather of whole runs, the cheap test for samples constant on the probe, one observation per
batch; what the checks receive and find is what `log_batch(defer=True)` gives them."""

from __future__ import annotations

import numpy as np
import pytest

from mlcheck import monitor as monitor_module
from mlcheck.checks.base import default_checks
from mlcheck.checks.data import ClassImbalance, NonFiniteInput
from mlcheck.checks.hashing import any_constant_row, constant_rows, probe_positions, probe_rows
from mlcheck.checks.leakage import TrainValOverlap
from mlcheck.live import BatchRoute, LiveOptions, LiveRun
from mlcheck.monitor import Monitor
from mlcheck.run import BatchObservation


@pytest.mark.parametrize("shape", [(3, 224, 224), (3, 32, 32), (3, 225, 225), (1025,), (4096,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, np.int64])
def test_the_probe_is_the_same_values_whatever_the_gather(shape, dtype):
    """Rows whose length is a multiple of the run are gathered run by run (64 bytes a copy),
    the others value by value: the same values in the same order either way."""
    x = (np.random.default_rng(0).random((5, *shape)) * 200).astype(dtype)
    rows, width = probe_rows(x, 256, 1024)
    flat = x.reshape(5, -1)
    expected = np.take(flat, probe_positions(width, 256), axis=1) if width > 1024 else flat
    assert rows.dtype == expected.dtype and rows.flags.c_contiguous
    np.testing.assert_array_equal(rows, expected)


def test_the_probe_of_strided_batches_is_the_same_values():
    x = np.random.default_rng(1).random((12, 3, 64, 128), dtype=np.float32)
    for view in (x[::2], x[:, :, :, ::2], x.transpose(0, 1, 3, 2)):
        flat = view.reshape(len(view), -1)
        expected = np.take(flat, probe_positions(flat.shape[1], 256), axis=1)
        np.testing.assert_array_equal(probe_rows(view, 256, 1024)[0], expected)


def test_any_constant_row_is_constant_rows_any():
    rng = np.random.default_rng(2)
    for width in (1, 2, 3, 5, 256, 257):
        for dtype in (np.float32, np.float16, np.uint8, np.int64, bool):
            for trial in range(40):
                rows = rng.integers(0, 3, (int(rng.integers(1, 6)), width)).astype(dtype)
                if trial % 3 == 0:
                    rows[0] = rows[0, 0]  # a constant row
                if trial % 5 == 0 and rows.dtype.kind == "f":
                    rows[:, 0] = np.nan  # NaN equals nothing: never constant
                assert any_constant_row(rows) == bool(constant_rows(rows).any()), (width, dtype, rows)


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, 32, 32), dtype=np.float32)


def _recorded(checks: list) -> dict[str, list]:
    """What each check's `on_batch` receives: (split, rows, probe rows, index, step, parts)."""
    seen: dict[str, list] = {c.id: [] for c in checks}
    for check in checks:
        hook = check.on_batch

        def record(batch, run, hook=hook, log=seen[check.id]):
            probe = None if batch.probe is None else batch.probe.copy()
            log.append((batch.split, batch.inputs is None, batch.targets.copy(), probe, batch.index, batch.step))
            log.append(batch.parts)
            return hook(batch, run)

        check.on_batch = record
    return seen


def _passes(log_batch, train: np.ndarray, val: np.ndarray) -> None:
    for split, epoch, x in (("train", 0, train), ("val", 0, val), ("train", 1, train), ("val", 1, val)):
        for i in range(len(x) // 32):
            log_batch(x[32 * i : 32 * (i + 1)], np.arange(32) % 3, split, epoch, i)


def test_log_pass_batch_hands_the_checks_what_log_batch_defer_does():
    train, val = _images(10 * 32, 3), _images(3 * 32, 4)
    val[:8] = train[40:48]
    val[40] = 0.0  # blank: constant on the probe, so that batch goes whole to the overlap check
    runs = []
    for path in ("log_batch", "log_pass_batch"):
        checks = [NonFiniteInput(), ClassImbalance(), TrainValOverlap()]
        seen = _recorded(checks)
        monitor = Monitor(checks, default_sinks=False)
        ids = tuple(c.id for c in checks)

        def log(x, y, split, epoch, i, monitor=monitor, ids=ids, path=path):
            if path == "log_batch":
                monitor.log_batch(x, y, split=split, step=i, epoch=epoch, index=i, checks=ids, defer=True)
            else:
                monitor.log_pass_batch(x, y, split=split, step=i, epoch=epoch, index=i, input_kind=None, checks=ids)

        _passes(log, train, val)
        monitor.close()
        runs.append((seen, [(f.check, f.severity, f.step, f.epoch, f.evidence) for f in monitor.findings]))
    (seen_a, found_a), (seen_b, found_b) = runs
    assert found_a == found_b and [f[:2] for f in found_a][-1][0] == "train-val-overlap"
    for check_id, calls in seen_a.items():
        assert len(calls) == len(seen_b[check_id])
        for a, b in zip(calls, seen_b[check_id]):
            if isinstance(a, tuple) and a and isinstance(a[0], str):
                assert a[:2] == b[:2] and a[4:] == b[4:]
                np.testing.assert_array_equal(a[2], b[2])
                np.testing.assert_array_equal(a[3], b[3])
            else:
                assert a == b


def test_log_pass_batch_takes_numpy_integers_as_the_checked_path_does():
    monitor = Monitor([TrainValOverlap()], default_sinks=False)
    x = _images(32, 5)
    monitor.log_pass_batch(
        x,
        np.arange(32) % 3,
        split="train",
        step=np.int64(7),
        epoch=np.int32(0),
        index=0,
        input_kind=None,
        checks=("train-val-overlap",),
    )
    assert type(monitor._deferred[0][4]) is int


def test_a_full_pass_batch_builds_one_observation(monkeypatch):
    """The live core's full pass builds one `BatchObservation` per batch of large samples (the
    one `probe_suffices` reads) and one per merged block; it built two per batch before."""
    built = []

    class Counted(BatchObservation):
        def __init__(self, *args, **kwargs):
            built.append(kwargs.get("parts", ()))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(monitor_module, "BatchObservation", Counted)
    options = LiveOptions(train_start_checks=False, sample_batches=1, sample_every_n_batches=1000, config=False)
    live = LiveRun(options, default_checks(), default_sinks=False)
    train = _images(12 * 32, 6)
    full = 0
    for i in range(12):
        route = live.route_batch("train")
        before = len(built)
        live.observe_batch(
            route, train[32 * i : 32 * (i + 1)], np.arange(32) % 3, split="train", step=i, epoch=0, index=i
        )
        if route is BatchRoute.FULL_PASS:
            full += 1
            assert len(built) - before == 1  # no block fills up in 11 batches of 3x32x32 probes
    live.end_pass("train")
    assert full == 11 and len(built[-1]) == 11  # the block of the 11 batches' probes, one observation
    live.close()
