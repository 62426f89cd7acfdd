"""pytest plugin (registered through the `pytest11` entry point): the `mlcheck_sanity`
fixture, so a project's test suite can run the pre-flight checks on its model.

    def test_model(mlcheck_sanity):
        mlcheck_sanity("model.py")                       # fails the test on findings
        mlcheck_sanity(build_target(), fail_on="error")  # a dict like mlcheck_target() returns

Loaded in every pytest session where mlcheck is installed, so this module imports pytest only:
mlcheck itself, and the frameworks, are imported when the fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def mlcheck_sanity() -> Callable[..., Any]:
    """A function `check(target, fail_on="warning", **kwargs)` that runs `mlcheck.sanity` on
    `target` and fails the test, listing the findings, when any is at or above `fail_on`.
    Returns the `SanityResult` otherwise."""

    def check(target: Any, fail_on: str = "warning", **kwargs: Any) -> Any:
        from mlcheck.testing import assert_sane

        __tracebackhide__ = True
        try:
            return assert_sane(target, fail_on=fail_on, **kwargs)
        except AssertionError as exc:
            pytest.fail(str(exc), pytrace=False)

    return check
