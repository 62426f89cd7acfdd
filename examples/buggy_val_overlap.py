"""Bug: the validation set contains copies of training samples -> `train-val-overlap` (ERROR).

    python examples/buggy_val_overlap.py

A common way this happens: oversampling or augmenting before the split, or a validation loader
that reads part of the training data. Here a quarter of the validation rows are training rows.
mlcheck fingerprints every sample of the first pass over both loaders and reports the overlap
(validation scores computed on memorised samples overstate generalisation).
"""

from __future__ import annotations

import lightning.pytorch as L
import torch

from lightning_digits import DigitsClassifier, digits_loaders
from mlcheck.integrations.lightning import MLCheckCallback

if __name__ == "__main__":
    L.seed_everything(0)
    train, val = digits_loaders()
    x_val, y_val = val.dataset.tensors
    x_train, y_train = train.dataset.tensors
    leaked = torch.utils.data.TensorDataset(  # the bug: 90 training rows in the validation set
        torch.cat([x_val[:270], x_train[:90]]), torch.cat([y_val[:270], y_train[:90]])
    )
    cb = MLCheckCallback()
    trainer = L.Trainer(max_epochs=3, callbacks=[cb], enable_progress_bar=False)
    trainer.fit(DigitsClassifier(), train, torch.utils.data.DataLoader(leaked, batch_size=256))
    print()
    for finding in cb.findings:
        print(finding.format())
    print(f"TensorBoard: tensorboard --logdir {cb.resolved_log_dir}")
