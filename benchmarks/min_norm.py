"""Time of one exact min-norm solve, the Gram matrix included, as MGDA calls it per step.

    python benchmarks/min_norm.py [--tasks 2 10 40] [--dim 21330] [--repeats 50]

Gradients are random (nearly orthogonal: every task in the support, the solver's worst case)
or correlated (a shared component plus noise, as real task gradients are); "warm" starts from
the previous solve's support, as the MGDA methods do from step to step.  Prints the median
milliseconds per call on one CPU thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mtlpareto.solvers import min_norm_weights
from mtlpareto.solvers.min_norm import gram_float64
from mtlpareto.training.run_state import set_threads


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", type=int, default=[2, 10, 40])
    parser.add_argument("--dim", type=int, default=21330, help="shared parameters (LeNet's encoder: 21,330)")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    set_threads(1)  # torch and numpy BLAS
    g = torch.Generator().manual_seed(0)
    print(f"{'T':>4} {'gradients':<11} {'gram ms':>8} {'cold ms':>8} {'warm ms':>8} {'support':>8}")
    for t in args.tasks:
        for kind in ("random", "correlated"):
            grads = torch.randn(t, args.dim, generator=g)
            if kind == "correlated":
                grads = grads + 3.0 * torch.randn(1, args.dim, generator=g)
            weights = min_norm_weights(grads)
            support = torch.nonzero(weights > 0).flatten().tolist()
            gram = median_ms(lambda: gram_float64(grads), args.repeats)
            cold = median_ms(lambda: min_norm_weights(grads), args.repeats)
            warm = median_ms(lambda: min_norm_weights(grads, start=support), args.repeats)
            print(f"{t:>4} {kind:<11} {gram:>8.2f} {cold:>8.2f} {warm:>8.2f} {len(support):>8}")


if __name__ == "__main__":
    main()
