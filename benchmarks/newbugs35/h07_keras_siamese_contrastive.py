"""h07 Keras (healthy): a siamese network on pairs of digits (a shared Dense encoder, the
Euclidean distance of the two embeddings) trained with the contrastive loss (margin 1) of
Hadsell et al. 2006 on half same-class, half different-class pairs; label 1 = same class."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
from _common import digits, log_dir, quiet, report
from keras import layers, ops

from mlcheck.integrations.keras import MLCheckCallback

NAME = "h07_keras_siamese_contrastive"
MARGIN = 1.0


def pairs(x, y, n, rng):
    by = [np.flatnonzero(y == c) for c in range(10)]
    a = rng.integers(0, len(x), n)
    same = rng.random(n) < 0.5
    b = np.empty(n, np.int64)
    for k in range(n):
        c = y[a[k]] if same[k] else rng.choice([d for d in range(10) if d != y[a[k]]])
        b[k] = rng.choice(by[c])
    return x[a], x[b], same.astype(np.float32)


def contrastive(y_true, d):
    y_true = ops.reshape(y_true, ops.shape(d))
    return ops.mean(y_true * ops.square(d) + (1 - y_true) * ops.square(ops.maximum(MARGIN - d, 0.0)))


if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    rng = np.random.default_rng(0)
    a_tr, b_tr, s_tr = pairs(x[:1400], y[:1400], 4000, rng)
    a_va, b_va, s_va = pairs(x[1400:], y[1400:], 800, rng)
    enc = keras.Sequential([keras.Input((64,)), layers.Dense(128, activation="relu"), layers.Dense(32)])
    ia, ib = keras.Input((64,)), keras.Input((64,))
    ea, eb = enc(ia), enc(ib)
    d = layers.Lambda(lambda t: ops.sqrt(ops.sum(ops.square(t[0] - t[1]), axis=1, keepdims=True) + 1e-9))([ea, eb])
    model = keras.Model([ia, ib], d)
    model.compile(keras.optimizers.Adam(1e-3), contrastive)
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        [a_tr, b_tr],
        s_tr,
        validation_data=([a_va, b_va], s_va),
        epochs=10,
        batch_size=64,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
