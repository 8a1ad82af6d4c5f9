"""Independent NumPy references and random-network builders for the core tests.

Nothing here imports fastbp: the forward pass, the losses and the error measure are
written directly from the formulas of issue 11, so the tests compare fastbp against
them and never against itself.
"""

import numpy as np
from scipy.special import expit, xlogy

HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")

# Every (out_activation, loss) pair the spec allows.
ALLOWED_PAIRS = (
    ("softmax", "log_loss"),
    ("logistic", "log_loss"),
    ("identity", "squared_error"),
    ("logistic", "squared_error"),
    ("tanh", "squared_error"),
    ("relu", "squared_error"),
    ("softmax", "squared_error"),
    ("exp", "squared_error"),
    ("exp", "poisson"),
    ("logistic", "poisson"),
    ("softmax", "poisson"),
)

DISALLOWED_PAIRS = (
    ("identity", "log_loss"),
    ("relu", "log_loss"),
    ("tanh", "log_loss"),
    ("exp", "log_loss"),
    ("identity", "poisson"),
    ("relu", "poisson"),
    ("tanh", "poisson"),
)


def pair_id(pair):
    return f"{pair[0]}-{pair[1]}"


# ---------------------------------------------------------------- the error measure
def rel_err(a, b):
    """‖a − b‖ / max(‖b‖, tiny), Frobenius norm, in float64; 0 when both are zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    num = np.linalg.norm(a - b)
    if num == 0.0:
        return 0.0
    return float(num / max(np.linalg.norm(b), np.finfo(np.float64).tiny))


def max_rel_err(arrays, references):
    """The largest rel_err over paired arrays, ignoring none."""
    arrays, references = list(arrays), list(references)
    assert len(arrays) == len(references)
    return max(rel_err(a, b) for a, b in zip(arrays, references))


# ---------------------------------------------------------------- reference forward and loss
def activate(name, z):
    if name == "identity":
        return z.copy()
    if name == "logistic":
        return expit(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise AssertionError(name)


def reference_forward(coefs, intercepts, X, activation, out_activation):
    """Pre-activations and activations of every layer, in float64, by explicit sums."""
    a = np.asarray(X, dtype=np.float64)
    zs, activations = [], [a]
    n_layers = len(coefs)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        W = np.asarray(W, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        # z_nj = Σ_k a_nk w_kj + b_j, written as a broadcast sum, not a matmul
        z = (a[:, :, None] * W[None, :, :]).sum(axis=1) + b
        a = activate(out_activation if i == n_layers - 1 else activation, z)
        zs.append(z)
        activations.append(a)
    return zs, activations


def per_sample_loss(out_activation, loss, a, Y, eps):
    """Per-sample loss summed over outputs, straight from the formulas in the spec."""
    if loss == "squared_error":
        return 0.5 * ((a - Y) ** 2).sum(axis=1)
    if loss == "log_loss":
        p = np.clip(a, eps, 1.0 - eps)
        if out_activation == "softmax":
            return -(xlogy(Y, p)).sum(axis=1)
        return -(xlogy(Y, p) + xlogy(1.0 - Y, 1.0 - p)).sum(axis=1)
    if loss == "poisson":
        # y log(y / a) − y + a, with 0 log 0 = 0
        return (xlogy(Y, Y) - xlogy(Y, a) - Y + a).sum(axis=1)
    raise AssertionError(loss)


def reference_loss(
    coefs,
    intercepts,
    X,
    Y,
    *,
    activation,
    out_activation,
    loss,
    alpha=0.0,
    sample_weight=None,
    eps=np.finfo(np.float64).eps,
):
    """Σ_n s_n L_n / Σ_n s_n + 0.5 α Σ_l ‖W_l‖² / Σ_n s_n, in float64."""
    _, acts = reference_forward(coefs, intercepts, X, activation, out_activation)
    Y = np.asarray(Y, dtype=np.float64)
    n = Y.shape[0]
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    losses = per_sample_loss(out_activation, loss, acts[-1], Y, eps)
    penalty = 0.5 * alpha * sum(float((np.asarray(W, dtype=np.float64) ** 2).sum()) for W in coefs)
    return float(((s * losses).sum() + penalty) / s.sum())


def central_differences(loss_fn, coefs, intercepts, step):
    """(L(θ + h e_i) − L(θ − h e_i)) / 2h for every parameter, as lists like coefs/intercepts."""
    coefs = [np.array(W, dtype=np.float64) for W in coefs]
    intercepts = [np.array(b, dtype=np.float64) for b in intercepts]
    grads = []
    for arrays in (coefs, intercepts):
        for arr in arrays:
            g = np.zeros_like(arr)
            flat, gflat = arr.reshape(-1), g.reshape(-1)
            for i in range(flat.size):
                keep = flat[i]
                flat[i] = keep + step
                up = loss_fn(coefs, intercepts)
                flat[i] = keep - step
                down = loss_fn(coefs, intercepts)
                flat[i] = keep
                gflat[i] = (up - down) / (2.0 * step)
            grads.append(g)
    return grads[: len(coefs)], grads[len(coefs) :]


# ---------------------------------------------------------------- random problems
def make_network(rng, layer_sizes, dtype=np.float64, scales=None):
    """Weights N(0, scale²/fan_in), biases N(0, 1/4); ``scales`` one factor per layer."""
    n_layers = len(layer_sizes) - 1
    scales = [1.0] * n_layers if scales is None else scales
    coefs, intercepts = [], []
    for fan_in, fan_out, scale in zip(layer_sizes[:-1], layer_sizes[1:], scales):
        W = scale * rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
        coefs.append(W.astype(dtype))
        intercepts.append((0.5 * rng.standard_normal(fan_out)).astype(dtype))
    return coefs, intercepts


def make_targets(rng, n_samples, n_outputs, out_activation, loss, dtype=np.float64):
    if loss == "poisson":
        Y = rng.poisson(1.0, size=(n_samples, n_outputs)).astype(np.float64)
        Y.flat[0] = 0.0  # exercise 0 log 0 = 0
    elif out_activation == "softmax":
        Y = np.eye(n_outputs)[rng.integers(0, n_outputs, size=n_samples)]
    elif loss == "log_loss":  # logistic: binary / multilabel
        Y = rng.integers(0, 2, size=(n_samples, n_outputs)).astype(np.float64)
    elif out_activation == "identity":
        Y = rng.standard_normal((n_samples, n_outputs))
    else:
        Y = rng.uniform(0.0, 1.0, size=(n_samples, n_outputs))
    return Y.astype(dtype)


def n_outputs_for(out_activation, requested):
    return max(requested, 2) if out_activation == "softmax" else requested


def draw_problem(
    seed,
    *,
    hidden,
    activation,
    out_activation,
    loss,
    n_samples=6,
    n_features=3,
    n_outputs=2,
    alpha=0.0,
    weighted=False,
    dtype=np.float64,
    min_abs_z=1e-3,
    max_tries=200,
):
    """A random problem from a fixed seed; relu networks are redrawn until every
    pre-activation of a relu layer is at least ``min_abs_z`` away from the kink."""
    rng = np.random.default_rng(seed)
    n_outputs = n_outputs_for(out_activation, n_outputs)
    sizes = [n_features, *hidden, n_outputs]
    relu_layers = [
        i
        for i in range(len(sizes) - 1)
        if (out_activation if i == len(sizes) - 2 else activation) == "relu"
    ]
    # Glorot's factor 4 between logistic layers (σ' ≤ 1/4), so that the gradients of
    # the first layers do not vanish below what central differences can resolve
    # (roundoff ≈ eps·|loss|/step, relative to the norm of each gradient array).
    scales = [1.0] * (len(sizes) - 1)
    if activation == "logistic":
        scales[1:-1] = [4.0] * (len(sizes) - 3)
    for _ in range(max_tries):
        coefs, intercepts = make_network(rng, sizes, dtype, scales)
        X = rng.standard_normal((n_samples, n_features)).astype(dtype)
        zs, _ = reference_forward(coefs, intercepts, X, activation, out_activation)
        if all(np.abs(zs[i]).min() >= min_abs_z for i in relu_layers):
            break
    else:  # pragma: no cover - a test-setup failure, not a package failure
        raise RuntimeError("could not draw a relu network away from its kinks")
    Y = make_targets(rng, n_samples, n_outputs, out_activation, loss, dtype)
    sample_weight = rng.uniform(0.2, 2.0, size=n_samples).astype(dtype) if weighted else None
    options = dict(
        activation=activation,
        out_activation=out_activation,
        loss=loss,
        alpha=alpha,
        sample_weight=sample_weight,
    )
    return coefs, intercepts, X, Y, options
