"""Bug: raw 0-255 pixel values fed to the network -> `unnormalized-input` (WARNING).

    python examples/buggy_unnormalized_input.py

Inputs far from unit scale saturate activations and make the learning rate wrong for the
first layer. The fix is one line: divide by 255 (or standardise), or add a rescaling layer.
"""

from __future__ import annotations

import lightning.pytorch as L

from lightning_digits import DigitsClassifier, digits_loaders
from mlcheck.integrations.lightning import MLCheckCallback

if __name__ == "__main__":
    L.seed_everything(0)
    train, val = digits_loaders()
    for loader in (train, val):
        loader.dataset.tensors[0].mul_(255.0)  # the bug: pixels back on a 0-255 scale
    cb = MLCheckCallback()
    trainer = L.Trainer(max_epochs=3, callbacks=[cb], enable_progress_bar=False)
    trainer.fit(DigitsClassifier(), train, val)
    print()
    for finding in cb.findings:
        print(finding.format())
    print(f"TensorBoard: tensorboard --logdir {cb.resolved_log_dir}")
