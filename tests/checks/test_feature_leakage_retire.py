"""`feature-leakage` stops scoring the columns no later judgement could find near-perfect
(`FeatureLeakage._retire`): the same verdicts, fewer columns scored, no rows kept once none is left."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2
from sklearn.datasets import load_breast_cancer, load_digits

from mlcheck import Monitor
from mlcheck.checks import leakage
from mlcheck.checks.leakage import FeatureLeakage


class Counting(FeatureLeakage):
    """Counts the judgements that scored columns, and the columns scored."""

    def reset(self) -> None:
        super().reset()
        self.scored: list[int] = []

    def scores(self, distinct=None, screen=False):
        if not screen:  # the columns a judgement scored on its full subsample
            self.scored.append(self._x.shape[1] if self._live is None else int(self._live.sum()))
        return super().scores(distinct, screen)


class Unretired(Counting):
    """Main's rule: every column scored at every judgement."""

    def _screened_out(self, distinct: np.ndarray) -> bool:
        return False

    def _retire(self, scores: np.ndarray) -> None:
        pass


def feed(check, x, y, epochs=3, batch_size=32, seed=0):
    monitor = Monitor([check], warn=False, default_sinks=False)
    rng, step = np.random.default_rng(seed), 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for index, start in enumerate(range(0, len(x), batch_size)):
            rows = order[start : start + batch_size]
            monitor.log_batch(x[rows], y[rows], split="train", step=step, epoch=epoch, index=index)
            step += 1
    monitor.close()
    return [(f.key, f.step, f.evidence["score"], f.evidence["rows"], f.evidence["errors"]) for f in monitor.findings]


def test_the_error_count_bound_stays_under_the_exact_poisson_bound():
    e = np.arange(1, 20001)
    approx = np.maximum(np.sqrt(e) - leakage._RETIRE_Z / 2, 0.0) ** 2
    assert (approx <= chi2.ppf(1e-6, 2 * e) / 2).all()


def test_honest_digits_are_scored_once_and_no_rows_kept_after():
    d = load_digits()
    x, y = d.data[:1437] / 16.0, d.target[:1437]
    check = Counting()
    assert feed(check, x, y) == []
    assert check.scored == [64]  # main scored all 64 pixels 6 times over 3 epochs
    assert not check._live.any() and check._seen == 224  # the reservoir stopped at the first judgement
    assert 0.0 < check.scores()[0].max() < 0.5  # the last scores stay for reports


def test_a_merged_first_pass_of_honest_digits_is_screened_on_128_rows():
    d = load_digits()
    x, y = d.data[:1437] / 16.0, d.target[:1437]
    check = Counting()
    assert feed(check, x, y, epochs=1, batch_size=2048) == []  # the live core's merged first pass
    assert check.scored == [] and check._rows == 128  # every pixel retired by the screen: no more scored


def _cases():
    d, c = load_digits(), load_breast_cancer()
    dx, dy = d.data[:1437] / 16.0, d.target[:1437]
    cx, cy = (c.data - c.data.mean(0)) / c.data.std(0), c.target
    rng = np.random.default_rng(0)
    copied = dx.copy()
    copied[:, 20] = dy
    noisy = dx.copy()  # the label with 1% of it replaced at random
    noisy[:, 33] = np.where(rng.random(len(dy)) < 0.01, rng.integers(0, 10, len(dy)), dy)
    order = np.argsort(dy, kind="stable")
    row_id = np.column_stack([dx[order], np.arange(len(dy))])  # an id that follows a sorted label
    leaked_cancer = cx.copy()
    leaked_cancer[:, 5] = cy
    return {
        "digits": (dx, dy, []),
        "digits-copied": (copied, dy, ["feature-20"]),
        "digits-noisy-copy": (noisy, dy, ["feature-33"]),
        "digits-sorted-id": (row_id, dy[order], ["feature-64"]),
        "cancer": (cx, cy, []),
        "cancer-copied": (leaked_cancer, cy, ["feature-5"]),
    }


@pytest.mark.parametrize("batch_size", [32, 2048])
@pytest.mark.parametrize("case", list(_cases()))
def test_retiring_columns_keeps_every_verdict_and_scores_fewer(case, batch_size):
    x, y, keys = _cases()[case]
    retired, everything = Counting(), Unretired()
    found = feed(retired, x, y, batch_size=batch_size)
    assert [f[0] for f in found] == keys
    # the same findings: key, step, score, rows, errors (2048: the whole set in one batch)
    assert found == feed(everything, x, y, batch_size=batch_size)
    if case.startswith("cancer") and batch_size == 2048:
        # one judgement of two classes: no honest column errs on the ~78 of 128 rows that retire it
        assert retired.scored == everything.scored  # not screened
    else:
        assert sum(retired.scored) < sum(everything.scored)  # fewer columns scored over the run
