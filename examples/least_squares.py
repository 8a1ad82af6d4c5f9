"""Ordinary least squares is a network with no hidden layer, trained by gradient descent.

With an identity output and the squared error, fastbp's loss is
    C(w, b) = (1/2n) Σ_n (x_n·w + b − y_n)²,
whose minimiser is the least-squares solution with an intercept column, which
numpy.linalg.lstsq computes directly. Full-batch gradient descent through
fastbp.loss_and_gradients reaches it when the learning rate η is below
2 / λ_max, λ_max the largest eigenvalue of the Hessian X₁ᵀX₁ / n (X₁ = [X, 1]):
each step multiplies the error along that eigenvector by (1 − η λ_max). Above
2 / λ_max that factor is below −1, and the iterates oscillate with growing
amplitude: the loss diverges.

Run: python examples/least_squares.py
"""

import numpy as np

import fastbp

LINEAR = dict(activation="identity", out_activation="identity", loss="squared_error")


def gradient_descent(X, Y, eta, n_steps, report_every=0):
    """Full-batch gradient descent from zero weights; returns (w, b, losses), stopping
    early if the loss passes 1e12 (a diverged run)."""
    coefs, intercepts = [np.zeros((X.shape[1], 1))], [np.zeros(1)]
    losses = []
    for step in range(n_steps):
        loss, coef_grads, intercept_grads = fastbp.loss_and_gradients(coefs, intercepts, X, Y, **LINEAR)
        losses.append(loss)
        if report_every and step % report_every == 0:
            print(f"    step {step:4d}  loss {loss:.6e}")
        if loss > 1e12:
            break
        coefs = [coefs[0] - eta * coef_grads[0]]
        intercepts = [intercepts[0] - eta * intercept_grads[0]]
    return coefs[0].ravel(), intercepts[0][0], losses


def main():
    rng = np.random.default_rng(0)
    n, d = 200, 4
    X = rng.standard_normal((n, d)) * np.array([1.0, 1.5, 0.7, 1.2]) + np.array([0.3, -0.4, 0.0, 0.5])
    y = X @ np.array([1.5, -2.0, 0.5, 3.0]) + 0.7 + 0.1 * rng.standard_normal(n)
    Y = y[:, None]

    X1 = np.hstack([X, np.ones((n, 1))])
    exact = np.linalg.lstsq(X1, y, rcond=None)[0]
    eigenvalues = np.linalg.eigvalsh(X1.T @ X1 / n)
    lam_max, lam_min = eigenvalues.max(), eigenvalues.min()
    print(f"OLS on {n} samples, {d} features + intercept; Hessian X1ᵀX1/n has λ_max = {lam_max:.3f}, "
          f"λ_min = {lam_min:.3f}, so gradient descent converges for η < 2/λ_max = {2 / lam_max:.4f}")

    # The best constant step: the error along every eigenvector shrinks by at least
    # (λ_max − λ_min) / (λ_max + λ_min) per step. Enough steps for a factor 1e-12.
    eta = 2.0 / (lam_max + lam_min)
    rate = (lam_max - lam_min) / (lam_max + lam_min)
    n_steps = int(np.ceil(np.log(1e-12) / np.log(rate)))
    print(f"\n1. η = 2/(λ_max + λ_min) = {eta:.4f}: the error shrinks by {rate:.3f} per step or faster; "
          f"{n_steps} full-batch steps through fastbp.loss_and_gradients")
    w, b, losses = gradient_descent(X, Y, eta, n_steps, report_every=max(1, n_steps // 5))
    found = np.append(w, b)
    print(f"  {'':<10} {'w1':>10} {'w2':>10} {'w3':>10} {'w4':>10} {'b':>10}")
    print(f"  {'lstsq':<10} " + " ".join(f"{v:10.6f}" for v in exact))
    print(f"  {'fastbp GD':<10} " + " ".join(f"{v:10.6f}" for v in found))
    error = np.max(np.abs(found - exact))
    print(f"  max |GD − lstsq| = {error:.2e}  ->  {'equal' if error < 1e-8 else 'NOT equal'} to lstsq")

    eta_big = 2.2 / lam_max
    print(f"\n2. η = 2.2/λ_max = {eta_big:.4f} > 2/λ_max: each step multiplies the error along the top "
          f"eigenvector by 1 − η λ_max = {1 - eta_big * lam_max:.2f}")
    _, _, losses = gradient_descent(X, Y, eta_big, 1000, report_every=20)
    grew = losses[-1] > 1e6 * losses[0]
    print(f"  loss {losses[0]:.3e} -> {losses[-1]:.3e} after {len(losses)} steps: "
          f"{'diverged' if grew else 'did not diverge'}")


if __name__ == "__main__":
    main()
