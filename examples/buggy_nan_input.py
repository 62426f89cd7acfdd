"""Bug: some input rows hold NaN (a missing value that was never imputed) -> `nonfinite-input`.

    python examples/buggy_nan_input.py

One NaN in a batch makes that step's loss and gradients NaN, and the weights after it. mlcheck
looks at every batch of the first epoch (and samples later ones) and names the split and batch.
"""

from __future__ import annotations

import lightning.pytorch as L
import numpy as np

from lightning_digits import DigitsClassifier, digits_loaders
from mlcheck.integrations.lightning import MLCheckCallback

if __name__ == "__main__":
    L.seed_everything(0)
    train, val = digits_loaders()
    x_train = train.dataset.tensors[0]
    x_train[np.arange(0, 1400, 350), 5] = float("nan")  # the bug: 4 rows with a missing pixel
    cb = MLCheckCallback(stop_on="error")  # a NaN in the data wastes every later step: stop
    trainer = L.Trainer(max_epochs=3, callbacks=[cb], enable_progress_bar=False)
    trainer.fit(DigitsClassifier(), train, val)
    print()
    for finding in cb.findings:
        print(finding.format())
    print(f"stopped at step {trainer.global_step}; TensorBoard: tensorboard --logdir {cb.resolved_log_dir}")
