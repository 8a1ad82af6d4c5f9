"""Vanishing and exploding gradients in a deep narrow network, layer by layer.

Backprop's δ recursion, δ^{l-1} = (W^{l-1} δ^l) ⊙ σ'(z^{l-1}), multiplies the
error by one weight matrix and one activation derivative per layer on its way
down. The logistic's derivative is at most 1/4, so in a deep logistic
network the gradients of the first layers are orders of magnitude smaller
than those of the last (vanishing), and the network stays at chance.
Scaling its weights by 3 amplifies the error more than saturation damps it
here, yet the first layer still gets about 3e-4 of the last one's
gradient. relu's derivative is 0 or 1, so the weights alone set the gain per
layer: with the default (Glorot) scale the norms stay within a small factor
across layers and the network trains; with the weights scaled by 3, each
layer multiplies both the forward signal and the backward error by about
3/√2, every layer's gradient is thousands of times larger, and sgd diverges
(exploding).

The example trains a network of eight hidden layers of 16 neurons with
fastbp.MLPClassifier (plain sgd, warm_start, one epoch per fit) and, at a few
epochs, computes each layer's weight-gradient norm ‖∂C/∂W^l‖ on the whole
training set with fastbp.loss_and_gradients on the estimator's coefs_. It
prints the norms and writes vanishing_gradients.png.

Needs matplotlib, which fastbp does not require: pip install 'fastbp[examples]'.
Run: python examples/vanishing_gradients.py [--out DIR]
"""

import argparse
import warnings
from pathlib import Path

try:
    import matplotlib
except ModuleNotFoundError:
    raise SystemExit("examples/vanishing_gradients.py draws its plot with matplotlib, which fastbp does not require: "
                     "pip install 'fastbp[examples]' (or pip install matplotlib).") from None

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import fastbp  # noqa: E402

HIDDEN = (16,) * 8
ACTIVATIONS = ("logistic", "relu")
SCALES = (1.0, 3.0)  # 1: the estimator's default initial weights; 3: the same, scaled badly
RECORD_AT = (0, 1, 5, 20, 40)  # epochs after which the per-layer norms are computed
LEARNING_RATE = 0.05


def gradient_norms(model, X, Y):
    """‖∂C/∂W^l‖ (Frobenius) of every layer, for the estimator's loss on (X, Y)."""
    _, coef_grads, _ = fastbp.loss_and_gradients(
        model.coefs_, model.intercepts_, X, Y, activation=model.activation,
        out_activation=model.out_activation_, loss="log_loss", alpha=model.alpha,
    )
    return [float(np.linalg.norm(g)) for g in coef_grads]


def diagnosis(norms):
    """'vanishing' when the first layer's gradient is under 1% of the last's, 'exploding'
    when some layer's exceeds 10 (the loss is about 1 and the weights about 1), else 'healthy'."""
    if norms[0] < 1e-2 * norms[-1]:
        return "vanishing"
    return "exploding" if max(norms) > 10 else "healthy"


def train_and_record(X, y, Y, activation, scale):
    """{epoch: per-layer gradient norms} and the last loss; training stops at divergence."""
    model = MLPClassifier_for(activation)
    # One epoch at a negligible learning rate makes the estimator draw its default
    # initial weights (scikit-learn's Glorot scheme) without moving them.
    model.set_params(learning_rate_init=1e-12).fit(X, y)
    model.coefs_ = [scale * W for W in model.coefs_]
    model.set_params(learning_rate_init=LEARNING_RATE)
    norms = {0: gradient_norms(model, X, Y)}
    status = f"trained {max(RECORD_AT)} epochs"
    for epoch in range(1, max(RECORD_AT) + 1):
        try:
            model.fit(X, y)
        except ValueError:
            # fastbp keeps the last finite model and says the fit diverged.
            status = f"diverged at epoch {epoch}"
            return norms, float("nan"), status
        if epoch in RECORD_AT:
            norms[epoch] = gradient_norms(model, X, Y)
    return norms, model.loss_, status


def MLPClassifier_for(activation):
    # Plain sgd without momentum: restarting the optimizer at every one-epoch fit
    # changes nothing, so warm_start with max_iter=1 is ordinary training.
    return fastbp.MLPClassifier(hidden_layer_sizes=HIDDEN, activation=activation, solver="sgd", momentum=0.0,
                                batch_size=50, max_iter=1, warm_start=True, shuffle=True, random_state=0,
                                n_iter_no_change=10**6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "output"), help="folder for the PNG")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)

    X, y = make_classification(600, 10, n_informative=6, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    Y = np.eye(3)[y]  # one-hot targets for the softmax output's log-loss

    n_layers = len(HIDDEN) + 1
    print(f"{len(HIDDEN)} hidden layers of {HIDDEN[0]}, sgd η = {LEARNING_RATE}, {X.shape[0]} samples, 3 classes "
          f"(a loss of ln 3 = {np.log(3):.4f} is chance); ‖∂C/∂W^l‖ for l = 1 (input side) .. {n_layers} (output side)")
    fig, axes = plt.subplots(len(ACTIVATIONS), len(SCALES), figsize=(10, 7), sharex=True, sharey=True)
    for row, activation in enumerate(ACTIVATIONS):
        for col, scale in enumerate(SCALES):
            norms, loss, status = train_and_record(X, y, Y, activation, scale)
            init = "default init" if scale == 1.0 else f"init × {scale:g}"
            kind = diagnosis(norms[0])
            print(f"\n{activation}, {init}: {status}, final loss {loss:.4f}")
            print(f"  at epoch 0: ‖∂C/∂W^1‖ / ‖∂C/∂W^{n_layers}‖ = {norms[0][0] / norms[0][-1]:.1e}, "
                  f"largest ‖∂C/∂W^l‖ = {max(norms[0]):.1e}: {kind}")
            for epoch, values in norms.items():
                print(f"  epoch {epoch:3d}  " + " ".join(f"{v:8.1e}" for v in values))
            ax = axes[row, col]
            for epoch, values in norms.items():
                ax.plot(range(1, n_layers + 1), values, marker="o", markersize=3, label=f"epoch {epoch}")
            ax.set_yscale("log")
            ax.set_title(f"{activation}, {init}: {kind} at start, {status}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            if row == len(ACTIVATIONS) - 1:
                ax.set_xlabel("layer l (1 = input side)")
            if col == 0:
                ax.set_ylabel(r"$\|\partial C / \partial W^l\|$ (one scale for all panels)")
            ax.legend(fontsize=7)
    fig.suptitle(f"Per-layer weight-gradient norms, {len(HIDDEN)} hidden layers of {HIDDEN[0]}")
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "vanishing_gradients.png"
    fig.savefig(path, dpi=100)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
