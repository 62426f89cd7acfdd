"""Bug: raw 0-255 pixels fed straight into Dense layers -> `unnormalized-input`.

    python examples/buggy_keras_raw_pixels.py

The digits are rescaled to 0-255 the way image files store them, and nobody divides by 255
(or adds a `keras.layers.Rescaling(1 / 255)` first layer, which mlcheck recognises and keeps
quiet about). Training still "works", slowly and badly. mlcheck names the split and the scale
it saw on the first batch.
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
    x_train, x_val = np.round(x_train * 255), np.round(x_val * 255)  # the bug: no rescaling
    cb = MLCheckCallback(log_dir="logs/buggy_keras_raw_pixels")
    build_model().fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=3, batch_size=32, verbose=0, callbacks=[cb]
    )
    report(cb)
