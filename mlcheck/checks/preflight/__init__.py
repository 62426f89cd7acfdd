"""Pre-flight checks: can the model learn at all, before a long job starts.

One module per check, named after its id (`overfit-batch` is in `overfit_batch.py`), and the
harness they share (`harness.py`: training a clone on one batch, the small batch, accuracy) and
the learning-rate range test behind the pre-flight verdicts of `lr-too-high` / `lr-too-low`
(`range_test.py`; those checks live in `mlcheck/checks/learning_rate.py`).

Call one directly (the callbacks do this for overfit-a-batch at train start):

    findings = list(OverfitBatch().preflight(PreflightContext(trainable)))
"""

from mlcheck.checks.preflight.batch_dependence import BatchDependence
from mlcheck.checks.preflight.harness import (
    FitRun,
    accuracy,
    fit_batch,
    kept_random_state,
    small_batch,
)
from mlcheck.checks.preflight.input_independence import InputIndependence
from mlcheck.checks.preflight.loss_at_init import LossAtInit
from mlcheck.checks.preflight.missing_nonlinearity import MissingNonlinearity
from mlcheck.checks.preflight.output_loss_mismatch import OutputLossMismatch
from mlcheck.checks.preflight.overfit_batch import OverfitBatch
from mlcheck.checks.preflight.unused_parameters import UnusedParameters

__all__ = [
    "BatchDependence",
    "FitRun",
    "InputIndependence",
    "LossAtInit",
    "MissingNonlinearity",
    "OutputLossMismatch",
    "OverfitBatch",
    "UnusedParameters",
    "accuracy",
    "fit_batch",
    "kept_random_state",
    "small_batch",
]
