"""Dense predictions next to the ground truth: one test image, every task, every method.

The first row is the input image and each task's ground truth; each further row is one
method's prediction (its first seed; for a grid, the point chosen on validation), so a
reader sees at a glance what the numbers of the dense table mean.  Segmentation as class
colours, depth and disparity on the ground truth's colour scale, normals as RGB = (n + 1) / 2,
instance offsets as their length; invalid ground-truth pixels are grey.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mtlpareto.figures import FIGURES, setup_matplotlib
from mtlpareto.figures.common import method_label
from mtlpareto.metrics.hypervolume import run_records

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd

IMAGE_INDEX = 0  # the test image shown


def _render(type_name: str, value: np.ndarray, reference: np.ndarray | None) -> tuple[np.ndarray, dict]:
    """An [H, W] or [H, W, 3] array to show and imshow's keyword arguments."""
    if type_name == "segmentation":
        labels = value if value.ndim == 2 else value.argmax(0)
        return np.ma.masked_less(labels, 0), {"cmap": "tab20", "vmin": 0, "vmax": 19, "interpolation": "nearest"}
    if type_name == "depth":
        depth = value[0] if value.ndim == 3 else value
        ref = (reference[0] if reference.ndim == 3 else reference) if reference is not None else depth
        valid = ref[ref > 0]
        lo, hi = (float(valid.min()), float(valid.max())) if valid.size else (0.0, 1.0)
        shown = np.ma.masked_where(depth <= 0, depth) if reference is None else depth  # 0: invalid ground truth only
        return shown, {"cmap": "viridis", "vmin": lo, "vmax": hi}
    if type_name == "surface_normals":
        n = value / np.clip(np.linalg.norm(value, axis=0, keepdims=True), 1e-8, None)
        rgb = np.clip((n.transpose(1, 2, 0) + 1) / 2, 0, 1)
        if reference is None:  # ground truth: zeros mark invalid pixels
            rgb[np.abs(value).sum(0) == 0] = 0.5
        return rgb, {}
    if type_name == "instance_offsets":
        return np.linalg.norm(value, axis=0), {"cmap": "magma"}
    raise ValueError(f"dense_predictions: no picture for task type {type_name!r}")


def _show(ax: Any, picture: tuple[np.ndarray, dict]) -> None:
    image, kwargs = picture
    ax.set_facecolor("0.6")  # masked (invalid) pixels
    ax.imshow(image, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])


@FIGURES.register("dense_predictions")
def dense_predictions_figure(df: "pd.DataFrame", title: str) -> "plt.Figure":
    setup_matplotlib()
    import matplotlib.pyplot as plt
    import torch

    from mtlpareto.data.store import load_processed, prepare_inputs
    from mtlpareto.metrics.aggregate import method_summary
    from mtlpareto.tasks import index_targets, task_targets
    from mtlpareto.training.evaluate import load_trained_model

    from mtlpareto.data import dataset_tasks

    records = {(r["method"], r["variant"], r["seed"]): r for r in run_records(df)}
    first = next(iter(records.values()))
    data = load_processed(first["files"]["dataset"])
    _, spec = load_trained_model(first["files"]["checkpoint"], data)
    task_objects = dataset_tasks(spec["dataset"])  # the heads' order
    tasks = [t.name for t in task_objects]
    types = {t.name: t.type_name for t in task_objects}
    primary = df[df.primary].metric.iloc[0]
    chosen = method_summary(df, primary).drop_duplicates("method")  # the entry each table row shows
    x, y = data["test"]
    index = torch.tensor([IMAGE_INDEX])
    image = prepare_inputs(x[index], {k: v for k, v in data.get("meta", {}).items() if k not in ("mean", "std")})[0]

    predictions: dict[tuple, list] = {}  # run key -> its outputs on the image (each model run once)

    def predict(key: tuple) -> list:
        if key not in predictions:
            model, _ = load_trained_model(records[key]["files"]["checkpoint"], data)
            with torch.no_grad():
                predictions[key] = [out[0].float().numpy() for out in model(prepare_inputs(x[index], data.get("meta", {})))]
        return predictions[key]

    rows = []
    for entry in chosen.itertuples():
        if entry.method == "single_task":
            # One model per task: each column from the model trained for that task.
            keys = {t: ("single_task", f"task-{t}", min(s for m, v, s in records if m == "single_task" and v == f"task-{t}")) for t in tasks}
        else:
            seed = min(s for m, v, s in records if m == entry.method and v == entry.variant)
            keys = {t: (entry.method, entry.variant, seed) for t in tasks}
        rows.append((method_label(entry.method), {t: predict(keys[t])[tasks.index(t)] for t in tasks}))

    truth_list = task_targets(index_targets(y, index), task_objects)
    truth = {t: v[0].float().numpy() for t, v in zip(tasks, truth_list)}
    fig, axes = plt.subplots(len(rows) + 1, len(tasks) + 1, figsize=(2.2 * (len(tasks) + 1), 1.8 * (len(rows) + 1)), squeeze=False)
    axes[0, 0].imshow(np.clip(image.permute(1, 2, 0).numpy(), 0, 1))
    axes[0, 0].set_title("input", fontsize=9)
    axes[0, 0].set_ylabel("ground truth", fontsize=8)
    for j, t in enumerate(tasks, start=1):
        _show(axes[0, j], _render(types[t], truth[t], None))
        axes[0, j].set_title(f"{t} ({types[t].replace('_', ' ')})", fontsize=9)
    for i, (label, outputs) in enumerate(rows, start=1):
        axes[i, 0].axis("off")
        axes[i, 0].text(0.95, 0.5, label, ha="right", va="center", fontsize=8, transform=axes[i, 0].transAxes)
        for j, t in enumerate(tasks, start=1):
            _show(axes[i, j], _render(types[t], outputs[t], truth[t]))
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}: test image {IMAGE_INDEX}, ground truth (top) and each method's prediction", fontsize=10)
    fig.tight_layout()
    return fig
