"""Training-step time of MTL methods on a small dense model, as ratios to uniform, and epoch estimates.

Sizes the quick profile's dense experiment: a SegNet (or SegNet-MTAN) of width `--width` on
`--size` H W images with three NYUv2-like tasks (13-class segmentation, depth, normals), one
thread (what one Snakemake training job gets), per-task gradients by T backward passes (the
CPU default, `jacobian: auto`).  A step is forward, the method's backward and an Adam step.

    python benchmarks/dense_step_time.py                                  # 96x128, width 0.25
    python benchmarks/dense_step_time.py --size 64 96 --width 0.25 0.5 --images 300
    python benchmarks/dense_step_time.py --architecture mtan --methods uniform mgda pcgrad

Methods are stepped round-robin, so load changes on a shared machine hit all of them alike.
Prints, per configuration and method: seconds per step (median and min), the ratio to uniform, and the
estimated seconds of one epoch over `--images` training images plus one evaluation pass over
`--eval-images` images.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

from mtlpareto.errors import ConfigError
from mtlpareto.methods import StepContext, build_method, standalone_options
from mtlpareto.models import build_model
from mtlpareto.tasks.classification import ClassificationTask
from mtlpareto.training.run_state import set_threads

N_CLASSES = 13
SEGMENTATION = ClassificationTask("semantic", N_CLASSES, ignore_index=-1)


def dense_losses(outputs: list[torch.Tensor], labels: torch.Tensor, depth: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    # Stand-ins for the dense task losses: CE with ignore index, L1 on valid depth, 1 - cosine.
    valid = (depth > 0).float()
    depth_loss = ((outputs[1] - depth).abs() * valid).sum() / valid.sum().clamp_min(1)
    normal_loss = 1 - F.cosine_similarity(outputs[2], normals, dim=1).mean()
    return torch.stack([SEGMENTATION.loss(outputs[0], labels), depth_loss, normal_loss])




class MethodRun:
    """One method's model, optimiser and batch, stepped on demand (so methods can be interleaved)."""

    def __init__(self, method_name: str, architecture: str, width: float, size: tuple[int, int], batch: int) -> None:
        torch.manual_seed(0)
        h, w = size
        self.model = build_model("segnet", [N_CLASSES, 1, 3], (3, h, w), architecture=architecture, width=width)
        self.method = build_method({"name": method_name}, n_tasks=3, **standalone_options(method_name, 3))
        self.optimizer = torch.optim.Adam(list(self.model.parameters()) + self.method.parameters(), lr=1e-4)
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(batch, 3, h, w, generator=g)
        self.labels = torch.randint(-1, N_CLASSES, (batch, h, w), generator=g)
        self.depth = torch.rand(batch, 1, h, w, generator=g) * 5
        self.normals = F.normalize(torch.randn(batch, 3, h, w, generator=g), dim=1)
        self.steps = 0
        self.times: list[float] = []

    def step(self, record: bool) -> None:
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        outputs, z = self.model.forward_with_representation(self.x)
        losses = dense_losses(outputs, self.labels, self.depth, self.normals)
        self.method.backward(StepContext(self.model, losses, z, step=self.steps, jacobian="loop"))
        self.optimizer.step()
        self.steps += 1
        if record:
            self.times.append(time.perf_counter() - start)


def time_methods(names: list[str], architecture: str, width: float, size: tuple[int, int], batch: int, steps: int, warmup: int) -> dict[str, MethodRun | str]:
    """Each method's run after `warmup` + `steps` steps, taken round-robin so that load changes
    on a shared machine hit every method alike; a method that cannot run maps to the reason."""
    runs: dict[str, MethodRun | str] = {}
    for name in names:
        try:
            run = MethodRun(name, architecture, width, size, batch)
            run.step(record=False)  # fails at once for e.g. MGDA-UB under MTAN (no representation)
            runs[name] = run
        except ConfigError as err:
            runs[name] = str(err)
    active = [r for r in runs.values() if isinstance(r, MethodRun)]
    warmup = max(warmup, 1)  # the first step above is one
    for i in range(warmup - 1 + steps):
        for run in active:
            run.step(record=i >= warmup - 1)
    return runs


@torch.no_grad()
def time_evaluation(architecture: str, width: float, size: tuple[int, int], batch: int) -> float:
    """Seconds per image of a no-grad forward pass in eval mode."""
    torch.manual_seed(0)
    h, w = size
    model = build_model("segnet", [N_CLASSES, 1, 3], (3, h, w), architecture=architecture, width=width).eval()
    x = torch.rand(batch, 3, h, w)
    model(x)  # warm-up
    start = time.perf_counter()
    for _ in range(3):
        model(x)
    return (time.perf_counter() - start) / (3 * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["uniform", "mgda_ub", "mgda", "pcgrad"])
    parser.add_argument("--architecture", default="hard_sharing")
    parser.add_argument("--size", nargs=2, type=int, action="append", metavar=("H", "W"), help="input size (repeatable); default 96 128")
    parser.add_argument("--width", nargs="+", type=float, default=[0.25])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=300, help="training images per epoch, for the estimate")
    parser.add_argument("--eval-images", type=int, default=200, help="val + test images scored per run, for the estimate")
    args = parser.parse_args()
    set_threads(args.threads)  # torch and numpy BLAS
    sizes = [tuple(s) for s in (args.size or [[96, 128]])]
    baseline = args.methods[0]
    print(f"SegNet ({args.architecture}), 3 tasks, batch {args.batch}, {args.threads} thread(s), {args.steps} steps per method "
          f"(interleaved); s/step: median (min); ratios of medians to {baseline}; epoch = {args.images} training images, "
          f"eval = {args.eval_images} images")
    print(f"{'size':>8} {'width':>5} {'method':>11} {'s/step':>15} {'ratio':>6} {'epoch s':>8} {'eval s':>7}")
    for size in sizes:
        for width in args.width:
            eval_seconds = time_evaluation(args.architecture, width, size, args.batch) * args.eval_images
            runs = time_methods(args.methods, args.architecture, width, size, args.batch, args.steps, args.warmup)
            base = runs[baseline]
            if not isinstance(base, MethodRun):
                raise SystemExit(f"baseline {baseline} cannot run: {base}")
            base_median = statistics.median(base.times)
            for name, run in runs.items():
                label = f"{size[0]:>3}x{size[1]:<4} {width:>5} {name:>11}"
                if not isinstance(run, MethodRun):
                    print(f"{label}  n/a: {run}")
                    continue
                median = statistics.median(run.times)
                epoch = median * math.ceil(args.images / args.batch)
                print(f"{label} {median:7.3f} ({min(run.times):5.3f}) {median / base_median:6.2f} {epoch:8.1f} {eval_seconds:7.1f}", flush=True)


if __name__ == "__main__":
    main()
