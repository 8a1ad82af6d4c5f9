"""One runner per library: set up a model, run one training epoch, predict.

Every runner trains the same network (relu hidden layers, Adam or sgd,
learning rate 1e-3, the workload's batch size) on the same data.
PyTorch and JAX are optional (``pip install -e '.[peers]'``).
"""

import importlib.util
import time
import warnings

import numpy as np
import scipy.sparse as sp

from .workloads import load


def available(lib):
    module = {"torch": "torch", "jax": "jax"}.get(lib)
    return module is None or importlib.util.find_spec(module) is not None


class _EstimatorRunner:
    """fastbp's and scikit-learn's estimators. The epoch is timed as a fit of
    `epochs_per_call` epochs, divided by that count: the cost of an epoch in
    a fit, validation and set-up spread over its epochs. One partial_fit
    call, which validates its input every epoch, is timed apart. Where the
    estimator takes callbacks (fastbp's, with sklearn.callback), the epochs of
    a fit are also clocked alone, as PyTorch's and JAX's epochs are timed."""

    def __init__(self, workload, dtype, threads):
        X, y = load(workload.data, dtype)
        self.X, self.y = X, y
        classifier, regressor = self.classes()
        cls = regressor if workload.task == "regression" else classifier
        # Ten epochs per fit (two on the large workloads): the fit's set-up, about 1 ms for
        # fastbp on digits (input checks, label encoding, initial weights), is spread over them.
        self.epochs_per_call = 10 if X.shape[0] * sum(workload.hidden) < 5e6 else 2
        params = dict(hidden_layer_sizes=workload.hidden, solver=workload.solver, batch_size=workload.batch_size,
                      learning_rate_init=1e-3, random_state=0, **self.extra())
        # n_iter_no_change beyond max_iter: every fit runs all its epochs.
        self.model = cls(max_iter=self.epochs_per_call, n_iter_no_change=self.epochs_per_call + 1, **params)
        self.clock = _EpochClock()
        self.clocked = (cls(max_iter=self.epochs_per_call, n_iter_no_change=self.epochs_per_call + 1, **params)
                        .set_callbacks(self.clock) if self.clock.supported(cls) else None)
        self.incremental = cls(**params)
        kwargs = {} if workload.task == "regression" else {"classes": np.unique(y)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.fit(X, y)
            self.incremental.partial_fit(X, y, **kwargs)

    def epoch(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.fit(self.X, self.y)

    def epochs_alone(self):
        """Seconds a fit spends in its epochs, begin to end, set-up left out
        (only where ``self.clocked`` is not None)."""
        self.clock.seconds = 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clocked.fit(self.X, self.y)
        return self.clock.seconds

    def partial_fit(self):
        self.incremental.partial_fit(self.X, self.y)

    def predict(self):
        self.model.predict(self.X)


class _EpochClock:
    """A sklearn.callback callback that adds up the time between each epoch's
    begin and end hooks: the shuffle, the epoch and its bookkeeping."""

    def __init__(self):
        self.seconds = 0.0
        self._start = None

    @staticmethod
    def supported(estimator_class):
        return importlib.util.find_spec("sklearn.callback") is not None and hasattr(estimator_class, "set_callbacks")

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        if context.task_name == "epoch":
            self._start = time.perf_counter()

    def on_fit_task_end(self, estimator, context):
        if context.task_name == "epoch":
            self.seconds += time.perf_counter() - self._start


class FastbpRunner(_EstimatorRunner):
    def __init__(self, workload, dtype, threads, backend):
        self.backend = backend
        super().__init__(workload, dtype, threads)

    def classes(self):
        from fastbp import MLPClassifier, MLPRegressor

        return MLPClassifier, MLPRegressor

    def extra(self):
        return {"backend": self.backend}


class SklearnRunner(_EstimatorRunner):
    def classes(self):
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        return MLPClassifier, MLPRegressor

    def extra(self):
        return {}


def _dense(X, y):
    if sp.issparse(X):
        raise NotImplementedError("peers are not run on sparse input")
    return X, y


class TorchRunner:
    epochs_per_call = 1

    def __init__(self, workload, dtype, threads):
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        X, y = _dense(*load(workload.data, dtype))
        tdtype = torch.float32 if dtype == np.float32 else torch.float64
        self.X = torch.from_numpy(np.ascontiguousarray(X)).to(tdtype)
        regression = workload.task == "regression"
        self.y = torch.from_numpy(y).to(tdtype).reshape(-1, 1) if regression else torch.from_numpy(y).long()
        n_out = 1 if regression else int(y.max()) + 1
        units = [X.shape[1], *workload.hidden, n_out]
        layers = []
        for i, (a, b) in enumerate(zip(units[:-1], units[1:])):
            layers.append(torch.nn.Linear(a, b, dtype=tdtype))
            if i < len(units) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.loss = torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss()
        opt = torch.optim.Adam if workload.solver == "adam" else torch.optim.SGD
        self.opt = opt(self.model.parameters(), lr=1e-3)
        self.batch = workload.batch_size
        self.torch = torch
        self.epoch()

    def epoch(self):
        perm = self.torch.randperm(self.X.shape[0])
        for start in range(0, self.X.shape[0], self.batch):
            idx = perm[start : start + self.batch]
            self.opt.zero_grad()
            self.loss(self.model(self.X[idx]), self.y[idx]).backward()
            self.opt.step()

    def predict(self):
        with self.torch.no_grad():
            self.model(self.X)


class JaxRunner:
    """A jitted epoch: lax.scan over the full minibatches, then the remainder."""

    epochs_per_call = 1

    def __init__(self, workload, dtype, threads):
        import jax

        jax.config.update("jax_enable_x64", dtype == np.float64)
        import jax.numpy as jnp

        X, y = _dense(*load(workload.data, dtype))
        regression = workload.task == "regression"
        n_out = 1 if regression else int(y.max()) + 1
        self.X = jnp.asarray(X)
        self.Y = jnp.asarray(y.reshape(-1, 1).astype(dtype) if regression else np.eye(n_out, dtype=dtype)[y])
        units = [X.shape[1], *workload.hidden, n_out]
        rng = np.random.default_rng(0)
        params = []
        for a, b in zip(units[:-1], units[1:]):
            bound = np.sqrt(6 / (a + b))
            params.append((jnp.asarray(rng.uniform(-bound, bound, (a, b)).astype(dtype)), jnp.zeros(b, dtype)))
        self.state = (params, jax.tree_util.tree_map(jnp.zeros_like, params),
                      jax.tree_util.tree_map(jnp.zeros_like, params), jnp.asarray(0, jnp.int32))
        self.batch = workload.batch_size
        self.key = jax.random.PRNGKey(0)
        self.jax, self.jnp = jax, jnp

        def forward(params, x):
            for w, b in params[:-1]:
                x = jax.nn.relu(x @ w + b)
            w, b = params[-1]
            return x @ w + b

        def loss(params, x, y):
            out = forward(params, x)
            if regression:
                return 0.5 * jnp.mean((out - y) ** 2)
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(out), axis=1))

        def step(state, batch):
            params, m, v, t = state
            grads = jax.grad(loss)(params, *batch)
            t = t + 1
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
            v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
            lr = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            params = jax.tree_util.tree_map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-8), params, m, v)
            return (params, m, v, t), None

        n = X.shape[0]
        n_full = n // self.batch

        def epoch(state, key):
            perm = jax.random.permutation(key, n)
            full = perm[: n_full * self.batch].reshape(n_full, self.batch)
            state, _ = jax.lax.scan(step, state, (self.X[full], self.Y[full]))
            if n_full * self.batch < n:
                rest = perm[n_full * self.batch :]
                state, _ = step(state, (self.X[rest], self.Y[rest]))
            return state

        self._epoch = jax.jit(epoch)
        self._forward = jax.jit(forward)
        self.epoch()

    def epoch(self):
        self.key, sub = self.jax.random.split(self.key)
        self.state = self._epoch(self.state, sub)
        self.jax.block_until_ready(self.state)

    def predict(self):
        self._forward(self.state[0], self.X).block_until_ready()


def make_runner(lib, workload, dtype, threads):
    if lib in ("loop", "vectorized"):
        return FastbpRunner(workload, dtype, threads, lib)
    return {"sklearn": SklearnRunner, "torch": TorchRunner, "jax": JaxRunner}[lib](workload, dtype, threads)
