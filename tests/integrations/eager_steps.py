"""The per-step path as it was before the cuts of issue 13, for identity tests: `Series`
storing each closed bucket at once and `Monitor.log_step` passing every argument through its
`opt` check (`eager_steps`); the layer statistics, the flush and `lr-schedule`'s judgement as
they were before the cuts of the evening (`before_judgement_and_layer_cuts`); the layer
statistics' assembly as it was before the cuts of 2026-12-04 (`before_layer_assembly_cuts`)."""

from __future__ import annotations


def eager_steps(monkeypatch) -> None:
    """`Series` and `Monitor.log_step` as they were before the per-step cuts: each closed bucket
    stored at once, and every argument of `log_step` through its `opt` check."""
    from mlcheck import options as opt
    from mlcheck.monitor import Monitor
    from mlcheck.series import Series

    def close(self, x):
        self._store()  # nothing staged: every bucket is stored when it closes
        row = (self._x0, x, self._n, self._mean, self._m2, self._min, self._max, self._last)
        for name, value in zip(("x0", "x1", "n", "mean", "m2", "min", "max", "last"), row):
            self._a[name][self.size] = value
        self.size += 1
        self._n = 0
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


def before_judgement_and_layer_cuts(monkeypatch) -> None:
    """The paths as they were before the cuts of the layer statistics, the flush and the step
    judgements (issue 13, 2026-12-03 evening): `lr-schedule` judging a rate that never moved,
    each layer output's reductions through ndarray methods, the TensorBoard sink reading the
    charted statistics one `getattr` at a time, and the held losses reshaped before `item()`."""
    import importlib.util

    from mlcheck.checks.learning_rate import LRSchedule
    from mlcheck.sinks import tensorboard

    monkeypatch.setattr(LRSchedule, "on_step", _lr_schedule_on_step)
    monkeypatch.setattr(tensorboard.TensorBoardSink, "layers", _sink_layers)
    if importlib.util.find_spec("torch") is None:
        return  # Keras on JAX or TensorFlow alone: the torch paths are not in the fit
    from mlcheck.integrations import lightning, torch_layers

    monkeypatch.setattr(torch_layers, "_host_stats", _host_stats)
    monkeypatch.setattr(lightning, "losses_to_floats", _losses_to_floats)


def _lr_schedule_on_step(self, run):
    if not (run.lr.nonfinite and "invalid" not in self._done) and not self._throttle.due(run.lr.total):
        return ()
    return self._judge(run, final=False)


def _host_stats(x, activation, channels_first):
    import math

    import numpy as np
    import torch

    from mlcheck.integrations import torch_layers

    flat = x.numpy().ravel(order="K")
    n = flat.size
    if not n:
        return [math.nan] * torch_layers._FORWARD_STATS, 0
    with np.errstate(all="ignore"):
        squares = float(np.dot(flat, flat))
        nonfinite = 0 if math.isfinite(squares) else n - int(np.count_nonzero(np.isfinite(flat)))
        total = float(flat.sum())
        saturated = saturated_units = dead_units = math.nan
        dims = torch_layers._unit_dims(x, channels_first)
        units = 0
        if activation in torch_layers.RECTIFYING:
            low, high = math.nan, float(flat.max())
            active = torch.sign(x).sum(dims).numpy()
            units = active.size
            nonzero = float(active.sum())
            dead_units = float(np.count_nonzero(active < torch_layers.UNIT_SHARE * (n / units)))
        else:
            low, high = -float(flat.min()), float(flat.max())
            nonzero = float(n) if np.abs(flat).min() > 0 else float(np.count_nonzero(flat))
            if activation in torch_layers.SATURATING:
                counts = torch_layers._saturated(x, activation).sum(dims).numpy()
                units = counts.size
                saturated = float(counts.sum())
                saturated_units = float(np.count_nonzero(counts > (1 - torch_layers.UNIT_SHARE) * (n / units)))
    if nonfinite:
        nonzero = saturated = saturated_units = dead_units = math.nan
    return [float(nonfinite), total, squares, low, high, nonzero, saturated, saturated_units, dead_units], units


def _sink_layers(self, layers):
    import math
    import time

    from tensorboard.compat.proto import event_pb2, summary_pb2

    from mlcheck.sinks import tensorboard

    summary = summary_pb2.Summary()
    add = summary.value.add
    for stats in layers:
        tags = self._layer_tags.get(stats.path)
        if tags is None:
            names = (*tensorboard.LAYER_CHARTS, tensorboard.LAYER_HISTOGRAM)
            tags = self._layer_tags[stats.path] = [tensorboard.LAYER_TAG.format(path=stats.path, stat=n) for n in names]
        for tag, stat in zip(tags, tensorboard.LAYER_CHARTS):
            value = getattr(stats, stat)
            if value is not None and math.isfinite(value):
                add(tag=tag, simple_value=value)
        if stats.histogram is not None:
            summary.value.append(self.histogram_value(tags[-1], stats.histogram))
    if summary.value:
        event = event_pb2.Event(wall_time=time.time(), step=int(layers.step), summary=summary)
        self._open().add_event(event)


def _losses_to_floats(losses):
    import torch

    flat = [t.reshape(()) if t.ndim else t for t in losses if isinstance(t, torch.Tensor)]
    if all(t.is_cpu for t in flat):
        values = [float(t.item()) for t in flat]
    else:
        values = torch.stack(flat).double().cpu().tolist()
    if len(flat) == len(losses):
        return values
    read = iter(values)
    return [next(read) if isinstance(t, torch.Tensor) else float(t) for t in losses]


def before_layer_assembly_cuts(monkeypatch) -> None:
    """The recorder's assembly as it was before the cuts of 2026-12-04 (issue 13): each
    `LayerStats` through the frozen dataclass's `__init__`, the host test through a device
    object, and the fused norms concatenated (a copy) before their one host transfer."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return  # Keras on JAX or TensorFlow alone: no torch recorder in the fit
    from mlcheck.integrations import torch_layers
    from mlcheck.layers import LayerStats

    monkeypatch.setattr(torch_layers, "layer_stats", lambda values: LayerStats(**values))
    monkeypatch.setattr(torch_layers, "_on_host", _on_host)
    monkeypatch.setattr(torch_layers, "_to_host", _to_host)


def _on_host(x):
    import torch

    return x.device.type == "cpu" and x.layout == torch.strided and type(x) is torch.Tensor


def _to_host(parts):
    import torch

    parts = [t for t in parts if t.numel()]
    if not parts:
        return []
    devices = {t.device for t in parts}
    if len(devices) == 1:
        return torch.cat([t if t.dtype == torch.float32 else t.float() for t in parts]).cpu().tolist()
    return torch.cat([t.float().cpu() for t in parts]).tolist()
