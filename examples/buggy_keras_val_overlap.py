"""Bug: the validation set was cut from the training data -> `train-val-overlap`.

    python examples/buggy_keras_val_overlap.py

The validation rows are copies of training rows (an index mix-up when splitting), so
val_accuracy reports memorisation, not generalisation. mlcheck hashes every training and
validation sample of the first epoch (16 bytes each) and reports the share of validation
samples that are exact copies of training samples.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))

import keras  # noqa: E402

from keras_digits import build_model, load_data, report  # noqa: E402
from mlcheck.integrations.keras import MLCheckCallback  # noqa: E402

if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    (x_train, y_train), _ = load_data()
    x_val, y_val = x_train[:300], y_train[:300]  # the bug: validation taken from the training rows
    cb = MLCheckCallback(log_dir="logs/buggy_keras_val_overlap")
    build_model().fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=3, batch_size=32, verbose=0, callbacks=[cb]
    )
    report(cb)
