"""The values mlcheck reports: `Severity`, `Finding` and the `MLCheckWarning` category."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    """How bad a finding is. Its value is the lower-case name, as written to JSON.

    `ERROR`: training is wasting compute. `WARNING`: very likely a mistake. `INFO`: worth a look.
    """

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """`Severity.parse("warning")`; raises ValueError naming the accepted values."""
        if isinstance(value, Severity):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ValueError(f"Unknown severity {value!r}; use one of: info, warning, error.") from None


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class MLCheckWarning(UserWarning):
    """Category of the Python warnings mlcheck raises for WARNING and ERROR findings.

    Silence them as usual: `warnings.filterwarnings("ignore", category=MLCheckWarning)`.
    """


class MLCheckInternalWarning(RuntimeWarning):
    """A check failed internally and was switched off; the run itself is unaffected."""


@dataclass(frozen=True)
class Finding:
    """One problem a check found.

    Attributes:
        check: the check id, e.g. `"loss-divergence"`.
        severity: `Severity.INFO`, `WARNING` or `ERROR`.
        message: one sentence a user understands without the docs.
        evidence: the numbers behind it.
        hint: what to do about it.
        step: global step it refers to, or None.
        epoch: epoch it refers to, or None.
        key: identifies the problem within its check (e.g. a parameter name), so that a
            persisting problem is reported once and then only updated. Not in `to_dict()`;
            `findings.jsonl` writes it as `key`.

    `step` and `epoch` given as numpy integers, 0-d arrays or tensors, or integral floats are
    stored as Python ints; anything else that is not an integer is a TypeError or ValueError.
    """

    check: str
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    hint: str = ""
    step: int | None = None
    epoch: int | None = None
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # every sink (JSON, TensorBoard's int64 steps) needs plain ints
        for name in ("step", "epoch"):
            value = getattr(self, name)
            if value is not None and type(value) is not int:
                object.__setattr__(self, name, _plain_index(name, value))

    def to_dict(self) -> dict[str, Any]:
        """A strict-JSON-ready dict: non-finite numbers become "nan", "inf" or "-inf"."""
        return {
            "check": self.check,
            "severity": self.severity.value,
            "step": self.step,
            "epoch": self.epoch,
            "message": _valid_unicode(self.message),
            "evidence": json_safe(self.evidence),
            "hint": None if self.hint is None else _valid_unicode(self.hint),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            check=data["check"],
            severity=Severity.parse(data["severity"]),
            message=data["message"],
            evidence=dict(data.get("evidence") or {}),
            hint=data.get("hint", ""),
            step=data.get("step"),
            epoch=data.get("epoch"),
            key=data.get("key", ""),
        )

    def format(self) -> str:
        """A plain-text rendering: `[warning] loss-plateau at step 120: ... Evidence: ... Fix: ...`."""
        where = []
        if self.step is not None:
            where.append(f"step {self.step}")
        if self.epoch is not None:
            where.append(f"epoch {self.epoch}")
        at = f" at {', '.join(where)}" if where else ""
        evidence = ", ".join(f"{k}={v}" for k, v in shown_evidence(self.evidence))
        text = f"[{self.severity.value}] {self.check}{at}: {self.message}"
        if evidence:
            text += f" Evidence: {evidence}."
        if self.hint:
            text += f" Fix: {self.hint}"
        return text


def _plain_index(name: str, value: Any) -> int:
    """A step or epoch as a Python int: numpy integers, 0-d arrays and tensors (`.item()`) and
    integral floats are converted; anything else is refused."""
    plain = value.item() if hasattr(value, "item") else value
    if isinstance(plain, float) and plain.is_integer():
        plain = int(plain)
    if isinstance(plain, bool) or not isinstance(plain, int):
        raise TypeError(f"Finding.{name} must be an integer or None, got {value!r}")
    return plain


def shown_evidence(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, formatted value) of the evidence a reader is shown: entries whose value is None (a
    level the check could not know, such as a chance loss with no class count) are left out, so
    no `None` reaches the terminal or TensorBoard; the JSON keeps them as null."""
    return [(k, format_number(v)) for k, v in evidence.items() if v is not None]


def format_number(value: Any) -> str:
    """Numbers to 4 significant digits, also in a list or tuple of numbers (`lrs_tried`,
    `final_loss_per_lr`); everything else through str()."""
    if isinstance(value, (list, tuple)) and value and all(_is_number(v) for v in value):
        inner = ", ".join(format_number(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    value = _unwrap_scalar(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:  # -0.0 (a drop of 0 computed as a - b) read "-0" in evidence
        return "0"
    return f"{value:.4g}"


def _unwrap_scalar(value: Any) -> Any:
    """A numpy or torch 0-d value as its Python scalar; anything else unchanged."""
    if not isinstance(value, (int, float)) and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def _is_number(value: Any) -> bool:
    """A real number as `format_number` writes it: Python or numpy, not a bool."""
    value = _unwrap_scalar(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_safe(value: Any) -> Any:
    """Converts numpy scalars and arrays to Python values and non-finite floats to strings."""
    if isinstance(value, dict):
        return {_valid_unicode(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays, torch tensors
        plain = value.tolist()
        return json_safe(plain) if type(plain) is not type(value) else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return _valid_unicode(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _valid_unicode(str(value))


def _valid_unicode(text: str) -> str:
    """`text` with the bytes of a non-UTF-8 file name (which Python holds as lone surrogates,
    and JSON would carry as "\\udcff", which strict readers refuse) written as `\\xff`."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a lone surrogate that no file name's byte made
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
