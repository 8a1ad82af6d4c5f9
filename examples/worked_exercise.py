"""The worked exercise of backpropagation, step by step, with fastbp.

A tiny network: 2 inputs → 2 logistic hidden neurons → 1 logistic output,
squared-error loss C = ½ (a_o − t)² with target t = 1.0, one sample, one
gradient-descent step with learning rate η = 0.5. Every number is printed
twice: as the textbook computes it by hand (plain Python on scalars) and as
fastbp.forward / fastbp.loss_and_gradients compute it.

Run: python examples/worked_exercise.py
"""

import math

import numpy as np

import fastbp

# The exercise: input x, weights w_kj from input k to hidden neuron j, hidden
# biases b_j, output weights v_j, output bias c, target t, learning rate η.
x = [0.35, 0.9]
w = [[0.1, 0.4], [0.8, 0.6]]
b = [0.25, -0.15]
v = [0.3, 0.9]
c = 0.1
t = 1.0
eta = 0.5

LOGISTIC = dict(activation="logistic", out_activation="logistic")


def sigma(z):
    return 1.0 / (1.0 + math.exp(-z))


def show(name, by_hand, by_fastbp, note=""):
    """One row: the quantity, the hand value, fastbp's value, their largest difference."""
    by_hand = np.atleast_1d(np.asarray(by_hand, dtype=float)).ravel()
    by_fastbp = np.atleast_1d(np.asarray(by_fastbp, dtype=float)).ravel()
    hand = " ".join(f"{value:+.6f}" for value in by_hand)
    fast = " ".join(f"{value:+.6f}" for value in by_fastbp)
    diff = float(np.max(np.abs(by_hand - by_fastbp)))
    print(f"  {name:<10} {hand:<43} {fast:<43} {diff:.0e}  {note}".rstrip())


def header():
    print(f"  {'':<10} {'by hand':<43} {'fastbp':<43} |diff|")


def main():
    # fastbp's layout: coefs[l][k, j] is the weight from neuron k of layer l to
    # neuron j of layer l + 1, as scikit-learn's coefs_.
    coefs = [np.array(w), np.array([[v[0]], [v[1]]])]
    intercepts = [np.array(b), np.array([c])]
    X = np.array([x])
    Y = np.array([[t]])

    print("Network 2-2-1, logistic neurons, C = ½(a_o − t)², t = 1.0, η = 0.5")
    print(f"  x = {x}, w = {w} (w[k][j]), b = {b}, v = {v}, c = {c}")

    print("\n1. Forward pass: z_j = Σ_k w_kj x_k + b_j, a_j = σ(z_j) = 1 / (1 + e^(−z_j))")
    header()
    z = [x[0] * w[0][j] + x[1] * w[1][j] + b[j] for j in range(2)]
    a = [sigma(zj) for zj in z]
    # The hidden layer alone is a one-layer network: its identity output is z, its logistic output a.
    show("z (hidden)", z, fastbp.forward(coefs[:1], intercepts[:1], X, out_activation="identity"))
    show("a (hidden)", a, fastbp.forward(coefs[:1], intercepts[:1], X, out_activation="logistic"))
    z_o = v[0] * a[0] + v[1] * a[1] + c
    a_o = sigma(z_o)
    a_hidden = fastbp.forward(coefs[:1], intercepts[:1], X, out_activation="logistic")
    show("z_o", z_o, fastbp.forward(coefs[1:], intercepts[1:], a_hidden, out_activation="identity"),
         "Σ_j v_j a_j + c")
    show("a_o", a_o, fastbp.forward(coefs, intercepts, X, **LOGISTIC), "the output")
    C = 0.5 * (a_o - t) ** 2
    loss, coef_grads, intercept_grads = fastbp.loss_and_gradients(coefs, intercepts, X, Y, loss="squared_error",
                                                                  **LOGISTIC)
    show("C", C, loss, "½(a_o − t)²")

    print("\n2. Backward pass. Output error (BP1): δ_o = ∂C/∂a_o · σ'(z_o) = (a_o − t) · a_o(1 − a_o)")
    header()
    delta_o = (a_o - t) * a_o * (1.0 - a_o)
    # ∂C/∂c = δ_o (BP3), so fastbp's output-bias gradient is δ_o itself.
    show("δ_o", delta_o, intercept_grads[1], "= ∂C/∂c (BP3)")
    print("   Hidden errors (BP2): δ_j = v_j δ_o · σ'(z_j) = v_j δ_o · a_j(1 − a_j)")
    delta = [v[j] * delta_o * a[j] * (1.0 - a[j]) for j in range(2)]
    show("δ_j", delta, intercept_grads[0], "= ∂C/∂b_j (BP3)")

    print("\n3. Gradients (BP4): ∂C/∂(weight) = (activation feeding it) × (δ of the neuron it feeds)")
    header()
    dv = [a[j] * delta_o for j in range(2)]
    show("∂C/∂v_j", dv, coef_grads[1], "= a_j δ_o")
    dw = [[x[k] * delta[j] for j in range(2)] for k in range(2)]
    show("∂C/∂w_kj", dw, coef_grads[0], "x_k δ_j: w11 w12 w21 w22")
    show("∂C/∂b_j", delta, intercept_grads[0])
    show("∂C/∂c", delta_o, intercept_grads[1])

    print(f"\n4. Gradient-descent update θ ← θ − η ∂C/∂θ, η = {eta}")
    w_new = [[w[k][j] - eta * dw[k][j] for j in range(2)] for k in range(2)]
    b_new = [b[j] - eta * delta[j] for j in range(2)]
    v_new = [v[j] - eta * dv[j] for j in range(2)]
    c_new = c - eta * delta_o
    header()
    coefs_new = [W - eta * g for W, g in zip(coefs, coef_grads)]
    intercepts_new = [bias - eta * g for bias, g in zip(intercepts, intercept_grads)]
    show("w (new)", w_new, coefs_new[0])
    show("b (new)", b_new, intercepts_new[0])
    show("v (new)", v_new, coefs_new[1])
    show("c (new)", c_new, intercepts_new[1])

    print("\n5. The step helped: a new forward pass moves the output toward t = 1 and lowers C")
    header()
    a_new = [sigma(x[0] * w_new[0][j] + x[1] * w_new[1][j] + b_new[j]) for j in range(2)]
    a_o_new = sigma(v_new[0] * a_new[0] + v_new[1] * a_new[1] + c_new)
    loss_new = fastbp.loss_and_gradients(coefs_new, intercepts_new, X, Y, loss="squared_error", **LOGISTIC)[0]
    show("a_o (new)", a_o_new, fastbp.forward(coefs_new, intercepts_new, X, **LOGISTIC))
    show("C (new)", 0.5 * (a_o_new - t) ** 2, loss_new)
    print(f"  loss {loss:.7f} -> {loss_new:.7f} ({'decreased' if loss_new < loss else 'DID NOT DECREASE'})")


if __name__ == "__main__":
    main()
