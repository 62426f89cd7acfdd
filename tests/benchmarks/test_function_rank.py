"""`benchmarks/bench_function_rank.py`: numpy's work is charged to the mlcheck function that
called it, and a C function that calls Python back is not counted twice."""

from __future__ import annotations

import cProfile
import sys
import time
from pathlib import Path

import numpy as np

from mlcheck.checks.leakage import _value_keys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_function_rank import rank  # noqa: E402


def test_function_rank_charges_numpy_calls_to_their_mlcheck_caller() -> None:
    x = (np.arange(2000.0).reshape(500, 4) * 7) % 13
    profile = cProfile.Profile(time.thread_time_ns, 1e-9)
    profile.enable()
    for _ in range(20):
        _value_keys(x)
    profile.disable()
    ranked, inclusive, total = rank(profile)
    own = {name.rsplit(" ", 1)[1]: (seconds, calls) for seconds, calls, name in ranked}
    assert own["_value_keys"][1] == 20
    assert [name.rsplit(" ", 1)[1] for _, _, name in inclusive] == ["_value_keys"]
    # its sorts and searches are numpy's: charged to it (its own Python lines are a small part)
    assert own["_value_keys"][0] >= 0.9 * inclusive[0][0] > 0


class _Groups:
    """What `learning_rate` reads of an optimizer: its parameter groups."""

    param_groups = [{"lr": 0.1 * k} for k in range(1, 200)]


def test_function_rank_counts_python_called_back_by_c_once() -> None:
    from mlcheck.integrations.torch_live import learning_rate

    profile = cProfile.Profile(time.thread_time_ns, 1e-9)
    profile.enable()
    for _ in range(200):
        learning_rate(_Groups())
    profile.disable()
    ranked, inclusive, total = rank(profile)
    # `max` drains a generator of mlcheck's: the generator's time is its own row, not also
    # `learning_rate`'s through `max`'s cumulative time
    whole = next(seconds for seconds, _, name in inclusive if name.endswith(" learning_rate"))
    assert total <= whole * 1.02
