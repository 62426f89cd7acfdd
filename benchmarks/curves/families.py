"""A labelled set of synthetic training curves for `benchmarks/curves_eval.py`.

Each family is a function `(rng) -> Run` that draws its own shape, length, noise and schedule
from wide ranges chosen to look like real runs (written before the checks' thresholds were
looked at, and not adjusted to them). Healthy families carry `label=None`; fault families name
the check that should fire. Severity and onset of each fault vary with the seed, so some
faults are mild on purpose: recall below 100% is expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Run:
    family: str
    label: str | None  # the check that should fire; None: healthy
    loss: np.ndarray | None = None  # per step
    lr: np.ndarray | None = None  # per step
    update_ratio: np.ndarray | None = None  # per step (NaN where not measured)
    epochs: list[dict] = field(default_factory=list)  # log_epoch keyword arguments, with "epoch"
    info: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)  # {"nonfinite_weights": (step, names)}


# -- building blocks -------------------------------------------------------------------------


def _length(rng, lo=200, hi=3000) -> int:
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _scale(rng) -> tuple[float, dict]:
    """Initial loss and run info: cross-entropy at ln(C), or a regression loss of any scale."""
    if rng.random() < 0.6:
        c = int(rng.choice([2, 3, 10, 100, 1000]))
        info = {"task": "classification", "num_classes": c} if rng.random() < 0.5 else {}
        return math.log(c) * rng.uniform(0.95, 1.3), info
    return 10 ** rng.uniform(-2, 3), ({"task": "regression"} if rng.random() < 0.5 else {})


def _noise(rng, clean: np.ndarray, level: float | None = None) -> np.ndarray:
    """Batch noise: multiplicative, heavy-tailed (Student t), relative level 2-40%."""
    rel = level if level is not None else math.exp(rng.uniform(math.log(0.02), math.log(0.4)))
    df = rng.uniform(3, 30)
    eps = rng.standard_t(df, len(clean)) / math.sqrt(df / (df - 2))
    return np.maximum(clean * (1 + rel * eps), clean * 0.05 if clean.min() >= 0 else -np.inf)


def _decay(rng, t: np.ndarray, l0: float, progress: np.ndarray | None = None) -> np.ndarray:
    """A converging curve: exponential or power law from l0 to a floor."""
    n = len(t)
    floor = l0 * rng.uniform(0.0, 0.4)
    u = progress if progress is not None else t / n
    if rng.random() < 0.5:
        tau = rng.uniform(0.03, 0.35)
        return floor + (l0 - floor) * np.exp(-u / tau)
    t0, alpha = rng.uniform(0.005, 0.1), rng.uniform(0.5, 2.0)
    return floor + (l0 - floor) * (1 + u / t0) ** -alpha


def _schedule(rng, n: int, kind: str) -> tuple[np.ndarray, bool]:
    """(lr per step, has_scheduler) for a schedule kind."""
    peak = 10 ** rng.uniform(-4.5, -0.5)
    t = np.arange(n)
    warm = int(n * rng.uniform(0.0, 0.1))
    if kind == "constant":
        return np.full(n, peak), False
    if kind == "warmup_linear":
        lr = np.where(t < warm, peak * t / max(warm, 1), peak * (n - t) / max(n - warm, 1))
    elif kind == "cosine":
        lo = peak * rng.choice([0.0, 0.01])
        body = lo + 0.5 * (peak - lo) * (1 + np.cos(np.pi * (t - warm) / max(n - warm, 1)))
        lr = np.where(t < warm, peak * (t + 1) / max(warm, 1), body)
    elif kind == "step":
        k = int(rng.integers(2, 5))
        lr = peak * 0.1 ** np.floor(t * k / n).clip(0, k - 1)
    elif kind == "onecycle":
        up = int(n * rng.uniform(0.25, 0.45))
        lr = np.where(
            t < up,
            peak / 25 + (peak - peak / 25) * 0.5 * (1 - np.cos(np.pi * t / up)),
            peak / 1e4 + (peak - peak / 1e4) * 0.5 * (1 + np.cos(np.pi * (t - up) / max(n - up, 1))),
        )
    elif kind == "restarts":
        cycles = int(rng.integers(2, 4))
        period = n / cycles
        lr = 0.5 * peak * (1 + np.cos(np.pi * (t % period) / period))
    elif kind == "exp_decay":
        lr = peak * rng.uniform(0.1, 0.5) ** (t / n)  # gentle, ends at 10-50% of the peak
    else:
        raise ValueError(kind)
    return lr.astype(float), True


def _curve_from_lr(rng, lr: np.ndarray, l0: float) -> np.ndarray:
    """Loss that progresses with the cumulative learning rate, plus an lr-proportional noise
    floor (as in SGD): step decays show as drops, warmups as a slow start."""
    progress = np.cumsum(lr) / lr.sum()
    clean = _decay(rng, np.arange(len(lr)), l0, progress * rng.uniform(0.8, 1.0))
    floor_term = l0 * rng.uniform(0.0, 0.1) * lr / lr.max()
    return clean + floor_term


def _ratio_healthy(rng, n: int, lr: np.ndarray | None = None) -> np.ndarray:
    base = rng.uniform(-3.8, -1.6)
    r = base - 0.6 * np.arange(n) / n + rng.normal(0, 0.15, n)
    if lr is not None:
        r = r + np.log10(np.maximum(lr / lr.max(), 1e-3)) * 0.7
    out = np.full(n, np.nan)
    every = int(rng.choice([1, 10, 25, 50]))
    out[::every] = 10 ** r[::every]
    return out


def _epochs_from_steps(
    rng,
    loss_clean: np.ndarray,
    loss: np.ndarray,
    per_epoch: int,
    l0: float,
    val: bool = True,
    val_shape: Callable | None = None,
    classes: int | None = None,
) -> list[dict]:
    rows = []
    n_ep = len(loss) // per_epoch
    gap = rng.uniform(0.0, 0.3)
    vnoise = math.exp(rng.uniform(math.log(0.003), math.log(0.05)))
    previous = math.inf
    for e in range(n_ep):
        end = (e + 1) * per_epoch - 1
        row = {"epoch": e, "step": end, "train_loss": float(np.nanmean(loss[e * per_epoch : end + 1]))}
        if val:
            # the gap grows, but a healthy validation loss does not turn up
            clean_val = loss_clean[end] * (1 + gap * (1 - math.exp(-3 * (e + 1) / n_ep)))
            clean_val = previous = min(previous, clean_val)
            if val_shape is not None:
                clean_val = val_shape(e, clean_val)
            row["val_loss"] = float(clean_val * (1 + vnoise * rng.standard_normal()))
            if classes:

                def acc(v: float) -> float:
                    return float(np.clip(1 - (1 - 1 / classes) * min(v / l0, 1.0), 0, 1))

                row["val_metrics"] = {"accuracy": acc(row["val_loss"])}
                row["train_metrics"] = {"accuracy": acc(row["train_loss"])}
        rows.append(row)
    return rows


# -- healthy families --------------------------------------------------------------------------


def healthy_converged(rng) -> Run:
    n = _length(rng)
    l0, info = _scale(rng)
    clean = _decay(rng, np.arange(n), l0)
    if rng.random() < 0.5:
        info["total_steps"] = n
    return Run("converged", None, _noise(rng, clean), info=info)


def healthy_noisy(rng) -> Run:
    n = _length(rng)
    l0, info = _scale(rng)
    clean = _decay(rng, np.arange(n), l0)
    return Run("noisy-improving", None, _noise(rng, clean, level=rng.uniform(0.3, 0.8)), info=info)


def _healthy_schedule(kind: str) -> Callable:
    def family(rng) -> Run:
        n = _length(rng, 300, 3000)
        l0, info = _scale(rng)
        lr, sched = _schedule(rng, n, kind)
        info["has_scheduler"] = sched if rng.random() < 0.8 else None
        if rng.random() < 0.6:
            info["total_steps"] = n
        loss = _noise(rng, _curve_from_lr(rng, lr, l0))
        ratio = _ratio_healthy(rng, n, lr) if rng.random() < 0.4 else None
        return Run(f"schedule-{kind}", None, loss, lr=lr, update_ratio=ratio, info=info)

    family.__name__ = f"healthy_{kind}"
    return family


def healthy_slow_start(rng) -> Run:
    n = _length(rng, 400, 3000)
    l0, info = _scale(rng)
    s = int(n * rng.uniform(0.02, 0.1))
    t = np.arange(n)
    clean = np.where(t < s, l0 * (1 - 0.02 * t / max(s, 1)), _decay(rng, np.maximum(t - s, 0), l0 * 0.98))
    return Run("slow-start", None, _noise(rng, clean), info=info)


def healthy_short(rng) -> Run:
    n = int(rng.integers(5, 90))
    l0, info = _scale(rng)
    clean = _decay(rng, np.arange(n), l0)
    lr = np.full(n, 10 ** rng.uniform(-4, -1)) if rng.random() < 0.5 else None
    return Run("short", None, _noise(rng, clean), lr=lr, info=info)


def healthy_update_ratio(rng) -> Run:
    n = _length(rng, 200, 2000)
    l0, info = _scale(rng)
    return Run(
        "update-ratio",
        None,
        _noise(rng, _decay(rng, np.arange(n), l0)),
        lr=np.full(n, 1e-3),
        update_ratio=_ratio_healthy(rng, n),
        info=info,
    )


def healthy_with_val(rng) -> Run:
    per_epoch = int(rng.integers(10, 200))
    n_ep = int(rng.integers(3, 60))
    n = per_epoch * n_ep
    l0, info = _scale(rng)
    clean = _decay(rng, np.arange(n), l0)
    loss = _noise(rng, clean)
    classes = info.get("num_classes")
    rows = _epochs_from_steps(rng, clean, loss, per_epoch, l0, classes=classes)
    return Run("with-val", None, loss, epochs=rows, info=info)


def healthy_epoch_only(rng) -> Run:
    r = healthy_with_val(rng)
    keep_val = rng.random() < 0.8
    for row in r.epochs:
        row.pop("step", None)
        if not keep_val:
            row.pop("val_loss", None)
            row.pop("val_metrics", None)
    return Run("epoch-only" + ("" if keep_val else "-no-val"), None, epochs=r.epochs, info=r.info)


def healthy_dropout(rng) -> Run:
    """Validation a little below training (dropout, augmentation): normal."""
    per_epoch = int(rng.integers(20, 100))
    n_ep = int(rng.integers(5, 40))
    n = per_epoch * n_ep
    l0, info = _scale(rng)
    clean = _decay(rng, np.arange(n), l0)
    loss = _noise(rng, clean)
    factor = rng.uniform(0.5, 0.9)
    rows = _epochs_from_steps(rng, clean, loss, per_epoch, l0, val_shape=lambda e, v: v * factor)
    return Run("val-below-train", None, loss, epochs=rows, info=info)


def healthy_easy(rng) -> Run:
    """Easy data: train and val both near perfect."""
    n_ep = int(rng.integers(5, 40))
    l0 = math.log(2)
    rows = []
    for e in range(n_ep):
        tr = l0 * math.exp(-(e + 1) * rng.uniform(0.8, 2.0)) + 1e-4
        va = tr * rng.uniform(0.05, 1.0)
        rows.append(
            {
                "epoch": e,
                "train_loss": tr,
                "val_loss": va,
                "train_metrics": {"accuracy": min(1.0, 1 - tr / 2)},
                "val_metrics": {"accuracy": min(1.0, 1 - va / 3)},
            }
        )
    return Run("easy-data", None, epochs=rows, info={"task": "classification", "num_classes": 2})


def healthy_val_plateau(rng) -> Run:
    """Validation flattens with noise at the end (no overfitting): early-stopping territory."""
    per_epoch = int(rng.integers(20, 100))
    n_ep = int(rng.integers(10, 60))
    n = per_epoch * n_ep
    l0, info = _scale(rng)
    clean = _decay(rng, np.arange(n), l0)
    loss = _noise(rng, clean)
    flat_at = int(n_ep * rng.uniform(0.3, 0.7))
    rows = _epochs_from_steps(rng, clean, loss, per_epoch, l0)
    level = float(np.median([r["val_loss"] for r in rows[flat_at - 2 : flat_at + 1]]))
    vnoise = rng.uniform(0.01, 0.06)
    for row in rows[flat_at:]:
        row["val_loss"] = level * (1 + vnoise * rng.standard_normal())
    return Run("val-flattens", None, loss, epochs=rows, info=info)


def healthy_spiky(rng) -> Run:
    """Improving run with a few isolated loss spikes (bad batches)."""
    n = _length(rng, 500, 3000)
    l0, info = _scale(rng)
    loss = _noise(rng, _decay(rng, np.arange(n), l0))
    for i in rng.integers(0, n, int(rng.integers(1, 6))):
        loss[i] *= rng.uniform(2, 6)
    return Run("isolated-spikes", None, loss, info=info)


def healthy_hard_task(rng) -> Run:
    """A hard problem: the loss falls 15-40% and levels off at a high irreducible level."""
    n = _length(rng)
    l0, info = _scale(rng)
    t = np.arange(n)
    fall = rng.uniform(0.15, 0.4)
    clean = l0 * (1 - fall * (1 - np.exp(-t / (n * rng.uniform(0.05, 0.3)))))
    return Run("hard-task", None, _noise(rng, clean), info=info)


def healthy_adam_high_ratio(rng) -> Run:
    """Adam at a high but working learning rate: log10 update ratio -1.5..-0.8, loss improves."""
    n = _length(rng, 200, 2000)
    l0, info = _scale(rng)
    r = np.full(n, np.nan)
    every = int(rng.choice([1, 10, 25]))
    base = rng.uniform(-1.5, -0.8)
    r[::every] = 10 ** (base - 0.5 * np.arange(n)[::every] / n + rng.normal(0, 0.15, n)[::every])
    return Run(
        "adam-high-ratio",
        None,
        _noise(rng, _decay(rng, np.arange(n), l0)),
        lr=np.full(n, 3e-3),
        update_ratio=r,
        info=info,
    )


def healthy_finetune(rng) -> Run:
    """Fine-tuning a pretrained model: the loss starts low for its task and falls further."""
    n = _length(rng, 200, 2000)
    c = int(rng.choice([2, 10, 100]))
    l0 = math.log(c) * rng.uniform(0.1, 0.4)
    info = {"task": "classification", "num_classes": c}
    clean = _decay(rng, np.arange(n), l0)
    ratio = np.full(n, np.nan)
    ratio[::10] = 10 ** rng.uniform(-5.0, -4.0, n)[::10]  # lr 1e-5 on weights ~0.05
    return Run("finetune", None, _noise(rng, clean), lr=np.full(n, 1e-5), update_ratio=ratio, info=info)


HEALTHY: list[Callable] = [
    healthy_hard_task,
    healthy_adam_high_ratio,
    healthy_finetune,
    healthy_converged,
    healthy_noisy,
    healthy_slow_start,
    healthy_short,
    healthy_update_ratio,
    healthy_with_val,
    healthy_epoch_only,
    healthy_dropout,
    healthy_easy,
    healthy_val_plateau,
    healthy_spiky,
    *(
        _healthy_schedule(k)
        for k in ("constant", "warmup_linear", "cosine", "step", "onecycle", "restarts", "exp_decay")
    ),
]


# -- fault families ----------------------------------------------------------------------------


def fault_nan(rng) -> Run:
    n = _length(rng)
    l0, info = _scale(rng)
    loss = _noise(rng, _decay(rng, np.arange(n), l0))
    onset = int(n * rng.uniform(0.05, 0.95))
    kind = rng.random()
    if kind < 0.5:
        loss[onset:] = rng.choice([np.nan, np.inf])
        return Run("nan-loss", "nonfinite-loss", loss, info=info)
    if kind < 0.75:
        return Run(
            "nan-weights", "nonfinite-loss", loss, info=info, extras={"nonfinite_weights": (onset, ["layer1.weight"])}
        )
    r = healthy_with_val(rng)
    e = int(rng.integers(0, len(r.epochs)))
    r.epochs[e]["val_loss"] = float("nan")
    return Run("nan-val", "nonfinite-loss", r.loss, epochs=r.epochs, info=r.info)


def fault_divergence(rng) -> Run:
    n = _length(rng, 300, 3000)
    l0, info = _scale(rng)
    t = np.arange(n)
    clean = _decay(rng, t, l0)
    onset = int(n * rng.uniform(0.0, 0.8)) if rng.random() < 0.85 else 0
    peak = clean[onset] * math.exp(rng.uniform(math.log(2), math.log(50)))
    tau = n * rng.uniform(0.01, 0.15)
    rise = (peak - clean[onset]) * (1 - np.exp(-(t - onset) / tau))
    clean = np.where(t >= onset, clean[onset] + np.maximum(rise, 0), clean)
    loss = _noise(rng, clean)
    if rng.random() < 0.3:  # epoch-level only
        per = max(1, n // int(rng.integers(10, 50)))
        rows = [{"epoch": e, "train_loss": float(np.mean(loss[e * per : (e + 1) * per]))} for e in range(n // per)]
        return Run("divergence-epochs", "loss-divergence", epochs=rows, info=info)
    return Run("divergence", "loss-divergence", loss, info=info)


def fault_plateau(rng) -> Run:
    n = _length(rng, 300, 3000)
    l0, info = _scale(rng)
    t = np.arange(n)
    kind = rng.random()
    if kind < 0.4:  # never learns
        clean = np.full(n, l0)
        family = "plateau-flat"
    elif kind < 0.7:  # a little progress, then stuck
        drop = rng.uniform(0.0, 0.08)
        clean = l0 * (1 - drop * (1 - np.exp(-t / (n * rng.uniform(0.01, 0.05)))))
        family = "plateau-early"
    else:  # bad init falls to chance, stays there
        c = int(rng.choice([2, 10, 100]))
        info = {"task": "classification", "num_classes": c}
        chance = math.log(c)
        start = chance * rng.uniform(2, 8)
        clean = chance * rng.uniform(0.93, 1.0) + (start - chance) * np.exp(-t / (n * rng.uniform(0.01, 0.05)))
        family = "plateau-chance"
    loss = _noise(rng, clean)
    if rng.random() < 0.25:
        per = max(1, n // int(rng.integers(8, 40)))
        rows = [{"epoch": e, "train_loss": float(np.mean(loss[e * per : (e + 1) * per]))} for e in range(n // per)]
        return Run(family + "-epochs", "loss-plateau", epochs=rows, info=info)
    return Run(family, "loss-plateau", loss, info=info)


def fault_overfit(rng) -> Run:
    per_epoch = int(rng.integers(20, 100))
    n_ep = int(rng.integers(12, 60))
    n = per_epoch * n_ep
    l0, info = _scale(rng)
    clean = _decay(rng, np.arange(n), l0)
    loss = _noise(rng, clean)
    best = int(n_ep * rng.uniform(0.2, 0.7))
    rise = rng.uniform(0.1, 1.0)
    shape = rng.uniform(1.0, 2.0)

    def val_shape(e: int, v: float) -> float:
        base = clean[(best + 1) * per_epoch - 1]
        if e <= best:
            return v
        return max(v, base * (1 + rise * ((e - best) / (n_ep - best)) ** shape))

    rows = _epochs_from_steps(rng, clean, loss, per_epoch, l0, val_shape=val_shape)
    if rng.random() < 0.3:
        for row in rows:
            row.pop("step")
        return Run("overfit-epochs", "train-val-gap", epochs=rows, info=info)
    return Run("overfit", "train-val-gap", loss, epochs=rows, info=info)


def fault_suspicious(rng) -> Run:
    n_ep = int(rng.integers(6, 40))
    l0 = math.log(10)
    info = {"task": "classification", "num_classes": 10}
    floor = l0 * rng.uniform(0.2, 0.6)
    rows = []
    ratio = rng.uniform(0.02, 0.2)
    metric = rng.random() < 0.4
    for e in range(n_ep):
        tr = floor + (l0 - floor) * math.exp(-(e + 1) / rng.uniform(1, 4))
        tr *= 1 + 0.02 * rng.standard_normal()
        row = {"epoch": e, "train_loss": tr}
        if metric:
            row["train_metrics"] = {"accuracy": float(rng.uniform(0.55, 0.8))}
            row["val_metrics"] = {"accuracy": float(rng.uniform(0.992, 1.0))}
            row["val_loss"] = tr * rng.uniform(0.5, 0.9)
        else:
            row["val_loss"] = tr * ratio * (1 + 0.05 * rng.standard_normal())
        rows.append(row)
    return Run("suspicious-acc" if metric else "suspicious-loss", "suspicious-val", epochs=rows, info=info)


def fault_lr_high(rng) -> Run:
    n = _length(rng, 300, 3000)
    l0, info = _scale(rng)
    t = np.arange(n)
    level = l0 * rng.uniform(0.6, 1.0)
    clean = level + (l0 - level) * np.exp(-t / (0.05 * n))
    if rng.random() < 0.5:
        loss = _noise(rng, clean, level=rng.uniform(0.1, 0.5))
        r = np.full(n, np.nan)
        every = int(rng.choice([1, 10, 25]))
        r[::every] = 10 ** (rng.uniform(-0.9, 0.7) + rng.normal(0, 0.2, n)[::every])
        return Run("lr-high-ratio", "lr-too-high", loss, lr=np.full(n, 0.5), update_ratio=r, info=info)
    loss = _noise(rng, clean, level=rng.uniform(0.05, 0.2))
    k = int(n * rng.uniform(0.01, 0.05))
    for i in rng.integers(0, n, k):
        loss[i : i + int(rng.integers(1, 4))] *= rng.uniform(2.5, 8)
    return Run("lr-high-spikes", "lr-too-high", loss, info=info)


def fault_lr_low(rng) -> Run:
    n = _length(rng, 400, 3000)
    l0, info = _scale(rng)
    t = np.arange(n)
    total_drop = rng.uniform(0.03, 0.15)
    clean = l0 * (1 - total_drop * t / n * (1 + rng.uniform(-0.2, 0.2) * t / n))
    loss = _noise(rng, clean, level=math.exp(rng.uniform(math.log(0.01), math.log(0.2))))
    if rng.random() < 0.4:
        r = np.full(n, np.nan)
        r[::25] = 10 ** (rng.uniform(-7.5, -5.5) + rng.normal(0, 0.2, n)[::25])
        return Run("lr-low-ratio", "lr-too-low", loss, lr=np.full(n, 1e-7), update_ratio=r, info=info)
    if rng.random() < 0.5:
        info["total_steps"] = n
    return Run("lr-low-slow", "lr-too-low", loss, lr=np.full(n, 1e-6), info=info)


def fault_schedule(rng) -> Run:
    n = _length(rng, 300, 3000)
    l0, info = _scale(rng)
    t = np.arange(n)
    peak = 10 ** rng.uniform(-4, -1)
    kind = rng.random()
    if kind < 0.45:  # schedule sized for fewer steps than the run: decays to 0, stays there
        end = int(n * rng.uniform(0.2, 0.75))
        if rng.random() < 0.5:
            lr = np.where(t < end, peak * (end - t) / end, 0.0)
        else:
            lr = np.where(t < end, 0.5 * peak * (1 + np.cos(np.pi * t / end)), peak * 1e-5)
        family = "schedule-too-short"
        if rng.random() < 0.5:
            info["total_steps"] = n
        info["has_scheduler"] = True
    elif kind < 0.65:
        lr = np.full(n, peak)
        info["has_scheduler"] = True
        family = "scheduler-not-stepped"
    elif kind < 0.85:
        end = int(n * rng.uniform(0.5, 0.9))
        lr = peak * (end - t) / end  # linear decay past its end: negative
        family = "negative-lr"
    else:
        lr = np.full(n, peak)
        lr[int(n * rng.uniform(0.1, 0.9)) :] = np.nan
        family = "nan-lr"
    loss = _noise(rng, _decay(rng, t, l0))
    return Run(family, "lr-schedule", loss, lr=lr, info=info)


FAULTS: list[Callable] = [
    fault_nan,
    fault_divergence,
    fault_plateau,
    fault_overfit,
    fault_suspicious,
    fault_lr_high,
    fault_lr_low,
    fault_schedule,
]
