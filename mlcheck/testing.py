"""Pre-flight checks inside a project's own tests.

    from mlcheck.testing import assert_sane

    def test_model_is_sane():
        assert_sane("model.py")                    # or a dict like mlcheck_target() returns

The pytest plugin (`mlcheck.pytest_plugin`, installed with mlcheck) offers the same as the
`mlcheck_sanity` fixture.
"""

from __future__ import annotations

from typing import Any

from mlcheck.findings import Severity


def assert_sane(target: Any, fail_on: str | Severity = "warning", **kwargs: Any) -> Any:
    """Runs `mlcheck.sanity(target, **kwargs)` and raises AssertionError listing every finding
    at or above `fail_on` (default "warning": in tests, a likely mistake should fail).

    Args:
        target: a path to model.py ("model.py" or "model.py:function"), a dict with `model`,
            `train_data` and optionally `val_data`, `loss`, `optimizer`, or a Trainable.
        fail_on: "info", "warning" (default) or "error".
        **kwargs: passed to `mlcheck.sanity` (`select=`, `suppress=`, `budget=`, ...).

    Returns:
        The `SanityResult`, for further assertions.

    Raises:
        AssertionError: findings at or above `fail_on`; the message lists them with their fixes.
        mlcheck.errors.BadInput: the target cannot be found, built or run.
    """
    from mlcheck.sanity import sanity

    threshold = Severity.parse(fail_on)
    result = sanity(target, **kwargs)
    bad = result.at_or_above(threshold)
    if bad:
        lines = [f"mlcheck sanity found {len(bad)} problem(s) in {result.target}:"]
        lines += [f"  - {f.format()}" for f in bad]
        lines.append("Silence one with suppress=[ID]; `mlcheck explain ID` describes it.")
        raise AssertionError("\n".join(lines))
    return result
