"""Batch 20 of new users' programs, b10: channels-first images fed to a channels-last Conv2D.

Images reshaped `(N, 1, H, W)` as a PyTorch tutorial does, into a Keras `Conv2D` left at its
default `data_format="channels_last"`: the convolution reads a 1xW image of W channels and still
trains, more weakly, so nothing else fires. Now `unnormalized-input` (key `channels-first`)
names the layer, the shape as read and the transpose or `data_format` fix, from the first
Conv2D's input shape and data format (`RunInfo.conv_input`) at the first training batch. The
same images in the right layout, and channels-first images under
`data_format="channels_first"`, stay silent.
"""

from __future__ import annotations

import warnings

import keras
import pytest
from sklearn.datasets import load_digits

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback


def _fit(tmp_path, shape, data_format="channels_last"):
    keras.utils.set_random_seed(0)
    x, y = load_digits(return_X_y=True)
    x = (x[:512] / 16.0).astype("float32")
    if shape == (1, 8, 8):
        x = x.reshape(-1, 1, 8, 8)  # channels first
    else:
        x = x.reshape(-1, 8, 8, 1)
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", data_format=data_format),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = MLCheckCallback(log_dir=str(tmp_path / "logs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y[:512], epochs=1, batch_size=64, verbose=0, callbacks=[cb])
    return cb.findings


def test_newbugs20_b10_channels_first_images_into_a_channels_last_conv2d_are_named(tmp_path):
    findings = _fit(tmp_path, (1, 8, 8))
    (finding,) = [f for f in findings if f.key == "channels-first"]
    assert finding.check == "unnormalized-input" and finding.severity == Severity.WARNING, finding.format()
    assert finding.evidence["input_shape"] == [1, 8, 8] and finding.evidence["data_format"] == "channels_last"
    assert "a 1x8 image of 8 channels" in finding.message, finding.message
    assert "np.transpose(x, (0, 2, 3, 1))" in finding.hint and "data_format='channels_first'" in finding.hint


@pytest.mark.parametrize(
    ("shape", "data_format"), [((8, 8, 1), "channels_last"), ((1, 8, 8), "channels_first")], ids=["last", "first"]
)
def test_images_in_the_layout_the_conv2d_reads_stay_silent(tmp_path, shape, data_format):
    findings = _fit(tmp_path, shape, data_format)
    loud = [f.format() for f in findings if f.severity != Severity.INFO]
    assert not loud, loud


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(16, 3, padding="same", activation="relu")
        self.flat = keras.layers.Flatten()
        self.out = keras.layers.Dense(10, activation="softmax")

    def call(self, x):
        return self.out(self.flat(self.conv(x)))


def test_a_subclassed_model_whose_conv2d_input_is_unknown_says_nothing_of_the_layout(tmp_path):
    keras.utils.set_random_seed(0)
    x, y = load_digits(return_X_y=True)
    x = (x[:256] / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    model = _Subclassed()
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = MLCheckCallback(log_dir=str(tmp_path / "logs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y[:256], epochs=1, batch_size=64, verbose=0, callbacks=[cb])
    assert "convolution input" not in cb.live.broken  # unknown, not failed
    assert cb.live.monitor.run.info.conv_input is None
    assert not [f for f in cb.findings if f.key == "channels-first"]
