"""Per-task accuracy and loss of a trained MTL model on each split."""

from __future__ import annotations

import torch

from mtlpareto.data import TaskSpec
from mtlpareto.data.store import prepare_inputs
from mtlpareto.models import MTLModel
from mtlpareto.training.trainer import task_losses


@torch.no_grad()
def evaluate_model(model: MTLModel, data: dict, tasks: list[TaskSpec], splits=("val", "test"), batch_size: int = 1024) -> dict:
    """{split: {task: {"accuracy": %, "loss": mean loss}}}; empty splits are skipped."""
    model.eval()
    meta = data.get("meta", {})
    device = next(model.parameters()).device
    results: dict = {}
    for split in splits:
        if split not in data or data[split][0].shape[0] == 0:
            continue
        x_all, y_all = data[split]
        n = x_all.shape[0]
        loss_sum = torch.zeros(len(tasks), dtype=torch.float64)
        correct = torch.zeros(len(tasks), dtype=torch.float64)
        for start in range(0, n, batch_size):
            x = prepare_inputs(x_all[start : start + batch_size], meta).to(device)
            y = y_all[start : start + batch_size].to(device)
            outputs = model(x)
            loss_sum += task_losses(outputs, y, tasks).double().cpu() * x.shape[0]
            for t, out in enumerate(outputs):
                correct[t] += (out.argmax(dim=1) == y[:, t]).sum().item()
        results[split] = {
            task.name: {"accuracy": round(100.0 * float(correct[t]) / n, 4), "loss": round(float(loss_sum[t]) / n, 6)}
            for t, task in enumerate(tasks)
        }
    return results
