"""Loop kernels against NumPy matrix products: fastbp's two backends on a few hidden widths.

backend="loop" runs backprop's equations as explicit Numba loops over samples
n, neurons j and inputs k, one compiled call per epoch; backend="vectorized"
runs the same maths as NumPy matrix products (BLAS), one Python step per
minibatch. The same estimator, data and seed train the same model either way;
only the time differs. Prints a table and writes loop_vs_vectorized.png.

Needs matplotlib, which fastbp does not require: pip install 'fastbp[examples]'.
Run: python examples/loop_vs_vectorized.py [--out DIR]
"""

import argparse
import time
import warnings
from pathlib import Path

try:
    import matplotlib
except ModuleNotFoundError:
    raise SystemExit("examples/loop_vs_vectorized.py draws its plot with matplotlib, which fastbp does not require: "
                     "pip install 'fastbp[examples]' (or pip install matplotlib).") from None
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from fastbp import MLPClassifier  # noqa: E402

WIDTHS = (16, 64, 256, 1024)
BACKENDS = ("loop", "vectorized")
EPOCHS = 5


def seconds_per_epoch(X, y, width, backend, repeats=3):
    """Best over `repeats` fits of EPOCHS adam epochs, divided by the epochs run."""
    best = float("inf")
    for _ in range(repeats):
        model = MLPClassifier(hidden_layer_sizes=(width,), max_iter=EPOCHS, random_state=0, backend=backend)
        start = time.perf_counter()
        model.fit(X, y)
        best = min(best, (time.perf_counter() - start) / model.n_iter_)
    return best, model.loss_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "output"), help="folder for the PNG")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)

    X, y = make_classification(4000, 64, n_informative=32, n_classes=10, random_state=0)
    # The first fit of each backend compiles its kernels (or loads them from the disk cache).
    for backend in BACKENDS:
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, backend=backend).fit(X[:50], y[:50])

    print(f"make_classification {X.shape}, 10 classes, one hidden relu layer, adam, batch 200, "
          f"best of 3 fits of {EPOCHS} epochs")
    print(f"{'width':>6} {'loop ms/epoch':>14} {'vectorized ms/epoch':>20} {'vectorized/loop':>16} {'same loss':>10}")
    times = {backend: [] for backend in BACKENDS}
    for width in WIDTHS:
        results = {backend: seconds_per_epoch(X, y, width, backend) for backend in BACKENDS}
        for backend in BACKENDS:
            times[backend].append(results[backend][0])
        same = np.isclose(results["loop"][1], results["vectorized"][1], rtol=1e-6)
        print(f"{width:>6} {1e3 * results['loop'][0]:>14.2f} {1e3 * results['vectorized'][0]:>20.2f} "
              f"{results['vectorized'][0] / results['loop'][0]:>16.2f} {str(same):>10}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for backend, marker in zip(BACKENDS, "os"):
        ax.plot(WIDTHS, [1e3 * s for s in times[backend]], marker=marker, label=f'backend="{backend}"')
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(WIDTHS, [str(w) for w in WIDTHS])
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_xlabel("hidden layer width")
    ax.set_ylabel("ms per epoch")
    ax.set_title(f"fastbp backends, {X.shape[0]} samples × {X.shape[1]} features")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = out / "loop_vs_vectorized.png"
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
