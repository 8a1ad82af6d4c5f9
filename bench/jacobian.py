"""Forward- against reverse-mode Jacobians: the cost crossover.

A forward-mode sweep pushes one input direction through the network, a
reverse-mode sweep pulls one output direction back, each for about one
multiply-add per weight. So forward mode costs n_inputs sweeps per sample and
reverse mode n_outputs: forward should win with few inputs and many outputs,
reverse with many inputs and few outputs, and they should cross near
n_inputs = n_outputs on a network whose hidden layers are the same both ways.

Run alone: ``python -m bench.jacobian [--dtype float32] [--samples N]``; it
prints one row per network. ``crossover()`` returns the records for the suite.
"""

import argparse

import numpy as np

import fastbp

from .worker import best_time

HIDDEN = (64, 64)
# (n_inputs, n_outputs): the two headline shapes, then a sweep of the inputs at
# a fixed number of outputs to find where the modes cross.
HEADLINE = [(4, 256), (256, 4)]
SWEEP_OUTPUTS = 32
SWEEP_INPUTS = (2, 8, 16, 32, 64, 128, 512)


def _network(n_inputs, n_outputs, hidden, dtype, rng):
    sizes = [n_inputs, *hidden, n_outputs]
    coefs = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    intercepts = [(0.1 * rng.standard_normal(b)).astype(dtype) for b in sizes[1:]]
    return coefs, intercepts


def crossover(dtype="float64", n_samples=64, repeats=5, hidden=HIDDEN, shapes=None,
              activation="tanh", out_activation="identity"):
    """Seconds for the Jacobians of n_samples points by each mode, one record per network.

    Each record: kind='jacobian', n_inputs, n_outputs, hidden, dtype, n_samples,
    forward_s, reverse_s (best of `repeats`), reverse_over_forward and faster
    ('forward' or 'reverse'). The first call of each mode compiles or loads
    the kernels and is not timed.
    """
    dtype = np.dtype(dtype)
    if shapes is None:
        shapes = HEADLINE + [(n_in, SWEEP_OUTPUTS) for n_in in SWEEP_INPUTS]
    rng = np.random.default_rng(0)
    records = []
    for n_inputs, n_outputs in shapes:
        coefs, intercepts = _network(n_inputs, n_outputs, hidden, dtype, rng)
        X = rng.standard_normal((n_samples, n_inputs)).astype(dtype)
        options = dict(intercepts=intercepts, activation=activation, out_activation=out_activation)
        seconds = {}
        for mode in ("forward", "reverse"):
            fastbp.jacobian(coefs, X[:1], mode=mode, **options)
            seconds[mode] = best_time(lambda: fastbp.jacobian(coefs, X, mode=mode, **options), repeats)
        records.append({
            "kind": "jacobian", "n_inputs": n_inputs, "n_outputs": n_outputs, "hidden": list(hidden),
            "dtype": dtype.name, "n_samples": n_samples,
            "forward_s": seconds["forward"], "reverse_s": seconds["reverse"],
            "reverse_over_forward": seconds["reverse"] / seconds["forward"],
            "faster": "forward" if seconds["forward"] < seconds["reverse"] else "reverse",
        })
    return records


def table(records):
    """A markdown table of crossover() records."""
    lines = ["| inputs | hidden | outputs | dtype | forward ms | reverse ms | reverse / forward | faster |",
             "|---:|---|---:|---|---:|---:|---:|---|"]
    for r in records:
        lines.append(
            f"| {r['n_inputs']} | {'-'.join(map(str, r['hidden']))} | {r['n_outputs']} | {r['dtype']} "
            f"| {1e3 * r['forward_s']:.2f} | {1e3 * r['reverse_s']:.2f} | {r['reverse_over_forward']:.2f} "
            f"| {r['faster']} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.jacobian", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--samples", type=int, default=64, help="points whose Jacobians are timed")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    records = crossover(args.dtype, args.samples, args.repeats)
    print(f"Jacobians of {args.samples} points, tanh hidden layers {'-'.join(map(str, HIDDEN))}, "
          f"identity output; best of {args.repeats}")
    print(table(records))


if __name__ == "__main__":
    main()
