"""b10 Keras: digits read from a table sorted by label; `df.reset_index()` before `df.to_numpy()`
keeps the row number as a 65th feature, then the rows are shuffled and split at random. In a table
sorted by label the row number alone gives the class: the model learns the index."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np
import pandas as pd
from _common import digits, log_dir, quiet, report

from mlcheck.integrations.keras import MLCheckCallback

NAME = "b10_keras_index_column_in_features"

if __name__ == "__main__":
    quiet()
    keras.utils.set_random_seed(0)
    x, y = digits()
    order = np.argsort(y, kind="stable")
    df = pd.DataFrame(x[order], columns=[f"px{i}" for i in range(64)])
    df["label"] = y[order]
    df = df.reset_index()  # BUG: the row number becomes a column, kept as a feature below
    feats = df.drop(columns=["label"]).to_numpy(np.float32)
    labels = df["label"].to_numpy()
    perm = np.random.default_rng(1).permutation(len(df))
    feats, labels = feats[perm], labels[perm]
    mu, sd = feats[:1400].mean(0), feats[:1400].std(0) + 1e-6
    feats = (feats - mu) / sd
    model = keras.Sequential(
        [
            keras.Input((65,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = MLCheckCallback(log_dir=log_dir(NAME))
    model.fit(
        feats[:1400],
        labels[:1400],
        validation_data=(feats[1400:], labels[1400:]),
        epochs=12,
        batch_size=32,
        verbose=0,
        callbacks=[cb],
    )
    report(NAME, cb.findings)
