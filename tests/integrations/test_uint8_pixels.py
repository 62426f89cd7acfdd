"""uint8 images on a real Keras fit: `unnormalized-input` fires on the raw pixels and its fix
names the cast to float first, since arithmetic on uint8 arrays wraps around (`x - 128` turns
0 into 128 and 255 into 127), the bug a user meets when centring before casting. The wrapped
values themselves are still whole numbers 0-255, so the same finding covers that run."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck.integrations.keras import MLCheckCallback


@pytest.mark.parametrize("wrap", [False, True])
def test_uint8_images_get_the_cast_first_fix(tmp_path, wrap):
    x, y = load_digits(return_X_y=True)
    images = (x * 16).clip(0, 255).astype(np.uint8).reshape(-1, 8, 8)
    if wrap:
        images = images - np.uint8(128)  # centred before the cast: wraps
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(log_dir=str(tmp_path))
    model.fit(images[:1200], y[:1200], validation_data=(images[1200:], y[1200:]), epochs=1, verbose=0, callbacks=[cb])
    (finding,) = [f for f in cb.findings if f.check == "unnormalized-input"]
    assert "raw 8-bit pixel values (whole numbers 0-255, dtype uint8)" in finding.message
    assert "x.astype('float32') / 255" in finding.hint and "wraps around modulo 256" in finding.hint
