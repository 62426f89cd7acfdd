"""False alarms of `train-val-gap` on seeded healthy 10-epoch runs (issue 12, branch over35).

    .venv/bin/python benchmarks/study_short_early.py [SEEDS] [EPOCHS]

Each run falls fast to a plateau (time constant 1, 2 or 4 epochs) with 2%, 5% or 10% normal noise
per epoch on the validation loss, its training loss lower at every epoch, with and without an
accuracy-like metric; printed: how many of SEEDS (default 500) runs got a WARNING. The short-run
early test built in 9fe54c1 (`TrainValGap._short_descent_rise`, reverted) left them as main's;
over38 restored it for runs of up to 15 validations (EPOCHS, default 10: the runs' length).
"""

import logging
import math
import sys
import warnings

import numpy as np

from mlcheck import Monitor, Severity
from mlcheck.checks.base import get_check


def run(seed, rel, n=10, acc=True, tau=2.0):
    rng = np.random.default_rng(seed)
    m = Monitor(checks=[get_check("train-val-gap")()], warn=False, strict=True)
    for e in range(n):
        level = 0.3 + 1.5 * math.exp(-e / tau)
        row = {
            "epoch": e,
            "train_loss": (0.2 + 1.5 * math.exp(-e / tau)) * (1 - 0.01 * e),
            "val_loss": level * (1 + rel * rng.standard_normal()),
        }
        if acc:
            row["val_metrics"] = {"accuracy": 0.9 - 0.3 * math.exp(-e / tau) + rng.integers(-3, 4) / 500}
        m.log_epoch(**row)
    m.close()
    return any(f.check == "train-val-gap" and f.severity >= Severity.WARNING for f in m.findings)


def main() -> int:
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    N = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    for rel in (0.02, 0.05, 0.10):
        for acc in (True, False):
            for tau in (1.0, 2.0, 4.0):
                k = sum(run(s, rel, n=epochs, acc=acc, tau=tau) for s in range(N))
                print(f"rel {rel} acc {acc} tau {tau}: {k}/{N} warned", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
