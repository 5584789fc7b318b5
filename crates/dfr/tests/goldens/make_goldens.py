"""Writes the scikit-learn goldens that crates/dfr/tests/liblinear_parity.rs reads.

Fixtures are drawn with numpy (seed 20240617): a binary problem of 300 samples x 64 features
whose labels follow a sparse linear rule with logistic noise, and a 3-class problem of 150 x 16.
For every C of the DFR grid, scikit-learn's liblinear L1 logistic regression (intercept
regularised, intercept_scaling 1; one-vs-rest through OneVsRestClassifier for 3 classes) is fitted with tol 1e-8 so that its
solution is the optimum to well within the test tolerances; the goldens are its coefficients,
intercepts, training accuracy and the objective value ||w||_1 + C * sum log(1 + exp(-y w.x))
(intercept included in w), computed here in float64.

Run with the project's venv (installs scikit-learn when missing):
    ~/.cache/exmap/torch-2.13.0/bin/python crates/dfr/tests/goldens/make_goldens.py
"""
import json
import os
import subprocess
import sys

try:
    import sklearn  # noqa: F401
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "scikit-learn", "safetensors"])

import numpy as np
from safetensors.numpy import save_file
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
GRID = [1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01]


def l1_model(c):
    return LogisticRegression(l1_ratio=1.0, C=c, solver="liblinear", tol=1e-8, max_iter=100000)


def objective(x, signs, c, w, b):
    z = x @ w + b
    return float(np.abs(w).sum() + abs(b) + c * np.logaddexp(0.0, -signs * z).sum())


def binary_fixture(rng):
    n, d = 300, 64
    x = rng.standard_normal((n, d))
    truth = np.zeros(d)
    truth[:8] = rng.standard_normal(8) * 1.5
    y = (x @ truth + 0.3 + rng.logistic(size=n) > 0).astype(np.int64)
    return x, y


def multiclass_fixture(rng):
    n, d = 150, 16
    centres = rng.standard_normal((3, d)) * 1.2
    y = np.arange(n) % 3
    x = centres[y] + rng.standard_normal((n, d))
    return x, y.astype(np.int64)


def fit_all(x, y):
    classes = np.unique(y)
    fits = []
    for c in GRID:
        if len(classes) == 2:
            model = l1_model(c).fit(x, y)
            coef, intercept = model.coef_, model.intercept_
        else:
            # scikit-learn 1.9's liblinear no longer does one-vs-rest itself; the wrapper fits
            # the same per-class binary problems liblinear used to.
            model = OneVsRestClassifier(l1_model(c)).fit(x, y)
            coef = np.vstack([e.coef_ for e in model.estimators_])
            intercept = np.concatenate([e.intercept_ for e in model.estimators_])
        positives = [classes[1]] if len(classes) == 2 else list(classes)
        objectives = [objective(x, np.where(y == k, 1.0, -1.0), c, coef[r], intercept[r])
                      for r, k in enumerate(positives)]
        fits.append({"C": c, "coef": coef.tolist(), "intercept": intercept.tolist(),
                     "objective": objectives, "accuracy": float(model.score(x, y))})
    return fits


def main():
    rng = np.random.default_rng(20240617)
    xb, yb = binary_fixture(rng)
    xm, ym = multiclass_fixture(rng)
    save_file({"binary.x": xb.astype(np.float64), "binary.y": yb,
               "multiclass.x": xm.astype(np.float64), "multiclass.y": ym},
              os.path.join(HERE, "fixtures.safetensors"))
    import sklearn
    goldens = {"sklearn": sklearn.__version__, "binary": fit_all(xb, yb), "multiclass": fit_all(xm, ym)}
    with open(os.path.join(HERE, "liblinear.json"), "w") as fh:
        json.dump(goldens, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
