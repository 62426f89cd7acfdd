"""The pre-flight runner: data checks over the first batches, then each check's `preflight`.

Order of a run:
1. Probe: one batch through the model's forward pass, its loss and one training step on a
   clone. A failure there is the user's code (`UserCodeError`, exit 2), not a finding.
2. Data checks (those with an `on_batch` hook): the first batches of the training and
   validation data go through a `Monitor`, exactly as during training, then `on_end`.
3. Pre-flight checks (those with a `preflight` hook), each with a fresh `Budget`.

Around everything the trainable's random state is saved and restored. A check that raises is
skipped and named in `SanityResult.checks` (status "failed"); a check cut short by its
wall-clock safety net gives one INFO "inconclusive" finding instead of its verdict.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlcheck.checks.base import Check, explain
from mlcheck.errors import BadInput
from mlcheck.findings import Finding, Severity
from mlcheck.monitor import Monitor
from mlcheck.preflight_context import Budget, PreflightContext, machine_load
from mlcheck.run import RunInfo
from mlcheck.sanity.discovery import Target, user_code
from mlcheck.sanity.usercode import UserCodeError
from mlcheck.sanity.watchdog import STAGE_GRACE, Alarm, Interrupted, StageTimeout, announce, stage, stage_seconds
from mlcheck.task import from_loss
from mlcheck.trainable import BatchUnsplit

logger = logging.getLogger("mlcheck.sanity")

#: Batches of each split the data checks see (first batches, in loader order).
DATA_BATCHES = 16  # enough for class counts and label diversity; an epoch of digits is ~50

#: The hard stop for a check that ignores its budget: its `Budget.limit` (3x its seconds by
#: default, as the stages of the user's code before the checks get, `watchdog.stage_seconds`)
#: plus HARD_LIMIT_GRACE (a check may finish a step it began within the limit).
HARD_LIMIT_GRACE = STAGE_GRACE

#: progress(done, total, current check id or None when finished)
Progress = Callable[[int, int, "str | None"], None]


@dataclass(frozen=True)
class CheckRun:
    """How one check went.

    Attributes:
        check: the check id.
        phase: "data" or "preflight".
        seconds: wall time it took.
        status: "ok", "inconclusive" (cut short by its time budget) or "failed" (the check
            itself raised; skipped).
        detail: the reason for "inconclusive" or "failed".
    """

    check: str
    phase: str
    seconds: float
    status: str = "ok"
    detail: str = ""


@dataclass
class SanityResult:
    """What `mlcheck.sanity()` found.

    Attributes:
        target: what was checked, e.g. "model.py:mlcheck_target".
        framework: "torch", "lightning", "keras" or the custom Trainable's.
        findings: findings, in the order raised (one per problem).
        checks: one `CheckRun` per check that ran.
        notes: remarks about the run itself (slow import, checks with nothing to do).
        seconds: wall time of the checks (model.py's import excluded).
        import_seconds: wall time of importing model.py.
    """

    target: str
    framework: str
    findings: list[Finding] = field(default_factory=list)
    checks: list[CheckRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    import_seconds: float = 0.0

    @property
    def inconclusive(self) -> list[str]:
        """Ids of the checks cut short by their wall-clock safety net."""
        return [c.check for c in self.checks if c.status == "inconclusive"]

    @property
    def failed(self) -> dict[str, str]:
        """Check id -> error, for checks that raised and were skipped."""
        return {c.check: c.detail for c in self.checks if c.status == "failed"}

    @property
    def timings(self) -> dict[str, float]:
        """Seconds per check id."""
        return {c.check: c.seconds for c in self.checks}

    def at_or_above(self, severity: str | Severity) -> list[Finding]:
        threshold = Severity.parse(severity)
        return [f for f in self.findings if f.severity >= threshold]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the findings, for the CLI's JSON object."""
        return {
            "target": self.target,
            "framework": self.framework,
            "seconds": round(self.seconds, 3),
            "import_seconds": round(self.import_seconds, 3),
            "inconclusive": self.inconclusive,
            "failed": self.failed,
            "checks": [
                {
                    "check": c.check,
                    "phase": c.phase,
                    "seconds": round(c.seconds, 3),
                    "status": c.status,
                    "detail": c.detail,
                }
                for c in self.checks
            ],
            "notes": list(self.notes),
        }


def run(
    target: Target,
    checks: Sequence[Check],
    budget: Budget | None = None,
    progress: Progress | None = None,
    data_batches: int = DATA_BATCHES,
    interface: str = "api",
) -> SanityResult:
    """Runs `checks` on `target` (see the module docstring); `interface` ("api" or "cli") is how
    findings' hints name the budget's settings."""
    budget = budget or Budget()
    trainable = target.trainable
    result = SanityResult(target.name, target.framework, notes=list(target.notes), import_seconds=target.import_seconds)
    # a pre-flight check that also reads batches (output-loss-mismatch pools the live run's
    # labels) reads them in its pre-flight here: one verdict, one row; a check that only
    # gathers facts from batches for a verdict while training (`judges_batches`) is skipped
    data_checks = [
        c
        for c in checks
        if type(c).implements("on_batch") and type(c).judges_batches and not type(c).implements("preflight")
    ]
    preflight_checks = [c for c in checks if type(c).implements("preflight")]
    total = len(data_checks) + len(preflight_checks)
    started = time.perf_counter()
    with user_code("saving the random state", target.user_paths):
        rng = trainable.rng_state()
    try:
        net = stage_seconds(budget.seconds)
        _probe(target, net)
        batches = _first_batches(target, data_batches, net) if data_checks else []
        info = _run_info(trainable)
        input_kind = _input_kind(trainable)
        done = 0
        for check in data_checks:
            if progress:
                progress(done, total, check.id)
            _run_data_check(check, batches, info, input_kind, budget.restart(), result, interface)
            done += 1
        cache: dict[str, Any] = {}
        for check in preflight_checks:
            if progress:
                progress(done, total, check.id)
            ctx = PreflightContext(trainable, budget.restart(), cache, {"target": target.name}, interface)
            _run_preflight_check(check, ctx, result, _file(target))
            done += 1
        if progress:
            progress(done, total, None)
    finally:
        trainable.set_rng_state(rng)
    result.seconds = time.perf_counter() - started
    result.findings = _explained(_dedup(result.findings), checks)
    return result


# -- phases ----------------------------------------------------------------------------------


def _probe(target: Target, seconds: float) -> None:
    """One forward pass, loss and training step (on a clone), so that an error in the user's
    model is reported as such before any check runs; each under a net of `seconds`."""
    t = target.trainable
    where, file, dirs = target.name, _file(target), target.user_paths
    with user_code(f"reading the first training batch of {where}", dirs):
        with stage("reading the first training batch", file, seconds, dirs):
            first = t.batches("train", 1)
    if not first:
        why = t.no_batches_reason("train")
        raise BadInput(f"{where}: {why}" if why else f"{where}: the training data is empty (no batch could be read)")
    batch = first[0]
    _refuse_empty(where, t, batch)
    _refuse_meta(where, t)
    with _convention_said(t, "forward", batch), user_code(f"the forward pass of {where}", dirs):
        with stage("the first forward pass", file, seconds, dirs):
            try:
                t.forward(batch)
            except BatchUnsplit as exc:  # mlcheck's own split of the batch, not the user's forward pass
                raise BadInput(
                    f"{where}: the pre-flight checks call the model on a batch's inputs alone, and mlcheck {exc}; "
                    "or define mlcheck_target() returning the model wrapped to take those inputs as one argument "
                    "(docs/sanity.md, 'What mlcheck passes your model')"
                ) from None
    with _convention_said(t, "loss", batch), user_code(f"computing the loss of {where}", dirs):
        with stage("the first loss", file, seconds, dirs):
            t.loss(batch)
    with user_code(f"a training step of {where} (on a copy)", dirs):
        with stage("the first training step (on a copy)", file, seconds, dirs):
            t.clone().train_step(batch)


def _refuse_empty(where: str, t: Any, batch: Any) -> None:
    """BadInput for a first training batch of 0 samples, which the loss failed on with a
    message that did not say so (Keras: 'a Tensor with 0 elements cannot be converted to
    Scalar'). The torch adapter passes empty batches over; Keras cannot train on one."""
    try:
        x = t.to_numpy(batch)[0]
    except Exception:  # a batch the adapter cannot convert: the forward pass says what is wrong
        return
    if x is not None and x.ndim >= 1 and len(x) == 0:
        raise BadInput(
            f"{where}: the first training batch holds 0 samples (inputs of shape {tuple(x.shape)}): a loss over no "
            "sample is NaN or an error, and Keras cannot train on one; drop empty batches from the data (a "
            "PyDataset whose __len__ counts one batch too many, a slice past the end of the arrays)"
        )


def _refuse_meta(where: str, t: Any) -> None:
    """BadInput for a torch model whose parameters are on the `meta` device (built under
    `torch.device("meta")`, accelerate's `init_empty_weights()`): they hold no values, and the
    forward pass failed with "Cannot copy out of meta tensor; no data!", naming no fix."""
    module = getattr(t, "module", None)
    try:
        meta = [name for name, p in module.named_parameters() if getattr(p, "is_meta", False)]
    except Exception:  # no torch module: nothing to refuse here
        return
    if meta:
        raise BadInput(
            f"{where}: {len(meta)} parameter(s) of the model are on the meta device (first: {meta[0]}), which "
            "holds shapes but no values, so no pass can run; materialise the model before handing it over: "
            "model.to_empty(device='cpu') then initialise or load its weights (load_state_dict(state, "
            "assign=True))"
        )


@contextlib.contextmanager
def _convention_said(t: Any, step: str, batch: Any) -> Iterator[None]:
    """An error of the user's forward or loss, with how mlcheck called it where that was not
    the batch as it comes (a dict batch's inputs alone, the first of several outputs): the
    user's traceback alone would blame their code for a value they never passed."""
    try:
        yield
    except UserCodeError as exc:
        note = None if isinstance(exc, StageTimeout) else t.call_convention(step, batch)
        if not note:
            raise
        raise UserCodeError(f"{exc} ({note})", exc.user_traceback) from None


def _first_batches(
    target: Target, n: int, seconds: float
) -> list[tuple[str, int, np.ndarray | None, np.ndarray | None]]:
    t = target.trainable
    out = []
    for split in ("train", "val"):
        what = f"reading the first {n} batches of the {split} data"
        with user_code(f"reading the {split} data of {target.name}", target.user_paths):
            with stage(what, _file(target), seconds, target.user_paths):
                batches = t.batches(split, n)
                for i, b in enumerate(batches):
                    x, y = t.to_numpy(b)
                    out.append((split, i, x, y))
    return out


def _file(target: Target) -> str:
    """The file a target came from ("model.py"), as timeout messages name it."""
    return "the target dict" if target.name == "dict" else target.name.partition(":")[0]


def _run_info(trainable: Any) -> RunInfo:
    try:
        cfg = trainable.loss_config()
    except Exception:  # unknown is fine: checks infer what they need
        return RunInfo()
    facts = from_loss(cfg.loss, cfg.output_units, task=cfg.task)
    return RunInfo(task=facts.task, num_classes=facts.num_classes, loss=cfg.loss)


def _input_kind(trainable: Any) -> str | None:
    kind = getattr(trainable, "input_kind", None)
    try:
        return kind() if callable(kind) else kind
    except Exception:
        return None


def _run_data_check(
    check: Check,
    batches: list,
    info: RunInfo,
    input_kind: str | None,
    budget: Budget,
    result: SanityResult,
    interface: str,
) -> None:
    """Feeds the batches to one data check through a Monitor, as during training."""
    started = time.perf_counter()
    monitor = Monitor([check], warn=False, default_sinks=False, strict=True, info=info)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for split, index, x, y in batches:
                if budget.expired():
                    break
                monitor.log_batch(x, y, split=split, index=index, input_kind=input_kind)
            monitor.close()
    except Exception as exc:  # a broken check must never break the run
        _failed(check, "data", started, exc, result)
        return
    _finish(check, "data", started, budget, list(monitor.findings), result, interface)


def _run_preflight_check(check: Check, ctx: PreflightContext, result: SanityResult, file: str) -> None:
    started = time.perf_counter()
    hard = ctx.budget.limit + HARD_LIMIT_GRACE
    try:
        # The alarm makes a check that ignores its budget inconclusive; the announcement lets
        # the command's parent process end one stuck where no signal reaches.
        with announce(f"the check {check.id}", file, hard), Alarm(hard), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = list(check.preflight(ctx) or ())
    except Interrupted:
        ctx.budget.cut_short = True
        found = []
    except Exception as exc:
        _failed(check, "preflight", started, exc, result)
        return
    _finish(check, "preflight", started, ctx.budget, found, result, ctx.interface)


def _finish(
    check: Check,
    phase: str,
    started: float,
    budget: Budget,
    found: list[Finding],
    result: SanityResult,
    interface: str,
) -> None:
    seconds = time.perf_counter() - started
    if budget.cut_short:
        # The verdict depends on how far the check got, i.e. on machine speed: never warn on it.
        if budget.cut_after is None:  # stopped from outside (the hard stop), not by `expired()`
            budget.cut_after, budget.load = seconds, machine_load()
        detail = f"cut short by its wall-clock safety net{budget.cut_detail()}{budget.busy_detail()}"
        rerun = "Rerun when the machine is less busy, or give" if budget.busy else "Give"
        kept = [f for f in found if f.severity is Severity.INFO]
        kept.append(
            check.finding(
                f"{check.id} was {detail}; its result is inconclusive.",
                evidence=budget.cut_evidence(),
                hint=f"{rerun} it more time with {budget.more_time(interface)}, or check a smaller model or batch.",
                severity=Severity.INFO,
                key="inconclusive",
            )
        )
        result.findings += kept
        result.checks.append(CheckRun(check.id, phase, seconds, "inconclusive", detail))
        return
    result.findings += found
    result.checks.append(CheckRun(check.id, phase, seconds))


def _failed(check: Check, phase: str, started: float, exc: BaseException, result: SanityResult) -> None:
    reason = f"{type(exc).__name__}: {exc}"
    logger.debug("check %s failed", check.id, exc_info=exc)
    result.checks.append(CheckRun(check.id, phase, time.perf_counter() - started, "failed", reason))


def _explained(findings: list[Finding], checks: Sequence[Check]) -> list[Finding]:
    """Each finding whose check declares root causes (`Check.explained_by`) names the one found,
    as it does live: the checks run in a fixed order here, so a symptom (`overfit-batch`) may
    have run before its cause (`output-loss-mismatch`). A "Skipped" note names its cause already."""
    causes = {c.id: type(c).explained_by for c in checks if type(c).explained_by}
    return [explain(f, causes[f.check], findings) if f.check in causes and f.key != "skipped" else f for f in findings]


def _dedup(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per (check, key): the first, or a later one of higher severity."""
    best: dict[tuple[str, str], int] = {}
    out: list[Finding] = []
    for f in findings:
        k = (f.check, f.key)
        if k in best:
            if f.severity > out[best[k]].severity:
                out[best[k]] = f
            continue
        best[k] = len(out)
        out.append(f)
    return out
