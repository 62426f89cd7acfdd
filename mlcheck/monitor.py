"""`Monitor`: feeds observations to checks, de-duplicates findings and hands them to sinks."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mlcheck import options as opt
from mlcheck.checks.base import Check, default_checks, explain
from mlcheck.checks.hashing import PROBE_ABOVE, PROBE_VALUES, probed
from mlcheck.findings import Finding, MLCheckInternalWarning, MLCheckWarning, Severity
from mlcheck.layers import LayerObservation
from mlcheck.run import BatchObservation, RunInfo, RunState
from mlcheck.samples import PassFingerprints, SampleOutputs, SampleStore
from mlcheck.sinks import JsonlSink, LoggingSink, Sink, TensorBoardSink
from mlcheck.sinks.curves import CURVES_LOSS_TAG, CurveWriter
from mlcheck.spelling import keywords_checked

logger = logging.getLogger("mlcheck")

_STOP_ON = {None: None, "error": Severity.ERROR, "warning": Severity.WARNING}
_INT64 = opt.INT64  # `log_step` tests the common case of `opt.index` inline


def _gradient_probe(optimizer: Any, every_n_steps: int) -> Any:
    """`Monitor(optimizer=...)`: the hook that measures its gradients (torch is imported only
    here, when an optimizer is given); None without one."""
    if optimizer is None:
        return None
    if not callable(getattr(optimizer, "register_step_pre_hook", None)) or not hasattr(optimizer, "param_groups"):
        raise TypeError(
            f"Monitor(optimizer=...) takes a torch.optim.Optimizer (torch >= 2.0), got {type(optimizer).__name__}; "
            "in other loops pass grad_norm= and grad_cosine= to log_step instead"
        )
    from mlcheck.integrations.torch_live import GradientProbe

    return GradientProbe(optimizer, every_n_steps)


class Monitor:
    """Watches one training run from any loop and reports what looks wrong.

    Feed it observations with `log_step`, `log_epoch` and `log_batch`, and call `close()` at the
    end (or use it as a context manager). Each problem is reported once, when first seen, as a
    `Finding` in `findings`, a `MLCheckWarning` (WARNING and ERROR only), a log record, a line
    in `<log_dir>/findings.jsonl` and TensorBoard events in `log_dir`; later sightings of the
    same problem only update its TensorBoard marker. With a
    `log_dir`, the curves it is given (losses, learning rate, metrics, the epoch) are written
    there too, under `mlcheck/curves/`, so that TensorBoard and `mlcheck analyze` can read the
    run back (see `curves`).

    Args:
        checks: checks to run: instances, classes or check ids (a class or id is built with its
            defaults; an id given twice is one check, the later one). Default: every check that is on
            by default. An empty list runs none (said once, at INFO in the `mlcheck` logger).
        suppress: check ids to silence (their hooks are not run); one that silences every check
            of `checks` (or every default one) is refused (ValueError): a run without a check
            reads as clean.
        log_dir: where TensorBoard events and `findings.jsonl` go. Default None (or False, as the
            callbacks take it): neither. An empty string is refused (it would be the working
            directory): pass "." for that.
        stop_on: None (default), "error" or "warning" (any case): set `should_stop` once a finding of that
            severity or worse is raised. The callbacks then stop training.
        every_n_steps: how often adapters take the costly statistics (update ratios, batch
            samples). Default 25.
        strict: re-raise exceptions from checks instead of switching the check off. Default False.
        warn: raise Python warnings for WARNING and ERROR findings. Default True.
            `strict` and `warn` take True or False (a string such as "yes" is refused).
        info: facts about the run (task, total steps, schedule), see `RunInfo`.
        sinks: extra sinks, or a list that replaces the defaults when `default_sinks=False`.
        run_name: names the run in JSON output.
        curves: write the values given to `log_step`, `log_steps` and `log_epoch` as TensorBoard
            scalars `mlcheck/curves/<name>` in `log_dir` (`train_loss_step`, `lr`,
            `train_loss_epoch`, `val_loss`, `train_<metric>`, `val_<metric>`, `epoch`), held in
            memory and written in blocks (`mlcheck.sinks.curves`). Default None: on when
            `log_dir` is set and the default sinks are on. The callbacks turn it off: the user's
            logger already keeps their curves.
        optimizer: a `torch.optim.Optimizer` (torch >= 2.0), in a hand-written loop: a hook on
            its `step()` then measures the gradient's norm and its cosine with the previous
            step's at a few early steps and the step after every `every_n_steps`-th, which
            `log_step` records when it is not given them (`stale-gradients`: a missing
            `optimizer.zero_grad()`). A few tensor operations on those steps only; the hook is
            removed by `close()`. Default None: nothing is measured.

    Example:
        >>> from mlcheck import Monitor
        >>> with Monitor(log_dir="runs/exp1") as monitor:
        ...     for step in range(100):
        ...         monitor.log_step(step, loss=1.0 / (step + 1), lr=1e-3)
        >>> monitor.findings
        []
    """

    @keywords_checked
    def __init__(
        self,
        checks: Sequence[Check] | None = None,
        *,
        suppress: Iterable[str] = (),
        log_dir: str | os.PathLike[str] | None = None,
        stop_on: str | None = None,
        every_n_steps: int = 25,
        strict: bool = False,
        warn: bool = True,
        info: RunInfo | None = None,
        sinks: Sequence[Sink] | None = None,
        default_sinks: bool = True,
        run_name: str | None = None,
        curves: bool | None = None,
        optimizer: Any = None,
    ) -> None:
        stop_on = opt.stop_on(stop_on)
        opt.integer("every_n_steps", every_n_steps, minimum=1)
        strict = opt.flag("strict", strict)
        warn = opt.flag("warn", warn)
        default_sinks = opt.flag("default_sinks", default_sinks)
        curves = opt.flag("curves", curves, optional=True)
        opt.optional_text("run_name", run_name)
        opt.instance("info", info, RunInfo, optional=True)
        sinks = opt.sinks("sinks", sinks)
        suppress = set(opt.check_ids("suppress", suppress))
        self.checks: list[Check] = opt.unsuppressed(
            default_checks() if checks is None else opt.check_instances("checks", checks), suppress
        )
        if not self.checks:  # allowed (a run watched for its files alone), but never unsaid
            logger.info(
                "mlcheck: checks=[] names no check, so this run is watched by none and no finding can be raised; "
                "checks=None (the default) runs the default checks"
            )
        self.suppress = suppress
        log_dir = opt.log_dir(log_dir, flags=(None, False))  # False, as in the callbacks: no files
        self.log_dir = Path(log_dir) if log_dir not in (None, False) else None
        self.stop_on = _STOP_ON[stop_on]
        self.every_n_steps = every_n_steps
        self.strict = strict
        self.run_name = run_name
        self.run = RunState(info)
        self.findings: list[Finding] = []
        self.should_stop = False
        self.stop_reason: Finding | None = None
        self.disabled: set[str] = set()
        self.errors: dict[str, str] = {}
        self._seen: dict[tuple[str, str], Severity] = {}
        self._closed = False
        self._late = False  # an observation came after close() (said once)
        self._step_offset = 0  # added to the steps given: see _on_step_axis
        self._restarted = False  # a step counter restarted (said once)
        self._last_step: int | None = None  # the last training step, on the run's axis
        self._checks_closed = False
        self._deferred: list[_Held] = []  # see log_batch(defer=True)
        self._deferred_values = 0
        self._deferred_key: tuple | None = None
        #: where the fingerprints the full-pass checks compute of each batch's rows are kept for
        #: the per-sample recording (`mlcheck.samples.PassFingerprints`); None: not kept
        self.pass_fingerprints: PassFingerprints | None = None
        self._probe_split: dict[frozenset[str], tuple] = {}  # see _defer_probe
        self._checks_arg: tuple = (None, None)  # log_batch's last `checks` tuple and its ids
        self.sinks: list[Sink] = []
        if curves is None:
            curves = default_sinks and self.log_dir is not None
        if curves and self.log_dir is None:
            raise ValueError("curves=True needs a log_dir to write them to")
        self.curves = CurveWriter(self.log_dir) if curves else None
        if default_sinks:
            self.sinks.append(LoggingSink(warn=warn))
            if self.log_dir is not None:
                loss_tags = (*TensorBoardSink.LOSS_TAGS, CURVES_LOSS_TAG) if curves else TensorBoardSink.LOSS_TAGS
                self.sinks.append(TensorBoardSink(self.log_dir, loss_tags=loss_tags))
                self.sinks.append(JsonlSink(self.log_dir / "findings.jsonl"))
        self.sinks.extend(sinks or ())
        self._explainers = {c.id: type(c).explained_by for c in self.checks if type(c).explained_by}
        self._hooks = {  # root causes first, so that the symptoms they explain can name them
            hook: sorted((c for c in self.checks if type(c).implements(hook)), key=lambda c: bool(type(c).explained_by))
            for hook in ("on_step", "on_epoch", "on_batch", "on_samples", "on_end", "on_layers")
        }
        for check in self.checks:
            check.reset()
        self._gradients = _gradient_probe(optimizer, every_n_steps)

    # -- observations --------------------------------------------------------------------------

    def log_step(
        self,
        step: int,
        *,
        loss: float | None = None,
        lr: float | None = None,
        update_ratio: float | None = None,
        epoch: int | None = None,
        nonfinite_grads: Sequence[str] | None = None,
        nonfinite_weights: Sequence[str] | None = None,
        grad_norm: float | None = None,
        grad_cosine: float | None = None,
        leftover_grad_norm: float | None = None,
        fresh_grad_norm: float | None = None,
    ) -> list[Finding]:
        """Records one optimizer step.

        Args:
            step: the global step, counting on across epochs. A step below the last one is
                taken for a counter that restarts each epoch (`enumerate(loader)`): one
                `MLCheckInternalWarning` says so, and mlcheck counts on from the last step
                (findings and curves then carry its numbers, not yours).
            loss: the training loss of this step.
            lr: the learning rate (the callbacks pass the highest of the optimizer's parameter
                groups: a group held low on purpose is not the run's rate).
            update_ratio: |weight update| / |weights| of this step (measured every n steps).
            nonfinite_grads / nonfinite_weights: names of parameters whose gradients or values
                hold NaN or Inf at this step (leave None where not measured).
            grad_norm / grad_cosine: the norm of this step's gradient (all parameters as one
                vector) and its cosine with the previous optimizer step's gradient, measured now
                and then (the callbacks: the step after each scan; `Monitor(optimizer=...)`
                measures them itself). `stale-gradients` reads them: gradients never zeroed add
                up, so they point the same way and grow.
            leftover_grad_norm / fresh_grad_norm: at the first backward after an optimizer step,
                the norm of the gradient still in `.grad` from before that step (0 where it
                was zeroed) and of the fresh gradient that backward added, measured now and then
                on a few parameters (the callbacks and `Monitor(optimizer=...)` measure them
                themselves). A leftover above 0 is `stale-gradients`' exact signal.

        Returns the findings newly raised by this observation. Arguments are checked before
        anything is recorded (see `Monitor` on what each accepts).
        """
        if self._closed:
            return self._after_close("log_step")
        numbers = (loss, lr, update_ratio, grad_norm, grad_cosine, leftover_grad_norm, fresh_grad_norm)
        if nonfinite_grads is not None or nonfinite_weights is not None or not _plain_step(step, epoch, numbers):
            step = opt.index("step", step)
            epoch = opt.optional_index("epoch", epoch)
            loss = opt.optional_number("loss", loss)
            lr = opt.optional_number("lr", lr)
            update_ratio = opt.optional_number("update_ratio", update_ratio)
            nonfinite_grads = opt.names("nonfinite_grads", nonfinite_grads)
            nonfinite_weights = opt.names("nonfinite_weights", nonfinite_weights)
            grad_norm = opt.optional_number("grad_norm", grad_norm)
            grad_cosine = opt.optional_number("grad_cosine", grad_cosine)
            leftover_grad_norm = opt.optional_number("leftover_grad_norm", leftover_grad_norm)
            fresh_grad_norm = opt.optional_number("fresh_grad_norm", fresh_grad_norm)
        step = self._on_step_axis(step, epoch, "log_step")
        if self.curves is not None:
            self._guard_curves(self.curves.add_step, step, loss, lr)
        run = self.run
        run.step = step
        if epoch is not None:
            run.epoch = epoch
        primary = run.train_loss if (loss is not None or run.train_loss.total) else run.lr
        due = False
        if loss is not None:
            due |= run.train_loss.add(step, loss) and (not math.isfinite(loss) or self._eval_point(run.train_loss))
        if lr is not None:
            closed = run.lr.add(step, lr)
            due |= closed and (not math.isfinite(lr) or (primary is run.lr and self._eval_point(run.lr)))
        if update_ratio is not None:
            r = update_ratio
            run.update_ratio.add(step, math.log10(r) if r > 0 else -math.inf)
        self._record_gradients(step, grad_norm, grad_cosine)
        due |= self._record_leftover(step, leftover_grad_norm, fresh_grad_norm)
        if nonfinite_grads:
            run.extras.setdefault("nonfinite_grads", (step, nonfinite_grads))
            due = True
        if nonfinite_weights:
            run.extras.setdefault("nonfinite_weights", (step, nonfinite_weights))
            due = True
        if not due:
            return []
        out = []
        if self._deferred and (nonfinite_grads or nonfinite_weights or (loss is not None and not math.isfinite(loss))):
            # the batches held back for the first pass are judged first: a NaN input among them is
            # then found before the NaN loss it causes, whose finding says it likely follows from it
            out = self._flush_deferred()
        return out + self._dispatch("on_step")

    def _on_step_axis(self, step: int, epoch: int | None, method: str) -> int:
        """`step` on the run's one step axis. A training step below the last training step is a step
        counter that restarts, as a hand-written loop's `for step, batch in enumerate(loader)`
        does each epoch: the steps count on from the last one (`step + offset`, said once),
        so the checks, the findings and the curves written see one run in order rather than
        epochs laid over each other (and curve points at or before a tag's last step dropped)."""
        if not self._step_offset and (self._last_step is None or step >= self._last_step):
            self._last_step = step  # the usual case: a step that counts on
            return step
        at = step + self._step_offset
        if at >= _EXACT_STEPS:
            at = step  # no shifting a step out of the range every reader holds exactly
        last, self._last_step = self._last_step, at
        if last is None or at >= last or last + 1 >= _EXACT_STEPS:
            return at
        given_last, self._step_offset = last - self._step_offset, last + 1 - step
        if not self._restarted:  # said once: a per-epoch counter restarts every epoch
            self._restarted = True
            where = f" at epoch {epoch}" if epoch is not None else ""
            internal_notice(
                f"mlcheck: Monitor.{method}() was given step {step}{where} after step {given_last}: steps must "
                "count on across epochs (a global step). mlcheck takes it for a counter that restarts each "
                f"epoch and counts on (step {step} is step {last + 1} in its findings and curves, and so on at "
                "each restart); pass a step that counts on to keep your own numbers",
                stacklevel=4,
            )
        self._last_step = step + self._step_offset
        return self._last_step

    def _record_gradients(self, step: int, grad_norm: float | None, grad_cosine: float | None) -> None:
        """The gradient measurement of `log_step`: as given, else the one `Monitor(optimizer=...)`
        took since the last step, if any."""
        if grad_norm is None and grad_cosine is None and self._gradients is not None:
            grad_norm, grad_cosine = self._gradients.take()
        if grad_norm is not None and grad_cosine is not None:
            self.run.grad_norm.add(step, grad_norm)
            self.run.grad_cosine.add(step, grad_cosine)

    def _record_leftover(self, step: int, leftover: float | None, fresh: float | None) -> bool:
        """The leftover-gradient measurement of `log_step`: as given, else the one
        `Monitor(optimizer=...)` took since the last step. True when a leftover was found (the
        step checks judge it at once: the bug is certain and spoils every later step)."""
        if leftover is None and self._gradients is not None:
            leftover, fresh = self._gradients.take_leftover() or (None, None)
        if leftover is None:
            return False
        self.run.leftover_grad_norm.add(step, leftover)
        self.run.fresh_grad_norm.add(step, math.nan if fresh is None else fresh)
        return leftover > 0

    #: While buckets are narrower than this, step checks are judged every this many values
    #: instead of at every bucket: their cost per step stays small on short runs (non-finite
    #: values are still judged at once). A power of two, so it meets bucket boundaries; 32 is
    #: the spacing of the curve checks' costly judgements (`curve.Throttle`), so no evaluation
    #: point is wasted on them.
    STEP_EVAL_EVERY = 32

    def _eval_point(self, series: Any) -> bool:
        """True when `series` just closed a bucket at which step checks are due."""
        return series.finite_count % max(series.width, self.STEP_EVAL_EVERY) == 0

    def log_steps(
        self,
        steps: np.ndarray,
        *,
        loss: np.ndarray | None = None,
        lr: np.ndarray | None = None,
        epoch: int | None = None,
    ) -> list[Finding]:
        """Records many steps at once (used by `mlcheck analyze`); same findings as calling
        `log_step` for each, far faster. `loss` and `lr` hold one value per step of `steps`
        (lists, numpy arrays, torch tensors or iterators); they are checked before anything is
        recorded, as `log_step`'s are."""
        if self._closed:
            return self._after_close("log_steps")
        steps = opt.indices("steps", steps)
        n = len(steps)
        loss = None if loss is None else opt.numbers("loss", loss, n)
        lr = None if lr is None else opt.numbers("lr", lr, n)
        epoch = opt.optional_index("epoch", epoch)
        given = steps
        if n:  # the block on the run's step axis (see `_on_step_axis`), as one shift
            shift = self._on_step_axis(int(steps[0]), epoch, "log_steps") - int(steps[0])
            steps = steps + shift if shift else steps
        for name, values in (("train_loss_step", loss), ("lr", lr)):
            if values is not None and self.curves is not None:
                self._guard_curves(self.curves.extend, name, steps, values)
        out: list[Finding] = []
        i = 0
        primary = self.run.train_loss if loss is not None else self.run.lr
        while i < n:
            # feed exactly up to the next evaluation point of the primary series, so checks
            # run at the same points as in a live run
            period = max(primary.width, self.STEP_EVAL_EVERY)
            chunk = period - primary.finite_count % period
            j = min(n, i + chunk)
            out += self._steps_chunk(slice(i, j), steps, given, loss, lr, epoch, primary)
            i = j
        if n:
            self._last_step = max(self._last_step, int(steps[-1]))
        return out

    def _steps_chunk(
        self,
        sl: slice,
        steps: np.ndarray,
        given: np.ndarray,
        loss: np.ndarray | None,
        lr: np.ndarray | None,
        epoch: int | None,
        primary: Any,
    ) -> list[Finding]:
        """One chunk of `log_steps`, ending at an evaluation point of `primary` or at the end of
        the block: step by step through `log_step` when it holds a non-finite value, else
        vectorised, the step checks judging only where `log_step` would (a block ending short
        of an evaluation point judges nothing: the replay cuts the step stream at every epoch)."""
        vals = loss[sl] if loss is not None else None
        if (vals is not None and not np.isfinite(vals).all()) or (lr is not None and not np.isfinite(lr[sl]).all()):
            out: list[Finding] = []
            for k in range(sl.start, sl.stop):
                out += self.log_step(
                    int(given[k]),  # log_step puts it on the step axis
                    loss=None if loss is None else float(loss[k]),
                    lr=None if lr is None else float(lr[k]),
                    epoch=epoch,
                )
            return out
        if loss is not None:
            self.run.train_loss.extend(steps[sl], loss[sl])
        if lr is not None:
            self.run.lr.extend(steps[sl], lr[sl])
        self.run.step = int(steps[sl.stop - 1])
        if epoch is not None:
            self.run.epoch = epoch
        return self._dispatch("on_step") if self._eval_point(primary) else []

    @keywords_checked
    def log_epoch(
        self,
        epoch: int,
        *,
        step: int | None = None,
        train_loss: float | None = None,
        val_loss: float | None = None,
        train_metrics: Mapping[str, float] | None = None,
        val_metrics: Mapping[str, float] | None = None,
    ) -> list[Finding]:
        """Records the end of an epoch: its mean training loss, validation loss and metrics
        (e.g. `val_metrics={"accuracy": 0.93}`). Returns the findings newly raised. Arguments
        are checked before anything is recorded; metric names beyond `RunState.MAX_METRICS`
        per split are ignored (one log record says so)."""
        if self._closed:
            return self._after_close("log_epoch")
        epoch = opt.index("epoch", epoch)
        step = opt.optional_index("step", step)
        train_loss = opt.optional_number("train_loss", train_loss)
        val_loss = opt.optional_number("val_loss", val_loss)
        train_metrics = opt.metrics("train_metrics", train_metrics)
        val_metrics = opt.metrics("val_metrics", val_metrics)
        if step is not None:
            step += self._step_offset
        if self.curves is not None:
            at = step if step is not None else (self.run.step if self.run.step is not None else epoch)
            # a metric named "loss" or "loss_epoch" is the loss itself unless that is given too
            given = {"epoch": epoch, "train_loss_epoch": train_loss, "val_loss": val_loss}
            self._write_curves(
                at,
                {
                    **{f"train_{k}": v for k, v in train_metrics.items()},
                    **{f"val_{k}": v for k, v in val_metrics.items()},
                    **{k: v for k, v in given.items() if v is not None},
                },
            )
        deferred = self._flush_deferred()
        run = self.run
        run.epoch = epoch
        if step is not None:
            run.step = step
            run.note_epoch_step(epoch, step)
        if train_loss is not None:
            run.epoch_train_loss.add(epoch, train_loss)
        if val_loss is not None:
            run.val_loss.add(epoch, val_loss)
        for split, metrics in (("train", train_metrics), ("val", val_metrics)):
            for name, value in metrics.items():
                series = run.metric(split, name)
                if series is not None:
                    series.add(epoch, value)
        return deferred + self._dispatch("on_epoch")

    @keywords_checked
    def log_batch(
        self,
        inputs: Any,
        targets: Any = None,
        *,
        split: str = "train",
        step: int | None = None,
        epoch: int | None = None,
        index: int = 0,
        input_kind: str | None = None,
        checks: Iterable[str] | None = None,
        defer: bool = False,
    ) -> list[Finding]:
        """Records a (sampled) batch of inputs and targets, as numpy arrays or anything
        `np.asarray` accepts. Adapters call this every `every_n_steps` and for the first batches.
        `checks` limits the batch to those check ids (e.g. the cheap ones that must see every
        batch, such as `train-val-overlap`); default None: every check.

        `defer=True` (with `checks`) lets the monitor copy the batch and hand it to those checks
        later, merged with the next consecutive batches of the same split, epoch and layout
        (up to `DEFER_VALUES` values; see `BatchObservation.parts`): checks whose cost is mostly
        fixed per call then pay it once per block instead of once per small batch. Deferred
        batches are handed over before any other batch, epoch or state is recorded, and at
        `close()`; their findings are returned by the call that hands them over. Such batches
        are marked `full_pass`: checks look at a bounded probe of each large sample there."""
        if self._closed:
            return self._after_close("log_batch")
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        step = opt.optional_index("step", step)
        epoch = opt.optional_index("epoch", epoch)
        index = opt.integer("index", index, minimum=0)
        if input_kind is not None and not isinstance(input_kind, str):
            raise TypeError(f"input_kind must be None or a string, got {input_kind!r}")
        only = None if checks is None else self._check_ids(checks)
        x, y = _as_array(inputs), _as_array(targets)
        return self._log_batch(x, y, split, step, epoch, index, input_kind, only, defer)

    def log_pass_batch(
        self,
        inputs: np.ndarray | None,
        targets: np.ndarray | None,
        *,
        split: str,
        step: int | None,
        epoch: int | None,
        index: int,
        input_kind: str | None,
        checks: tuple[str, ...],
    ) -> list[Finding]:
        """`log_batch(..., checks=checks, defer=True)` for the live core's full-pass batches,
        whose arguments it has checked already (a split name, ints, a tuple of check ids): the
        same observations and findings with one call per batch and no argument checks, paid on
        every batch of the first pass."""
        if self._closed:
            return self._after_close("log_batch")
        if not (type(step) is int or step is None) or not (type(epoch) is int or epoch is None):
            step, epoch = opt.optional_index("step", step), opt.optional_index("epoch", epoch)
        return self._log_batch(
            _as_array(inputs), _as_array(targets), split, step, epoch, index, input_kind, self._check_ids(checks), True
        )

    def _check_ids(self, checks: Iterable[str]) -> frozenset[str]:
        if checks is self._checks_arg[0]:  # the live core hands the same tuple every batch
            return self._checks_arg[1]
        only = frozenset(opt.names("checks", checks))
        self._checks_arg = (checks, only) if isinstance(checks, tuple) else (None, None)
        return only

    def _log_batch(
        self,
        x: np.ndarray | None,
        y: np.ndarray | None,
        split: str,
        step: int | None,
        epoch: int | None,
        index: int,
        input_kind: str | None,
        only: frozenset[str] | None,
        defer: bool,
    ) -> list[Finding]:
        if step is None:
            step = self.run.step
        else:
            step += self._step_offset
        if epoch is None:
            epoch = self.run.epoch
        if (
            defer
            and only is not None
            and (x is None or x.ndim)
            and (y is None or y.ndim)
            and (x is None or y is None or len(x) == len(y))
        ):  # rows that line up can be merged
            if x is not None and len(x) and probed(x.size // len(x), PROBE_VALUES, PROBE_ABOVE):
                return self._defer_probe(x, y, split, step, epoch, index, input_kind, only)
            return self._defer(
                only=only, split=split, epoch=epoch, input_kind=input_kind, index=index, step=step, inputs=x, targets=y
            )
        batch = BatchObservation(
            inputs=x,
            targets=y,
            split=split,
            step=step,
            epoch=epoch,
            index=index,
            input_kind=input_kind,
            full_pass=bool(defer and only is not None),
        )
        return self._flush_deferred() + self._dispatch_pass(batch, only)

    def log_layers(self, layers: LayerObservation) -> list[Finding]:
        """Records the per-layer statistics of one sampled step (see `mlcheck.layers`; the torch
        recorder `mlcheck.integrations.torch_layers.LayerRecorder` builds them), hands them to
        the checks that consume `Signal.LAYER_STATS` and to sinks that chart them. Returns the
        findings newly raised."""
        if self._closed:
            return self._after_close("log_layers")
        self.run.layers.add(layers)
        for sink in self.sinks:
            self._guard_sink(sink.layers, layers)
        return self._dispatch("on_layers", layers)

    def log_samples(self, outputs: SampleOutputs) -> list[Finding]:
        """Records one batch's per-sample outputs (true-class probability and prediction per
        sample id) in `run.samples` and hands them to the checks that consume them."""
        if self._closed:
            return self._after_close("log_samples")
        if self.run.samples is None:
            self.run.samples = SampleStore()
        self.run.samples.add(outputs)
        return self._dispatch("on_samples", outputs)

    #: Most values (inputs and targets) held by deferred batches before they are handed over:
    #: 256k values, 1 MiB of float32: about 120 tabular batches of 32 x 64, or 5 MNIST batches
    #: of 64 x 784; a larger batch is handed over on its own.
    DEFER_VALUES = 1 << 18

    def _defer_probe(
        self,
        x: np.ndarray,
        y: np.ndarray | None,
        split: str,
        step: int | None,
        epoch: int | None,
        index: int,
        input_kind: str | None,
        only: frozenset[str],
    ) -> list[Finding]:
        """A full-pass batch of large samples: handed at once to the checks that read whole
        samples, and as its probe (a few hundred values per sample) to the others
        (`Check.reads_probe`), merged with the next batches', except to those whose
        `probe_suffices` says they need this one whole."""
        split_ids = self._probe_split.get(only)
        if split_ids is None:  # (whole-batch readers, probe readers, probe readers that may ask for more)
            whole = frozenset(c.id for c in self.checks if c.id in only and not c.reads_probe)
            askers = tuple(
                c
                for c in self.checks
                if c.id in only and c.reads_probe and type(c).probe_suffices is not Check.probe_suffices
            )
            split_ids = self._probe_split[only] = (whole, only - whole, askers)
        whole, readers, askers = split_ids
        batch = BatchObservation(
            inputs=x, targets=y, split=split, step=step, epoch=epoch, index=index, input_kind=input_kind, full_pass=True
        )
        probe = batch.input_probe(PROBE_VALUES, PROBE_ABOVE)  # gathered once, shared with the askers
        more = [c.id for c in askers if c.id not in self.disabled and not self._probe_suffices(c, batch)]
        out = []
        if more:  # handed over whole now: what it was given before comes first
            whole, readers = whole.union(more), readers.difference(more)
            out = self._flush_deferred()
        if whole:
            out += self._dispatch("on_batch", batch, only=whole)
        if not readers:
            return out
        # the probe is a gather of this batch's own (np.take) and the targets a copy: nothing a
        # loader may reuse is held
        targets = None if y is None else y.copy()
        return out + self._defer(
            only=readers,
            split=split,
            epoch=epoch,
            input_kind=input_kind,
            index=index,
            step=step,
            inputs=None,
            targets=targets,
            probe=probe,
            sample_values=x.size // len(x),
            owned=True,
        )

    def _probe_suffices(self, check: Check, batch: BatchObservation) -> bool:
        try:
            return bool(check.probe_suffices(batch))
        except Exception:  # the batch goes whole to `on_batch`, whose failure is handled there
            return False

    def _defer(
        self,
        *,  # keywords only: eleven arguments in an order unlike `_log_batch`'s, easy to swap
        only: frozenset[str],
        split: str,
        epoch: int | None,
        input_kind: str | None,
        index: int,
        step: int | None,
        inputs: np.ndarray | None,
        targets: np.ndarray | None,
        probe: np.ndarray | None = None,
        sample_values: int | None = None,
        owned: bool = False,
    ) -> list[Finding]:
        """Holds a full-pass batch's arrays (copied unless `owned`) for the next merged block;
        the observation is built once per block (`_flush_deferred`), not per batch."""
        key = (split, epoch, input_kind, only, _layout(inputs), _layout(targets), _layout(probe), sample_values)
        out = self._flush_deferred() if self._deferred and key != self._deferred_key else []
        size = sum(a.size for a in (inputs, targets, probe) if a is not None)
        if not self._deferred and size >= self.DEFER_VALUES:  # a large batch alone: no copy to hold
            batch = _held_batch(key, [_Held(inputs, targets, probe, index, step)])
            return out + self._dispatch_pass(batch, only)
        self._deferred_key = key
        if not owned:  # copies: a loader may hand out the same buffer again for the next batch
            inputs = None if inputs is None else inputs.copy()
            targets = None if targets is None else targets.copy()
            probe = None if probe is None else probe.copy()
        self._deferred.append(_Held(inputs, targets, probe, index, step))
        self._deferred_values += size
        if self._deferred_values >= self.DEFER_VALUES:
            out += self._flush_deferred()
        return out

    def hand_over_deferred(self) -> list[Finding]:
        """Hands the batches held by `log_batch(defer=True)` to their checks now (at the end of
        a pass over a split); returns the findings newly raised."""
        return [] if self._closed else self._flush_deferred()

    def _flush_deferred(self) -> list[Finding]:
        if not self._deferred:
            return []
        batch, only = _held_batch(self._deferred_key, self._deferred), self._deferred_key[3]
        self._deferred, self._deferred_values, self._deferred_key = [], 0, None
        return self._dispatch_pass(batch, only)

    def _dispatch_pass(self, batch: BatchObservation, only: frozenset[str] | None) -> list[Finding]:
        """Hands a batch to its checks; the fingerprints they computed of its rows (the full
        pass's, a sampled batch's) go to `pass_fingerprints` (the per-sample recording's ids),
        where one is set."""
        out = self._dispatch("on_batch", batch, only=only)
        kept = self.pass_fingerprints
        if kept is not None:
            prints = batch.computed_fingerprints()
            if prints is not None:
                parts = [(start, index) for start, index, _ in batch.parts] or [(0, batch.index)]
                kept.keep(batch.split, batch.epoch, parts, prints)
        return out

    def report(self, finding: Finding) -> bool:
        """Hands a finding made outside the hooks (e.g. the callbacks' overfit-a-batch) to the
        sinks, with the same de-duplication. Returns True when it was new."""
        if finding.check in self.suppress:
            return False
        return self._route(finding) is not None

    def close_checks(self) -> list[Finding]:
        """Runs the end-of-run checks (once); the sinks stay open. `close()` calls it."""
        if self._checks_closed:
            return []
        self._checks_closed = True
        return self._flush_deferred() + self._dispatch("on_end")

    def summarise(self, text: str) -> None:
        """Hands a run summary (one line) to the sinks that keep one (TensorBoard's Text tab)."""
        for sink in self.sinks:
            self._guard_sink(sink.summary, text, self.run_name)

    def close(self) -> list[Finding]:
        """Ends the run: runs the end-of-run checks, closes the sinks. Idempotent."""
        if self._closed:
            return []
        self._closed = True
        if self._gradients is not None:
            self._gradients.close()
        try:
            return self.close_checks()
        finally:  # a finding's warning turned into an exception by the user's filter still closes the files
            for sink in self.sinks:
                self._guard_sink(sink.close)
            if self.curves is not None:
                self._guard_curves(self.curves.close)

    def _after_close(self, method: str) -> list[Finding]:
        """An observation after `close()`: the sinks are closed, so it is ignored; one log record
        and one warning say so (the user's loop goes on)."""
        if not self._late:
            self._late = True
            text = (
                f"mlcheck: Monitor.{method}() after close() is ignored; "
                "observations after the run ended reach no check or sink"
            )
            internal_notice(text, stacklevel=4)
        return []

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- control -------------------------------------------------------------------------------

    def disable(self, check_id: str, reason: str = "") -> None:
        """Switches a check off for the rest of the run."""
        self.disabled.add(check_id)
        for hook, checks in self._hooks.items():
            self._hooks[hook] = [c for c in checks if c.id != check_id]
        if reason:
            self.errors[check_id] = reason

    def state_dict(self) -> dict[str, Any]:
        self._flush_deferred()  # a checkpoint holds every batch recorded before it
        return {
            "run": self.run.state_dict(),
            "checks": {c.id: c.state_dict() for c in self.checks},
            "seen": [[k[0], k[1], v.value] for k, v in self._seen.items()],
            "findings": [f.to_dict() | {"key": f.key} for f in self.findings],
            "disabled": sorted(self.disabled),
            "step_offset": self._step_offset,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run.load_state_dict(state["run"])
        for check in self.checks:
            if check.id in state["checks"]:
                check.load_state_dict(state["checks"][check.id])
        self._seen = {(a, b): Severity(c) for a, b, c in state["seen"]}
        self.findings = [Finding.from_dict(d) for d in state["findings"]]
        for check_id in state["disabled"]:
            self.disable(check_id)
        self._step_offset = state.get("step_offset", 0)  # absent from checkpoints before it

    # -- internals -----------------------------------------------------------------------------

    def _dispatch(self, hook: str, *args: Any, only: set[str] | None = None) -> list[Finding]:
        checks = [c for c in self._hooks[hook] if only is None or c.id in only]
        if not checks:
            return []
        # the checks run first, under one numeric-noise guard (entering it costs more than most
        # checks' hooks); their findings and failures are handed on after, in the same order
        outcomes: list[tuple[Check, list[Finding] | Exception]] = []
        with _numeric_noise_off():
            for check in checks:
                try:
                    found = getattr(check, hook)(*args, self.run) if args else getattr(check, hook)(self.run)
                    outcomes.append((check, list(found or ())))
                except Exception as exc:  # a broken check must never break the run
                    outcomes.append((check, exc))
                    if self.strict:
                        break  # raised below, after the findings made before it
        new: list[Finding] = []
        for check, outcome in outcomes:
            if isinstance(outcome, Exception):
                if self.strict:
                    raise outcome
                self.switch_off(check, outcome)
                continue
            for finding in outcome:
                placed = self._route(finding)
                if placed is not None:
                    new.append(placed)
        return new

    def switch_off(self, check: Check, exc: BaseException) -> None:
        """Switches a check off after an internal error, reported once (log and warning)."""
        reason = f"{type(exc).__name__}: {exc}"
        self.disable(check.id, reason)
        text = (
            f"mlcheck: check {check.id!r} failed ({reason}) and is switched off for this run; "
            "training is unaffected. Pass strict=True to raise instead."
        )
        internal_notice(text, exc, stacklevel=4)

    def _route(self, finding: Finding) -> Finding | None:
        """Hands a finding to the sinks; returns it (placed at a step) when it was new."""
        if finding.step is None and finding.epoch is not None:
            # an epoch-level finding sits at the last step of its epoch, beside the epoch's
            # logged values (and never at step 0 after later steps: see TensorBoardSink)
            step = self.run.epoch_step.get(finding.epoch)
            if step is not None:
                finding = dataclasses.replace(finding, step=step)
        finding = self._explain(finding)
        key = (finding.check, finding.key)
        previous = self._seen.get(key)
        if previous is not None and finding.severity <= previous:
            for sink in self.sinks:
                self._guard_sink(sink.mark, finding, self.run_name)
            return None
        self._seen[key] = finding.severity
        self.findings.append(finding)
        raised = [self._guard_sink(sink.emit, finding, self.run_name) for sink in self.sinks]
        if self.stop_on is not None and finding.severity >= self.stop_on and not self.should_stop:
            self.should_stop = True
            self.stop_reason = finding
        for exc in raised:
            if exc is not None:  # after every sink has the finding and the state is complete
                raise exc
        return finding

    def _explain(self, finding: Finding) -> Finding:
        """A finding whose check declares a root cause (`Check.explained_by`) that was already
        found says that it likely follows from it, and points to that fix instead of its own."""
        causes = self._explainers.get(finding.check)
        return explain(finding, causes, self.findings) if causes else finding

    def _write_curves(self, step: int, values: dict[str, float | None]) -> None:
        """Holds the given values for `mlcheck/curves/` (None: not given, left out)."""
        self._guard_curves(self.curves.add, step, {k: v for k, v in values.items() if v is not None})

    def _guard_curves(self, fn: Any, *args: Any) -> None:
        """Writing curves never breaks the run: a failure is logged once and writing stops."""
        try:
            fn(*args)
        except Exception as exc:
            if self.strict:
                raise
            self.curves = None
            logger.warning("mlcheck: writing curves to %s failed and is switched off: %s", self.log_dir, exc)

    def _guard_sink(self, fn: Any, *args: Any) -> BaseException | None:
        """Runs a sink method; a failure is logged, never raised, except the `MLCheckWarning` a
        user's filter turned into an exception on purpose (`LoggingSink`), which is returned
        for the caller to raise once every sink is done."""
        try:
            fn(*args)
        except MLCheckWarning as exc:
            return exc
        except Exception as exc:
            if self.strict:
                raise
            logger.warning("mlcheck: sink %s failed: %s", type(fn.__self__).__name__, exc)
        return None


def _plain_step(step: Any, epoch: Any, numbers: tuple) -> bool:
    """True for the arguments the live core hands `Monitor.log_step` at every step (an int step
    and epoch, floats or None), which its `opt` checks would return unchanged: tested here in one
    call rather than in one call per argument."""
    if type(step) is not int or not -_INT64 <= step < _INT64:
        return False
    if epoch is not None and (type(epoch) is not int or not -_INT64 <= epoch < _INT64):
        return False
    for value in numbers:  # a loop, not all(): a generator costs more than the tests
        if value is not None and type(value) is not float:
            return False
    return True


def _layout(value: np.ndarray | None) -> tuple | None:
    return None if value is None else (value.dtype.str, value.shape[1:])


class _Held(NamedTuple):
    """A full-pass batch held for the next merged block (`Monitor._defer`): what differs from
    one batch of a block to the next; the rest is the block's deferral key."""

    inputs: np.ndarray | None
    targets: np.ndarray | None
    probe: np.ndarray | None
    index: int
    step: int | None

    def rows(self) -> int:
        arrays = [a for a in (self.inputs, self.targets, self.probe) if a is not None and a.ndim]
        return len(arrays[0]) if arrays else 1


def _held_batch(key: tuple, parts: list[_Held]) -> BatchObservation:
    """One observation of held full-pass batches, which share the split, epoch, kind and layouts
    of their deferral `key`: merged when several, with their `parts`."""
    split, epoch, input_kind = key[:3]
    first = parts[0]
    inputs, targets, probe, merged = first.inputs, first.targets, first.probe, ()
    if len(parts) > 1:
        inputs = None if inputs is None else np.concatenate([p.inputs for p in parts])
        targets = None if targets is None else np.concatenate([p.targets for p in parts])
        probe = None if probe is None else np.concatenate([p.probe for p in parts])
        starts = np.cumsum([0] + [p.rows() for p in parts[:-1]]).tolist()
        merged = tuple((start, p.index, p.step) for start, p in zip(starts, parts))
    return BatchObservation(
        inputs=inputs,
        targets=targets,
        probe=probe,
        sample_values=key[-1],
        split=split,
        step=parts[-1].step,
        epoch=epoch,
        index=first.index,
        input_kind=input_kind,
        parts=merged,
        full_pass=True,
    )


@contextlib.contextmanager
def _numeric_noise_off() -> Any:
    """Overflow and all-NaN statistics in a check are values to judge (inf, NaN), not warnings a
    user's filter may turn into exceptions: numpy's floating-point errors off, and the
    RuntimeWarnings numpy attributes to mlcheck's own modules ("All-NaN slice") ignored."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"mlcheck\.")
        yield


def internal_notice(text: str, exc: BaseException | None = None, stacklevel: int = 2) -> None:
    """Reports an internal error of mlcheck (or a misuse it ignores) once: a log record, and a
    `MLCheckInternalWarning` unless the user's warnings filter turns it into an exception.
    Training must go on under any filter, so then the log record stands alone."""
    logger.warning(text, exc_info=exc)
    try:
        warnings.warn(text, MLCheckInternalWarning, stacklevel=stacklevel)
    except Warning:
        pass


#: Steps up to here are whole numbers in a float64 (curves, series): `Monitor` shifts a restarting
#: step counter only within them.
_EXACT_STEPS = 2**53

#: Dtypes numpy has no arithmetic for (bfloat16) or too little range for the checks' statistics
#: (float16 overflows a sum of squares at 256): batches arrive as float32 instead.
_HALF = ("bfloat16", "float16")


def _as_array(value: Any) -> np.ndarray | None:
    """A batch as a numpy array: torch tensors by duck typing (mlcheck never imports torch),
    bfloat16 and float16 as float32, a 0-d value as one row; None when it is not array-like."""
    if value is None:
        return None
    if type(value) is np.ndarray and value.ndim and value.dtype.itemsize != 2:
        return value  # what the adapters hand over: no conversion to make
    try:
        if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
            value = value.detach()
            if str(value.dtype).removeprefix("torch.") in _HALF:
                value = value.float()
            value = value.cpu().numpy()
        array = np.asarray(value)
        if array.dtype.itemsize == 2 and array.dtype.name in _HALF:  # numpy's float16, ml_dtypes' bfloat16
            array = array.astype(np.float32)
    except Exception:  # ragged lists, objects without an array form: nothing to check
        return None
    return array.reshape(1) if array.ndim == 0 else array
