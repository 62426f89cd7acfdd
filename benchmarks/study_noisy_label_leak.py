"""False-alarm study for a rule on a noisy label leak (issue 12, branch known18): feature-leakage's
own single-feature scores (`FeatureLeakage.scores`, 2-fold cross-validated lookups on the scored
rows) of planted copies of the label kept for 90/80/70% of rows (else a random class) beside
honest columns: the data sets' own standardised columns, a random region id and one of its
one-hot columns, a k-means cluster id of the inputs (an engineered feature computed from them), a
strong real feature binned, and a coarse label-correlated group. "bijective": the column's values
map one-to-one onto the classes by majority.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/study_noisy_label_leak.py
"""

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

from mlcheck.checks.leakage import FeatureLeakage

rng = np.random.default_rng(0)


def standardise(c):
    c = np.asarray(c, float)
    return (c - c.mean()) / (c.std() or 1)


def score_columns(x, y, extra):
    cols = [standardise(c) for c in extra.values()]
    X = np.column_stack([(x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1), *cols])
    fl = FeatureLeakage()
    fl._task = "classification"
    fl._add(X.astype(np.float64), y.astype(np.int64))
    first = np.sort(np.unique(fl._prints, return_index=True)[1])
    s, base = fl.scores(first)
    k = x.shape[1]
    honest_best = np.sort(s[:k])[::-1]
    out = {name: s[k + i] for i, name in enumerate(extra)}
    return out, honest_best[:2], fl._rows


def noisy_copy(y, keep, classes):
    c = y.copy()
    flip = rng.random(len(y)) > keep
    c[flip] = rng.integers(0, classes, flip.sum())
    return c


def binned(col, bins):
    return np.digitize(col, np.quantile(col, np.linspace(0, 1, bins + 1)[1:-1]))


def bijective(col, y):
    vals = np.unique(col)
    classes = np.unique(y)
    if len(vals) != len(classes):
        return False
    maj = [np.bincount(y[col == v], minlength=len(classes)).argmax() for v in vals]
    return len(set(maj)) == len(classes)


sets = {}
d = load_digits()
sets["digits"] = (d.data, d.target, None)
w = load_wine()
sets["wine"] = (w.data, w.target, w.feature_names)
b = load_breast_cancer()
sets["breast_cancer"] = (b.data, b.target, list(b.feature_names))
dia = load_diabetes()
yd = binned(dia.target, 3)
sets["diabetes(target in 3 bins)"] = (dia.data, yd, dia.feature_names)

for name, (x, y, names) in sets.items():
    C = len(np.unique(y))
    extra = {}
    for keep in (0.9, 0.8, 0.7):
        extra[f"leak {int(keep * 100)}%"] = noisy_copy(y, keep, C)
    region = rng.integers(0, 4, len(y))
    extra["one-hot region (4 cols, col 0)"] = (region == 0).astype(float)
    extra["region id 0-3 (random)"] = region
    km = KMeans(C, n_init=4, random_state=0).fit_predict((x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1))
    extra[f"kmeans cluster id ({C})"] = km
    if names is not None:
        # the strongest honest column, binned
        best = {"wine": "flavanoids", "breast_cancer": "worst perimeter", "diabetes(target in 3 bins)": "s5"}[name]
        col = x[:, list(names).index(best)]
        for bins in (C, 2, 5, 10):
            extra[f"{best} in {bins} bins"] = binned(col, bins)
    extra["label-correlated group (70% class)"] = noisy_copy(y, 0.7, C) // max(1, C // 3)
    out, honest, rows = score_columns(x, y, extra)
    print(f"\n{name}: {C} classes, rows scored {rows}; best honest raw columns {honest[0]:.3f}, {honest[1]:.3f}")
    for k, v in out.items():
        col = extra[k]
        print(f"  {k:40s} score {v:.3f}  distinct {len(np.unique(col)):3d}  bijective {bijective(np.asarray(col), y)}")
