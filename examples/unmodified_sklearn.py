"""A scikit-learn script, unmodified: fastbp's speed with no change to the code.

Nothing below names fastbp. Run it as it is, then under fastbp's patch, which
makes sklearn.neural_network's MLPClassifier fastbp's before the script runs:

    python examples/unmodified_sklearn.py
    python -m fastbp.patch examples/unmodified_sklearn.py

It prints which MLPClassifier ran, its 5-fold cross-validated accuracy on
digits and the time the cross-validation took.
"""

import time

from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_digits(return_X_y=True)
model = make_pipeline(StandardScaler(), MLPClassifier(random_state=0))
start = time.perf_counter()
scores = cross_val_score(model, X, y, cv=5)
elapsed = time.perf_counter() - start
print(f"MLPClassifier: {MLPClassifier.__module__}.{MLPClassifier.__qualname__}")
print(f"5-fold accuracy {scores.mean():.4f} (folds {' '.join(f'{s:.4f}' for s in scores)}) in {elapsed:.2f} s")
