import json
import math
import warnings

import numpy as np
import pytest

from mlcheck import Finding, MLCheckWarning, Monitor, Severity
from mlcheck.series import Series


def test_series_is_bounded_and_exact_in_mean():
    s = Series(capacity=8)
    values = np.arange(1000, dtype=float)
    for i, v in enumerate(values):
        s.add(i, v)
    b = s.buckets(include_open=True)
    assert len(s) <= 8
    assert np.isclose((b["mean"] * b["n"]).sum() / b["n"].sum(), values.mean())
    assert b["min"].min() == 0 and b["max"].max() == 999


def test_series_extend_matches_add():
    rng = np.random.default_rng(0)
    v = rng.normal(size=5000)
    v[1234] = np.nan
    a, b = Series(16), Series(16)
    for i, x in enumerate(v):
        a.add(i, x)
    b.extend(np.arange(len(v)), v)
    ba, bb = a.buckets(True), b.buckets(True)
    for k in ba:
        assert np.allclose(ba[k], bb[k]), k
    assert a.nonfinite == b.nonfinite == 1 and a.first_nonfinite_x == b.first_nonfinite_x == 1234


class _EagerSeries(Series):
    """Series as it stored closed buckets before they were staged: each one written into the
    arrays at once."""

    def _close(self, x):
        i, a = self.size, self._a
        for name, value in zip(
            ("x0", "x1", "n", "mean", "m2", "min", "max", "last"),
            (self._x0, x, self._n, self._mean, self._m2, self._min, self._max, self._last),
        ):
            a[name][i] = value
        self.size += 1
        self._n = 0
        if self.size == self.capacity:
            self._compact()


def test_staged_buckets_read_back_exactly_as_stored_at_once():
    # closed buckets are staged in a list and reach the arrays when read: every read (buckets,
    # x, means, state_dict), between adds, across compactions and after `extend`, gives the same
    # values, bit for bit, as storing each bucket when it closes
    rng = np.random.default_rng(1)
    v = rng.normal(size=3000) * 10.0 ** rng.integers(-3, 3, size=3000)
    v[[7, 500, 2999]] = [np.nan, np.inf, np.nan]
    staged, eager = Series(16), _EagerSeries(16)
    for i, x in enumerate(v):
        staged.add(i, float(x))
        eager.add(i, float(x))
        if i % 37 == 0 or i in (15, 16, 17):
            for include_open in (False, True):
                a, b = staged.buckets(include_open), eager.buckets(include_open)
                assert a.keys() == b.keys()
                for k in a:
                    assert np.array_equal(a[k], b[k], equal_nan=True), (i, k)
        if i % 101 == 0:
            assert np.array_equal(staged.x, eager.x) and np.array_equal(staged.means, eager.means)
            assert staged.state_dict() == eager.state_dict()
    staged.extend(np.arange(3000, 3100), v[:100])
    eager.extend(np.arange(3000, 3100), v[:100])
    assert staged.state_dict() == eager.state_dict()
    restored = Series(16)
    restored.load_state_dict(staged.state_dict())
    assert restored.state_dict() == eager.state_dict()


def test_single_value_buckets_staged_as_pairs_read_back_exactly_as_stored_at_once():
    # while the width is 1 (a curve shorter than `capacity`: the usual live run), a closed
    # bucket is staged as (x, value) and its other six fields are written from them, and its
    # standard deviation is 0.0 without the arithmetic: every read
    # (buckets with and without the open one, x, means, state_dict, a restored state), between
    # adds, across the first compaction and through `extend`'s open-bucket path, gives the same
    # values, bit for bit, as storing each bucket when it closes; values of every kind a caller
    # hands over (-0.0, ints, numpy float32 and float64 scalars, huge and tiny, non-finite)
    rng = np.random.default_rng(2)
    values: list = list(rng.normal(size=300) * 10.0 ** rng.integers(-150, 150, size=300))
    values[3:9] = [-0.0, 0.0, 7, np.float32(0.1), np.float64(-2.5e-308), math.nan]
    values[40] = math.inf
    staged, eager = Series(64), _EagerSeries(64)
    for i, v in enumerate(values):
        x = i + 0.5 if i % 3 else i  # float steps (epochs of a replayed log) and ints
        staged.add(x, v)
        eager.add(x, v)
        if i % 7 == 0 or i in (62, 63, 64, 65):
            for include_open in (False, True):
                a, b = staged.buckets(include_open), eager.buckets(include_open)
                assert a.keys() == b.keys()
                for k in a:
                    assert np.array_equal(a[k], b[k], equal_nan=True), (i, k)
                    assert np.array_equal(np.signbit(a[k]), np.signbit(b[k])), (i, k)  # -0.0 kept
                n = a["n"]  # the standard deviations as computed before width 1 had its own path
                std = np.sqrt(np.where(n > 1, a["m2"] / np.maximum(n - 1, 1), 0.0))
                assert np.array_equal(a["std"], std) and np.array_equal(np.signbit(a["std"]), np.signbit(std))
                assert a["std"].dtype == std.dtype and not a["std"].flags.writeable
        if i % 11 == 0:
            assert staged.state_dict() == eager.state_dict()
            restored = Series(64)
            restored.load_state_dict(staged.state_dict())
            assert restored.state_dict() == eager.state_dict()
    assert staged.width == eager.width > 1
    fresh, fresh_eager = Series(64), _EagerSeries(64)
    for s in (fresh, fresh_eager):
        s.add(0, 1.0)
        s.extend(np.arange(1, 40), np.asarray(values[:39], dtype=np.float64))
        s.add(40, 2.0)
    assert fresh.width == 1
    assert fresh.state_dict() == fresh_eager.state_dict()
    for k, v in fresh.buckets(True).items():
        assert np.array_equal(v, fresh_eager.buckets(True)[k], equal_nan=True), k


@pytest.mark.parametrize("vectorised", [False, True])
def test_series_lowest_is_the_least_bucket_minimum(vectorised):
    # `lowest`: the smallest finite value added, i.e. the least `min` over the buckets (the
    # open one included), through adds, `extend`, compactions and a restored state (it is not
    # saved: derived from the buckets); non-finite values never count; inf before any value
    rng = np.random.default_rng(3)
    s = Series(16)
    assert s.lowest == math.inf
    if not vectorised:
        s.add(0, math.nan)
        s.add(1, -math.inf)
        assert s.lowest == math.inf
    for start in range(0, 1500, 100):
        block = rng.normal(size=100) * 10.0 ** rng.integers(-3, 4)
        block[rng.integers(0, 100)] = math.nan
        xs = np.arange(start + 2, start + 102)
        if vectorised:
            s.extend(xs, block)
        else:
            for x, v in zip(xs, block):
                s.add(int(x), float(v))
        b = s.buckets(include_open=True)
        assert s.lowest == float(b["min"].min()) == float(np.nanmin(block if start == 0 else b["min"]))
        restored = Series(16)
        restored.load_state_dict(s.state_dict())
        assert restored.lowest == s.lowest
        assert "lowest" not in s.state_dict()  # checkpoints as they were
    s.add(10**6, -1e300)
    assert s.lowest == -1e300 == float(s.buckets(include_open=True)["min"].min())


@pytest.mark.parametrize("vectorised", [False, True])
def test_series_says_whether_its_finite_values_ever_moved(vectorised):
    # `varied`: a finite value other than the first was added (non-finite ones do not count);
    # it travels with the state, and a state saved without it reads as moved
    def fed(values):
        s = Series(16)
        if vectorised:
            s.extend(np.arange(len(values)), np.asarray(values, float))
        else:
            for i, v in enumerate(values):
                s.add(i, float(v))
        return s

    assert not fed([]).varied
    assert not fed([np.nan, 1e-3, 1e-3, np.inf] + [1e-3] * 100).varied
    assert fed([1e-3] * 100 + [2e-3]).varied
    assert fed([np.nan, 0.0, -0.0, 1.0]).varied
    s = fed([1e-3] * 50)
    restored = Series(16)
    restored.load_state_dict(s.state_dict())
    assert not restored.varied
    old = s.state_dict()
    del old["varied"]
    restored.load_state_dict(old)
    assert restored.varied
    s.extend(np.arange(50, 60), np.full(10, 1e-3))
    assert not s.varied
    s.extend(np.arange(60, 62), np.array([1e-3, 1.1e-3]))
    assert s.varied


def test_series_keeps_its_first_finite_value_exactly():
    # the loss at initialisation: lr-too-high compares an explosion with it after buckets merge
    v = np.concatenate([[np.nan, 2.3, 3800.0], np.full(2000, 2.35)])
    a, b = Series(8), Series(8)
    for i, x in enumerate(v):
        a.add(i, x)
    b.extend(np.arange(len(v)), v)
    assert a.first_value == b.first_value == 2.3 and a.width > 1
    c = Series(8)
    c.load_state_dict(a.state_dict())
    assert c.first_value == 2.3


def test_monitor_dedups_and_writes_jsonl(tmp_path):
    m = Monitor(log_dir=tmp_path)
    f = Finding("loss-plateau", Severity.WARNING, "stalled", {"x": math.inf}, "raise lr", step=3)
    with pytest.warns(MLCheckWarning):
        assert m.report(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not m.report(f)  # same problem again: an update, not a new warning
    m.close()
    lines = (tmp_path / "findings.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["evidence"] == {"x": "inf"}
    assert m.findings == [f]


def test_info_findings_do_not_warn():
    m = Monitor()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.report(Finding("loss-plateau", Severity.INFO, "fyi"))
    assert len(m.findings) == 1


def test_stop_on_error():
    m = Monitor(stop_on="error", warn=False)
    m.report(Finding("loss-plateau", Severity.WARNING, "w"))
    assert not m.should_stop
    m.report(Finding("nonfinite-loss", Severity.ERROR, "e"))
    assert m.should_stop and m.stop_reason.check == "nonfinite-loss"


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, mlcheck; heavy = [m for m in ('torch', 'keras', 'lightning', "
        "'pytorch_lightning', 'rich', 'tensorflow') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _recording_check():
    from mlcheck import Check

    class Recorder(Check):
        """Test helper.

        What it does:
            Records batches.
        Why it matters:
            Tests.
        How to fix:
            Nothing.
        """

        id = "test-recorder"
        family = "test"
        default = False

        def reset(self):
            self.calls = []

        def on_batch(self, batch, run):
            self.calls.append(
                (batch.split, batch.epoch, len(batch.inputs), batch.index, batch.step, [p[1] for p in batch.parts])
            )
            return ()

    return Recorder()


def test_deferred_batches_reach_checks_merged_in_order_and_nothing_is_lost():
    from mlcheck.checks.data import NonFiniteInput

    rec, nonfinite = _recording_check(), NonFiniteInput()
    monitor = Monitor([rec, nonfinite], default_sinks=False)
    only = ("test-recorder", "nonfinite-input")
    x = np.ones((32, 64), dtype=np.float32)
    loader_buffer = x.copy()
    per_block = -(-Monitor.DEFER_VALUES // (32 * 64 + 32))  # batches of 2080 values fill a block
    n = per_block + 8
    for i in range(n):
        loader_buffer[:] = 1.0
        if i == n - 3:
            loader_buffer[5, 3] = np.nan
        monitor.log_batch(
            loader_buffer, np.arange(32), split="train", step=i, epoch=0, index=i, checks=only, defer=True
        )
    for i in range(3):  # a new split hands over what the train split held
        monitor.log_batch(x, np.arange(32), split="val", step=n - 1, epoch=0, index=i, checks=only, defer=True)
    assert [c[:3] for c in rec.calls] == [("train", 0, 32 * per_block), ("train", 0, 8 * 32)]
    monitor.log_epoch(0, step=n - 1)  # an epoch end hands over everything held
    calls = rec.calls
    assert [c[:3] for c in calls] == [("train", 0, 32 * per_block), ("train", 0, 256), ("val", 0, 96)]
    assert calls[1][3] == per_block and calls[1][4] == n - 1 and calls[1][5] == list(range(per_block, n))
    # the loader reused its buffer: the monitor kept copies, so the NaN is in that batch only
    (finding,) = monitor.findings
    assert finding.check == "nonfinite-input" and finding.step == n - 3
    assert finding.evidence["batch_index"] == n - 3 and finding.evidence["samples_affected"] == 1
    assert f"batch {n - 3} at step {n - 3}" in finding.message


def test_a_batch_for_every_check_hands_over_deferred_batches_first():
    rec = _recording_check()
    monitor = Monitor([rec], default_sinks=False)
    x = np.zeros((4, 3))
    monitor.log_batch(x, split="train", index=0, checks=("test-recorder",), defer=True)
    monitor.log_batch(x, split="train", index=1, checks=("test-recorder",), defer=True)
    assert rec.calls == []
    monitor.log_batch(x, split="train", index=2)
    assert [c[3] for c in rec.calls] == [0, 2]  # the two held ones merged, then the new one
    monitor.log_batch(x, split="train", index=3, checks=("test-recorder",), defer=True)
    monitor.close()
    assert [c[3] for c in rec.calls] == [0, 2, 3]


def test_monitor_checks_take_ids_and_classes_and_name_bad_ones():
    from mlcheck.checks.base import get_check

    m = Monitor(checks=["loss-divergence", get_check("nonfinite-loss")], warn=False)
    assert [c.id for c in m.checks] == ["loss-divergence", "nonfinite-loss"]
    assert [c.id for c in Monitor(checks="train-val-gap", warn=False).checks] == ["train-val-gap"]
    with pytest.raises(ValueError, match="checks names unknown check ids"):
        Monitor(checks=["no-such-check"])
    with pytest.raises(TypeError, match="checks must hold"):
        Monitor(checks=[3])


def test_format_rounds_numbers_in_evidence_lists_too():
    # overfit-batch's evidence as a real Keras run at lr=5 gave it: the lists were printed with
    # every float digit beside numbers rounded to 4 significant digits
    evidence = {
        "best_loss": 2.301603317260742,
        "lrs_tried": [5.0, 50.0],
        "final_loss_per_lr": [2.301603317260742, 89.0522232055664],
        "input_range": (np.float32(0.0), np.float32(1.0)),
        "parameters": ["dense/kernel", "dense/bias"],
        "flags": [True, 2],
    }
    text = Finding("overfit-batch", Severity.ERROR, "m", evidence, "h").format()
    assert "best_loss=2.302, lrs_tried=[5, 50], final_loss_per_lr=[2.302, 89.05], input_range=(0, 1)" in text
    assert "parameters=['dense/kernel', 'dense/bias'], flags=[True, 2]." in text
    # the numbers themselves are kept whole for --json and findings.jsonl
    stored = Finding("overfit-batch", Severity.ERROR, "m", evidence, "h").to_dict()["evidence"]
    assert stored["final_loss_per_lr"] == [2.301603317260742, 89.0522232055664]


def test_format_writes_negative_zero_as_zero():
    # loss-plateau on a flat loss printed "drop_in_window=-0" (a drop of 0 computed as a - b)
    text = Finding("loss-plateau", Severity.WARNING, "m", {"drop_in_window": -0.0, "drop": np.float32(-0.0)}, "h")
    assert "drop_in_window=0, drop=0." in text.format()
