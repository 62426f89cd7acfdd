"""Bug: a learning rate far too high for plain SGD -> `nonfinite-loss`, `nonfinite-origin` (ERROR).

    python examples/buggy_keras_diverging.py

A regression of each digit's value with SGD at lr=2.0: the loss grows about tenfold per step and
reaches Inf within the first epoch (step 19). mlcheck names the step (`nonfinite-loss`) and where
the Inf was made (`nonfinite-origin`: the loss, computed after the last layer, whose own output
was still finite), and with `stop_on="error"` it stops the fit there instead of letting it burn
the remaining epochs. (Overfit-a-batch is
switched off here to show the live checks: left on, it reports `overfit-batch` before the
first step, since a copy of this model cannot fit even 16 samples at this rate.)
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))

import keras  # noqa: E402

from keras_digits import load_data, report  # noqa: E402
from mlcheck.integrations.keras import MLCheckCallback  # noqa: E402

if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_val, y_val) = load_data()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=2.0), loss="mse")  # the bug
    cb = MLCheckCallback(stop_on="error", overfit_batch=False, log_dir="logs/buggy_keras_diverging")
    history = model.fit(
        x_train,
        y_train.astype("float32"),
        validation_data=(x_val, y_val.astype("float32")),
        epochs=20,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(cb)
    print(f"stopped after {len(history.history['loss'])} of 20 epochs")
