"""Batch 38's programs' plumbing: benchmarks/newbugs_common.py, shared by every batch."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from newbugs_common import breast_cancer, diabetes, digits, log_dir, mnist, quiet, report, trainer, wine  # noqa: E402, F401
