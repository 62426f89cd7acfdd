"""Bug: training data sorted by label and fed unshuffled -> `unshuffled-data`.

    python examples/buggy_keras_unshuffled.py

The rows come sorted by class (as many datasets are stored) and `fit(..., shuffle=False)` keeps
that order, so each batch holds one or two classes and the model chases the latest class
instead of learning all ten. mlcheck compares how many classes a batch holds with what random
batches would hold.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_digits import build_model, load_data, report  # noqa: E402
from mlcheck.integrations.keras import MLCheckCallback  # noqa: E402

if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_val, y_val) = load_data()
    order = np.argsort(y_train, kind="stable")  # the data as stored: sorted by class
    cb = MLCheckCallback(log_dir="logs/buggy_keras_unshuffled")
    build_model().fit(
        x_train[order],
        y_train[order],
        validation_data=(x_val, y_val),
        epochs=3,
        batch_size=32,
        shuffle=False,
        verbose=0,
        callbacks=[cb],
    )  # the bug
    report(cb)
