"""learning_rate checks."""

from __future__ import annotations
