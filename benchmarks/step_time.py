"""Per-step training time of MTL methods, as ratios to linear scalarisation, in one run.

Seed 001 Table 2's claim: exact MGDA needs a gradient per task w.r.t. all shared parameters,
so its cost grows with the number of tasks T; MGDA-UB needs gradients only w.r.t. the shared
representation and one encoder backward, so it stays close to a plain weighted step.

Besides the registered methods, two reference steps are timed in the same run:
`libmtl_mgda` (what LibMTL-style code does: T backward passes for the shared gradients, an
iteration-capped Frank-Wolfe solve, then a second backward of sum_t w_t L_t; it normalises no
gradient, so `mgda_none`, exact MGDA without normalisation, is the like-for-like comparison;
`mgda` uses the pipeline's default loss+ normalisation) and
`mgda_ub_vmap` (MGDA-UB with the representation Jacobian as one vmapped backward through
all heads, this project's path before each head got its own copy of z).

    python benchmarks/step_time.py                       # T=2, LeNet, CPU
    python benchmarks/step_time.py --tasks 2 3 10 40 --out results/benchmarks/step_time
    python benchmarks/step_time.py --device cuda --tasks 2 3 10 40

Prints a table and, with --out, writes OUT.csv and OUT.png (time ratio vs T).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mtlpareto.methods import StepContext, build_method, standalone_options
from mtlpareto.models import build_model
from mtlpareto.solvers import min_norm_weights
from mtlpareto.training.loop import resolve_jacobian_mode
from mtlpareto.training.run_state import set_threads


# Inputs of the experiments the models come from: MultiMNIST for LeNet, CelebA for ResNet-18.
INPUT_SHAPES = {"lenet": (1, 28, 28), "resnet18": (3, 64, 64)}




class LibMTLStyleMGDA:
    """Reference step: T backward passes, Frank-Wolfe (250 iterations), a second backward."""

    uses_representation = False

    def __init__(self, n_tasks: int) -> None:
        self.n_tasks = n_tasks

    def parameters(self) -> list:
        return []

    def backward(self, ctx: StepContext) -> torch.Tensor:
        weights = min_norm_weights(ctx.shared_jacobian().detach(), method="frank_wolfe", max_iter=250).to(ctx.losses)
        ctx.backward_weighted(weights)
        return weights


def make_method(name: str, n_tasks: int):
    if name == "libmtl_mgda":
        return LibMTLStyleMGDA(n_tasks)
    if name == "mgda_none":  # exact MGDA without gradient normalisation, as the LibMTL-style step
        return build_method({"name": "mgda", "normalization": "none"}, n_tasks=n_tasks)
    if name == "mgda_ub_vmap":
        method = build_method({"name": "mgda_ub"}, n_tasks=n_tasks)
        method.uses_representation = False  # no head copies: the vmapped Jacobian through all heads
        return method
    return build_method({"name": name}, n_tasks=n_tasks, **standalone_options(name, n_tasks))


def _setup(name: str, n_tasks: int, model_name: str, batch: int, device: torch.device):
    torch.manual_seed(0)
    shape = INPUT_SHAPES.get(model_name, (1, 28, 28))
    model = build_model(model_name, [10] * n_tasks, shape).to(device)
    method = make_method(name, n_tasks)
    opt = torch.optim.SGD(list(model.parameters()) + method.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch, n_tasks), device=device)
    return model, method, opt, x, y


def _step(model, method, opt, x, y, i: int, jacobian: str, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    outputs, z, copies = model.forward_for_step(x, method.uses_representation)  # the training loop's forward
    losses = torch.stack([F.cross_entropy(o, y[:, t]) for t, o in enumerate(outputs)])
    method.backward(StepContext(model, losses, z, step=i, jacobian=jacobian, task_representations=copies))
    opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_methods(names: list[str], n_tasks: int, model_name: str, batch: int, steps: int, warmup: int, device: torch.device, jacobian: str) -> dict[str, list[float]]:
    """Step times per method, the methods taking turns step by step so that the machine's
    load changes affect them alike (ratios are then measured in one run)."""
    setups = {name: _setup(name, n_tasks, model_name, batch, device) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + steps):
        for name, (model, method, opt, x, y) in setups.items():
            seconds = _step(model, method, opt, x, y, i, jacobian, device)
            if i >= warmup:
                times[name].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["linear", "mgda", "mgda_ub", "libmtl_mgda", "mgda_ub_vmap"])
    parser.add_argument("--tasks", nargs="+", type=int, default=[2])
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline", default="linear", help="method the ratios are relative to")
    parser.add_argument("--jacobian", nargs="+", default=["auto"], choices=["auto", "batched", "loop"],
                        help="per-task gradient strategies to time (auto: loop on CPU, batched on CUDA)")
    parser.add_argument("--out", type=Path, default=None, help="write OUT.csv and OUT.png")
    args = parser.parse_args()
    set_threads(args.threads)  # torch and numpy BLAS
    device = torch.device(args.device)

    rows = []
    for n_tasks in args.tasks:
        medians = {}
        for mode in dict.fromkeys(resolve_jacobian_mode(j, device) for j in args.jacobian):
            for name, times in time_methods(args.methods, n_tasks, args.model, args.batch, args.steps, args.warmup, device, mode).items():
                medians[(name, mode)] = statistics.median(times)
        modes = list(dict.fromkeys(resolve_jacobian_mode(j, device) for j in args.jacobian))
        for mode in modes:
            base = medians[(args.baseline, mode)]
            for name in args.methods:
                rows.append({"device": args.device, "model": args.model, "batch": args.batch, "tasks": n_tasks, "jacobian": mode, "method": name,
                             "median_step_ms": round(1000 * medians[(name, mode)], 3), "ratio_to_" + args.baseline: round(medians[(name, mode)] / base, 3)})
    header = f"{'T':>4} {'jacobian':<8} {'method':<14} {'ms/step':>10} {'ratio':>7}"
    print(f"device={args.device} model={args.model} batch={args.batch} threads={args.threads} steps={args.steps} (median)")
    print(header)
    for r in rows:
        print(f"{r['tasks']:>4} {r['jacobian']:<8} {r['method']:<14} {r['median_step_ms']:>10.2f} {r['ratio_to_' + args.baseline]:>7.2f}")

    if args.out:
        import pandas as pd

        from mtlpareto.figures import save_figure, setup_matplotlib

        setup_matplotlib()
        import matplotlib.pyplot as plt
        import seaborn as sns

        df = pd.DataFrame(rows)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.out.with_suffix(".csv"), index=False)
        sns.set_theme(style="whitegrid", context="paper")
        fig, ax = plt.subplots(figsize=(4.8, 3.6))
        sns.lineplot(data=df, x="tasks", y="ratio_to_" + args.baseline, hue="method", style="jacobian", marker="o", ax=ax)
        ax.set_xscale("log")
        ax.set_xticks(sorted(df.tasks.unique()), labels=[str(t) for t in sorted(df.tasks.unique())])
        ax.set_xlabel("number of tasks T")
        ax.set_ylabel(f"step time / {args.baseline} step time")
        ax.set_title(f"{args.model}, batch {args.batch}, {args.device}")
        fig.tight_layout()
        save_figure(fig, [args.out.with_suffix(".png")])
        print(f"wrote {args.out.with_suffix('.csv')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
