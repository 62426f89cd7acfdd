"""The `Check` base class and the registry of check ids."""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import logging
import math
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from numbers import Real
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mlcheck.findings import Finding, Severity
from mlcheck.spelling import meant

if TYPE_CHECKING:
    from mlcheck.layers import LayerObservation
    from mlcheck.preflight_context import PreflightContext
    from mlcheck.run import BatchObservation, RunState
    from mlcheck.samples import SampleOutputs


class Signal(str, enum.Enum):
    """An observation a check consumes; the live core routes each one to the checks that
    declare it (`Check.consumes`)."""

    STEPS = "steps"  # per-step loss, learning rate, update ratio, non-finite scans
    EPOCHS = "epochs"  # epoch losses and metrics, train and validation
    SAMPLED_BATCHES = "sampled_batches"  # the first batches of each split, then one in N
    EVERY_BATCH = "every_batch"  # also every batch of the first pass(es), merged in blocks
    END = "end"  # the end of the run
    PREFLIGHT = "preflight"  # a model and its data before training (`mlcheck sanity`)
    TRAIN_START = "train_start"  # preflight on a copy of the live model at train start
    LAYER_STATS = "layer_stats"  # per-layer statistics of sampled steps (`mlcheck.layers`)
    SAMPLE_OUTPUTS = "sample_outputs"  # per-sample true-class probability and prediction
    VAL_LOSSES = "val_losses"  # each validation pass's per-row losses, summed (`RunState.val_row_losses`)


_HOOK_SIGNALS = {
    "on_step": Signal.STEPS,
    "on_epoch": Signal.EPOCHS,
    "on_batch": Signal.SAMPLED_BATCHES,
    "on_end": Signal.END,
    "on_layers": Signal.LAYER_STATS,
    "preflight": Signal.PREFLIGHT,
    "on_samples": Signal.SAMPLE_OUTPUTS,
}

logger = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Check]] = {}
_SIGNALS: dict[tuple[type, frozenset[Signal] | None], frozenset[Signal]] = {}  # `Check.signals` per class
_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SECTIONS = ("What it does", "Why it matters", "How to fix")


class Check:
    """Base class of every check. Subclass it, set `id`, `family` and `severity`, write the
    docstring with the sections What it does / Why it matters / How to fix, and implement the
    hooks the check needs. Each hook returns findings (an iterable, possibly empty) and must
    not print, do I/O or import a framework.

    Hooks:
        on_step(run): the step-level curves reached an evaluation point: every 32 steps while
            buckets are narrower (see `Monitor.STEP_EVAL_EVERY`), then at every bucket, and
            at once when a non-finite value arrives.
        on_epoch(run): an epoch's observations (train/val loss, metrics) were recorded.
        on_batch(batch, run): a sampled batch of inputs and targets arrived.
        on_samples(outputs, run): a batch's per-sample outputs (`SampleOutputs`) arrived; the
            run's `SampleStore` (`run.samples`) already holds them.
        on_end(run): the run (or the replayed log) ended.
        on_layers(layers, run): per-layer statistics of a sampled step arrived
            (`mlcheck.layers.LayerObservation`; `Signal.LAYER_STATS`).
        preflight(ctx): the pre-flight runner (`mlcheck sanity`) asks for a verdict.

    Thresholds are constructor arguments with documented defaults; per-run state lives in
    attributes set by `reset()`, which the monitor calls before a run starts. Those attributes
    travel with a checkpoint (`state_dict`), so a resumed run judges as if never interrupted.
    """

    id: ClassVar[str] = ""
    family: ClassVar[str] = ""
    severity: ClassVar[Severity] = Severity.WARNING
    #: False for checks that must be asked for explicitly.
    default: ClassVar[bool] = True
    #: The observations the check consumes (see `Signal`). None: those of the hooks it
    #: implements. Declare `Signal.EVERY_BATCH` for a cheap batch check that must see every
    #: sample of the first pass, `Signal.TRAIN_START` for a pre-flight check the callbacks
    #: also run at train start on a one-batch copy of the model.
    consumes: ClassVar[frozenset[Signal] | None] = None
    #: The split the findings are about, for sinks that keep train and validation apart
    #: (Keras' `train/` and `validation/` runs). None: the finding's `evidence["split"]`.
    findings_split: ClassVar[str | None] = None
    #: Ids of root-cause checks (non-finite inputs, an output that does not fit the loss, ...)
    #: whose earlier finding explains this check's findings: they then name that cause and point
    #: to its fix instead of giving advice that contradicts it. "id:key" names one finding of a
    #: check (`class-imbalance:weights-inverted`), not all of them, and explains at any severity.
    explained_by: ClassVar[frozenset[str]] = frozenset()
    #: True for a full-pass check that reads at most the probe of large samples (more than
    #: `hashing.PROBE_ABOVE` values): it then gets `BatchObservation.probe` instead of the
    #: inputs, merged over consecutive batches (a call per block, not per batch). Default False:
    #: every batch as it comes.
    reads_probe: ClassVar[bool] = False
    #: False for a check whose `on_batch` only gathers facts (label counts, say) for a verdict
    #: it reaches while training: `mlcheck sanity`, which runs no training, then skips it
    #: instead of listing a data check that cannot say anything. Default True.
    judges_batches: ClassVar[bool] = True

    def probe_suffices(self, batch: BatchObservation) -> bool:
        """For a check that `reads_probe`: whether this full-pass batch of large samples may
        reach it as its probe, merged with the next batches' (default True). False hands it this
        batch whole, at once: for work that needs every value of some of its samples. Called on
        every such batch: keep it to a few operations on `batch.input_probe`."""
        return True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        # mlcheck's own checks refuse a threshold no value can mean when built (`check_arguments`),
        # as `[tool.mlcheck.checks.ID]` does; a user's subclass keeps its own rules
        if init is not None and cls.__module__.startswith("mlcheck.") and not hasattr(init, "__wrapped__"):
            cls.__init__ = _checked_init(cls, init)  # type: ignore[method-assign]

    def __init__(self) -> None:
        before = set(vars(self))
        self.reset()
        # what reset() sets is the per-run state that `state_dict` saves
        self._state_names = tuple(name for name in vars(self) if name not in before)

    def reset(self) -> None:
        """Forgets per-run state. Override to initialise your own; call super().reset()."""

    # -- hooks (all optional) ------------------------------------------------------------------

    def on_step(self, run: RunState) -> Iterable[Finding]:
        return ()

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        return ()

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        return ()

    def on_samples(self, outputs: SampleOutputs, run: RunState) -> Iterable[Finding]:
        """Per-sample outputs of one split and epoch, usually many batches at once (an adapter's
        blocks of an epoch merged: `outputs.segments` gives each block's rows; a check whose
        float sums must not depend on how the rows were grouped sums per segment)."""
        return ()

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return ()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        return ()

    def on_layers(self, layers: LayerObservation, run: RunState) -> Iterable[Finding]:
        return ()

    def awaits_batches(self, split: str) -> bool:
        """True while the check waits for samples of `split` to come by again (a second stage
        confirming what the first pass found, as `train-val-overlap` does): the live core then
        hands it the next pass over `split` too. Default False. Asked at the first batch of
        `split` after a pass ends and after each batch that reaches the check: the answer may
        change only when data reaches the check."""
        return False

    # -- helpers -------------------------------------------------------------------------------

    @classmethod
    def implements(cls, hook: str) -> bool:
        """True when the subclass overrides `hook` (the monitor skips hooks nobody implements)."""
        return getattr(cls, hook) is not getattr(Check, hook)

    @classmethod
    def judges_before_training(cls) -> bool:
        """True when `mlcheck sanity` has something to run: a `preflight` hook, or an
        `on_batch` hook that `judges_batches`."""
        return cls.implements("preflight") or (cls.implements("on_batch") and cls.judges_batches)

    @classmethod
    def signals(cls) -> frozenset[Signal]:
        """What the check consumes: `consumes` where declared, else what its hooks imply."""
        # asked of every check at each fit start and sync: worked out once per class
        declared = None if cls.consumes is None else frozenset(cls.consumes)
        found = _SIGNALS.get((cls, declared))
        if found is None:
            found = frozenset(signal for hook, signal in _HOOK_SIGNALS.items() if cls.implements(hook))
            _SIGNALS[(cls, declared)] = found = found | (declared or frozenset())
        return found

    def finding(
        self,
        message: str,
        *,
        evidence: dict[str, Any] | None = None,
        hint: str = "",
        step: int | None = None,
        epoch: int | None = None,
        severity: Severity | None = None,
        key: str = "",
    ) -> Finding:
        """Builds a Finding of this check (its default severity unless given)."""
        return Finding(
            check=self.id,
            severity=severity or self.severity,
            message=message,
            evidence=dict(evidence or {}),
            hint=hint,
            step=step,
            epoch=epoch,
            key=key,
        )

    def state_dict(self) -> dict[str, Any]:
        """Per-run state to save with a checkpoint: every attribute that `reset()` sets, as plain
        data that `torch.load(..., weights_only=True)` accepts (numbers, strings, None, lists,
        tuples, dicts; sets, numpy arrays and random generators are encoded in those). A
        helper object with its own `state_dict`/`load_state_dict` (a fingerprint set, a
        throttle) saves through them. An attribute of any other type is left out with a logged
        warning: override both methods for it."""
        state: dict[str, Any] = {}
        for name in getattr(self, "_state_names", ()):
            value = getattr(self, name)
            try:
                state[name] = value.state_dict() if _has_state(value) else _to_plain(value)
            except TypeError as exc:
                if (type(self), name) not in _UNSAVED:
                    _UNSAVED.add((type(self), name))
                    logger.warning(
                        "mlcheck: check %r cannot save its attribute %r in a checkpoint "
                        "(%s); implement state_dict/load_state_dict",
                        self.id,
                        name,
                        exc,
                    )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores what `state_dict` saved, on a check fresh from `reset()`."""
        for name, value in state.items():
            current = getattr(self, name, None)
            if _has_state(current):
                current.load_state_dict(value)
            else:
                setattr(self, name, _from_plain(value))

    @classmethod
    def doc(cls) -> dict[str, str]:
        """The docstring split into summary, sections and Args, for `mlcheck explain` and docs."""
        return parse_doc(inspect.getdoc(cls) or "")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


# -- checkpoint state as plain data ---------------------------------------------------------------

_UNSAVED: set[tuple[type, str]] = set()  # (class, attribute) already warned about
_ARRAY = "__ndarray__"
_SET = "__set__"
_RNG = "__numpy_generator__"
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def explain(finding: Finding, causes: Iterable[str], found: Iterable[Finding]) -> Finding:
    """`finding`, told that it likely follows from the first finding in `found` of a check in
    `causes` (its check's `Check.explained_by`) that is a WARNING or worse, or that `causes` names
    by "id:key" (an INFO that is a cause, not a mistake on its own: BatchNorm at a tiny batch),
    and pointed to that fix instead of its own; unchanged when there is no such finding."""
    causes = frozenset(causes)
    cause = next(
        (f for f in found if f"{f.check}:{f.key}" in causes or (f.check in causes and f.severity >= Severity.WARNING)),
        None,
    )
    if cause is None:
        return finding
    where = f" at step {cause.step}" if cause.step is not None else ""
    return dataclasses.replace(
        finding,
        message=f"{finding.message} This likely follows from `{cause.check}`{where}: {cause.message}",
        hint=f"Fix `{cause.check}` first ({cause.hint.rstrip('.')}); this finding may then go away.",
        evidence={**finding.evidence, "likely_cause": cause.check},
    )


def _has_state(value: Any) -> bool:
    return hasattr(value, "state_dict") and hasattr(value, "load_state_dict")


def _to_plain(value: Any) -> Any:
    """`value` as data that torch's weights_only loader accepts: it refuses numpy, empty `bytes`
    (pickled as a call to `bytes`, where `bytearray` is allowed) and, before torch 2.4, sets."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("numpy arrays of Python objects are not plain data")
        data = bytearray(np.ascontiguousarray(value))  # bytearray: see the docstring
        return {_ARRAY: [value.dtype.str, list(value.shape), data]}
    if isinstance(value, np.random.Generator):
        return {_RNG: value.bit_generator.state}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_plain(v) for v in value)
    if isinstance(value, set):
        return {_SET: [_to_plain(v) for v in value]}
    if isinstance(value, dict):
        return {_to_plain(k): _to_plain(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not plain data")


def _from_plain(value: Any) -> Any:
    """Inverse of `_to_plain`."""
    if isinstance(value, dict):
        if len(value) == 1 and _ARRAY in value:
            dtype, shape, data = value[_ARRAY]
            return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()
        if len(value) == 1 and _RNG in value:
            state = value[_RNG]
            if state.get("bit_generator") not in _BIT_GENERATORS:
                raise ValueError(f"unknown numpy bit generator {state.get('bit_generator')!r}")
            bits = getattr(np.random, state["bit_generator"])()
            bits.state = state
            return np.random.Generator(bits)
        if len(value) == 1 and _SET in value:
            return {_from_plain(v) for v in value[_SET]}
        return {k: _from_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_plain(v) for v in value)
    return value


def parse_doc(text: str) -> dict[str, str]:
    """Splits a check docstring into {"summary", "What it does", "Why it matters", "How to fix",
    "Args", "Example", "Use instead"} (those present).

    As in ruff's rule docs, `Example:` holds the buggy code a user writes and the `Use instead:`
    line after it starts the fix (at the section headers' indentation or the code's)."""
    lines = text.strip().splitlines()
    out: dict[str, str] = {}
    current = "summary"
    buf: list[str] = []
    heads = set(SECTIONS) | {"Args", "Example", "Examples", "Use instead"}
    code = {"Example", "Examples", "Use instead"}

    def body(section: str, buf: list[str]) -> str:
        # code keeps its relative indentation (cleandoc would strip the first line's)
        text = "\n".join(buf)
        return (textwrap.dedent(text) if section in code else inspect.cleandoc(text)).strip()

    for line in lines:
        head = line.strip().rstrip(":")
        fix_starts = head == "Use instead" and current in ("Example", "Examples")
        if line.strip().endswith(":") and head in heads and (not line.startswith(" ") or fix_starts):
            out[current] = body(current, buf)
            current, buf = head, []
        else:
            buf.append(line)
    out[current] = body(current, buf)
    if "summary" in out:  # one line, for tables and `mlcheck checks`
        out["summary"] = " ".join(out["summary"].split())
    return {k: v for k, v in out.items() if v}


def check_arguments(cls: type[Check], kwargs: Mapping[str, Any]) -> None:
    """Refuses constructor arguments of a check that no threshold can mean, naming the argument:
    TypeError when a value's kind differs from its default's (`factor="x"` where the default is
    2.0: the check would fail on the first observation and be switched off, and the run would
    read as clean); ValueError for NaN (every comparison with it is false, so the check never
    fires) or a negative value where the default is positive (every such default is a count,
    size, factor, fraction, z-score or tolerance). The one rule for checks built in Python and
    from `[tool.mlcheck.checks.ID]`."""
    if not kwargs:  # a check built with its defaults (every run builds ~30): nothing to check
        return
    params = init_parameters(cls)
    for name, value in kwargs.items():
        default = params[name].default if name in params else inspect.Parameter.empty
        if default is None or default is inspect.Parameter.empty:
            continue
        if value is None and _takes_none(params[name]):  # `probe_values: int | None = 256`
            continue
        if isinstance(default, bool):
            kind, ok = "true or false", isinstance(value, bool)
        elif isinstance(default, Real):
            kind, ok = "a number", isinstance(value, Real) and not isinstance(value, bool)
        else:
            kind, ok = f"a {type(default).__name__}", isinstance(value, type(default))
        if not ok:
            raise TypeError(f"{name} must be {kind} (default {default!r}), got {value!r}")
        if isinstance(default, bool) or not isinstance(default, Real):
            continue
        if math.isnan(value):
            raise ValueError(f"{name} must be a number, not NaN (default {default!r})")
        if default > 0 and value < 0:
            raise ValueError(f"{name} must be >= 0, as its default {default!r} is, got {value!r}")


def init_parameters(cls: type[Check]) -> Mapping[str, inspect.Parameter]:
    """The parameters of the check class's `__init__`, read once a process (`inspect.signature`
    costs tens of microseconds, and every run builds its checks anew)."""
    return _signature_parameters(cls.__init__)


@functools.cache
def _signature_parameters(init: Callable[..., None]) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(init).parameters


def _takes_none(param: inspect.Parameter) -> bool:
    """Whether a parameter's annotation admits None (`int | None`, `Optional[int]`; annotations
    are strings here, `from __future__ import annotations`)."""
    annotation = param.annotation if isinstance(param.annotation, str) else repr(param.annotation)
    return "None" in annotation or "Optional" in annotation


def _checked_init(cls: type[Check], init: Callable[..., None]) -> Callable[..., None]:
    """`init` preceded by `check_arguments` over the arguments it is given."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Check, *args: Any, **kwargs: Any) -> None:
        if not args and not kwargs:  # every default check of every run: no argument to check
            init(self)  # (binding none costs ~0.1 ms for a dozen parameters)
            return
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:  # a wrong call: `init` raises Python's own error for it
            init(self, *args, **kwargs)
            return
        named = {
            k: v
            for k, v in list(bound.arguments.items())[1:]
            if signature.parameters[k].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        check_arguments(cls, named)
        init(self, *args, **kwargs)

    return __init__


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: adds a check to the catalogue. Users may register their own checks."""
    if not cls.id or not _ID.match(cls.id):
        raise ValueError(f"{cls.__name__}.id must be a lower-case dashed id, got {cls.id!r}")
    for signal, hook in ((Signal.EVERY_BATCH, "on_batch"), (Signal.TRAIN_START, "preflight")):
        if signal in (cls.consumes or ()) and not cls.implements(hook):
            raise ValueError(f"{cls.__name__} consumes {signal.value!r} but does not implement {hook}()")
    existing = _REGISTRY.get(cls.id)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"check id {cls.id!r} is already registered by {existing.__module__}."
            f"{existing.__qualname__}; choose another id"
        )
    _REGISTRY[cls.id] = cls
    return cls


def registry() -> dict[str, type[Check]]:
    """All registered checks by id (built-in ones are loaded on first call)."""
    from mlcheck import checks  # noqa: F401  (imports the built-in families)

    return dict(sorted(_REGISTRY.items()))


def closest_id(name: str, known: Iterable[str]) -> str | None:
    """The known check id that `name` most likely means: the same id written with another case,
    underscores or as the class name (`LossDivergence`, `loss_divergence`), else a near spelling."""
    known = list(known)
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", str(name)).lower().replace("_", "-").replace(" ", "-")
    if words in known:
        return words
    return meant(words, known, cutoff=0.75)


def did_you_mean(names: Iterable[str], known: Iterable[str]) -> str:
    """'did you mean ...?' for the names that are a near miss of a known id, else ''."""
    known = list(known)
    pairs = [(n, closest_id(n, known)) for n in names]
    guesses = [f"{m!r} for {n!r}" if len(pairs) > 1 else repr(m) for n, m in pairs if m]
    return f"did you mean {', '.join(guesses)}?" if guesses else ""


def get_check(check_id: str) -> type[Check]:
    reg = registry()
    if check_id not in reg:
        raise KeyError(
            " ".join(
                part
                for part in (
                    f"Unknown check id {check_id!r}.",
                    did_you_mean([check_id], reg).capitalize(),
                    f"Available checks are: {', '.join(reg)}",
                )
                if part
            )
        )
    return reg[check_id]


def default_checks() -> list[Check]:
    """Fresh instances of every check that is on by default."""
    return [cls() for cls in registry().values() if cls.default]
