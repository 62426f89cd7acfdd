"""Why `mlcheck.analyze(path)` and `mlcheck.sanity(target)` work although both are packages.

`mlcheck.analyze` and `mlcheck.sanity` are packages (`mlcheck.analyze.tags`,
`mlcheck.sanity.runner`, ...) whose main function is `run`. Python binds the attribute
`mlcheck.analyze` to the package as soon as anything in it is imported, so the short spelling
`mlcheck.analyze(path)` can only be reliable if the package object itself is callable. Each of
the two packages therefore sets its module class to `CallablePackage` (the hook the Python
language reference documents under "Customizing module attribute access"); calling the package
calls its `run`. `mlcheck.analyze` is then always the same object, the package, whatever was
imported first.
"""

from __future__ import annotations

import types
from typing import Any


class CallablePackage(types.ModuleType):
    """A package whose call is its `run` function: `pkg(...)` is `pkg.run(...)`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs)
