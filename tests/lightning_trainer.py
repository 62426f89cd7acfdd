"""The Lightning Trainer most tests build: no progress bar, model summary, checkpoints or logger.

`quiet_trainer(max_epochs=2, callbacks=[cb])` is `lightning.pytorch.Trainer` with those four off
unless a keyword turns one back on (`logger=CSVLogger(tmp_path)`), so a test names only what it
is about.
"""

from __future__ import annotations

from typing import Any

QUIET = {
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
    "logger": False,
}


def quiet_trainer(**kwargs: Any):
    import lightning.pytorch as pl

    return pl.Trainer(**{**QUIET, **kwargs})
