"""A clean Keras 3 run on scikit-learn's digits with mlcheck watching.

    python examples/keras_digits.py
    tensorboard --logdir logs/keras_digits

A healthy run raises no warning; the script prints what mlcheck found (usually nothing, or an
INFO note). TensorBoard shows the run laid out like Keras' own TensorBoard callback
(`train/` and `validation/`: epoch_loss, epoch_accuracy, epoch_learning_rate, batch_loss) with
mlcheck's markers and notes beside the curves, written without TensorFlow. Seconds on a CPU.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from mlcheck.integrations.keras import MLCheckCallback  # noqa: E402


def load_data(seed: int = 0):
    """The 1,797 8x8 digits, pixels scaled to [0, 1], shuffled once and split 80/20."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = (x[order] / 16.0).astype("float32"), y[order].astype("int64")
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def build_model(lr: float = 1e-3, optimizer: keras.optimizers.Optimizer | None = None) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def report(cb: MLCheckCallback) -> None:
    print()
    if cb.findings:
        for finding in cb.findings:
            print(finding.format())
    else:
        print("mlcheck: no findings - the run looks healthy.")
    if cb.log_dir is not None:
        print(f"TensorBoard: tensorboard --logdir {cb.log_dir}")


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_val, y_val) = load_data()
    cb = MLCheckCallback(log_dir="logs/keras_digits")  # every default check, overfit-a-batch first
    build_model().fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=10, batch_size=32, verbose=0, callbacks=[cb]
    )
    report(cb)
