"""The per-step path as it was before the cuts of issue 13, for identity tests: `Series`
storing each closed bucket at once and `Monitor.log_step` passing every argument through its
`opt` check."""

from __future__ import annotations


def eager_steps(monkeypatch) -> None:
    """`Series` and `Monitor.log_step` as they were before the per-step cuts: each closed bucket
    stored at once, and every argument of `log_step` through its `opt` check."""
    from mlcheck import options as opt
    from mlcheck.monitor import Monitor
    from mlcheck.series import Series

    def close(self, x):
        self._staged.append((self._x0, x, self._n, self._mean, self._m2, self._min, self._max, self._last))
        self.size += 1
        self._n = 0
        self._store()
        if self.size == self.capacity:
            self._compact()

    log_step = Monitor.log_step

    def checked(self, step, **kw):
        names = ("nonfinite_grads", "nonfinite_weights")
        ints = ("epoch",)
        kw = {
            k: opt.names(k, v) if k in names else opt.optional_index(k, v) if k in ints else opt.optional_number(k, v)
            for k, v in kw.items()
        }
        return log_step(self, opt.index("step", step), **kw)

    monkeypatch.setattr(Series, "_close", close)
    monkeypatch.setattr(Monitor, "log_step", checked)
