"""Processed datasets on disk: one torch file per dataset id, written atomically."""

from __future__ import annotations

from pathlib import Path

import torch

from mtlpareto.errors import DatasetMissingError
from mtlpareto.io import atomic_torch_save

SPLITS = ("train", "val", "test")


def save_processed(data: dict, path: Path) -> None:
    atomic_torch_save(data, path)


def load_processed(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DatasetMissingError(f"processed dataset {path} not found; build it with `mtlpareto build-data` (or snakemake)")
    try:
        # Tensors, containers, strings and numbers only: the safe loader suffices.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated/corrupt file: say so instead of a pickle traceback
        raise DatasetMissingError(f"processed dataset {path} is unreadable ({err}); delete it and rebuild") from err


def prepare_inputs(x: torch.Tensor, meta: dict) -> torch.Tensor:
    """uint8 images -> float in [0, 1], then the dataset's mean/std normalisation if it has one."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    if "mean" in meta and "std" in meta:
        mean = torch.as_tensor(meta["mean"], dtype=x.dtype).view(1, -1, *([1] * (x.dim() - 2)))
        std = torch.as_tensor(meta["std"], dtype=x.dtype).view(1, -1, *([1] * (x.dim() - 2)))
        x = (x - mean) / std
    return x
