"""CIFAR-100 as 20 five-way tasks (Rosenbaum et al. 2018; Lin et al. 2020, Sec. 7 and App. D).

Task c is the coarse class (superclass) c; its five classes are the fine classes of that
superclass, numbered 0..4 in increasing fine-label order.  Every image belongs to exactly one
task: its label for the other 19 tasks is IGNORE (-100), which the controllable trainer
skips in losses and accuracies (a task absent from a mini-batch has loss 0).  Labels are
stored as int64 [N, 20].

Files: torchvision's layout, ``<path>/cifar-100-python/{train,test,meta}`` (the official
python pickles: 'data' uint8 [N, 3072] in CHW order, 'fine_labels', 'coarse_labels'), with
``path`` defaulting to the pipeline's data/raw.  Fetch uses them if present (MD5-checked
against torchvision's CIFAR100 checksums unless ``check_md5: false``, the bypass for the
tests' tiny files), else downloads through torchvision when ``download: true`` (it checks
the archive's MD5), else fails naming the expected files, checksums and URL.  The pickles are
read directly (the format torchvision reads) so a build does not depend on torchvision's
internal checks.  The validation split is a seeded random part of the official train split.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from mtlpareto.data import DATASETS
from mtlpareto.tasks import Task
from mtlpareto.tasks.classification import ClassificationTask
from mtlpareto.errors import ConfigError, DatasetMissingError

IGNORE = -100
FOLDER = "cifar-100-python"

# Coarse class names in label order (meta['coarse_label_names']); needed without the files:
# validating params.yaml counts the tasks.
COARSE_NAMES: tuple[str, ...] = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
)
# Coarse label of each fine label 0..99 (the official CIFAR-100 hierarchy).
COARSE_OF_FINE: tuple[int, ...] = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15, 3, 15,
    0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13, 16, 19, 2, 4, 6, 19, 5, 5, 8, 19,
    18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)
assert all(COARSE_OF_FINE.count(c) == 5 for c in range(20))
# Index of each fine label within its superclass (0..4, increasing fine label).
INDEX_IN_TASK: tuple[int, ...] = tuple(sorted(f for f in range(100) if COARSE_OF_FINE[f] == COARSE_OF_FINE[g]).index(g) for g in range(100))


def _official_files() -> list[tuple[str, str]]:
    from torchvision.datasets import CIFAR100

    return [*(tuple(x) for x in CIFAR100.train_list), *(tuple(x) for x in CIFAR100.test_list), (CIFAR100.meta["filename"], CIFAR100.meta["md5"])]


def _folder(root: Path, path: str | None) -> Path:
    base = Path(path).expanduser() if path else Path(root)
    return base if base.name == FOLDER else base / FOLDER


def _missing_message(folder: Path, reason: str) -> str:
    from torchvision.datasets import CIFAR100

    files = "\n".join(f"    {name}  (md5 {md5})" for name, md5 in _official_files())
    return (
        f"dataset cifar100_tasks: {reason}\n"
        f"  expected directory: {folder}\n"
        f"  expected files (the official python version, MD5-checked):\n{files}\n"
        f"  official archive: {CIFAR100.url} (md5 {CIFAR100.tgz_md5}), extracts to {FOLDER}/\n"
        "  fix one of:\n"
        "    - set `download: true` for this dataset in params.yaml (needs network);\n"
        f"    - extract the archive so that {folder} holds train, test and meta;\n"
        "    - or set `path:` on the dataset to the directory that holds cifar-100-python/."
    )


def _verify(folder: Path, check_md5: bool) -> dict:
    from torchvision.datasets.utils import calculate_md5, check_integrity

    manifest = {}
    for name, md5 in _official_files():
        file = folder / name
        if not file.is_file():
            raise DatasetMissingError(_missing_message(folder, f"{file} is missing"))
        if check_md5 and not check_integrity(str(file), md5):
            raise DatasetMissingError(
                f"{file}: MD5 mismatch (expected {md5}, found {calculate_md5(str(file))}); the file is corrupt or "
                "not the official one - delete it and place/download it again (or set check_md5: false for hand-made test files)"
            )
        manifest[name] = md5 if check_md5 else "not checked (check_md5: false)"
    return manifest


def _load_pickle(file: Path) -> dict:
    with open(file, "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    # Python 2 pickles load with str keys under latin1; accept bytes keys as well.
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def _read_split(file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    entry = _load_pickle(file)
    for key in ("data", "fine_labels", "coarse_labels"):
        if key not in entry:
            raise DatasetMissingError(f"{file}: not a CIFAR-100 python pickle (no {key!r} entry)")
    data = np.asarray(entry["data"], dtype=np.uint8)
    fine = np.asarray(entry["fine_labels"], dtype=np.int64)
    coarse = np.asarray(entry["coarse_labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(fine) != len(data) or len(coarse) != len(data):
        raise DatasetMissingError(f"{file}: expected data [N, 3072] with N fine and coarse labels, got {data.shape}, {len(fine)}, {len(coarse)}")
    if len(fine) and (fine.min() < 0 or fine.max() > 99):
        raise DatasetMissingError(f"{file}: fine labels outside 0..99")
    if not np.array_equal(np.asarray(COARSE_OF_FINE)[fine], coarse):
        raise DatasetMissingError(f"{file}: coarse labels disagree with the official CIFAR-100 hierarchy")
    labels = np.full((len(fine), len(COARSE_NAMES)), IGNORE, dtype=np.int64)
    labels[np.arange(len(fine)), coarse] = np.asarray(INDEX_IN_TASK)[fine]
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


@DATASETS.register("cifar100_tasks")
class Cifar100TasksKind:
    """CIFAR-100 / 20 tasks; see the module docstring."""

    @staticmethod
    def tasks(spec: dict) -> list[Task]:
        return [ClassificationTask(name, 5, ignore_index=IGNORE) for name in COARSE_NAMES]

    @staticmethod
    def input_shape(spec: dict) -> tuple[int, ...]:
        return (3, 32, 32)

    @staticmethod
    def fetch(spec: dict, root: Path) -> dict:
        folder = _folder(root, spec["path"])
        check_md5 = spec["check_md5"]
        if not all((folder / name).is_file() for name, _ in _official_files()):
            if not spec["download"]:
                raise DatasetMissingError(_missing_message(folder, "files missing and download is off"))
            from torchvision.datasets import CIFAR100

            try:
                CIFAR100(root=str(folder.parent), train=True, download=True)
            except Exception as exc:  # network errors come in many types; report them with the manual route
                raise DatasetMissingError(_missing_message(folder, f"download failed: {exc}")) from None
        return {"folder": str(folder), "files": _verify(folder, check_md5)}

    @staticmethod
    def build(root: Path, path: str | None = None, download: bool = False, check_md5: bool = True, val_size: int = 5000, seed: int = 0) -> dict:
        folder = _folder(root, path)
        _verify(folder, check_md5)
        x_train, y_train = _read_split(folder / "train")
        x_test, y_test = _read_split(folder / "test")
        if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 <= val_size < len(x_train):
            raise ConfigError(f"cifar100_tasks: val_size must be an integer in [0, {len(x_train)}), got {val_size!r}")
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))
        val_idx, train_idx = order[:val_size], order[val_size:]
        x_tr = x_train[train_idx]
        # Per-channel statistics of the train part on the [0, 1] scale (prepare_inputs divides by 255 first).
        as_float = x_tr.to(torch.float64) / 255.0
        mean = as_float.mean(dim=(0, 2, 3))
        std = as_float.std(dim=(0, 2, 3)).clamp_min(1e-6)
        return {
            "train": (x_tr, y_train[train_idx]),
            "val": (x_train[val_idx], y_train[val_idx]),
            "test": (x_test, y_test),
            "tasks": list(COARSE_NAMES),
            "meta": {"mean": mean.tolist(), "std": std.tolist(), "ignore_index": IGNORE},
        }
