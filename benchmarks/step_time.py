"""Per-step training time of MTL methods, as ratios to linear scalarisation, in one run.

Seed 001 Table 2's claim: exact MGDA needs a gradient per task w.r.t. all shared parameters,
so its cost grows with the number of tasks T; MGDA-UB needs gradients only w.r.t. the shared
representation and one encoder backward, so it stays close to a plain weighted step.

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

from mtlpareto.methods import METHODS, StepContext, build_method
from mtlpareto.training.loop import resolve_jacobian_mode
from mtlpareto.models import build_model


def _method_kwargs(name: str, n_tasks: int) -> dict:
    sweep = METHODS.get(name).sweep
    if sweep == "preferences":
        return {"preference": tuple([1.0 / n_tasks] * n_tasks)}
    if sweep == "tasks":
        return {"task": 0}
    return {}


def time_method(name: str, n_tasks: int, model_name: str, batch: int, steps: int, warmup: int, device: torch.device, jacobian: str) -> list[float]:
    torch.manual_seed(0)
    model = build_model(model_name, [10] * n_tasks, (1, 28, 28)).to(device)
    method = build_method({"name": name}, n_tasks=n_tasks, **_method_kwargs(name, n_tasks))
    opt = torch.optim.SGD(list(model.parameters()) + method.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch, n_tasks), device=device)
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        z = model.encode(x)
        losses = torch.stack([F.cross_entropy(o, y[:, t]) for t, o in enumerate(model.decode(z))])
        method.backward(StepContext(model, losses, z, step=i, jacobian=jacobian))
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["linear", "mgda", "mgda_ub"])
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
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rows = []
    for n_tasks in args.tasks:
        medians = {}
        for jac in args.jacobian:
            mode = resolve_jacobian_mode(jac, device)
            for name in args.methods:
                if (name, mode) not in medians:
                    medians[(name, mode)] = statistics.median(time_method(name, n_tasks, args.model, args.batch, args.steps, args.warmup, device, mode))
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
