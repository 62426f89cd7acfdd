"""Every check that keeps per-run state saves it with a checkpoint: a run resumed in a new
process from `Monitor.state_dict()` (through `torch.save` and `torch.load(weights_only=True)`,
as a Lightning checkpoint travels) raises the same findings as an uninterrupted run, none twice.

The streams live in `check_streams.py`, which also runs as the resuming process.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch
from check_streams import STREAMS, feed, findings_json

from mlcheck.checks.base import registry
from mlcheck.checks.hashing import FingerprintSet

HERE = Path(__file__).resolve().parent
BUILT_IN = {cid: cls for cid, cls in registry().items() if cls.__module__.startswith("mlcheck.checks")}


def stateful(check_ids) -> list[str]:
    """The checks whose reset() sets attributes: they have state to save."""
    return sorted(cid for cid in check_ids if BUILT_IN[cid]()._state_names)


def weights_only_round_trip(obj):
    """`obj` through torch.save and torch.load(weights_only=True), as a Lightning checkpoint."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def same(a, b) -> bool:
    """Deep equality of check state: arrays by value, random generators by state, fingerprint
    sets as sets, other objects by their attributes."""
    if isinstance(a, FingerprintSet):
        return isinstance(b, FingerprintSet) and np.array_equal(np.sort(a.values()), np.sort(b.values()))
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if isinstance(a, np.random.Generator):
        return isinstance(b, np.random.Generator) and a.bit_generator.state == b.bit_generator.state
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, deque)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same(x, y) for x, y in zip(a, b))
            and getattr(a, "maxlen", None) == getattr(b, "maxlen", None)
        )
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return type(a) is type(b) and same(vars(a), vars(b))
    return type(a) is type(b) and a == b


# -- every stateful check is covered -------------------------------------------------------------


def test_every_check_with_run_state_has_a_resume_stream():
    # a new check whose reset() sets attributes needs a stream in check_streams.py
    assert stateful(BUILT_IN) == sorted(STREAMS)


def test_preflight_only_checks_keep_no_run_state():
    hooks = ("on_step", "on_epoch", "on_batch", "on_end", "on_layers")
    for cid, cls in BUILT_IN.items():
        if not any(cls.implements(h) for h in hooks):
            assert cls()._state_names == (), cid


@pytest.mark.parametrize("check_id", sorted(BUILT_IN))
def test_state_dict_saves_every_attribute_reset_sets(check_id):
    check = BUILT_IN[check_id]()
    assert set(check.state_dict()) == set(check._state_names)


@pytest.mark.parametrize("check_id", sorted(STREAMS))
def test_state_round_trips_through_a_weights_only_checkpoint(check_id):
    stream = STREAMS[check_id]()
    monitor = stream.monitor()
    feed(monitor, stream.events)
    (check,) = monitor.checks
    restored = stream.make_check()
    restored.load_state_dict(weights_only_round_trip(check.state_dict()))
    for name in check._state_names:
        assert same(getattr(check, name), getattr(restored, name)), name
    assert restored.state_dict() == check.state_dict()


def test_plain_data_codec_keeps_arrays_and_random_generators():
    from mlcheck.checks.base import _from_plain, _to_plain

    rng = np.random.default_rng(7)
    rng.random(3)
    value = {
        "a": np.arange(6, dtype=np.uint64).reshape(2, 3),
        "b": [np.float32(0.5), (1, None)],
        "c": {3: np.array([np.nan, 1.0])},
        "rng": rng,
        "s": {1, 2},
        "flag": np.bool_(True),
    }
    back = _from_plain(weights_only_round_trip(_to_plain(value)))
    assert back["a"].dtype == np.uint64 and back["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["b"] == [0.5, (1, None)] and back["s"] == {1, 2} and back["flag"] is True
    assert np.isnan(back["c"][3][0]) and back["c"][3][1] == 1.0
    assert back["rng"].random() == rng.random()


def test_a_check_with_unsavable_state_is_left_out_with_a_warning(caplog):
    from mlcheck import Check

    class Custom(Check):
        id = "test-state-custom"

        def reset(self):
            self.count = 0
            self.window = deque(maxlen=3)

    check = Custom()
    check.count = 5
    with caplog.at_level("WARNING", logger="mlcheck"):
        assert check.state_dict() == {"count": 5}
    assert "window" in caplog.text and "state_dict" in caplog.text
    fresh = Custom()
    fresh.load_state_dict({"count": 5})
    assert fresh.count == 5 and isinstance(fresh.window, deque)


# -- resume in a new process ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Path:
    """Checkpoints every stream at its split, then resumes them all in one new process."""
    directory = tmp_path_factory.mktemp("resume")
    for check_id, make in STREAMS.items():
        stream = make()
        monitor = stream.monitor()
        feed(monitor, stream.events[: stream.split])
        torch.save(monitor.state_dict(), directory / f"{check_id}.pt")
    proc = subprocess.run(
        [sys.executable, str(HERE / "check_streams.py"), str(directory)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return directory


@pytest.mark.parametrize("check_id", sorted(STREAMS))
def test_resumed_run_finds_what_an_uninterrupted_run_finds(resumed, check_id):
    stream = STREAMS[check_id]()
    monitor = stream.monitor()
    feed(monitor, stream.events[: stream.split])
    before = len(monitor.findings)
    feed(monitor, stream.events[stream.split :])
    monitor.close()
    expected = findings_json(monitor)
    assert any(f["check"] == check_id for f in expected[before:]), (
        "the stream must make the check fire after the checkpoint"
    )

    got = json.loads((resumed / f"{check_id}.json").read_text())
    assert got == expected
    keys = [(f["check"], f["key"]) for f in got]
    assert len(keys) == len(set(keys)), "a finding was repeated after the resume"
