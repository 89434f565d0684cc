"""Inference latency: a plain MTL network vs the controllable (hypernetwork) network.

Lin et al. 2020, Table 1: a single MTL network against the hypernetwork model, at the
training batch size, with the preference changed for every batch.  Measured here, per batch
(forward only, no grad), mean +- std over repeated runs:

* plain        - the registered MTL network with its own weights;
* fixed pref.  - the controllable network after one set_preference (cached weights);
* new pref.    - set_preference(random p) before every batch (hypernetwork + copy + forward);
* PHN (new pref.) with --phn: the unchunked PHN hypernetwork, preference changed every batch.

    python benchmarks/latency.py                                   # LeNet, 2 tasks, batch 256, CPU
    python benchmarks/latency.py --model convnet --tasks 20 --batch 128 --input 3 32 32
    python benchmarks/latency.py --device cuda --phn

Prints parameter counts (target, hypernetwork) and the ratios controllable / plain.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from mtlpareto.models import build_model
from mtlpareto.models.hypernet import ControllableModel, FunctionalTarget, HyperNetwork
from mtlpareto.training.run_state import set_threads


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def time_modes(steps: dict, batches: int, repeats: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Per-batch milliseconds of each `steps[mode](i)`, one value per repeat.

    The modes take turns within every repeat, so a load change on a shared machine hits all
    of them alike instead of biasing whichever ran last.
    """
    for step in steps.values():
        for i in range(warmup):
            step(i)
    times: dict[str, list[float]] = {mode: [] for mode in steps}
    for r in range(repeats):
        for mode, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            for i in range(batches):
                step(warmup + r * batches + i)
            _sync(device)
            times[mode].append((time.perf_counter() - start) * 1000.0 / batches)
    return times


def controllable(model: str, tasks: list[int], shape: tuple[int, ...], device: torch.device, **hyper) -> ControllableModel:
    target = FunctionalTarget(lambda: build_model(model, tasks, shape))
    net = HyperNetwork(len(tasks), target.shapes, target.init_std, **hyper)
    return ControllableModel(target, net).to(device).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--classes", type=int, default=10, help="outputs per task head")
    parser.add_argument("--input", type=int, nargs="+", default=[1, 28, 28], help="input shape C H W")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=20, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs (mean +- std over them)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--chunk-size", default="auto", help="'auto', an integer, or 'none' (one projection per tensor)")
    parser.add_argument("--phn", action="store_true", help="also time PHN's unchunked hypernetwork (hidden 100)")
    args = parser.parse_args()

    set_threads(args.threads)  # torch and numpy BLAS
    torch.manual_seed(0)
    device = torch.device(args.device)
    shape = tuple(args.input)
    tasks = [args.classes] * args.tasks
    chunk = None if args.chunk_size == "none" else (args.chunk_size if args.chunk_size == "auto" else int(args.chunk_size))

    plain = build_model(args.model, tasks, shape).to(device).eval()
    ctrl = controllable(args.model, tasks, shape, device, hidden_dim=args.hidden_dim, embedding_dim=args.embedding_dim, chunk_size=chunk)
    x = torch.randn(args.batch, *shape, device=device)
    rng = np.random.default_rng(0)
    prefs = torch.from_numpy(rng.dirichlet(np.ones(args.tasks), size=args.warmup + args.repeats * args.batches)).float()

    def changing(model: ControllableModel):
        def step(i: int):
            model.set_preference(prefs[i % len(prefs)])
            return model(x)
        return step

    ctrl.set_preference(torch.full((args.tasks,), 1.0 / args.tasks))
    steps = {
        "plain MTL network": lambda i: plain(x),
        "controllable, fixed preference": lambda i: ctrl(x),
        "controllable, new preference every batch": changing(ctrl),
    }
    counts = {"target (plain) network": sum(p.numel() for p in plain.parameters()), "controllable hypernetwork": ctrl.hypernet_parameters}
    if args.phn:
        phn = controllable(args.model, tasks, shape, device, hidden_dim=100, chunk_size=None)
        steps["PHN hypernetwork, new preference every batch"] = changing(phn)
        counts["PHN hypernetwork"] = phn.hypernet_parameters
    rows = list(time_modes(steps, args.batches, args.repeats, args.warmup, device).items())

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"{args.model}, {args.tasks} tasks, batch {args.batch}, input {shape}, {name}; "
          f"per-batch forward latency over {args.repeats} runs of {args.batches} batches")
    for label, n in counts.items():
        print(f"  parameters, {label:<28} {n:>12,}")
    base = statistics.mean(rows[0][1])
    print(f"  {'mode':<46} {'ms / batch':>18} {'ratio to plain':>15}")
    for label, times in rows:
        mean, std = statistics.mean(times), statistics.stdev(times)
        print(f"  {label:<46} {mean:>9.3f} ± {std:<6.3f} {mean / base:>15.2f}")


if __name__ == "__main__":
    main()
